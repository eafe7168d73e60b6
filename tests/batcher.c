/* The dynamic batcher: many threads' requests of random sizes batched and
 * each answered with its own rows; shutdown with pending requests (drain and
 * cancel); a full queue; deadlines; bad requests failing alone; a failed
 * batch failing only its tickets; an idle runner dispatching at once. Outputs are checked against the plain-C
 * reference and against the model run unbatched. */
#include <pthread.h>
#include <stdatomic.h>

#include "model_util.h"

#define IN 16
#define OUT 8

static fleet_device *dev;
static test_model tm;

typedef struct request {
    float x[32 * IN], y[32 * OUT];
    int64_t rows;
    fleet_tensor *tx, *ty;
    fleet_ticket *t;
} request;

static void request_make(request *q, int64_t rows, uint64_t seed)
{
    q->rows = rows;
    test_rng r = test_rng_make(seed);
    test_fill_random(q->x, rows * IN, &r);
    int64_t xs[2] = {rows, IN}, ys[2] = {rows, OUT};
    q->tx = test_tensor_new(dev, 2, xs);
    q->ty = test_tensor_new(dev, 2, ys);
    test_fill_sentinel(q->ty);
    ASSERT_OK(fleet_tensor_copy_from_host(q->tx, q->x, sizeof(float) * (size_t)(rows * IN)));
    q->t = NULL;
}

static fleet_status request_submit(fleet_batcher *b, request *q, int64_t timeout_us)
{
    const fleet_tensor *in[1] = {q->tx};
    fleet_tensor *out[1] = {q->ty};
    return fleet_batcher_submit(b, in, 1, out, 1, timeout_us, &q->t);
}

/* The ticket completed OK and the output is this request's own. */
static void request_check(request *q)
{
    float want[32 * OUT];
    test_tensor_read(q->ty, q->y);
    test_model_reference(&tm, q->x, q->rows, want);
    ASSERT_CLOSE(q->y, want, q->rows * OUT, 1e-4, 1e-5);
}

static void request_free(request *q)
{
    ASSERT_OK(fleet_ticket_release(q->t));
    TEST_RELEASE(q->tx, q->ty);
}

static fleet_batcher *make(int max_batch, int64_t delay_us, int capacity, int inflight)
{
    fleet_batcher_config c = fleet_batcher_config_default();
    c.max_batch = max_batch;
    c.max_delay_us = delay_us;
    c.queue_capacity = capacity;
    c.max_inflight = inflight;
    fleet_batcher *b;
    ASSERT_OK(fleet_batcher_create(tm.m, &c, &b));
    return b;
}

/* A gate keeps a batcher's runners busy: a host function on this thread's
 * stream holds until the gate (test_util.h) opens, and one request per runner submitted
 * behind it is taken at once (an idle runner dispatches immediately) and
 * waits there, so requests submitted later stay queued. Every request a
 * test submits must be made before the gate closes: copies to this thread's
 * stream wait behind the gate too. */
typedef struct gate {
    test_gate g;
    request q[2];
    int n;
    pthread_t opener;
} gate;

static void gate_close(gate *g, fleet_batcher *b, int runners)
{
    g->n = runners;
    for (int i = 0; i < runners; i++)
        request_make(&g->q[i], 1, 4242 + (uint64_t)i);
    test_gate_init(&g->g);
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    ASSERT_OK(fleet_stream_launch_host_func(s, test_gate_wait, &g->g));
    for (int i = 0; i < runners; i++) {
        ASSERT_OK(request_submit(b, &g->q[i], 0));
        for (fleet_batcher_stats st;;) { /* taken by a runner */
            ASSERT_OK(fleet_batcher_get_stats(b, &st));
            if (st.queued == 0)
                break;
            test_sleep_ms(1);
        }
    }
}

static void *gate_opener(void *arg)
{
    test_sleep_ms(100);
    test_gate_open(&((gate *)arg)->g);
    return NULL;
}

/* Opens the gate 100 ms from now (a shutdown that joins the runners may be
 * called meanwhile). */
static void gate_open_later(gate *g)
{
    ASSERT_TRUE(pthread_create(&g->opener, NULL, gate_opener, g) == 0);
}

/* The gate's requests were answered, each with its own rows. */
static void gate_finish(gate *g)
{
    ASSERT_TRUE(pthread_join(g->opener, NULL) == 0);
    ASSERT_OK(fleet_device_synchronize(dev)); /* the host function returned */
    test_gate_destroy(&g->g);
    for (int i = 0; i < g->n; i++) {
        ASSERT_OK(fleet_ticket_wait(g->q[i].t, -1));
        request_check(&g->q[i]);
        request_free(&g->q[i]);
    }
}

