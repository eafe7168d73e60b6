/* Stream Pool Wait Forever: FLEET_STREAMS=4 (3 pool slots) and
 * FLEET_STREAM_WAIT_MS=-1. With every slot held, a binding thread waits as
 * long as it takes (well past any finite timeout here), never shares and
 * never fails; when a holder exits it gets that slot and computes correctly.
 * Two waiters and two exits: each exit serves exactly one waiter. The main
 * thread never binds. */
#include "test_util.h"

static fleet_device *dev;

typedef struct waiter {
    fleet_status st;
    int id;
    atomic_int finished; /* the bind returned */
    test_gate leave;     /* then hold the slot until this opens */
} waiter;

static void *bind_waiter(void *arg)
{
    waiter *w = arg;
    fleet_stream *s = NULL;
    w->st = fleet_stream_current(dev, &s);
    if (w->st == FLEET_OK) {
        w->id = fleet_stream_id(s);
    }
    atomic_store(&w->finished, 1);
    if (w->st == FLEET_OK) {
        test_gate_wait(&w->leave);
        ASSERT_EQ(test_matmul_check(dev, 6, 10, 7, 5), w->id);
    }
    return NULL;
}

TEST(bind_waits_until_slot_frees)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    ASSERT_EQ(st0.pool_slots, 3);
    test_holder h[3];
    for (int i = 0; i < 3; i++)
        test_holder_start(&h[i], dev);

    waiter w[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (waiter){.st = FLEET_ERR_INTERNAL, .id = -1};
        atomic_init(&w[i].finished, 0);
        test_gate_init(&w[i].leave);
        ASSERT_EQ(pthread_create(&t[i], NULL, bind_waiter, &w[i]), 0);
    }
    test_sleep_ms(400);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(atomic_load(&w[i].finished), 0); /* still waiting */
    fleet_stream_pool_stats mid = test_pool_stats(dev);
    ASSERT_EQ(mid.exclusive_in_use, 3);
    ASSERT_EQ(mid.shared_bindings, 0);
    ASSERT_EQ(mid.shared_total, st0.shared_total);

    /* One holder leaves: exactly one waiter gets its slot. */
    int freed0 = h[0].id;
    test_holder_stop(&h[0]);
    double t0 = test_now_ms();
    while (atomic_load(&w[0].finished) + atomic_load(&w[1].finished) < 1) {
        ASSERT_TRUE(test_now_ms() - t0 < 10000);
        test_sleep_ms(1);
    }
    int first = atomic_load(&w[0].finished) ? 0 : 1, second = 1 - first;
    ASSERT_OK(w[first].st);
    ASSERT_EQ(w[first].id, freed0);
    test_sleep_ms(100);
    ASSERT_EQ(atomic_load(&w[second].finished), 0); /* the other still waits */

    /* A second holder leaves: the second waiter gets that slot. */
    int freed1 = h[1].id;
    test_holder_stop(&h[1]);
    t0 = test_now_ms();
    while (!atomic_load(&w[second].finished)) {
        ASSERT_TRUE(test_now_ms() - t0 < 10000);
        test_sleep_ms(1);
    }
    ASSERT_OK(w[second].st);
    ASSERT_EQ(w[second].id, freed1);
    fleet_stream_pool_stats full = test_pool_stats(dev);
    ASSERT_EQ(full.exclusive_in_use, 3);
    ASSERT_EQ(full.shared_bindings, 0);
    for (int i = 0; i < 2; i++) {
        test_gate_open(&w[i].leave);
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
        test_gate_destroy(&w[i].leave);
    }

    fleet_stream_pool_stats st1 = test_pool_stats(dev);
    ASSERT_EQ(st1.waits_total - st0.waits_total, 2);
    ASSERT_EQ(st1.timeouts_total, st0.timeouts_total);
    ASSERT_EQ(st1.shared_total, st0.shared_total);
    ASSERT_EQ(st1.exclusive_in_use, 1);
    test_holder_stop(&h[2]);
    ASSERT_EQ(test_pool_stats(dev).exclusive_in_use, 0);
}

int main(int argc, char **argv)
{
    setenv("FLEET_STREAMS", "4", 1);
    setenv("FLEET_STREAM_WAIT_MS", "-1", 1);
    return test_main(argc, argv);
}
