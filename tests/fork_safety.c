/* Fork Safety: fork from a process that has done work.
 *
 * cpu:1 stands in for a GPU: it is marked as a device that cannot survive
 * fork, so in the child every call on it must return FLEET_ERR_FORKED with a
 * message pointing at posix_spawn/exec (and so must a real cuda device, if
 * there is one). cpu:0 must work in the child: allocate, synchronize, create
 * tensors, read stats, run events, compute a correct matmul, also from new
 * threads — all under alarm(), so a lock held across the fork fails the test
 * instead of hanging it. The child reports through its exit code and a pipe;
 * the parent's results are unchanged and it keeps working.
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

enum { M = 24, K = 40, N = 16 };

static fleet_device *cpu0, *cpu1;
static fleet_tensor *pa0, *pb0, *pc0; /* parent's work on cpu:0, finished */
static fleet_tensor *pa1, *pb1, *pc1; /* parent's work on cpu:1, finished */
static fleet_stream *ps1;             /* parent's stream on cpu:1          */
static float before0[M * N], before1[M * N];

/* Every call on a forked-off device: FLEET_ERR_FORKED, and the text says to
 * start workers with posix_spawn. */
#define ASSERT_FORKED(expr) ASSERT_REFUSED(expr, FLEET_ERR_FORKED, "posix_spawn")

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &cpu0));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &cpu1));
    fleet__testing_set_survives_fork(cpu1, false);
    float a[M * K], b[K * N], want[M * N];
    test_rng r = test_rng_make(1);
    test_fill_random(a, M * K, &r);
    test_fill_random(b, K * N, &r);
    ref_matmul(a, b, NULL, want, M, K, N);
    pa0 = test_tensor_2d(cpu0, M, K, a), pb0 = test_tensor_2d(cpu0, K, N, b);
    pc0 = test_tensor_2d(cpu0, M, N, NULL);
    pa1 = test_tensor_2d(cpu1, M, K, a), pb1 = test_tensor_2d(cpu1, K, N, b);
    pc1 = test_tensor_2d(cpu1, M, N, NULL);
    ASSERT_OK(fleet_matmul(pa0, pb0, pc0));
    ASSERT_OK(fleet_matmul(pa1, pb1, pc1));
    test_tensor_read(pc0, before0);
    test_tensor_read(pc1, before1);
    ASSERT_CLOSE(before0, want, M * N, TEST_MATMUL_RTOL, test_matmul_atol(K));
    ASSERT_CLOSE(before1, want, M * N, TEST_MATMUL_RTOL, test_matmul_atol(K));
    ASSERT_OK(fleet_stream_current(cpu1, &ps1));
    /* Other threads have used both devices too (their slots, their blocks). */
    test_matmul_check(cpu0, 8, 8, 8, 2);
    test_matmul_check(cpu1, 8, 8, 8, 3);
}

static void *child_thread(void *arg)
{
    test_matmul_check(cpu0, 33, 17, 9, *(const uint64_t *)arg);
    return NULL;
}

static uint64_t seeds[8] = {100, 101, 102, 103, 104, 105, 106, 107};

/* In the child: everything on the non-fork-safe device fails with
 * FLEET_ERR_FORKED; cpu:0 works and holds no lock. */