/* ---- many threads ------------------------------------------------------------------------ */

typedef struct client {
    fleet_batcher *b;
    int index, n;
    int ok;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    test_rng r = test_rng_make(77 + (uint64_t)c->index);
    request *q = malloc(sizeof *q * 4);
    for (int i = 0; i < c->n; i += 4) {
        int k = c->n - i < 4 ? c->n - i : 4; /* a few outstanding at once */
        for (int j = 0; j < k; j++) {
            request_make(&q[j], 1 + (int64_t)(test_rng_next(&r) % 6),
                         (uint64_t)c->index * 100000 + (uint64_t)(i + j));
            ASSERT_OK(request_submit(c->b, &q[j], 0));
        }
        for (int j = 0; j < k; j++) {
            ASSERT_OK(fleet_ticket_wait(q[j].t, -1));
            ASSERT_OK(fleet_ticket_poll(q[j].t));
            double queue_us = -1, compute_us = -1;
            ASSERT_OK(fleet_ticket_get_times(q[j].t, &queue_us, &compute_us));
            ASSERT_TRUE(queue_us >= 0 && compute_us > 0 && compute_us < 60e6);
            request_check(&q[j]);
            request_free(&q[j]);
            c->ok++;
        }
    }
    free(q);
    return NULL;
}

TEST(threads_submit_random_sizes_each_gets_its_rows)
{
    fleet_batcher *b = make(16, 500, 1024, 2);
    enum { THREADS = 8 };
    int per = test_scaled(40) < 4 ? 4 : test_scaled(40);
    client c[THREADS];
    for (int i = 0; i < THREADS; i++)
        c[i] = (client){.b = b, .index = i, .n = per};
    test_run_threads(THREADS, client_main, c, sizeof c[0]);
    for (int i = 0; i < THREADS; i++)
        ASSERT_EQ(c[i].ok, per);
    fleet_batcher_stats st;
    ASSERT_OK(fleet_batcher_get_stats(b, &st));
    printf("  %llu requests in %llu batches, %.2f rows per batch; queue wait p50 %.0f us p99 "
           "%.0f us; run p50 %.0f us p99 %.0f us\n", (unsigned long long)st.submitted,
           (unsigned long long)st.batches, st.mean_batch_rows, st.queue_wait_p50_us,
           st.queue_wait_p99_us, st.run_p50_us, st.run_p99_us);
    ASSERT_EQ(st.submitted, (uint64_t)(THREADS * per));
    ASSERT_EQ(st.completed_ok, st.submitted);
    ASSERT_EQ(st.failed + st.timed_out + st.cancelled + st.rejected_full, 0u);
    ASSERT_TRUE(st.batches < st.submitted); /* requests were batched */
    ASSERT_TRUE(st.mean_batch_rows > 1.0);
    ASSERT_EQ(st.queued, 0);
    ASSERT_OK(fleet_batcher_destroy(b));

    /* and the batched rows equal the model run unbatched on the same input */
    request q;
    request_make(&q, 3, 5);
    b = make(16, 0, 16, 1);
    ASSERT_OK(request_submit(b, &q, 0));
    ASSERT_OK(fleet_ticket_wait(q.t, -1));
    float direct[3 * OUT];
    test_model_run(&tm, dev, q.x, 3, direct);
    test_tensor_read(q.ty, q.y);
    ASSERT_CLOSE(q.y, direct, 3 * OUT, 1e-6, 1e-7);
    request_free(&q);
    ASSERT_OK(fleet_batcher_destroy(b));
}

/* ---- shutdown ------------------------------------------------------------------------------ */

