/* `fleet bench --model` as a user runs it, on a tiny ONNX model written here
 * (tests/pb_writer.h): a float input and int64 token ids over a symbolic
 * batch and a named sequence, y = relu((x + table[ids]) @ W + b). Checked:
 * one table row per (batch, thread count) with a positive runs/s, the JSON
 * rows' batch and samples/s (runs/s x batch), the named dimension bound by
 * --dim; and the refusals, with exit codes and reasons: a missing file, a
 * corrupt file, an unbound dimension, --batch without --model. Figures are
 * not judged (speed is read from tables, never asserted). Runs the fleet
 * binary built next to the tests, on the cpu backend. */
#include "onnx_writer.h"
#include "test_util.h"

#define FLEET_BIN FLEET_TEST_BINARY_DIR "/../fleet"

static test_proc_result r;

static void bench(char *const *args, int n)
{
    char *argv[32] = {FLEET_BIN, "bench"};
    for (int i = 0; i < n; i++)
        argv[2 + i] = args[i];
    argv[2 + n] = NULL;
    static char *const env[] = {"FLEET_BACKEND=cpu", NULL};
    test_proc_spawn(argv, env, 120000, &r);
}

/* ---- the model ------------------------------------------------------------------------ */

/* Writes the model to a temporary file; its path in path (a mkstemp
 * template of at least 32 bytes). */
static void write_model(char *path)
{
    float table[10 * 4], w[4 * 3], b[3];
    test_rng rng = test_rng_make(11);
    test_fill_random(table, 40, &rng);
    test_fill_random(w, 12, &rng);
    test_fill_random(b, 3, &rng);
    pbw g = {0};
    pbw_str(&g, 2, "tiny");
    onnx_w_init_raw(&g, "table", 1, 2, (const int64_t[]){10, 4}, table, sizeof table);
    onnx_w_init_raw(&g, "W", 1, 2, (const int64_t[]){4, 3}, w, sizeof w);
    onnx_w_init_raw(&g, "b", 1, 1, (const int64_t[]){3}, b, sizeof b);
    const char *const params[] = {"batch", "sequence", NULL};
    onnx_w_value_info(&g, 11, "x", 1, 3, (const int64_t[]){-1, -1, 4}, params);
    onnx_w_value_info(&g, 11, "ids", 7, 2, (const int64_t[]){-1, -1}, params);
    onnx_w_value_info(&g, 12, "y", 1, 3, (const int64_t[]){-1, -1, 3}, params);
    onnx_w_node(&g, "Gather", "e", (const char *[]){"table", "ids"}, 2, "e", NULL, 0);
    onnx_w_node(&g, "Add", "h", (const char *[]){"x", "e"}, 2, "h", NULL, 0);
    onnx_w_node(&g, "MatMul", "hw", (const char *[]){"h", "W"}, 2, "hw", NULL, 0);
    onnx_w_node(&g, "Add", "hb", (const char *[]){"hw", "b"}, 2, "hb", NULL, 0);
    onnx_w_node(&g, "Relu", "y", (const char *[]){"hb"}, 1, "y", NULL, 0);
    pbw m = onnx_w_model(&g, 17);
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(write(fd, m.p, m.n), (long long)m.n);
    close(fd);
    pbw_free(&m);
}

/* The number after `key` in the JSON object that names `workload` and
 * `threads`; -1 when there is none. */
static double json_field(const char *json, const char *workload, int threads, const char *key)
{
    char head[160], k[64];
    snprintf(head, sizeof head, "\"workload\": \"%s\", \"threads\": %d,", workload, threads);
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *row = strstr(json, head);
    if (row == NULL)
        return -1;
    const char *end = strchr(row, '}'), *p = strstr(row, k);
    return p != NULL && p < end ? strtod(p + strlen(k), NULL) : -1;
}

/* The runs/s cell of the table row "| name | threads | runs/s | ...". */
static double table_rate(const char *out, const char *name, int threads)
{
    char head[160];
    snprintf(head, sizeof head, "| %s | %d | ", name, threads);
    const char *p = strstr(out, head);
    return p != NULL ? strtod(p + strlen(head), NULL) : -1;
}

