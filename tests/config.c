/* Environment configuration, read once at initialisation.
 *
 * Each case runs in a forked child of this process, which never initialises
 * fleet itself: the child clears every FLEET_* setting, sets the case's
 * variables, and then makes its first fleet call. It prints what it saw; the
 * parent checks the exit status and the report.
 *   - a malformed value: fleet_init() and every later call return
 *     FLEET_ERR_INVALID_CONFIG, and the text names the variable and value;
 *   - a valid value takes effect (pool capacity, memory limit, device count,
 *     default backend, binding wait), and later changes of the environment
 *     do not (it was read once).
 */
#include "test_util.h"

static const char *const config_vars[] = {"FLEET_BACKEND", "FLEET_STREAMS", "FLEET_STREAM_WAIT_MS",
                                          "FLEET_MEMORY_LIMIT", "FLEET_CPU_DEVICES",
                                          "FLEET_LOG_LEVEL", "FLEET_GRAPH_CACHE",
                                          "FLEET_MODEL_GRAPHS", "FLEET_CPU_SPIN_US",
                                          "FLEET_CUDA_SMALL_GEMM"};

typedef struct config_case {
    const char *env[3];     /* "NAME=value", up to 3 */
    int (*check)(int fd);   /* run in the child after the environment is set */
} config_case;

static int run_case(void *arg, int fd)
{
    const config_case *c = arg;
    for (size_t i = 0; i < sizeof config_vars / sizeof config_vars[0]; i++)
        unsetenv(config_vars[i]);
    for (int i = 0; i < 3 && c->env[i]; i++)
        putenv((char *)c->env[i]);
    return c->check(fd);
}

static test_proc_result *run(const char *e0, const char *e1, int (*check)(int fd))
{
    static test_proc_result r;
    config_case c = {{e0, e1, NULL}, check};
    test_proc_fork(run_case, &c, 60000, &r);
    ASSERT_PROC_OK(&r);
    return &r;
}

/* ---- malformed values ---------------------------------------------------------- */

static const char *bad_var, *bad_value;

static void report(int fd, const char *what, fleet_status st)
{
    const char *text = fleet_last_error();
    dprintf(fd, "%s=%s names_var=%d names_value=%d\n", what, fleet_status_name(st),
            strstr(text, bad_var) != NULL, strstr(text, bad_value) != NULL);
}

static int check_malformed(int fd)
{
    fleet_device *d = NULL;
    int n = 0;
    report(fd, "init", fleet_init());
    report(fd, "again", fleet_init());
    report(fd, "default", fleet_device_default(&d));
    report(fd, "count", fleet_device_count(FLEET_BACKEND_CPU, &n));
    /* Fixing the environment later does not help: it was read once. */
    unsetenv(bad_var);
    report(fd, "after_fix", fleet_init());
    return 0;
}

TEST(malformed_values_fail_every_call)
{
    static const char *const cases[][2] = {
        {"FLEET_STREAMS", "1"},          {"FLEET_STREAMS", "65"},
        {"FLEET_STREAMS", "abc"},        {"FLEET_STREAMS", "8x"},
        {"FLEET_STREAM_WAIT_MS", "-2"},  {"FLEET_MEMORY_LIMIT", "12X"},
        {"FLEET_MEMORY_LIMIT", "-1"},    {"FLEET_BACKEND", "tpu"},
        {"FLEET_LOG_LEVEL", "loud"},     {"FLEET_CPU_DEVICES", "0"},
        {"FLEET_CPU_DEVICES", "17"},     {"FLEET_GRAPH_CACHE", "0"},
        {"FLEET_GRAPH_CACHE", "4097"},   {"FLEET_MODEL_GRAPHS", "2"},
        /* one strict rule for numbers: digits (and '-' where allowed) only */
        {"FLEET_STREAMS", " 8"},         {"FLEET_STREAMS", "+8"},
        {"FLEET_STREAMS", "8 "},         {"FLEET_STREAM_WAIT_MS", " -1"},
        {"FLEET_STREAMS", "-8"},         {"FLEET_MEMORY_LIMIT", "64M "},
        {"FLEET_MEMORY_LIMIT", "+64M"},  {"FLEET_CPU_SPIN_US", "-1"},
        {"FLEET_CPU_SPIN_US", "100001"}, {"FLEET_CUDA_SMALL_GEMM", "-1"},
        {"FLEET_CUDA_SMALL_GEMM", "16777217"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad_var = cases[i][0];
        bad_value = cases[i][1];
        char env[64];
        snprintf(env, sizeof env, "%s=%s", bad_var, bad_value);
        printf("case %s\n", env);
        test_proc_result *r = run(env, NULL, check_malformed);
        static const char *const calls[] = {"init", "again", "default", "count", "after_fix"};
        for (int k = 0; k < 5; k++) {
            char want[128];
            snprintf(want, sizeof want, "%s=FLEET_ERR_INVALID_CONFIG names_var=1 names_value=1",
                     calls[k]);
            ASSERT_OUT_CONTAINS(r, want);
        }
    }
}

/* ---- valid values take effect ------------------------------------------------------ */

static int check_streams(int fd)
{
    fleet_device *d;
    fleet_stream_pool_stats ps;
    int n = 0;
    ASSERT_OK(fleet_init());
    setenv("FLEET_STREAMS", "16", 1); /* too late: read once */
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CPU, &n));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, n - 1, &d)); /* every device has it */
    ASSERT_OK(fleet_stream_pool_get_stats(d, &ps));
    dprintf(fd, "capacity=%d pool_slots=%d\n", ps.capacity, ps.pool_slots);
    return 0;
}

