/* fleet-soak: many threads of mixed work under a tight memory limit, for a
 * fixed time, every value checked (make soak; a short form in make verify).
 *
 *     fleet-soak [SECONDS] [THREADS]       defaults 60 and 16
 *
 * Thread i does, by i % 4: op chains (tests/op_chains.h: GEMMs, in-place
 * ops, attention, conv1d, fresh tensors each time); runs of a shared MLP at
 * random batch sizes; batch-1 requests through a batcher in front of
 * another model; tensor churn with record_stream across a second stream.
 * Thread 0 also empties the allocator's cache every 50 ms. FLEET_MEMORY_LIMIT
 * defaults to 32M here, so OOM cascades run under load: a call may fail with
 * FLEET_ERR_OUT_OF_MEMORY (counted); any other failure, or any wrong value,
 * fails the soak. At the end everything is released and the allocator must
 * be back to zero (allocated, pending, live blocks; reserved after
 * empty_cache), tensor handles back to the start, and RSS within 64 MiB of
 * its level after warm-up. Prints one line per figure and exits 0 or 1. */
#include <stdatomic.h>

#include "model_util.h"
#include "op_chains.h"
#include "tensor/tensor.h"

static fleet_device *dev;
static test_model mlp, served;
static fleet_batcher *batcher;
static atomic_int stop, failed;
static atomic_llong ops, model_runs, requests, churns, ooms, empties;

#define FAILF(...)                                                                       \
    do {                                                                                 \
        fprintf(stderr, "soak: " __VA_ARGS__);                                           \
        fprintf(stderr, " (%s)\n", fleet_last_error());                                  \
        atomic_store(&failed, 1);                                                        \
    } while (0)

/* OK, or a clean out-of-memory (counted); anything else fails the soak. */
static bool ok_or_oom(fleet_status st, const char *what)
{
    if (st == FLEET_OK)
        return true;
    if (st == FLEET_ERR_OUT_OF_MEMORY) {
        atomic_fetch_add(&ooms, 1);
        return false;
    }
    FAILF("%s: %s", what, fleet_status_name(st));
    return false;
}

static void chains(test_rng *r)
{
    double err;
    int kind = (int)(test_rng_next(r) % OP_CHAIN_KINDS);
    if (ok_or_oom(op_chain_run(dev, kind, r, &err), op_chain_names[kind])) {
        if (!(err <= OP_CHAIN_TOLERANCE))
            FAILF("%s: normwise error %g", op_chain_names[kind], err);
        atomic_fetch_add(&ops, 1);
    }
}

/* x[rows, in] through tm (a model run, or a batcher request); checked. */
static void model_request(test_model *tm, int64_t rows, test_rng *r, bool batched)
{
    float x[32 * 64], y[32 * 64], want[32 * 64];
    test_fill_random(x, rows * tm->in_row, r);
    int64_t xs[2] = {rows, tm->in_row}, ys[2] = {rows, tm->out_row};
    fleet_tensor *tx = NULL, *ty = NULL;
    fleet_status st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, xs, &tx);
    if (st == FLEET_OK)
        st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, ys, &ty);
    if (st == FLEET_OK)
        st = fleet_tensor_copy_from_host(tx, x, sizeof(float) * (size_t)(rows * tm->in_row));
    const fleet_tensor *in[1] = {tx};
    fleet_tensor *out[1] = {ty};
    if (st == FLEET_OK && !batched) {
        st = fleet_model_run(tm->m, in, 1, out, 1);
    } else if (st == FLEET_OK) {
        fleet_ticket *t = NULL;
        st = fleet_batcher_submit(batcher, in, 1, out, 1, 0, &t);
        if (st == FLEET_OK) {
            st = fleet_ticket_wait(t, -1);
            fleet_status rs = fleet_ticket_release(t);
            if (rs != FLEET_OK)
                FAILF("ticket release: %s", fleet_status_name(rs));
        }
    }
    if (st == FLEET_OK)
        st = fleet_tensor_copy_to_host(ty, y, sizeof(float) * (size_t)(rows * tm->out_row));
    if (ok_or_oom(st, batched ? "batcher request" : "model run")) {
        test_model_reference(tm, x, rows, want);
        double err = test_normwise_error(y, want, rows * tm->out_row);
        if (!(err <= 1e-5))
            FAILF("%s of %lld rows: normwise error %g", batched ? "request" : "model run",
                  (long long)rows, err);
        atomic_fetch_add(batched ? &requests : &model_runs, 1);
    }
    if (tx != NULL)
        (void)fleet_tensor_release(tx);
    if (ty != NULL)
        (void)fleet_tensor_release(ty);
}

