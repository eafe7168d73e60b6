/* Static Atexit: atexit handlers that call fleet work, and the process exits 0.
 *
 * The scenario runs in a child (this program re-executed with --child MODE):
 * one handler is registered before fleet's first use, another after it, so
 * they run (in reverse order) around whatever fleet would tear down at exit.
 * The later-registered handler runs first: it synchronizes (reads a result
 * that was still queued when main returned), checks it, queues more work and
 * frees tensors. The earlier-registered handler runs last: it synchronizes
 * the device, checks the new values, frees the rest, checks that the
 * allocator is back to its baseline, and (in mode "shutdown") shuts fleet
 * down explicitly. The parent checks the exit status, the PASS lines and
 * their order. Modes: return from main, exit() from another thread,
 * explicit shutdown inside the last handler, and "after-init", where the
 * first-running handler is registered right after fleet's first call, before
 * any op. The first-running handler also does fresh work (a new tensor, a
 * GEMM, a read). On cuda the CUDA runtime tears itself down between the two
 * handlers: the last one must get FLEET_ERR_SHUTDOWN naming process exit,
 * also from a tensor_create that needs a new segment (not "out of memory");
 * and in "after-init" the first one runs after cuBLAS's teardown of the
 * kernels the main program loaded later, so it must get FLEET_ERR_SHUTDOWN
 * too, never a crash.
 */
#include "test_util.h"

enum { M = 40, K = 56, N = 24 };

static const char *mode = "return";
static fleet_device *dev;
static fleet_tensor *ta, *tb, *tc;
static float a[M * K], b[K * N], want_mm[M * N], want_relu[M * N];
static uint64_t base_allocated;

#define CHILD_CHECK(cond, what)                                                          \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("FAIL %s (%s)\n", what, fleet_last_error());                          \
            fflush(stdout);                                                              \
            _exit(3);                                                                    \
        }                                                                                \
    } while (0)

static int equal(const float *x, const float *y, int n)
{
    for (int i = 0; i < n; i++)
        if (fabsf(x[i] - y[i]) > 1e-5f + 1e-5f * fabsf(y[i]))
            return 0;
    return 1;
}

static bool after_init;

/* Registered after fleet's first use, so it runs first. */
static void handler_registered_after(void)
{
    float got[M * N];
    if (after_init && fleet_device_backend(dev) == FLEET_BACKEND_CUDA) {
        /* Registered before fleet's first GEMM: cuBLAS loaded its kernels
         * after it and registered their teardown, which runs first; fleet's
         * guard, registered right after that first GEMM, closed the backend
         * before it, so the handler is told, cleanly (runtime.h). */
        CHILD_CHECK(fleet_device_synchronize(dev) == FLEET_ERR_SHUTDOWN, "cuda: SHUTDOWN expected");
        CHILD_CHECK(strstr(fleet_last_error(), "process exit") != NULL, "cuda: error text");
        printf("PASS handler-after: cuda kernels loaded after it, FLEET_ERR_SHUTDOWN\n");
        fflush(stdout);
        return;
    }
    /* The handler may run on another thread than main's (mode thread-exit):
     * order with main's stream through a device-wide sync. */
    CHILD_CHECK(fleet_device_synchronize(dev) == FLEET_OK, "device_synchronize");
    CHILD_CHECK(fleet_tensor_copy_to_host(tc, got, sizeof got) == FLEET_OK, "copy_to_host");
    CHILD_CHECK(equal(got, want_mm, M * N), "queued matmul value");
    CHILD_CHECK(fleet_relu(tc, tc) == FLEET_OK, "relu");
    /* Fresh work from inside the handler: new tensors, a GEMM, a read. */
    int64_t sc[2] = {M, N};
    fleet_tensor *fresh = NULL;
    CHILD_CHECK(fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, sc, &fresh) == FLEET_OK, "create");
    CHILD_CHECK(fleet_matmul(ta, tb, fresh) == FLEET_OK, "matmul in handler");
    CHILD_CHECK(fleet_tensor_copy_to_host(fresh, got, sizeof got) == FLEET_OK, "copy_to_host");
    CHILD_CHECK(equal(got, want_mm, M * N), "matmul in handler value");
    CHILD_CHECK(fleet_tensor_release(fresh) == FLEET_OK, "release fresh");
    CHILD_CHECK(fleet_tensor_release(ta) == FLEET_OK, "release a");
    CHILD_CHECK(fleet_tensor_release(tb) == FLEET_OK, "release b");
    printf("PASS handler-after: synchronized, value checked, fresh matmul checked, freed\n");
    fflush(stdout);
}

