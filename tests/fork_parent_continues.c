/* Fork Parent Continues: after fork() the parent runs on as if nothing
 * happened — 100 ops with correct values, work it queued before the fork
 * completes, both devices (also the one marked as not surviving fork, whose
 * "forked" state must only exist in the child) keep working, and helper
 * threads started before the fork go on. The child does its own checks and
 * exits.
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

enum { M = 32, K = 64, N = 32, QUEUED = 40 };

static fleet_device *cpu0, *cpu1;

static int child_checks(void *arg, int fd)
{
    (void)arg;
    fleet_stream *s;
    ASSERT_STATUS(fleet_stream_current(cpu1, &s), FLEET_ERR_FORKED);
    /* Work the parent had queued is not carried over, and waiting for the
     * inherited stream does not hang. */
    ASSERT_OK(fleet_stream_current(cpu0, &s));
    ASSERT_OK(fleet_stream_synchronize(s));
    ASSERT_OK(fleet_device_synchronize(cpu0));
    test_matmul_check(cpu0, M, K, N, 99);
    dprintf(fd, "child_done\n");
    return 0;
}

/* out = relu(a @ b + bias) reference. */
static void reference(const float *a, const float *b, const float *bias, float *want)
{
    ref_matmul(a, b, NULL, want, M, K, N);
    for (int i = 0; i < M * N; i++) {
        float v = want[i] + bias[i % N];
        want[i] = v > 0 ? v : 0;
    }
}

TEST(parent_runs_100_correct_ops_after_fork)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &cpu0));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &cpu1));
    fleet__testing_set_survives_fork(cpu1, false);
    fleet_memory_stats base0;
    ASSERT_OK(fleet_memory_get_stats(cpu0, &base0));

    /* Helper threads that run through the fork. */
    static test_busy w[4];
    atomic_int stop;
    atomic_init(&stop, 0);
    for (int i = 0; i < 4; i++)
        test_busy_start(&w[i], i % 2 ? cpu1 : cpu0, &stop, 300 + (uint64_t)i, 2);
    test_busy_wait_progress(w, 4, NULL, 2, 60000);

    static float a[M * K], b[K * N], bias[N], want[M * N], got[M * N];
    test_rng r = test_rng_make(3);
    test_fill_random(a, M * K, &r);
    test_fill_random(b, K * N, &r);
    test_fill_random(bias, N, &r);
    reference(a, b, bias, want);

    /* Queue work on both devices and fork before it is waited for. */
    fleet_tensor *ta[2], *tb[2], *tbias[2], *q[2][QUEUED];
    fleet_device *devs[2] = {cpu0, cpu1};
    int64_t bshape[1] = {N};
    for (int d = 0; d < 2; d++) {
        ta[d] = test_tensor_2d(devs[d], M, K, a);
        tb[d] = test_tensor_2d(devs[d], K, N, b);
        tbias[d] = test_tensor_new(devs[d], 1, bshape);
        ASSERT_OK(fleet_tensor_copy_from_host(tbias[d], bias, sizeof bias));
        for (int i = 0; i < QUEUED; i++) {
            q[d][i] = test_tensor_2d(devs[d], M, N, NULL);
            ASSERT_OK(fleet_matmul(ta[d], tb[d], q[d][i]));
            ASSERT_OK(fleet_add(q[d][i], tbias[d], q[d][i]));
            ASSERT_OK(fleet_relu(q[d][i], q[d][i]));
        }
    }
    long at_fork[4];
    for (int i = 0; i < 4; i++)
        at_fork[i] = atomic_load(&w[i].iterations);
    test_proc_result res;
    test_proc_fork(child_checks, NULL, 60000, &res);
    ASSERT_PROC_OK(&res);
    ASSERT_OUT_CONTAINS(&res, "child_done");

    /* The queued work completed in the parent, with the right values. */
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < QUEUED; i++) {
            memset(got, 0, sizeof got);
            test_tensor_read(q[d][i], got);
            ASSERT_CLOSE(got, want, M * N, TEST_MATMUL_RTOL, test_matmul_atol(K));
            ASSERT_OK(fleet_tensor_release(q[d][i]));
        }

    /* 100 ops after the fork, each checked, alternating devices and ops. */
    int ops = 0;
    for (int i = 0; ops < 100; i++) {
        int d = i % 2;
        fleet_tensor *out = test_tensor_2d(devs[d], M, N, NULL);
        ASSERT_OK(fleet_matmul(ta[d], tb[d], out));
        ops++;
        test_tensor_read(out, got);
        float mm[M * N];
        ref_matmul(a, b, NULL, mm, M, K, N);
        ASSERT_CLOSE(got, mm, M * N, TEST_MATMUL_RTOL, test_matmul_atol(K));
        ASSERT_OK(fleet_add(out, tbias[d], out));
        ops++;
        ASSERT_OK(fleet_relu(out, out));
        ops++;
        test_tensor_read(out, got);
        ASSERT_CLOSE(got, want, M * N, TEST_MATMUL_RTOL, test_matmul_atol(K));
        ASSERT_OK(fleet_tensor_release(out));
    }
    ASSERT_GE(ops, 100);

    /* The helper threads went on too. */
    test_busy_wait_progress(w, 4, at_fork, 3, 60000);
    atomic_store(&stop, 1);
    test_busy_join(w, 4);
    for (int d = 0; d < 2; d++) {
        ASSERT_OK(fleet_tensor_release(ta[d]));
        ASSERT_OK(fleet_tensor_release(tb[d]));
        ASSERT_OK(fleet_tensor_release(tbias[d]));
        ASSERT_OK(fleet_device_synchronize(devs[d]));
    }
    fleet_memory_stats now0;
    ASSERT_OK(fleet_memory_get_stats(cpu0, &now0));
    ASSERT_EQ(now0.allocated, base0.allocated);
}

/* Several forks in a row, the parent checking a result between each. */
TEST(parent_continues_across_repeated_forks)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &cpu0));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &cpu1));
    fleet__testing_set_survives_fork(cpu1, false);
    for (int i = 0; i < test_scaled(5); i++) {
        test_proc_result res;
        test_proc_fork(child_checks, NULL, 60000, &res);
        ASSERT_PROC_OK(&res);
        ASSERT_OUT_CONTAINS(&res, "child_done");
        test_matmul_check(cpu0, 17, 33, 9, 40 + (uint64_t)i);
        test_matmul_check(cpu1, 17, 33, 9, 50 + (uint64_t)i);
    }
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
}
