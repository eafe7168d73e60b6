/* Static Thread Cleanup: exit() while 8 threads still run ops.
 *
 * fleet registers no exit-time teardown, so a process that exits while its
 * threads are in the middle of fleet calls (and their streams hold queued
 * work) must end with the status it asked for: no crash, no hang, no abort
 * from a torn-down lock. The scenario runs in a child (this program
 * re-executed with --child MODE) under a timeout; the parent checks the exit
 * status (0) and the child's report (its workers had checked values before
 * the exit). Modes:
 *   main-exit    main calls exit(0) while the workers run
 *   thread-exit  a ninth thread calls exit(0) while the workers run
 *   return       main returns 0 while the workers run
 *   queued       workers keep deep queues (values read back rarely)
 *   two-devices  workers spread over cpu:0 and cpu:1
 */
#include "test_util.h"

#define NWORKERS 8

static test_busy workers[NWORKERS];
static atomic_int never_stop;

static void *exit_from_thread(void *arg)
{
    (void)arg;
    exit(0);
}

static int child_main(const char *mode)
{
    if (strcmp(mode, "two-devices") == 0)
        setenv("FLEET_CPU_DEVICES", "2", 1);
    fleet_device *devs[2];
    if (fleet_device_get(FLEET_BACKEND_CPU, 0, &devs[0]) != FLEET_OK)
        return 2;
    devs[1] = devs[0];
    if (strcmp(mode, "two-devices") == 0 &&
        fleet_device_get(FLEET_BACKEND_CPU, 1, &devs[1]) != FLEET_OK)
        return 2;
    int check_every = strcmp(mode, "queued") == 0 ? 1000 : 2;
    atomic_init(&never_stop, 0);
    for (int i = 0; i < NWORKERS; i++)
        test_busy_start(&workers[i], devs[i % 2], &never_stop, 900 + (uint64_t)i, check_every);
    /* Every worker has run and checked ops before the exit. */
    test_busy_wait_progress(workers, NWORKERS, NULL, check_every == 2 ? 6 : 50, 30000);
    int all_checked = 1;
    for (int i = 0; i < NWORKERS; i++)
        all_checked &= atomic_load(&workers[i].checked) >= 1;
    printf("READY workers=%d checked=%s mode=%s\n", NWORKERS, all_checked ? "all" : "some", mode);
    fflush(stdout);
    if (strcmp(mode, "main-exit") == 0 || strcmp(mode, "queued") == 0 ||
        strcmp(mode, "two-devices") == 0)
        exit(0);
    if (strcmp(mode, "thread-exit") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exit_from_thread, NULL);
        for (;;)
            pause();
    }
    return 0; /* "return" */
}

static void run_mode(const char *mode)
{
    for (int i = 0; i < test_scaled(3); i++) {
        char *argv[] = {(char *)"/proc/self/exe", (char *)"--child", (char *)mode, NULL};
        test_proc_result r;
        test_proc_spawn(argv, NULL, 60000, &r);
        ASSERT_PROC_OK(&r);
        ASSERT_OUT_CONTAINS(&r, "READY workers=8 checked=all");
        ASSERT_OUT_CONTAINS(&r, mode);
        ASSERT_TRUE(strstr(r.out, "FAIL") == NULL);
    }
}

TEST(exit_from_main_while_threads_run) { run_mode("main-exit"); }
TEST(exit_from_another_thread_while_threads_run) { run_mode("thread-exit"); }
TEST(return_from_main_while_threads_run) { run_mode("return"); }
TEST(exit_with_deep_queues) { run_mode("queued"); }
TEST(exit_with_threads_on_two_devices) { run_mode("two-devices"); }

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);
    return test_main(argc, argv);
}