TEST(streams)
{
    test_proc_result *r = run("FLEET_STREAMS=8", "FLEET_CPU_DEVICES=2", check_streams);
    ASSERT_OUT_CONTAINS(r, "capacity=8 pool_slots=7");
    r = run("FLEET_STREAMS=2", NULL, check_streams);
    ASSERT_OUT_CONTAINS(r, "capacity=2 pool_slots=1");
    r = run("FLEET_STREAMS=64", NULL, check_streams);
    ASSERT_OUT_CONTAINS(r, "capacity=64 pool_slots=63");
    r = run("FLEET_CPU_DEVICES=2", NULL, check_streams); /* default */
    ASSERT_OUT_CONTAINS(r, "capacity=32 pool_slots=31");
}

static int check_limit(int fd)
{
    fleet_device *d;
    fleet_memory_stats st;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &d));
    ASSERT_OK(fleet_memory_get_stats(d, &st));
    dprintf(fd, "limit=%llu\n", (unsigned long long)st.limit);
    if (st.limit > 0) { /* a tensor above the limit is refused */
        int64_t shape[1] = {(int64_t)(st.limit / sizeof(float)) + 1};
        fleet_tensor *t = NULL;
        ASSERT_STATUS(fleet_tensor_create(d, FLEET_DTYPE_F32, 1, shape, &t),
                      FLEET_ERR_OUT_OF_MEMORY);
        ASSERT_STR_CONTAINS(fleet_last_error(), "limit");
        dprintf(fd, "over_limit_refused\n");
    }
    return 0;
}

TEST(memory_limit)
{
    ASSERT_OUT_CONTAINS(run("FLEET_MEMORY_LIMIT=64M", NULL, check_limit),
                        "limit=67108864\nover_limit_refused");
    ASSERT_OUT_CONTAINS(run("FLEET_MEMORY_LIMIT=1048576", NULL, check_limit), "limit=1048576\n");
    ASSERT_OUT_CONTAINS(run("FLEET_MEMORY_LIMIT=64k", NULL, check_limit), "limit=65536\n");
    ASSERT_OUT_CONTAINS(run("FLEET_MEMORY_LIMIT=2G", NULL, check_limit), "limit=2147483648\n");
    ASSERT_OUT_CONTAINS(run("FLEET_LOG_LEVEL=warn", NULL, check_limit), "limit=0\n");
}

static int check_devices(int fd)
{
    int n = -1;
    fleet_device *d = NULL;
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CPU, &n));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, n - 1, &d));
    dprintf(fd, "count=%d last=%s\n", n, fleet_device_name(d));
    ASSERT_STATUS(fleet_device_get(FLEET_BACKEND_CPU, n, &d), FLEET_ERR_INVALID_DEVICE);
    test_matmul_check(d, 8, 8, 8, 1); /* the last device works */
    return 0;
}

TEST(cpu_devices)
{
    ASSERT_OUT_CONTAINS(run("FLEET_CPU_DEVICES=3", NULL, check_devices), "count=3 last=cpu:2\n");
    ASSERT_OUT_CONTAINS(run("FLEET_CPU_DEVICES=16", NULL, check_devices), "count=16 last=cpu:15\n");
    ASSERT_OUT_CONTAINS(run("FLEET_LOG_LEVEL=info", NULL, check_devices), "count=1 last=cpu:0\n");
}