/* A tensor used on a second stream (record_stream) and freed at once. */
static void churn(fleet_stream *other, test_rng *r)
{
    int64_t n = 256 + (int64_t)(test_rng_next(r) % 65536);
    float *host = malloc(sizeof(float) * (size_t)n), *got = malloc(sizeof(float) * (size_t)n);
    test_fill_random(host, n, r);
    fleet_tensor *a = NULL, *b = NULL;
    fleet_event *e = NULL;
    fleet_stream *mine = NULL;
    fleet_status st = fleet_stream_current(dev, &mine);
    if (st == FLEET_OK)
        st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, &n, &a);
    if (st == FLEET_OK)
        st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, &n, &b);
    if (st == FLEET_OK)
        st = fleet_tensor_copy_from_host(a, host, sizeof(float) * (size_t)n);
    if (st == FLEET_OK)
        st = fleet_event_create(dev, &e);
    /* b = relu(a) on the other stream, after a is ready on this one */
    if (st == FLEET_OK && (st = fleet_event_record(e, mine)) == FLEET_OK &&
        (st = fleet_stream_wait_event(other, e)) == FLEET_OK &&
        (st = fleet_stream_set_current(other)) == FLEET_OK) {
        st = fleet_relu(a, b);
        fleet_status back = fleet_stream_reset_current(dev);
        st = st != FLEET_OK ? st : back;
        if (st == FLEET_OK)
            st = fleet_tensor_record_stream(a, other);
        if (st == FLEET_OK)
            st = fleet_tensor_record_stream(b, other);
        if (st == FLEET_OK)
            st = fleet_event_record(e, other);
        if (st == FLEET_OK)
            st = fleet_stream_wait_event(mine, e);
    }
    if (a != NULL)
        (void)fleet_tensor_release(a); /* withheld until the other stream passes */
    a = NULL;
    if (st == FLEET_OK)
        st = fleet_tensor_copy_to_host(b, got, sizeof(float) * (size_t)n);
    if (ok_or_oom(st, "churn")) {
        for (int64_t i = 0; i < n; i++)
            if (got[i] != (host[i] > 0 ? host[i] : 0.0f)) {
                FAILF("churn: element %lld is %g, want %g", (long long)i, got[i], host[i]);
                break;
            }
        atomic_fetch_add(&churns, 1);
    }
    if (b != NULL)
        (void)fleet_tensor_release(b);
    if (e != NULL)
        (void)fleet_event_destroy(e);
    free(host);
    free(got);
}