static int child_checks(void *arg, int fd)
{
    (void)arg;
    fleet_stream *s = NULL;
    fleet_tensor *t = NULL;
    fleet_event *ev = NULL;
    fleet_allocation al;
    fleet_memory_stats ms;
    int64_t shape[2] = {4, 4};
    float host[M * N];

    /* The "GPU": every kind of call is refused, including on the parent's
     * handles. */
    ASSERT_FORKED(fleet_stream_current(cpu1, &s));
    ASSERT_FORKED(fleet_stream_get_default(cpu1, &s));
    ASSERT_FORKED(fleet_stream_synchronize(ps1));
    ASSERT_FORKED(fleet_device_synchronize(cpu1));
    ASSERT_FORKED(fleet_tensor_create(cpu1, FLEET_DTYPE_F32, 2, shape, &t));
    ASSERT_FORKED(fleet_matmul(pa1, pb1, pc1));
    ASSERT_FORKED(fleet_relu(pc1, pc1));
    ASSERT_FORKED(fleet_tensor_copy_to_host(pc1, host, sizeof host));
    ASSERT_FORKED(fleet_memory_alloc(ps1, 1024, &al));
    ASSERT_FORKED(fleet_memory_get_stats(cpu1, &ms));
    ASSERT_FORKED(fleet_memory_empty_cache(cpu1));
    ASSERT_FORKED(fleet_event_create(cpu1, &ev));
    ASSERT_FORKED(fleet_stream_acquire(cpu1, &s));
    int forked_checks = 13;

    /* A real GPU, if present, behaves the same. */
    int ncuda = 0;
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &ncuda));
    if (ncuda > 0) {
        fleet_device *g = NULL;
        fleet_status st = fleet_device_get(FLEET_BACKEND_CUDA, 0, &g);
        if (st == FLEET_OK) {
            ASSERT_FORKED(fleet_stream_current(g, &s));
            ASSERT_FORKED(fleet_tensor_create(g, FLEET_DTYPE_F32, 2, shape, &t));
            ASSERT_FORKED(fleet_device_synchronize(g));
        } else {
            ASSERT_FORKED(st);
        }
        forked_checks += 3;
    }

    /* cpu:0 works: stats, allocator, streams, events, tensors, ops. */
    fleet_memory_stats before;
    ASSERT_OK(fleet_memory_get_stats(cpu0, &before));
    ASSERT_OK(fleet_stream_current(cpu0, &s));
    ASSERT_OK(fleet_memory_alloc(s, 3000, &al));
    ASSERT_OK(fleet_stream_synchronize(s));
    ASSERT_OK(fleet_memory_free(&al));
    ASSERT_OK(fleet_device_synchronize(cpu0));
    ASSERT_OK(fleet_event_create(cpu0, &ev));
    ASSERT_OK(fleet_event_record(ev, s));
    ASSERT_OK(fleet_event_synchronize(ev));
    ASSERT_OK(fleet_event_query(ev));
    ASSERT_OK(fleet_event_destroy(ev));
    /* The parent's finished result is there, and can be recomputed. */
    memset(host, 0, sizeof host);
    test_tensor_read(pc0, host);
    ASSERT_CLOSE(host, before0, M * N, 0, 0);
    ASSERT_OK(fleet_relu(pc0, pc0));
    ASSERT_OK(fleet_matmul(pa0, pb0, pc0));
    test_tensor_read(pc0, host);
    ASSERT_CLOSE(host, before0, M * N, 0, 0);
    int sid = test_matmul_check(cpu0, M, K, N, 77);
    /* New threads in the child bind to streams and compute. */
    test_run_threads_detached(3, child_thread, seeds, sizeof seeds[0]);
    fleet_memory_stats after;
    ASSERT_OK(fleet_memory_get_stats(cpu0, &after));
    ASSERT_EQ(after.allocated, before.allocated);
    ASSERT_GE(after.alloc_requests, before.alloc_requests + 4);
    dprintf(fd, "forked_checks=%d cpu0_stream=%d cpu0_ok\n", forked_checks, sid);
    return 0;
}

TEST(child_gets_forked_error_and_working_cpu)
{
    setup();
    test_proc_result r;
    test_proc_fork(child_checks, NULL, 60000, &r);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "cpu0_ok");
    ASSERT_OUT_CONTAINS(&r, "forked_checks=1");
    /* The parent: results unchanged, both devices keep working. */
    float got[M * N];
    test_tensor_read(pc0, got);
    ASSERT_CLOSE(got, before0, M * N, 0, 0);
    test_tensor_read(pc1, got);
    ASSERT_CLOSE(got, before1, M * N, 0, 0);
    ASSERT_OK(fleet_matmul(pa1, pb1, pc1));
    test_tensor_read(pc1, got);
    ASSERT_CLOSE(got, before1, M * N, 0, 0);
    ASSERT_OK(fleet_stream_synchronize(ps1));
    test_matmul_check(cpu0, M, K, N, 5);
    test_matmul_check(cpu1, M, K, N, 6);
}

