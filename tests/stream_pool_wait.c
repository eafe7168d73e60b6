/* Stream Pool Wait: FLEET_STREAMS=4 (3 pool slots) and FLEET_STREAM_WAIT_MS=1000.
 * With every slot held, a binding thread waits 1 s and then gets
 * FLEET_ERR_POOL_EXHAUSTED (and holds nothing); when a holder exits during
 * the wait the waiter gets its slot. fleet_stream_acquire_timeout with 0,
 * > 0 and -1, and fleet_stream_acquire following FLEET_STREAM_WAIT_MS without
 * ever sharing. The main thread never binds. (-1 for binding is in
 * stream_pool_wait_forever.c.)
 *
 * Timing holds on a loaded machine: whether a call waited is read from the
 * pool's wait counters, not from how long it took; only lower bounds on
 * elapsed time are asserted (a wait cannot end early), and a holder is let go
 * only once the waiter is seen waiting. */
#include "test_util.h"

#define WAIT_MS 1000

static fleet_device *dev;
static test_holder holders[3];

static void hold_all(void)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st = test_pool_stats(dev);
    ASSERT_EQ(st.capacity, 4);
    ASSERT_EQ(st.pool_slots, 3);
    ASSERT_EQ(st.exclusive_in_use, 0);
    for (int i = 0; i < 3; i++)
        test_holder_start(&holders[i], dev);
    st = test_pool_stats(dev);
    ASSERT_EQ(st.exclusive_in_use, 3);
    ASSERT_EQ(st.shared_bindings, 0);
}

static void stop_all(void)
{
    for (int i = 0; i < 3; i++)
        if (holders[i].dev) {
            test_holder_stop(&holders[i]);
            holders[i].dev = NULL;
        }
    ASSERT_EQ(test_pool_stats(dev).exclusive_in_use, 0);
}

typedef struct waiter {
    fleet_status st;
    int id;
    double elapsed_ms;
    fleet_status again; /* a second try, after the first failed */
} waiter;

static void *bind_waiter(void *arg)
{
    waiter *w = arg;
    fleet_stream *s = NULL;
    double t0 = test_now_ms();
    w->st = fleet_stream_current(dev, &s);
    w->elapsed_ms = test_now_ms() - t0;
    if (w->st == FLEET_OK) {
        w->id = fleet_stream_id(s);
        ASSERT_EQ(test_matmul_check(dev, 4, 8, 4, 77), w->id);
    } else {
        ASSERT_TRUE(fleet_last_error()[0] != 0);
        /* Nothing was kept: a later call tries (and waits) again. */
        w->again = fleet_stream_current(dev, &s);
    }
    return NULL;
}

TEST(bind_times_out)
{
    hold_all();
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    waiter w = {.id = -1};
    test_run_threads(1, bind_waiter, &w, sizeof w);
    printf("  waited %.1f ms\n", w.elapsed_ms);
    ASSERT_EQ(w.st, FLEET_ERR_POOL_EXHAUSTED);
    ASSERT_EQ(w.again, FLEET_ERR_POOL_EXHAUSTED);
    ASSERT_GE(w.elapsed_ms, WAIT_MS - 5);
    fleet_stream_pool_stats st1 = test_pool_stats(dev);
    ASSERT_EQ(st1.waits_total - st0.waits_total, 2);
    ASSERT_EQ(st1.timeouts_total - st0.timeouts_total, 2);
    ASSERT_EQ(st1.exclusive_in_use, 3);
    ASSERT_EQ(st1.shared_bindings, 0);
    ASSERT_EQ(st1.shared_total, st0.shared_total); /* waiting mode never shares */
    stop_all();
}

TEST(holder_exit_hands_slot_to_waiter)
{
    hold_all();
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    waiter w = {.id = -1};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, bind_waiter, &w), 0);
    while (test_pool_stats(dev).waits_total == st0.waits_total) /* it waits now */
        test_sleep_ms(1);
    int freed = holders[1].id;
    test_holder_stop(&holders[1]);
    holders[1].dev = NULL;
    ASSERT_EQ(pthread_join(t, NULL), 0);
    printf("  got slot %d after %.1f ms\n", w.id, w.elapsed_ms);
    ASSERT_OK(w.st);
    ASSERT_EQ(w.id, freed); /* the only free slot */
    fleet_stream_pool_stats st1 = test_pool_stats(dev);
    ASSERT_EQ(st1.waits_total - st0.waits_total, 1);
    ASSERT_EQ(st1.timeouts_total, st0.timeouts_total);
    ASSERT_EQ(st1.exclusive_in_use, 2); /* the waiter exited too */
    stop_all();
}