static void *worker(void *arg)
{
    int index = (int)(intptr_t)arg;
    test_rng r = test_rng_make(500 + (uint64_t)index);
    fleet_stream *other = NULL;
    if (index % 4 == 3 && fleet_stream_acquire_timeout(dev, 0, &other) != FLEET_OK)
        other = NULL; /* the pool is full: churn on the default stream */
    if (index % 4 == 3 && other == NULL)
        (void)fleet_stream_get_default(dev, &other);
    double last_empty = test_now_ms();
    while (!atomic_load(&stop) && !atomic_load(&failed)) {
        switch (index % 4) {
        case 0: chains(&r); break;
        case 1: model_request(&mlp, 1 + (int64_t)(test_rng_next(&r) % 32), &r, false); break;
        case 2: model_request(&served, 1, &r, true); break;
        default: churn(other, &r); break;
        }
        if (index == 0 && test_now_ms() - last_empty > 50) {
            if (ok_or_oom(fleet_memory_empty_cache(dev), "empty_cache"))
                atomic_fetch_add(&empties, 1);
            last_empty = test_now_ms();
        }
    }
    if (other != NULL && fleet_stream_id(other) != 0)
        (void)fleet_stream_release(other);
    return NULL;
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 60;
    int threads = argc > 2 ? atoi(argv[2]) : 16;
    if (seconds <= 0 || threads < 4 || threads > 256) {
        fprintf(stderr, "usage: fleet-soak [SECONDS > 0] [THREADS 4..256]\n");
        return 2;
    }
    setenv("FLEET_MEMORY_LIMIT", "32M", 0);
    if (fleet_device_default(&dev) != FLEET_OK) {
        fprintf(stderr, "soak: %s\n", fleet_last_error());
        return 1;
    }
    const int64_t mlp_widths[] = {64, 128, 64}, served_widths[] = {32, 64, 16};
    test_model_mlp(dev, mlp_widths, 3, 1, &mlp);
    test_model_mlp(dev, served_widths, 3, 2, &served);
    fleet_batcher_config cfg = fleet_batcher_config_default();
    cfg.max_batch = 16;
    cfg.max_delay_us = 100;
    ASSERT_OK(fleet_batcher_create(served.m, &cfg, &batcher));
    uint64_t handles0 = fleet__tensor_handles_live();

    pthread_t *t = calloc((size_t)threads, sizeof *t);
    double warm_until = test_now_ms() + (seconds < 10 ? seconds * 100 : 1000);
    long rss_warm = -1;
    double t0 = test_now_ms();
    for (int i = 0; i < threads; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    while (test_now_ms() - t0 < seconds * 1000 && !atomic_load(&failed)) {
        test_sleep_ms(20);
        if (rss_warm < 0 && test_now_ms() > warm_until)
            rss_warm = rss_kib();
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    double took = (test_now_ms() - t0) / 1000;
    free(t);

    fleet_batcher_stats bs;
    ASSERT_OK(fleet_batcher_get_stats(batcher, &bs));
    ASSERT_OK(fleet_batcher_destroy(batcher));
    test_model_free(&mlp);
    test_model_free(&served);
    ASSERT_OK(fleet_device_synchronize(dev));
    fleet_memory_stats ms;
    ASSERT_OK(fleet_memory_get_stats(dev, &ms));
    bool back = ms.allocated == 0 && ms.pending == 0 && ms.live_blocks == 0 &&
                fleet__tensor_handles_live() == handles0;
    ASSERT_OK(fleet_memory_empty_cache(dev));
    fleet_memory_stats after;
    ASSERT_OK(fleet_memory_get_stats(dev, &after));
    back = back && after.reserved == 0;
    long rss_end = rss_kib();
    bool rss_ok = rss_warm < 0 || rss_end <= rss_warm + 64 * 1024;

    printf("soak: %.1f s, %d threads, %s, FLEET_MEMORY_LIMIT %s\n", took, threads,
           fleet_device_name(dev), getenv("FLEET_MEMORY_LIMIT"));
    printf("soak: op chains %lld, model runs %lld, batcher requests %lld (%llu batches, %.1f "
           "rows each), churns %lld, empty_cache %lld, out of memory %lld, all values checked\n",
           (long long)ops, (long long)model_runs, (long long)requests,
           (unsigned long long)bs.batches, bs.mean_batch_rows, (long long)churns,
           (long long)empties, (long long)ooms);
    printf("soak: at the end allocated %llu, pending %llu, live blocks %llu, reserved after "
           "empty_cache %llu, tensor handles %llu (start %llu), peak %llu bytes, OOM cascades "
           "%llu\n", (unsigned long long)ms.allocated, (unsigned long long)ms.pending,
           (unsigned long long)ms.live_blocks, (unsigned long long)after.reserved,
           (unsigned long long)fleet__tensor_handles_live(), (unsigned long long)handles0,
           (unsigned long long)ms.peak_allocated, (unsigned long long)ms.ooms);
    printf("soak: RSS %ld KiB after warm-up, %ld KiB at the end\n", rss_warm, rss_end);
    bool work = ops > 0 && model_runs > 0 && requests > 0 && churns > 0;
    bool pass = !atomic_load(&failed) && back && rss_ok && work;
    printf("soak: %s%s%s%s\n", pass ? "PASS" : "FAIL", back ? "" : " (not back to baseline)",
           rss_ok ? "" : " (RSS grew)", work ? "" : " (a kind of work never completed)");
    return pass ? 0 : 1;
}
