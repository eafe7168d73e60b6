/* Fork MP Spawn: the way to use a GPU from a child process is posix_spawn or
 * fork+exec. A parent that is multi-threaded and has live fleet state (bound
 * streams, live tensors, queued work, a device marked as not surviving fork)
 * starts helper_spawn_child, which uses the default backend (the GPU when
 * present) and prints a hash of its matmul result; the parent compares it
 * with its own reference, bit for bit (the inputs make every sum exact).
 */
#include "runtime/device.h"
#include "test_util.h"

#define HELPER FLEET_TEST_BINARY_DIR "/helper_spawn_child"

#if defined(__SANITIZE_THREAD__)
/* fleet's fork handler (fork+exec cases) holds every lock at once, more than
 * the 64 that TSan's deadlock detector can track per thread. */
const char *__tsan_default_options(void) { return "detect_deadlocks=0"; }
#endif

static fleet_device *cpu1;
static char default_name[32];

/* What helper_spawn_child must print for M K N SALT. */
static void expected_line(int64_t m, int64_t k, int64_t n, uint32_t salt, const char *device,
                          char *line, size_t cap)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k));
    float *b = malloc(sizeof(float) * (size_t)(k * n));
    float *c = malloc(sizeof(float) * (size_t)(m * n));
    ASSERT_TRUE(a && b && c);
    test_fill_exact(a, m * k, salt);
    test_fill_exact(b, k * n, salt + 1);
    ref_matmul(a, b, NULL, c, m, k, n);
    uint64_t hash = 1469598103934665603ull;
    double sum = 0;
    for (int64_t i = 0; i < m * n; i++) {
        uint32_t bits;
        memcpy(&bits, &c[i], sizeof bits);
        hash = (hash ^ bits) * 1099511628211ull;
        sum += c[i];
    }
    snprintf(line, cap, "device=%s hash=%016llx sum=%.17g\nPASS\n", device,
             (unsigned long long)hash, sum);
    free(a), free(b), free(c);
}

/* Live fleet state in the parent: busy threads, a live tensor, queued work. */
static test_busy workers[4];
static atomic_int stop_workers;
static fleet_tensor *live_a, *live_out;

static void parent_busy_start(void)
{
    fleet_device *dev;
    ASSERT_OK(fleet_device_default(&dev));
    snprintf(default_name, sizeof default_name, "%s", fleet_device_name(dev));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &cpu1));
    fleet__testing_set_survives_fork(cpu1, false);
    atomic_init(&stop_workers, 0);
    for (int i = 0; i < 4; i++)
        test_busy_start(&workers[i], i == 3 ? cpu1 : dev, &stop_workers, 70 + (uint64_t)i, 4);
    test_busy_wait_progress(workers, 4, NULL, 2, 60000);
    float a[64 * 64];
    test_fill_exact(a, 64 * 64, 5);
    live_a = test_tensor_2d(dev, 64, 64, a);
    live_out = test_tensor_2d(dev, 64, 64, NULL);
    for (int i = 0; i < 20; i++) /* queued, not waited for */
        ASSERT_OK(fleet_matmul(live_a, live_a, live_out));
}

static void parent_busy_stop(void)
{
    float got[64 * 64], want[64 * 64], a[64 * 64];
    test_fill_exact(a, 64 * 64, 5);
    ref_matmul(a, a, NULL, want, 64, 64, 64);
    test_tensor_read(live_out, got);
    ASSERT_CLOSE(got, want, 64 * 64, 0, 0);
    atomic_store(&stop_workers, 1);
    test_busy_join(workers, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_GE(atomic_load(&workers[i].checked), 1);
    ASSERT_OK(fleet_tensor_release(live_a));
    ASSERT_OK(fleet_tensor_release(live_out));
}

static void check_child(const test_proc_result *r, int64_t m, int64_t k, int64_t n,
                        uint32_t salt, const char *device)
{
    char want[256];
    expected_line(m, k, n, salt, device, want, sizeof want);
    ASSERT_PROC_OK(r);
    ASSERT_OUT_CONTAINS(r, want);
}

static void spawn_helper(const char *device, int64_t m, int64_t k, int64_t n, uint32_t salt,
                         test_proc_result *r)
{
    char sm[24], sk[24], sn[24], ss[24];
    snprintf(sm, sizeof sm, "%lld", (long long)m);
    snprintf(sk, sizeof sk, "%lld", (long long)k);
    snprintf(sn, sizeof sn, "%lld", (long long)n);
    snprintf(ss, sizeof ss, "%u", salt);
    char *argv[] = {(char *)HELPER, (char *)device, sm, sk, sn, ss, NULL};
    test_proc_spawn(argv, NULL, 120000, r);
}

/* fork, then only async-signal-safe calls until execv. */
static void fork_exec_helper(const char *device, test_proc_result *r)
{
    char *argv[] = {(char *)HELPER, (char *)device, (char *)"48", (char *)"96", (char *)"40",
                    (char *)"7", NULL};
    memset(r, 0, sizeof *r);
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    test_proc_finish_(pid, fds[0], 120000, r);
}

TEST(posix_spawn_child_uses_default_backend)
{
    parent_busy_start();
    test_proc_result r;
    spawn_helper("default", 64, 128, 48, 1, &r);
    check_child(&r, 64, 128, 48, 1, default_name);
    int ncuda = 0;
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &ncuda));
    const char *forced = getenv("FLEET_BACKEND");
    if (ncuda > 0) { /* the default is the GPU unless forced: use it explicitly too */
        ASSERT_STR_CONTAINS(default_name, forced && strcmp(forced, "cpu") == 0 ? "cpu:0" : "cuda:0");
        spawn_helper("cuda:0", 33, 65, 17, 2, &r);
        check_child(&r, 33, 65, 17, 2, "cuda:0");
    } else {
        ASSERT_STR_CONTAINS(default_name, "cpu:0");
    }
    /* cpu:1 is "not fork-safe" here, but a spawned child is a new process. */
    spawn_helper("cpu:1", 20, 30, 40, 3, &r);
    check_child(&r, 20, 30, 40, 3, "cpu:1");
    parent_busy_stop();
}

TEST(fork_exec_child_uses_default_backend)
{
    parent_busy_start();
    test_proc_result r;
    fork_exec_helper("default", &r);
    check_child(&r, 48, 96, 40, 7, default_name);
    fork_exec_helper("cpu:1", &r);
    check_child(&r, 48, 96, 40, 7, "cpu:1");
    parent_busy_stop();
}

/* Several threads of the busy parent spawn children at the same moment. */
static void *spawner(void *arg)
{
    uint32_t salt = (uint32_t)(uintptr_t)arg;
    for (int i = 0; i < test_scaled(3); i++) {
        test_proc_result *r = malloc(sizeof *r);
        ASSERT_TRUE(r != NULL);
        if ((salt + (uint32_t)i) % 2)
            spawn_helper("default", 40, 50, 30, salt + (uint32_t)i, r);
        else {
            fork_exec_helper("default", r);
            check_child(r, 48, 96, 40, 7, default_name);
            free(r);
            continue;
        }
        check_child(r, 40, 50, 30, salt + (uint32_t)i, default_name);
        free(r);
    }
    return NULL;
}

TEST(concurrent_spawns_from_busy_parent)
{
    parent_busy_start();
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, spawner, (void *)(10 * i + 11)), 0);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    /* The parent itself is still correct afterwards. */
    fleet_device *dev;
    ASSERT_OK(fleet_device_default(&dev));
    test_matmul_check(dev, 31, 47, 23, 9);
    parent_busy_stop();
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
}