/* With the one runner held busy, submitted requests stay queued. */
TEST(shutdown_cancel_completes_every_pending_ticket)
{
    fleet_batcher *b = make(64, 10 * 1000 * 1000, 64, 1);
    request q[10];
    for (int i = 0; i < 10; i++)
        request_make(&q[i], 1 + i % 3, (uint64_t)i);
    gate g;
    gate_close(&g, b, 1);
    for (int i = 0; i < 10; i++)
        ASSERT_OK(request_submit(b, &q[i], 0));
    ASSERT_STATUS(fleet_ticket_poll(q[0].t), FLEET_ERR_NOT_READY);
    ASSERT_STATUS(fleet_ticket_wait(q[0].t, 20), FLEET_ERR_NOT_READY);
    double queue_us = -1, compute_us = -1;
    ASSERT_STATUS(fleet_ticket_get_times(q[0].t, &queue_us, &compute_us), FLEET_ERR_NOT_READY);
    ASSERT_TRUE(queue_us == -1 && compute_us == -1); /* untouched while pending */
    gate_open_later(&g);
    ASSERT_OK(fleet_batcher_shutdown(b, false));
    gate_finish(&g); /* the batch in flight ran */
    for (int i = 0; i < 10; i++) {
        ASSERT_STATUS(fleet_ticket_wait(q[i].t, -1), FLEET_ERR_SHUTDOWN);
        test_assert_sentinel(q[i].ty); /* nothing was written */
        ASSERT_OK(fleet_ticket_get_times(q[i].t, &queue_us, &compute_us));
        ASSERT_TRUE(queue_us == 0 && compute_us == 0); /* never ran */
    }
    request late;
    request_make(&late, 1, 99);
    ASSERT_STATUS(request_submit(b, &late, 0), FLEET_ERR_SHUTDOWN);
    ASSERT_TRUE(late.t == NULL);
    fleet_batcher_stats st;
    ASSERT_OK(fleet_batcher_get_stats(b, &st));
    ASSERT_EQ(st.cancelled, 10u);
    ASSERT_EQ(st.batches, 1u);
    ASSERT_OK(fleet_batcher_shutdown(b, true)); /* idempotent */
    ASSERT_OK(fleet_batcher_destroy(b));
    for (int i = 0; i < 10; i++)
        request_free(&q[i]);
    TEST_RELEASE(late.tx, late.ty);
}

TEST(shutdown_drain_runs_every_pending_request)
{
    fleet_batcher *b = make(64, 10 * 1000 * 1000, 64, 2);
    request q[10];
    for (int i = 0; i < 10; i++) {
        request_make(&q[i], 1 + i % 4, 1000 + (uint64_t)i);
        ASSERT_OK(request_submit(b, &q[i], 0));
    }
    double t0 = test_now_ms();
    ASSERT_OK(fleet_batcher_shutdown(b, true));
    ASSERT_TRUE(test_now_ms() - t0 < 5000); /* draining does not wait out the delay */
    for (int i = 0; i < 10; i++) {
        ASSERT_OK(fleet_ticket_wait(q[i].t, 0));
        request_check(&q[i]);
        request_free(&q[i]);
    }
    fleet_batcher_stats st;
    ASSERT_OK(fleet_batcher_get_stats(b, &st));
    ASSERT_EQ(st.completed_ok, 10u);
    ASSERT_OK(fleet_batcher_destroy(b));
}

/* ---- limits ------------------------------------------------------------------------------- */

TEST(queue_full_refuses_and_queues_nothing)
{
    fleet_batcher *b = make(64, 10 * 1000 * 1000, 4, 1);
    request q[5];
    for (int i = 0; i < 5; i++)
        request_make(&q[i], 1, (uint64_t)i);
    gate g;
    gate_close(&g, b, 1);
    for (int i = 0; i < 4; i++)
        ASSERT_OK(request_submit(b, &q[i], 0));
    ASSERT_REFUSED(request_submit(b, &q[4], 0), FLEET_ERR_QUEUE_FULL, "queue_capacity");
    fleet_batcher_stats st;
    ASSERT_OK(fleet_batcher_get_stats(b, &st));
    ASSERT_EQ(st.rejected_full, 1u);
    ASSERT_EQ(st.queued, 4);
    gate_open_later(&g);
    ASSERT_OK(fleet_batcher_shutdown(b, true));
    gate_finish(&g);
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(fleet_ticket_wait(q[i].t, -1));
        request_check(&q[i]);
        request_free(&q[i]);
    }
    TEST_RELEASE(q[4].tx, q[4].ty);
    ASSERT_OK(fleet_batcher_destroy(b));
}

