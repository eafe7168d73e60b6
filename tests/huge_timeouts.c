/* A huge timeout means "wait forever", never "already expired": ticket
 * waits, batcher deadlines and stream acquisition with INT64_MAX (and other
 * values whose nanoseconds overflow 64 bits) wait for the event they are
 * waiting for. Each wait is held up by a gate on a stream, checked to be
 * still waiting after 100 ms, then released by opening the gate. */
#include <stdatomic.h>

#include "model_util.h"

static fleet_device *dev;
static test_model tm;

typedef struct waiter {
    fleet_ticket *t;
    int64_t timeout_ms;
    atomic_int returned;
    fleet_status st;
} waiter;

static void *wait_main(void *arg)
{
    waiter *w = arg;
    w->st = fleet_ticket_wait(w->t, w->timeout_ms);
    atomic_store(&w->returned, 1);
    return NULL;
}

/* A request whose inputs are ready only once `g` opens (the gate blocks the
 * submitting thread's stream, where the ticket's ready event is recorded). */
static fleet_ticket *gated_request(fleet_batcher *b, test_gate *g, int64_t timeout_us,
                                   fleet_tensor **tx, fleet_tensor **ty)
{
    float x[4 * 8];
    test_rng r = test_rng_make(5);
    test_fill_random(x, 4 * 8, &r);
    *tx = test_tensor_2d(dev, 4, 8, x);
    *ty = test_tensor_2d(dev, 4, 4, NULL);
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    ASSERT_OK(fleet_stream_launch_host_func(s, test_gate_wait, g));
    fleet_ticket *t = NULL;
    const fleet_tensor *in[1] = {*tx};
    fleet_tensor *out[1] = {*ty};
    ASSERT_OK(fleet_batcher_submit(b, in, 1, out, 1, timeout_us, &t));
    return t;
}

static void check_output(fleet_tensor *tx, fleet_tensor *ty)
{
    float x[4 * 8], y[4 * 4], want[4 * 4];
    test_tensor_read(tx, x);
    test_tensor_read(ty, y);
    test_model_reference(&tm, x, 4, want);
    ASSERT_CLOSE(y, want, 16, 1e-4, 1e-5);
}

static void wait_with(int64_t timeout_ms)
{
    fleet_batcher *b = NULL;
    ASSERT_OK(fleet_batcher_create(tm.m, NULL, &b));
    test_gate g;
    test_gate_init(&g);
    fleet_tensor *tx, *ty;
    waiter w = {.timeout_ms = timeout_ms};
    w.t = gated_request(b, &g, 0, &tx, &ty);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, wait_main, &w), 0);
    test_sleep_ms(100);
    ASSERT_EQ(atomic_load(&w.returned), 0); /* still waiting, not NOT_READY */
    ASSERT_STATUS(fleet_ticket_poll(w.t), FLEET_ERR_NOT_READY);
    test_gate_open(&g);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_OK(w.st);
    check_output(tx, ty);
    ASSERT_OK(fleet_ticket_release(w.t));
    TEST_RELEASE(tx, ty);
    ASSERT_OK(fleet_batcher_destroy(b));
    test_gate_destroy(&g);
}

TEST(ticket_wait_with_int64_max_ms_waits_for_the_result) { wait_with(INT64_MAX); }
TEST(ticket_wait_with_int64_max_over_1000_ms_waits_for_the_result) { wait_with(INT64_MAX / 1000); }

TEST(a_request_deadline_of_2_to_the_62_us_never_expires)
{
    fleet_batcher *b = NULL;
    ASSERT_OK(fleet_batcher_create(tm.m, NULL, &b));
    test_gate g;
    test_gate_init(&g);
    int64_t timeouts[] = {INT64_C(1) << 62, INT64_MAX};
    for (int i = 0; i < 2; i++) {
        fleet_tensor *tx, *ty;
        g.open = 0;
        fleet_ticket *t = gated_request(b, &g, timeouts[i], &tx, &ty);
        test_sleep_ms(20);
        test_gate_open(&g);
        ASSERT_OK(fleet_ticket_wait(t, -1));
        check_output(tx, ty);
        ASSERT_OK(fleet_ticket_release(t));
        TEST_RELEASE(tx, ty);
    }
    fleet_batcher_stats st;
    ASSERT_OK(fleet_batcher_get_stats(b, &st));
    ASSERT_EQ(st.timed_out, 0);
    ASSERT_EQ(st.completed_ok, 2);
    ASSERT_OK(fleet_batcher_destroy(b));
    test_gate_destroy(&g);
}

typedef struct acquirer {
    int64_t timeout_ms;
    atomic_int returned;
    fleet_status st;
    fleet_stream *s;
} acquirer;

static void *acquire_main(void *arg)
{
    acquirer *a = arg;
    a->st = fleet_stream_acquire_timeout(dev, a->timeout_ms, &a->s);
    atomic_store(&a->returned, 1);
    return NULL;
}

TEST(stream_acquire_with_int64_max_ms_waits_for_a_free_slot)
{
    fleet_stream_pool_stats ps = test_pool_stats(dev);
    int n = ps.pool_slots - ps.exclusive_in_use;
    ASSERT_GE(n, 1);
    fleet_stream **held = calloc((size_t)n, sizeof *held);
    for (int i = 0; i < n; i++)
        ASSERT_OK(fleet_stream_acquire_timeout(dev, 0, &held[i]));
    int64_t timeouts[] = {INT64_MAX, INT64_MAX / 1000};
    for (int k = 0; k < 2; k++) {
        acquirer a = {.timeout_ms = timeouts[k]};
        pthread_t th;
        ASSERT_EQ(pthread_create(&th, NULL, acquire_main, &a), 0);
        test_sleep_ms(100);
        ASSERT_EQ(atomic_load(&a.returned), 0); /* waiting, not POOL_EXHAUSTED */
        ASSERT_OK(fleet_stream_release(held[0]));
        ASSERT_EQ(pthread_join(th, NULL), 0);
        ASSERT_OK(a.st);
        held[0] = a.s;
    }
    for (int i = 0; i < n; i++)
        ASSERT_OK(fleet_stream_release(held[i]));
    free(held);
}

int main(int argc, char **argv)
{
    setenv("FLEET_STREAMS", "6", 1);
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &dev));
    const int64_t widths[] = {8, 16, 4};
    test_model_mlp(dev, widths, 3, 3, &tm);
    int rc = test_main(argc, argv);
    test_model_free(&tm);
    return rc;
}
