/* Fork Active Threads: fork repeatedly while 8 threads run ops non-stop.
 *
 * Six workers run checked matmul+add+relu on cpu:0, two on cpu:1, which is
 * marked as a device that cannot survive fork (the GPU stand-in). Each fork
 * lands in the middle of their work: allocator, stream-pool and worker-queue
 * locks may be held at that instant. Neither side may deadlock: the child
 * runs under alarm() and the parent kills it after a timeout (= failure); the
 * parent's workers must keep making progress after every fork. The child
 * behaves as under Fork Safety: FLEET_ERR_FORKED with text on cpu:1 (and
 * cuda if present), correct results on cpu:0, allocation, sync and stats.
 */
#include "runtime/device.h"
#include "test_util.h"

#if defined(__SANITIZE_THREAD__)
/* die_after_fork=0: the child of this multi-threaded parent starts threads
 * (fresh cpu workers), which TSan's default would kill it for.
 * detect_deadlocks=0: fleet's fork handler holds every lock at once (more
 * than the 64 that TSan's deadlock detector can track per thread). */
const char *__tsan_default_options(void) { return "die_after_fork=0:detect_deadlocks=0"; }
#endif

#define NWORKERS 8
#define NGPU 2 /* workers on cpu:1 */

static fleet_device *cpu0, *cpu1;

static void *child_thread(void *arg)
{
    test_matmul_check(cpu0, 20, 30, 10, *(const uint64_t *)arg);
    return NULL;
}

static uint64_t seeds[2] = {600, 601};

static int child_checks(void *arg, int fd)
{
    (void)arg;
    fleet_stream *s = NULL;
    fleet_tensor *t = NULL;
    fleet_memory_stats ms;
    int64_t shape[2] = {8, 8};

    ASSERT_STATUS(fleet_stream_current(cpu1, &s), FLEET_ERR_FORKED);
    ASSERT_TRUE(strstr(fleet_last_error(), "posix_spawn") || strstr(fleet_last_error(), "exec"));
    ASSERT_STATUS(fleet_tensor_create(cpu1, FLEET_DTYPE_F32, 2, shape, &t), FLEET_ERR_FORKED);
    ASSERT_STATUS(fleet_device_synchronize(cpu1), FLEET_ERR_FORKED);
    ASSERT_STATUS(fleet_memory_get_stats(cpu1, &ms), FLEET_ERR_FORKED);
    int ncuda = 0;
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &ncuda));
    if (ncuda > 0) {
        fleet_device *g = NULL;
        fleet_status st = fleet_device_get(FLEET_BACKEND_CUDA, 0, &g);
        if (st == FLEET_OK)
            st = fleet_stream_current(g, &s);
        ASSERT_STATUS(st, FLEET_ERR_FORKED);
    }

    /* cpu:0: no lock held by a worker that does not exist here. */
    ASSERT_OK(fleet_memory_get_stats(cpu0, &ms));
    ASSERT_OK(fleet_device_synchronize(cpu0));
    ASSERT_OK(fleet_stream_current(cpu0, &s));
    fleet_allocation al;
    ASSERT_OK(fleet_memory_alloc(s, 100000, &al));
    ASSERT_OK(fleet_memory_free(&al));
    ASSERT_OK(fleet_memory_empty_cache(cpu0));
    test_matmul_check(cpu0, 40, 24, 12, 500);
    test_run_threads_detached(2, child_thread, seeds, sizeof seeds[0]);
    ASSERT_OK(fleet_device_synchronize(cpu0));
    ASSERT_OK(fleet_memory_get_stats(cpu0, &ms));
    dprintf(fd, "child_ok streams_ok\n");
    return 0;
}