TEST(one_row_per_batch_and_thread_count_with_its_figures)
{
    char model[] = "/tmp/fleet_bench_model_XXXXXX", json[] = "/tmp/fleet_bench_mjson_XXXXXX";
    write_model(model);
    int fd = mkstemp(json);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    char *args[] = {"--model", model, "--name", "tiny", "--dim", "sequence=5", "--batch", "1",
                    "--batch", "3", "--threads", "1,2", "--windows", "3", "--window-ms", "100",
                    "--warmup-ms", "10", "--json", json};
    bench(args, 20);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "| model | threads | runs/s | min | max | samples/s | p50 ms | "
                            "p99 ms | speedup | efficiency |");
    ASSERT_OUT_CONTAINS(&r, "sequence=5");
    ASSERT_TRUE(strstr(r.out, "| linear64 |") == NULL); /* only the model rows */
    const char *rows[] = {"model:tiny b1", "model:tiny b3"};
    for (int i = 0; i < 2; i++)
        for (int t = 1; t <= 2; t++)
            ASSERT_TRUE(table_rate(r.out, rows[i], t) > 0);
    FILE *f = fopen(json, "r");
    ASSERT_TRUE(f != NULL);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(json);
    ASSERT_EQ(text[0], '[');
    int entries = 0;
    for (const char *p = text; (p = strstr(p, "\"workload\": ")) != NULL; p++)
        entries++;
    ASSERT_EQ(entries, 4);
    for (int i = 0; i < 2; i++)
        for (int t = 1; t <= 2; t++) {
            double runs = json_field(text, rows[i], t, "ops_per_s");
            double samples = json_field(text, rows[i], t, "samples_per_s");
            ASSERT_TRUE(runs > 0);
            ASSERT_EQ(json_field(text, rows[i], t, "batch"), i ? 3 : 1);
            ASSERT_TRUE(fabs(samples - runs * (i ? 3 : 1)) <= 1e-3 * samples + 0.01);
            ASSERT_TRUE(json_field(text, rows[i], t, "p99_us") >=
                        json_field(text, rows[i], t, "p50_us"));
            ASSERT_TRUE(json_field(text, rows[i], t, "p50_us") > 0);
        }
    /* without --name the row is named after the file */
    char *unnamed[] = {"--model", model, "--dim", "sequence=2", "--quick", "--threads", "1"};
    bench(unnamed, 7);
    ASSERT_PROC_OK(&r);
    char row[96];
    snprintf(row, sizeof row, "model:%s b1", strrchr(model, '/') + 1);
    ASSERT_TRUE(table_rate(r.out, row, 1) > 0);
    unlink(model);
}

TEST(bad_models_and_options_are_refused_with_a_reason)
{
    char *missing[] = {"--model", "/nonexistent/model.onnx", "--quick"};
    bench(missing, 3);
    ASSERT_TRUE(r.exited && r.code == 1);
    ASSERT_OUT_CONTAINS(&r, "fleet bench: fleet_model_load_onnx: cannot open");

    char corrupt[] = "/tmp/fleet_bench_corrupt_XXXXXX";
    int fd = mkstemp(corrupt);
    ASSERT_TRUE(fd >= 0);
    static const unsigned char junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
    ASSERT_EQ(write(fd, junk, sizeof junk), (long long)sizeof junk);
    close(fd);
    char *bad[] = {"--model", corrupt, "--quick"};
    bench(bad, 3);
    unlink(corrupt);
    ASSERT_TRUE(r.exited && r.code == 1);
    ASSERT_OUT_CONTAINS(&r, "fleet bench: "); /* the reader's reason, with its offset: */
    ASSERT_OUT_CONTAINS(&r, "at byte");
    ASSERT_TRUE(strstr(r.out, "| model |") == NULL);

    char model[] = "/tmp/fleet_bench_model_XXXXXX";
    write_model(model);
    char *unbound[] = {"--model", model, "--quick", "--threads", "1"};
    bench(unbound, 5);
    ASSERT_TRUE(r.exited && r.code == 1);
    ASSERT_OUT_CONTAINS(&r, "sequence");
    unlink(model);

    char *batch_alone[] = {"--batch", "4"};
    bench(batch_alone, 2);
    ASSERT_TRUE(r.exited && r.code == 2);
    ASSERT_OUT_CONTAINS(&r, "go with --model");
    char *bad_batch[] = {"--model", "x.onnx", "--batch", "0"};
    bench(bad_batch, 4);
    ASSERT_TRUE(r.exited && r.code == 2);
    char *bad_dim[] = {"--model", "x.onnx", "--dim", "sequence"};
    bench(bad_dim, 4);
    ASSERT_TRUE(r.exited && r.code == 2);
}

TEST_MAIN()