TEST(deadline_passes_before_the_batch_runs)
{
    /* the one runner is held busy for 100 ms; one request may wait only 20 */
    fleet_batcher *b = make(64, 300 * 1000, 64, 1);
    request patient, hurried;
    request_make(&patient, 2, 1);
    request_make(&hurried, 1, 2);
    gate g;
    gate_close(&g, b, 1);
    ASSERT_OK(request_submit(b, &patient, 0));
    ASSERT_OK(request_submit(b, &hurried, 20 * 1000));
    gate_open_later(&g);
    ASSERT_STATUS(fleet_ticket_wait(hurried.t, -1), FLEET_ERR_TIMEOUT);
    test_assert_sentinel(hurried.ty);
    ASSERT_OK(fleet_ticket_wait(patient.t, -1));
    request_check(&patient);
    gate_finish(&g);
    fleet_batcher_stats st;
    ASSERT_OK(fleet_batcher_get_stats(b, &st));
    ASSERT_EQ(st.timed_out, 1u);
    ASSERT_EQ(st.completed_ok, 2u);
    request_free(&patient);
    request_free(&hurried);
    ASSERT_OK(fleet_batcher_destroy(b));
}

/* An idle runner dispatches at once, whatever max_delay_us says; only while
 * another runner is busy does a runner wait for its batch to fill. */
TEST(an_idle_runner_dispatches_at_once)
{
    fleet_batcher *b = make(64, 10 * 1000 * 1000, 64, 2);
    request q[2];
    for (int i = 0; i < 2; i++)
        request_make(&q[i], 1 + i, 60 + (uint64_t)i);
    double t0 = test_now_ms();
    ASSERT_OK(request_submit(b, &q[0], 0));
    ASSERT_OK(fleet_ticket_wait(q[0].t, -1));
    ASSERT_TRUE(test_now_ms() - t0 < 5000); /* not the 10 s of max_delay */
    request_check(&q[0]);
    /* one runner held busy: the other, idle, waits for more rows */
    gate g;
    gate_close(&g, b, 1);
    ASSERT_OK(request_submit(b, &q[1], 0));
    ASSERT_STATUS(fleet_ticket_wait(q[1].t, 50), FLEET_ERR_NOT_READY);
    gate_open_later(&g);
    ASSERT_OK(fleet_batcher_shutdown(b, true)); /* drains without the delay */
    gate_finish(&g);
    ASSERT_OK(fleet_ticket_wait(q[1].t, 0));
    request_check(&q[1]);
    for (int i = 0; i < 2; i++)
        request_free(&q[i]);
    ASSERT_OK(fleet_batcher_destroy(b));
}

TEST(bad_requests_fail_alone_at_submit)
{
    fleet_batcher *b = make(8, 20 * 1000, 64, 2);
    request good[3];
    for (int i = 0; i < 3; i++)
        request_make(&good[i], 2, 10 + (uint64_t)i);
    ASSERT_OK(request_submit(b, &good[0], 0));
    int64_t wide[2] = {2, IN + 1}, big[2] = {9, IN}, out9[2] = {9, OUT}, ys[2] = {2, OUT};
    fleet_tensor *tw = test_tensor_new(dev, 2, wide), *ty = test_tensor_new(dev, 2, ys);
    fleet_tensor *tb = test_tensor_new(dev, 2, big), *tb9 = test_tensor_new(dev, 2, out9);
    fleet_tensor *th;
    int64_t hs[2] = {2, IN};
    ASSERT_OK(fleet_tensor_create(dev, FLEET_DTYPE_F16, 2, hs, &th));
    fleet_ticket *t = NULL;
    const fleet_tensor *in_w[1] = {tw}, *in_b[1] = {tb}, *in_h[1] = {th}, *in_g[1] = {good[1].tx};
    fleet_tensor *out_y[1] = {ty}, *out_b[1] = {tb9};
    ASSERT_STATUS(fleet_batcher_submit(b, in_w, 1, out_y, 1, 0, &t), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_batcher_submit(b, in_h, 1, out_y, 1, 0, &t), FLEET_ERR_DTYPE_MISMATCH);
    ASSERT_REFUSED(fleet_batcher_submit(b, in_b, 1, out_b, 1, 0, &t), FLEET_ERR_INVALID_ARGUMENT,
                   "max_batch");
    ASSERT_STATUS(fleet_batcher_submit(b, in_g, 1, out_b, 1, 0, &t), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_batcher_submit(b, in_g, 2, out_y, 1, 0, &t), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_batcher_submit(b, in_g, 1, out_y, 1, -1, &t), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_batcher_submit(NULL, in_g, 1, out_y, 1, 0, &t), FLEET_ERR_NULL_POINTER);
    ASSERT_TRUE(t == NULL);
    ASSERT_OK(request_submit(b, &good[1], 0));
    ASSERT_OK(request_submit(b, &good[2], 0));
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(fleet_ticket_wait(good[i].t, -1));
        request_check(&good[i]);
        request_free(&good[i]);
    }
    fleet_batcher_stats st;
    ASSERT_OK(fleet_batcher_get_stats(b, &st));
    ASSERT_EQ(st.submitted, 3u);
    TEST_RELEASE(tw, ty, tb, tb9, th);
    ASSERT_OK(fleet_batcher_destroy(b));
}