typedef struct acquirer {
    int64_t timeout_ms;
    fleet_status st;
    fleet_stream *s;
    double elapsed_ms;
    atomic_int finished;
} acquirer;

static void *acquire_main(void *arg)
{
    acquirer *q = arg;
    double t0 = test_now_ms();
    q->st = q->timeout_ms == -2 ? fleet_stream_acquire(dev, &q->s)
                                : fleet_stream_acquire_timeout(dev, q->timeout_ms, &q->s);
    q->elapsed_ms = test_now_ms() - t0;
    atomic_store(&q->finished, 1);
    return NULL;
}

static acquirer acquire_now(int64_t timeout_ms) /* -2: fleet_stream_acquire */
{
    acquirer q = {.timeout_ms = timeout_ms};
    acquire_main(&q);
    return q;
}

TEST(acquire_timeouts)
{
    hold_all();
    fleet_stream_pool_stats st0 = test_pool_stats(dev);

    acquirer q = acquire_now(0); /* try once: no wait (the counters below) */
    ASSERT_STATUS(q.st, FLEET_ERR_POOL_EXHAUSTED);
    ASSERT_TRUE(q.s == NULL);
    ASSERT_EQ(test_pool_stats(dev).waits_total, st0.waits_total);

    q = acquire_now(100); /* wait 100 ms */
    ASSERT_STATUS(q.st, FLEET_ERR_POOL_EXHAUSTED);
    ASSERT_GE(q.elapsed_ms, 95);

    q = acquire_now(-2); /* FLEET_STREAM_WAIT_MS = WAIT_MS, never shares */
    ASSERT_STATUS(q.st, FLEET_ERR_POOL_EXHAUSTED);
    ASSERT_GE(q.elapsed_ms, WAIT_MS - 5);
    fleet_stream_pool_stats st1 = test_pool_stats(dev);
    ASSERT_EQ(st1.timeouts_total - st0.timeouts_total, 2); /* 0 does not wait */
    ASSERT_EQ(st1.waits_total - st0.waits_total, 2);
    ASSERT_EQ(st1.acquired_in_use, 0);
    ASSERT_EQ(st1.exclusive_in_use, 3);

    /* -1: waits past every finite default until a holder leaves. */
    acquirer fq = {.timeout_ms = -1};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, acquire_main, &fq), 0);
    test_sleep_ms(WAIT_MS + 150);
    ASSERT_EQ(atomic_load(&fq.finished), 0);
    int freed = holders[0].id;
    test_holder_stop(&holders[0]);
    holders[0].dev = NULL;
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(fq.st);
    ASSERT_EQ(fleet_stream_id(fq.s), freed);
    fleet_stream_pool_stats st2 = test_pool_stats(dev);
    ASSERT_EQ(st2.acquired_in_use, 1);
    ASSERT_EQ(st2.timeouts_total, st1.timeouts_total);

    /* With a slot free, acquire_timeout(0) succeeds at once. */
    ASSERT_OK(fleet_stream_release(fq.s));
    uint64_t waits = test_pool_stats(dev).waits_total;
    q = acquire_now(0);
    ASSERT_OK(q.st);
    ASSERT_EQ(test_pool_stats(dev).waits_total, waits);
    ASSERT_EQ(fleet_stream_id(q.s), freed);
    ASSERT_OK(fleet_stream_release(q.s));
    ASSERT_STATUS(fleet_stream_acquire_timeout(dev, -5, &q.s), FLEET_ERR_INVALID_ARGUMENT);
    stop_all();
}

int main(int argc, char **argv)
{
    setenv("FLEET_STREAMS", "4", 1);
    setenv("FLEET_STREAM_WAIT_MS", "1000", 1);
    return test_main(argc, argv);
}