/* Registered before any fleet call, so it runs last. */
static void handler_registered_before(void)
{
    float got[M * N];
    fleet_memory_stats st;
    if (fleet_device_backend(dev) == FLEET_BACKEND_CUDA) {
        /* The CUDA runtime registered its own teardown at fleet's first use,
         * after this handler, and fleet closed its cuda backend just before
         * that teardown: fleet says so cleanly (runtime.h), and shutting down
         * still works. */
        CHILD_CHECK(fleet_device_synchronize(dev) == FLEET_ERR_SHUTDOWN, "cuda: SHUTDOWN expected");
        CHILD_CHECK(strstr(fleet_last_error(), "process exit") != NULL, "cuda: error text");
        /* A tensor that needs a new segment: the closed backend, not "out of
         * memory". */
        int64_t big[1] = {(int64_t)16 << 20};
        fleet_tensor *t = NULL;
        CHILD_CHECK(fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, big, &t) == FLEET_ERR_SHUTDOWN,
                    "cuda: tensor_create SHUTDOWN expected");
        CHILD_CHECK(strstr(fleet_last_error(), "process exit") != NULL, "cuda: create error text");
        CHILD_CHECK(t == NULL, "cuda: no tensor");
        CHILD_CHECK(fleet_shutdown() == FLEET_OK, "shutdown after the CUDA runtime unloaded");
        printf("PASS handler-before: cuda runtime already unloaded, FLEET_ERR_SHUTDOWN\n");
        if (strcmp(mode, "shutdown") == 0)
            printf("PASS handler-shutdown\n");
        fflush(stdout);
        return;
    }
    CHILD_CHECK(fleet_device_synchronize(dev) == FLEET_OK, "device_synchronize");
    CHILD_CHECK(fleet_tensor_copy_to_host(tc, got, sizeof got) == FLEET_OK, "copy_to_host");
    CHILD_CHECK(equal(got, want_relu, M * N), "relu value");
    CHILD_CHECK(fleet_tensor_release(tc) == FLEET_OK, "release c");
    /* A fresh op from inside the handler. */
    fleet_tensor *x = NULL, *y = NULL;
    int64_t shape[2] = {M, K};
    CHILD_CHECK(fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, shape, &x) == FLEET_OK, "create");
    CHILD_CHECK(fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, shape, &y) == FLEET_OK, "create");
    CHILD_CHECK(fleet_tensor_copy_from_host(x, a, sizeof a) == FLEET_OK, "copy_from_host");
    CHILD_CHECK(fleet_relu(x, y) == FLEET_OK, "relu");
    static float ry[M * K], want[M * K];
    for (int i = 0; i < M * K; i++)
        want[i] = a[i] > 0 ? a[i] : 0;
    CHILD_CHECK(fleet_tensor_copy_to_host(y, ry, sizeof ry) == FLEET_OK, "copy_to_host");
    CHILD_CHECK(memcmp(ry, want, sizeof ry) == 0, "relu in handler");
    CHILD_CHECK(fleet_tensor_release(x) == FLEET_OK && fleet_tensor_release(y) == FLEET_OK,
                "release");
    CHILD_CHECK(fleet_memory_get_stats(dev, &st) == FLEET_OK, "get_stats");
    CHILD_CHECK(st.allocated == base_allocated, "allocated back to baseline");
    CHILD_CHECK(fleet_memory_empty_cache(dev) == FLEET_OK, "empty_cache");
    printf("PASS handler-before: synchronized, values checked, all freed\n");
    if (strcmp(mode, "shutdown") == 0) {
        fleet_stream *s;
        CHILD_CHECK(fleet_shutdown() == FLEET_OK, "shutdown in handler");
        CHILD_CHECK(fleet_shutdown() == FLEET_OK, "second shutdown in handler");
        CHILD_CHECK(fleet_stream_current(dev, &s) == FLEET_ERR_SHUTDOWN, "call after shutdown");
        printf("PASS handler-shutdown\n");
    }
    fflush(stdout);
}

