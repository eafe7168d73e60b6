/* Stream Pool Wraparound: 64 threads alive at once, more than the 31 pool
 * slots, with the default policy (FLEET_STREAM_WAIT_MS=0: share round-robin,
 * never fail). All bind, all compute correct results; while they live every
 * slot is held and the rest share (spread evenly); once they exit the pool is
 * empty again. The main thread never binds. */
#include "test_util.h"

#define NTHREADS 64

static fleet_device *dev;
static pthread_barrier_t bound, checked_stats;

typedef struct worker {
    int index;
    int id;
    int ok;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    w->id = test_current_stream_id(dev); /* never fails under sharing */
    /* Work while every thread is alive and shares. */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(test_matmul_check(dev, 16, 32, 24, 64 * (uint64_t)i + (uint64_t)w->index),
                  w->id);
    pthread_barrier_wait(&bound);          /* all 64 bound and alive ...  */
    pthread_barrier_wait(&checked_stats);  /* ... until main read the stats */
    ASSERT_EQ(test_matmul_check(dev, 16, 32, 24, 9999 + (uint64_t)w->index), w->id);
    w->ok = 1;
    return NULL;
}

static void run_round(int round)
{
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    ASSERT_EQ(st0.exclusive_in_use, 0);
    int slots = st0.pool_slots;
    ASSERT_TRUE(NTHREADS > slots);

    worker w[NTHREADS];
    pthread_t th[NTHREADS];
    memset(w, 0, sizeof w);
    ASSERT_EQ(pthread_barrier_init(&bound, NULL, NTHREADS + 1), 0);
    ASSERT_EQ(pthread_barrier_init(&checked_stats, NULL, NTHREADS + 1), 0);
    for (int i = 0; i < NTHREADS; i++) {
        w[i].index = i;
        ASSERT_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    pthread_barrier_wait(&bound);

    fleet_stream_pool_stats live = test_pool_stats(dev);
    printf("  round %d: in use %d, shared %d, bindings %" PRIu64 ", shared_total %" PRIu64 "\n",
           round, live.exclusive_in_use, live.shared_bindings,
           live.bindings_total - st0.bindings_total, live.shared_total - st0.shared_total);
    ASSERT_EQ(live.exclusive_in_use, slots);
    ASSERT_EQ(live.shared_bindings, NTHREADS - slots);
    ASSERT_GE(live.shared_bindings, 1);
    ASSERT_EQ(live.bindings_total - st0.bindings_total, NTHREADS);
    ASSERT_EQ(live.shared_total - st0.shared_total, NTHREADS - slots);

    /* Ids: every slot used, and the sharers spread round-robin, so no slot
     * carries more than one thread above the even share. */
    int count[65] = {0};
    for (int i = 0; i < NTHREADS; i++) {
        ASSERT_GE(w[i].id, 1);
        ASSERT_LE(w[i].id, slots);
        count[w[i].id]++;
    }
    int lo = NTHREADS / slots, hi = (NTHREADS + slots - 1) / slots, multi = 0;
    for (int id = 1; id <= slots; id++) {
        ASSERT_GE(count[id], lo);
        ASSERT_LE(count[id], hi);
        multi += count[id] > 1;
    }
    ASSERT_GE(multi, 2); /* several threads report the same id */

    pthread_barrier_wait(&checked_stats);
    for (int i = 0; i < NTHREADS; i++) {
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
        ASSERT_EQ(w[i].ok, 1);
    }
    pthread_barrier_destroy(&bound);
    pthread_barrier_destroy(&checked_stats);

    fleet_stream_pool_stats after = test_pool_stats(dev);
    ASSERT_EQ(after.exclusive_in_use, 0);
    ASSERT_EQ(after.shared_bindings, 0);
    ASSERT_EQ(after.acquired_in_use, 0);
}

TEST(wraparound_64_threads)
{
    ASSERT_OK(fleet_device_default(&dev));
    run_round(0);
    /* Again: released slots are all usable again, sharing grows by the same. */
    run_round(1);
}

/* After the crowd left, a new thread gets a slot of its own again. */
static void *solo(void *arg)
{
    *(int *)arg = test_current_stream_id(dev);
    fleet_stream_pool_stats st = test_pool_stats(dev);
    ASSERT_EQ(st.exclusive_in_use, 1);
    ASSERT_EQ(st.shared_bindings, 0);
    return NULL;
}

TEST(exclusive_again_after_crowd)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    int id = -1;
    test_run_threads(1, solo, &id, sizeof id);
    ASSERT_GE(id, 1);
    fleet_stream_pool_stats st1 = test_pool_stats(dev);
    ASSERT_EQ(st1.shared_total, st0.shared_total);
    ASSERT_EQ(st1.exclusive_in_use, 0);
}

TEST_MAIN()
