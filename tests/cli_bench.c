/* `fleet bench` as a user runs it: the table and the JSON it writes (the
 * figures themselves are not judged here — speed goals are read from the
 * tables, never asserted by a test), and bad options refused. Runs the
 * fleet binary built next to the tests, on the cpu backend. */
#include "test_util.h"

#define FLEET_BIN FLEET_TEST_BINARY_DIR "/../fleet"

static test_proc_result r;

static void bench(char *const *args, int n)
{
    char *argv[16] = {FLEET_BIN, "bench"};
    for (int i = 0; i < n; i++)
        argv[2 + i] = args[i];
    argv[2 + n] = NULL;
    static char *const env[] = {"FLEET_BACKEND=cpu", NULL};
    test_proc_spawn(argv, env, 120000, &r);
}

TEST(table_and_json)
{
    char path[] = "/tmp/fleet_bench_json_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    char *args[] = {"--threads", "1,2", "--workloads", "linear64,mlp", "--windows", "3",
                    "--window-ms", "150", "--warmup-ms", "10", "--json", path};
    bench(args, 12);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "| workload | threads | ops/s | us/op | min | max | speedup | efficiency |");
    ASSERT_OUT_CONTAINS(&r, "\nkernels: "); /* the library in use is named */
    ASSERT_OUT_CONTAINS(&r, "| linear64 | 1 | ");
    ASSERT_OUT_CONTAINS(&r, "| linear64 | 2 | ");
    ASSERT_OUT_CONTAINS(&r, "| mlp | 2 | ");
    ASSERT_TRUE(strstr(r.out, "| linear2048 |") == NULL); /* not selected */
    FILE *f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    char json[8192];
    size_t n = fread(json, 1, sizeof json - 1, f);
    json[n] = '\0';
    fclose(f);
    unlink(path);
    int entries = 0;
    double ops = 0;
    for (const char *p = json; (p = strstr(p, "\"ops_per_s\": ")) != NULL; p++) {
        ops = strtod(p + 13, NULL);
        /* The median window ran some ops: windows are long enough that a
         * loaded machine (ctest -j) still completes an mlp step in one. */
        ASSERT_TRUE(ops > 0);
        entries++;
    }
    ASSERT_EQ(entries, 4);
    ASSERT_EQ(json[0], '[');
    ASSERT_TRUE(strstr(json, "\"workload\": \"mlp\", \"threads\": 2") != NULL);
}

TEST(bad_options)
{
    char *unknown[] = {"--workloads", "linear65"};
    bench(unknown, 2);
    ASSERT_TRUE(r.exited && r.code == 2);
    ASSERT_OUT_CONTAINS(&r, "unknown workload 'linear65'");
    char *threads[] = {"--threads", "0"};
    bench(threads, 2);
    ASSERT_TRUE(r.exited && r.code == 2);
    char *dangling[] = {"--windows"};
    bench(dangling, 1);
    ASSERT_TRUE(r.exited && r.code == 2);
}

TEST_MAIN()