static void *exiting_thread(void *arg)
{
    (void)arg;
    test_matmul_check(dev, 8, 8, 8, 4);
    exit(0); /* runs the handlers on this thread while main waits */
}

static int child_main(void)
{
    atexit(handler_registered_before);
    CHILD_CHECK(fleet_device_default(&dev) == FLEET_OK, "device_default");
    after_init = strcmp(mode, "after-init") == 0;
    if (after_init) /* after fleet's first call, before any op */
        atexit(handler_registered_after);
    fleet_memory_stats st;
    CHILD_CHECK(fleet_memory_get_stats(dev, &st) == FLEET_OK, "get_stats");
    base_allocated = st.allocated;
    test_rng r = test_rng_make(12);
    test_fill_random(a, M * K, &r);
    test_fill_random(b, K * N, &r);
    ref_matmul(a, b, NULL, want_mm, M, K, N);
    for (int i = 0; i < M * N; i++)
        want_relu[i] = want_mm[i] > 0 ? want_mm[i] : 0;
    ta = test_tensor_2d(dev, M, K, a);
    tb = test_tensor_2d(dev, K, N, b);
    tc = test_tensor_2d(dev, M, N, NULL);
    for (int i = 0; i < 10; i++) /* queued when main ends */
        CHILD_CHECK(fleet_matmul(ta, tb, tc) == FLEET_OK, "matmul");
    if (!after_init)
        atexit(handler_registered_after);
    printf("main done (%s)\n", mode);
    fflush(stdout);
    if (strcmp(mode, "thread-exit") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exiting_thread, NULL);
        pthread_join(t, NULL);
        printf("FAIL exit() in a thread returned\n");
        return 4;
    }
    return 0;
}

static void run_mode(const char *m)
{
    char *argv[] = {(char *)"/proc/self/exe", (char *)"--child", (char *)m, NULL};
    test_proc_result r;
    test_proc_spawn(argv, NULL, 60000, &r);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "main done");
    ASSERT_OUT_CONTAINS(&r, "PASS handler-after");
    ASSERT_OUT_CONTAINS(&r, "PASS handler-before");
    ASSERT_TRUE(strstr(r.out, "PASS handler-after") < strstr(r.out, "PASS handler-before"));
    ASSERT_TRUE(strstr(r.out, "FAIL") == NULL);
    if (strcmp(m, "shutdown") == 0)
        ASSERT_OUT_CONTAINS(&r, "PASS handler-shutdown");
}

TEST(atexit_after_return_from_main) { run_mode("return"); }
TEST(atexit_after_exit_in_thread) { run_mode("thread-exit"); }
TEST(atexit_with_explicit_shutdown) { run_mode("shutdown"); }
TEST(atexit_registered_after_init_before_any_op) { run_mode("after-init"); }

TEST(repeated)
{
    for (int i = 0; i < test_scaled(3); i++)
        run_mode(i % 2 ? "thread-exit" : "return");
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
        mode = argv[2];
        return child_main();
    }
    return test_main(argc, argv);
}