TEST(a_failed_batch_fails_its_tickets_and_the_batcher_keeps_serving)
{
    fleet_batcher *b = make(8, 50 * 1000, 64, 1);
    request q[3], after;
    for (int i = 0; i < 3; i++)
        request_make(&q[i], 1, 20 + (uint64_t)i);
    request_make(&after, 2, 30);
    /* The runner's stream has no memory yet and nothing is cached: its first
     * allocation (the first batch's tensors) is the one that fails. The idle
     * runner dispatches at once, so that batch holds q[0] and maybe more;
     * every request in it fails, every later one is answered. */
    ASSERT_OK(fleet_device_synchronize(dev));
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_OK(fleet_memory_inject_failure(dev, 1));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(request_submit(b, &q[i], 0));
    uint64_t failed = 0;
    for (int i = 0; i < 3; i++) {
        fleet_status st = fleet_ticket_wait(q[i].t, -1);
        ASSERT_TRUE(st == FLEET_OK || st == FLEET_ERR_OUT_OF_MEMORY);
        ASSERT_TRUE(i > 0 || st == FLEET_ERR_OUT_OF_MEMORY); /* the first batch failed */
        ASSERT_TRUE(i == 0 || st == FLEET_OK || failed == (uint64_t)i); /* failures come first */
        if (st == FLEET_OK) {
            request_check(&q[i]);
        } else {
            test_assert_sentinel(q[i].ty);
            failed++;
        }
    }
    ASSERT_OK(request_submit(b, &after, 0));
    ASSERT_OK(fleet_ticket_wait(after.t, -1));
    request_check(&after);
    fleet_batcher_stats st;
    ASSERT_OK(fleet_batcher_get_stats(b, &st));
    ASSERT_EQ(st.failed, failed);
    ASSERT_EQ(st.completed_ok, 4u - failed);
    for (int i = 0; i < 3; i++)
        request_free(&q[i]);
    request_free(&after);
    ASSERT_OK(fleet_batcher_destroy(b));
}

TEST(create_refuses_bad_configs_and_models)
{
    fleet_batcher *b;
    fleet_batcher_config c = fleet_batcher_config_default();
    c.max_batch = 0;
    ASSERT_STATUS(fleet_batcher_create(tm.m, &c, &b), FLEET_ERR_INVALID_ARGUMENT);
    c = fleet_batcher_config_default();
    c.max_inflight = 17;
    ASSERT_STATUS(fleet_batcher_create(tm.m, &c, &b), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_batcher_create(NULL, NULL, &b), FLEET_ERR_NULL_POINTER);
    const int64_t channels[] = {1, 2};
    test_model conv;
    test_model_conv(dev, channels, 2, 3, 8, 1, &conv);
    ASSERT_OK(fleet_batcher_create(conv.m, NULL, &b)); /* [B, 1, 8]: batch first */
    ASSERT_OK(fleet_batcher_destroy(b));
    test_model_free(&conv);
    fleet_model *m;
    ASSERT_OK(fleet_model_create(dev, &m));
    int64_t xs[2] = {4, FLEET_DIM_BATCH};
    fleet_value x, y;
    ASSERT_OK(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &x));
    ASSERT_OK(fleet_model_relu(m, x, &y));
    ASSERT_OK(fleet_model_output(m, "y", y));
    ASSERT_STATUS(fleet_batcher_create(m, NULL, &b), FLEET_ERR_INVALID_ARGUMENT); /* unfinalized */
    ASSERT_OK(fleet_model_finalize(m));
    ASSERT_REFUSED(fleet_batcher_create(m, NULL, &b), FLEET_ERR_INVALID_ARGUMENT,
                   "batch dimension first");
    ASSERT_OK(fleet_model_destroy(m));
}

int main(int argc, char **argv)
{
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    const int64_t widths[] = {IN, 32, OUT};
    test_model_mlp(dev, widths, 3, 3, &tm);
    int rc = test_main(argc, argv);
    test_model_free(&tm);
    return rc;
}