/* A grandchild (fork in the forked child) works on cpu:0 and is refused on
 * cpu:1 just the same. */
static int grandchild(void *arg, int fd)
{
    (void)arg;
    fleet_stream *s;
    ASSERT_FORKED(fleet_stream_current(cpu1, &s));
    test_matmul_check(cpu0, 16, 16, 16, 9);
    dprintf(fd, "grandchild_ok\n");
    return 0;
}

static int child_forks_again(void *arg, int fd)
{
    (void)arg;
    test_matmul_check(cpu0, 16, 8, 4, 8);
    test_proc_result r;
    test_proc_fork(grandchild, NULL, 30000, &r);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "grandchild_ok");
    test_matmul_check(cpu0, 16, 8, 4, 10);
    dprintf(fd, "child_ok %s", r.out);
    return 0;
}

TEST(fork_twice)
{
    setup();
    test_proc_result r;
    test_proc_fork(child_forks_again, NULL, 60000, &r);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "child_ok grandchild_ok");
    test_matmul_check(cpu0, M, K, N, 11);
    test_matmul_check(cpu1, M, K, N, 12);
}

/* Several children one after another: each is independent of the last. */
TEST(repeated_forks)
{
    setup();
    for (int i = 0; i < test_scaled(5); i++) {
        test_proc_result r;
        test_proc_fork(child_checks, NULL, 60000, &r);
        ASSERT_PROC_OK(&r);
        ASSERT_OUT_CONTAINS(&r, "cpu0_ok");
        test_matmul_check(cpu0, M, K, N, 20 + (uint64_t)i);
    }
}

/* Streams that threads create at the same moment on both devices, each left
 * with queued work (blocked behind a gate) at the fork: in the child every
 * one of them starts empty, so synchronizing the device and running new work
 * on any stream returns. A stream the backend lost track of would keep the
 * parent's counters (and perhaps a held lock) and hang the child. */
static pthread_barrier_t start_line;
static test_gate gate;

static void *queue_blocked_work(void *arg)
{
    fleet_device *dev = arg;
    fleet_stream *s;
    pthread_barrier_wait(&start_line);
    ASSERT_OK(fleet_stream_current(dev, &s));
    ASSERT_OK(fleet_stream_launch_host_func(s, test_gate_wait, &gate));
    fleet_tensor *t = test_tensor_2d(dev, 4, 4, NULL);
    ASSERT_OK(fleet_relu(t, t));
    ASSERT_OK(fleet_tensor_release(t));
    return NULL;
}

static int child_uses_every_stream(void *arg, int fd)
{
    (void)arg;
    ASSERT_OK(fleet_device_synchronize(cpu0));
    /* New threads bind to streams that had queued work at the fork. */
    test_run_threads_detached(8, child_thread, seeds, sizeof seeds[0]);
    ASSERT_OK(fleet_device_synchronize(cpu0));
    dprintf(fd, "all_streams_reset\n");
    return 0;
}

TEST(streams_created_concurrently_are_reset_in_child)
{
    setup();
    fleet_stream_pool_stats ps = test_pool_stats(cpu0);
    int per_dev = ps.pool_slots - ps.exclusive_in_use;
    int n = 2 * per_dev;
    pthread_t *t = calloc((size_t)n, sizeof *t);
    ASSERT_TRUE(t != NULL);
    test_gate_init(&gate);
    ASSERT_EQ(pthread_barrier_init(&start_line, NULL, (unsigned)n), 0);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, queue_blocked_work, i % 2 ? cpu1 : cpu0), 0);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    test_proc_result r;
    test_proc_fork(child_uses_every_stream, NULL, 30000, &r);
    test_gate_open(&gate);
    ASSERT_OK(fleet_device_synchronize(cpu0));
    ASSERT_OK(fleet_device_synchronize(cpu1));
    ASSERT_EQ(atomic_load(&gate.entered), n);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "all_streams_reset");
    pthread_barrier_destroy(&start_line);
    free(t);
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
}