/* cpu streams work with spinning off and at its longest. */
TEST(cpu_spin)
{
    ASSERT_OUT_CONTAINS(run("FLEET_CPU_SPIN_US=0", NULL, check_devices), "count=1 last=cpu:0\n");
    ASSERT_OUT_CONTAINS(run("FLEET_CPU_SPIN_US=100000", NULL, check_devices),
                        "count=1 last=cpu:0\n");
}

static int check_backend(int fd)
{
    fleet_device *d = NULL;
    int ncuda = -1;
    ASSERT_OK(fleet_init());
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &ncuda));
    fleet_status st = fleet_device_default(&d);
    dprintf(fd, "cuda=%d default=%s device=%s reason=%d\n", ncuda > 0, fleet_status_name(st),
            st == FLEET_OK ? fleet_device_name(d) : "none",
            st != FLEET_OK && strstr(fleet_last_error(), "cuda") != NULL);
    return 0;
}

/* FLEET_BACKEND=cuda where there is no GPU fails at init, with the reason. */
static int check_cuda_init(int fd)
{
    fleet_status st = fleet_init();
    fleet_device *d = NULL;
    fleet_status st2 = fleet_device_get(FLEET_BACKEND_CPU, 0, &d);
    dprintf(fd, "init=%s named=%d later=%s\n", fleet_status_name(st),
            strstr(fleet_last_error(), "FLEET_BACKEND=cuda") != NULL &&
                strstr(fleet_last_error(), "no cuda device") != NULL,
            fleet_status_name(st2));
    return 0;
}

TEST(backend)
{
    test_proc_result *r = run("FLEET_BACKEND=cuda", NULL, check_cuda_init);
    if (strstr(r->out, "init=FLEET_OK")) {
        r = run("FLEET_BACKEND=cuda", NULL, check_backend);
        ASSERT_OUT_CONTAINS(r, "cuda=1 default=FLEET_OK device=cuda:0");
    } else {
        ASSERT_OUT_CONTAINS(r, "init=FLEET_ERR_INVALID_CONFIG named=1 later=FLEET_ERR_INVALID_CONFIG");
    }
    r = run("FLEET_BACKEND=cpu", NULL, check_backend);
    ASSERT_OUT_CONTAINS(r, "default=FLEET_OK device=cpu:0");
    r = run("FLEET_BACKEND=CPU", NULL, check_backend); /* case-insensitive */
    ASSERT_OUT_CONTAINS(r, "default=FLEET_OK device=cpu:0");
}

/* FLEET_STREAM_WAIT_MS with one pool slot, held by an acquire: a binding
 * waits that long and fails (N > 0) or shares the slot (0). */
static int wait_result_fd;
static void *bind_thread(void *arg)
{
    fleet_device *d = arg;
    fleet_stream *s = NULL;
    double t0 = test_now_ms();
    fleet_status st = fleet_stream_current(d, &s);
    dprintf(wait_result_fd, "bind=%s waited_enough=%d id=%d\n", fleet_status_name(st),
            test_now_ms() - t0 >= 45.0, st == FLEET_OK ? fleet_stream_id(s) : -1);
    return NULL;
}

static int check_wait(int fd)
{
    fleet_device *d;
    fleet_stream *held;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &d));
    ASSERT_OK(fleet_stream_acquire(d, &held));
    wait_result_fd = fd;
    test_run_threads(1, bind_thread, d, 0);
    ASSERT_OK(fleet_stream_release(held));
    return 0;
}

TEST(stream_wait)
{
    ASSERT_OUT_CONTAINS(run("FLEET_STREAMS=2", "FLEET_STREAM_WAIT_MS=50", check_wait),
                        "bind=FLEET_ERR_POOL_EXHAUSTED waited_enough=1 id=-1");
    test_proc_result *r = run("FLEET_STREAMS=2", "FLEET_STREAM_WAIT_MS=0", check_wait);
    ASSERT_OUT_CONTAINS(r, "bind=FLEET_OK");
    ASSERT_OUT_CONTAINS(r, "id=1\n"); /* shares the held slot */
}

static int check_log_level(int fd)
{
    dprintf(fd, "init=%s\n", fleet_status_name(fleet_init()));
    return 0;
}

TEST(log_levels)
{
    static const char *const ok[] = {"FLEET_LOG_LEVEL=error", "FLEET_LOG_LEVEL=WARN",
                                     "FLEET_LOG_LEVEL=info", "FLEET_LOG_LEVEL=debug",
                                     "FLEET_LOG_LEVEL=trace"};
    for (int i = 0; i < 5; i++)
        ASSERT_OUT_CONTAINS(run(ok[i], NULL, check_log_level), "init=FLEET_OK");
}

TEST_MAIN()