TEST(fork_while_eight_threads_run_ops)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &cpu0));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &cpu1));
    fleet__testing_set_survives_fork(cpu1, false);
    fleet_memory_stats base0, base1;
    ASSERT_OK(fleet_memory_get_stats(cpu0, &base0));
    ASSERT_OK(fleet_memory_get_stats(cpu1, &base1));

    static test_busy w[NWORKERS];
    atomic_int stop;
    atomic_init(&stop, 0);
    for (int i = 0; i < NWORKERS; i++)
        test_busy_start(&w[i], i < NGPU ? cpu1 : cpu0, &stop, 1000 + (uint64_t)i, 3);
    test_busy_wait_progress(w, NWORKERS, NULL, 5, 60000);

    int forks = test_scaled(10);
    test_rng r = test_rng_make(42);
    for (int f = 0; f < forks; f++) {
        long at_fork[NWORKERS];
        for (int i = 0; i < NWORKERS; i++)
            at_fork[i] = atomic_load(&w[i].iterations);
        test_proc_result res;
        test_proc_fork(child_checks, NULL, 60000, &res);
        ASSERT_PROC_OK(&res);
        ASSERT_OUT_CONTAINS(&res, "child_ok");
        /* The parent is not stuck: every worker moves on. */
        test_busy_wait_progress(w, NWORKERS, at_fork, 3, 60000);
        test_sleep_ms((int)(test_rng_next(&r) % 4));
    }

    atomic_store(&stop, 1);
    test_busy_join(w, NWORKERS);
    for (int i = 0; i < NWORKERS; i++)
        ASSERT_GE(atomic_load(&w[i].checked), 2);
    /* The parent's state is intact: sync, values, no leak. */
    ASSERT_OK(fleet_device_synchronize(cpu0));
    ASSERT_OK(fleet_device_synchronize(cpu1));
    test_matmul_check(cpu0, 64, 32, 16, 7);
    test_matmul_check(cpu1, 64, 32, 16, 8);
    fleet_memory_stats now0, now1;
    ASSERT_OK(fleet_memory_get_stats(cpu0, &now0));
    ASSERT_OK(fleet_memory_get_stats(cpu1, &now1));
    ASSERT_EQ(now0.allocated, base0.allocated);
    ASSERT_EQ(now1.allocated, base1.allocated);
    ASSERT_EQ(now0.live_blocks, base0.live_blocks);
    ASSERT_EQ(now1.live_blocks, base1.live_blocks);
    printf("forks %d, worker iterations:", forks);
    for (int i = 0; i < NWORKERS; i++)
        printf(" %ld", atomic_load(&w[i].iterations));
    printf("\n");
}

/* Two threads fork at the same time while the workers run: each child is
 * fine on its own. */
static void *forker(void *arg)
{
    for (int i = 0; i < test_scaled(4); i++) {
        test_proc_result res;
        test_proc_fork(child_checks, arg, 60000, &res);
        ASSERT_PROC_OK(&res);
        ASSERT_OUT_CONTAINS(&res, "child_ok");
    }
    return NULL;
}

TEST(concurrent_forks_while_threads_run)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &cpu0));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &cpu1));
    fleet__testing_set_survives_fork(cpu1, false);
    static test_busy w[NWORKERS];
    atomic_int stop;
    atomic_init(&stop, 0);
    for (int i = 0; i < NWORKERS; i++)
        test_busy_start(&w[i], i < NGPU ? cpu1 : cpu0, &stop, 2000 + (uint64_t)i, 2);
    test_busy_wait_progress(w, NWORKERS, NULL, 3, 60000);
    test_run_threads(2, forker, NULL, 0);
    long now[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        now[i] = atomic_load(&w[i].iterations);
    test_busy_wait_progress(w, NWORKERS, now, 3, 60000);
    atomic_store(&stop, 1);
    test_busy_join(w, NWORKERS);
    for (int i = 0; i < NWORKERS; i++)
        ASSERT_GE(atomic_load(&w[i].checked), 2);
}

#if defined(__SANITIZE_ADDRESS__)
#define FLEET_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLEET_TEST_ASAN 1
#endif
#endif

int main(int argc, char **argv)
{
#ifdef FLEET_TEST_ASAN
    /* ASan's allocator before LLVM 18 (GCC 12's libasan among them) is not
     * fork-safe: a worker inside malloc at the instant of fork leaves its
     * lock held in the child, whose first malloc then hangs (rarely: seen
     * once in a verify run). glibc's malloc, which the normal and TSan
     * builds use, takes its locks across fork. */
    (void)argc;
    (void)argv;
    printf("SKIP: ASan's allocator is not fork-safe with threads running (llvm-project#75290)\n");
    return 77;
#else
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
#endif
}
