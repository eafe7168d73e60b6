/* A ticket handle is checked: releasing it twice, or waiting on it after its
 * release, is FLEET_ERR_STALE_HANDLE (never a read of freed memory), and a
 * release that races a wait in another thread waits for the request and
 * leaves the waiter its result. Requests are held back with a gate on the
 * submitting thread's stream, so each race starts with the ticket pending. */
#include <stdatomic.h>

#include "model_util.h"

static fleet_device *dev;
static test_model tm;
static fleet_batcher *b;

typedef struct request {
    fleet_tensor *tx, *ty;
    fleet_ticket *t;
    float x[2 * 8];
} request;

static void submit(request *q, test_gate *g)
{
    test_rng r = test_rng_make(9);
    test_fill_random(q->x, 2 * 8, &r);
    q->tx = test_tensor_2d(dev, 2, 8, q->x);
    q->ty = test_tensor_2d(dev, 2, 4, NULL);
    if (g != NULL) {
        fleet_stream *s;
        ASSERT_OK(fleet_stream_current(dev, &s));
        ASSERT_OK(fleet_stream_launch_host_func(s, test_gate_wait, g));
    }
    const fleet_tensor *in[1] = {q->tx};
    fleet_tensor *out[1] = {q->ty};
    ASSERT_OK(fleet_batcher_submit(b, in, 1, out, 1, 0, &q->t));
}

static void check_and_free(request *q)
{
    float y[2 * 4], want[2 * 4];
    test_tensor_read(q->ty, y);
    test_model_reference(&tm, q->x, 2, want);
    ASSERT_CLOSE(y, want, 8, 1e-4, 1e-5);
    TEST_RELEASE(q->tx, q->ty);
}

TEST(a_ticket_released_twice_is_stale)
{
    request q;
    submit(&q, NULL);
    ASSERT_OK(fleet_ticket_wait(q.t, -1));
    ASSERT_OK(fleet_ticket_release(q.t));
    ASSERT_REFUSED(fleet_ticket_release(q.t), FLEET_ERR_STALE_HANDLE, "fleet_ticket_release");
    ASSERT_STR_CONTAINS(fleet_last_error(), "stale ticket handle");
    ASSERT_STATUS(fleet_ticket_wait(q.t, -1), FLEET_ERR_STALE_HANDLE);
    ASSERT_STATUS(fleet_ticket_poll(q.t), FLEET_ERR_STALE_HANDLE);
    /* Its slot is reused by the next ticket: the old handle stays stale. */
    request q2;
    submit(&q2, NULL);
    ASSERT_STATUS(fleet_ticket_wait(q.t, 0), FLEET_ERR_STALE_HANDLE);
    ASSERT_OK(fleet_ticket_wait(q2.t, -1));
    ASSERT_OK(fleet_ticket_release(q2.t));
    check_and_free(&q);
    check_and_free(&q2);
    /* Not a handle at all. */
    int junk;
    ASSERT_STATUS(fleet_ticket_wait((fleet_ticket *)&junk, 0), FLEET_ERR_STALE_HANDLE);
}

typedef struct waiter {
    fleet_ticket *t;
    fleet_status st;
} waiter;

static void *wait_forever(void *arg)
{
    waiter *w = arg;
    w->st = fleet_ticket_wait(w->t, -1);
    return NULL;
}

typedef struct opener {
    test_gate *g;
    int delay_ms;
} opener;

static void *open_later(void *arg)
{
    opener *o = arg;
    test_sleep_ms(o->delay_ms);
    test_gate_open(o->g);
    return NULL;
}

TEST(release_racing_a_wait_in_another_thread_waits_for_the_request)
{
    int rounds = test_scaled(40);
    for (int i = 0; i < rounds; i++) {
        test_gate g;
        test_gate_init(&g);
        request q;
        submit(&q, &g);
        waiter w = {q.t, FLEET_ERR_INTERNAL};
        opener o = {&g, i % 5};
        pthread_t waiting, opening;
        ASSERT_EQ(pthread_create(&waiting, NULL, wait_forever, &w), 0);
        ASSERT_EQ(pthread_create(&opening, NULL, open_later, &o), 0);
        /* Blocks until the request completes, whatever the waiter does. */
        ASSERT_OK(fleet_ticket_release(q.t));
        ASSERT_EQ(pthread_join(waiting, NULL), 0);
        ASSERT_EQ(pthread_join(opening, NULL), 0);
        /* The waiter got in before the release (the result) or after it
         * (stale): nothing else. */
        ASSERT_TRUE(w.st == FLEET_OK || w.st == FLEET_ERR_STALE_HANDLE);
        ASSERT_STATUS(fleet_ticket_release(q.t), FLEET_ERR_STALE_HANDLE);
        check_and_free(&q);
        test_gate_destroy(&g);
    }
}

int main(int argc, char **argv)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &dev));
    const int64_t widths[] = {8, 16, 4};
    test_model_mlp(dev, widths, 3, 3, &tm);
    ASSERT_OK(fleet_batcher_create(tm.m, NULL, &b));
    int rc = test_main(argc, argv);
    ASSERT_OK(fleet_batcher_destroy(b));
    test_model_free(&tm);
    return rc;
}
