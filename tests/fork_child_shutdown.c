/* fleet_shutdown in a fork child is clean: after one op in the parent (its
 * stream's worker was waiting for work at the fork, so the child inherits
 * that stream's lock and condition variables as the parent's threads left
 * them), the child shuts down at once, or after an op of its own, or after
 * forking a grandchild that shuts down too; each shutdown returns OK, a
 * second one too, and later calls say FLEET_ERR_SHUTDOWN. Every device here
 * is a cpu device that survives fork, so the child's shutdown stops the cpu
 * backend for real. */
#include "test_util.h"

#if defined(__SANITIZE_THREAD__)
/* As in fork_safety.c: the child starts threads (fresh cpu workers), and the
 * fork handler holds more locks at once than TSan's deadlock detector
 * tracks. */
const char *__tsan_default_options(void) { return "die_after_fork=0:detect_deadlocks=0"; }
#endif

static fleet_device *cpu;

static int child_shuts_down(void *arg, int fd)
{
    int mode = (int)(uintptr_t)arg; /* 0: at once; 1: after an op; 2: fork again first */
    if (mode >= 1)
        test_matmul_check(cpu, 8, 8, 8, 41);
    if (mode == 2) {
        test_proc_result r;
        test_proc_fork(child_shuts_down, NULL, 30000, &r);
        ASSERT_PROC_OK(&r);
        ASSERT_OUT_CONTAINS(&r, "shutdown_ok");
    }
    ASSERT_OK(fleet_shutdown());
    ASSERT_OK(fleet_shutdown());
    fleet_stream *s;
    ASSERT_STATUS(fleet_stream_current(cpu, &s), FLEET_ERR_SHUTDOWN);
    dprintf(fd, "shutdown_ok\n");
    return 0;
}

TEST(shutdown_in_a_fork_child_is_clean)
{
#if defined(__SANITIZE_THREAD__)
    /* Under TSan only the first: a worker the child starts can get the
     * stack, and so the thread id, of the parent's worker, which TSan still
     * counts as alive ("dup thread with used id") and dies for. */
    const uintptr_t modes = 1;
#else
    const uintptr_t modes = 3;
#endif
    test_matmul_check(cpu, 32, 16, 8, 40);
    test_sleep_ms(20); /* the worker is back waiting for work */
    for (uintptr_t mode = 0; mode < modes; mode++) {
        test_proc_result r;
        test_proc_fork(child_shuts_down, (void *)mode, 60000, &r);
        ASSERT_PROC_OK(&r);
        ASSERT_OUT_CONTAINS(&r, "shutdown_ok");
    }
    test_matmul_check(cpu, 32, 16, 8, 42); /* the parent goes on */
}

int main(int argc, char **argv)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &cpu));
    return test_main(argc, argv);
}
