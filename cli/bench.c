/* cli/bench.c — `fleet bench`: ops/s of a workload at 1, 2, 4, 8, 16
 * threads, each thread on its own stream looping { op; synchronize }.
 *
 * Method (the same as bench/cuda_floor.cu, bench/torch_bench.py and
 * bench/ort_bench.py): every thread checks its op's result first, then
 * loops until told to stop, counting ops; after a warm-up the main thread
 * reads the summed count at the edges of `windows` windows of `window_ms`
 * each (longer for a slow op: until the window holds MIN_WINDOW_OPS ops, as
 * Linear 2048 needs on a 2-core cpu with the reference BLAS) and reports the
 * median window's ops/s with the min and max. Speedup is median over the
 * 1-thread median, efficiency is speedup / threads.
 *
 * The reference workloads check against plain-C references; the model
 * rows of --model are cli/bench_model.c. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "fleet.h"
#include "fleet/onnx.h"
#include "model_inputs.h"


/* ---- workloads ------------------------------------------------------------------ */


static const workload workloads[] = {
    {"seed-device-sync", "Linear 256->128 batch 4, device-wide sync per op", KIND_LINEAR, 256,
     128, 4, SYNC_DEVICE},
    {"seed-stream-sync", "Linear 256->128 batch 4, stream sync per op", KIND_LINEAR, 256, 128, 4,
     SYNC_STREAM},
    {"linear64", "Linear 64->64 batch 4, stream sync per op", KIND_LINEAR, 64, 64, 4,
     SYNC_STREAM},
    {"linear2048", "Linear 2048->2048 batch 64, stream sync per op", KIND_LINEAR, 2048, 2048, 64,
     SYNC_STREAM},
    {"mlp", "MLP 512-1024-1024-512 batch 1 through the model runtime, stream sync per run",
     KIND_MLP, 0, 0, 1, SYNC_STREAM},
    {"batcher", "the same MLP behind a batcher: each thread submits batch-1 requests and waits",
     KIND_BATCHER, 0, 0, 1, SYNC_STREAM},
};
#define N_WORKLOADS (int)(sizeof workloads / sizeof workloads[0])
_Static_assert(sizeof workloads / sizeof workloads[0] <= MAX_WORKLOADS, "MAX_WORKLOADS");

static const int64_t mlp_widths[] = {512, 1024, 1024, 512};
_Static_assert(sizeof mlp_widths / sizeof mlp_widths[0] == MLP_LAYERS + 1, "MLP_LAYERS");


static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(float *p, int64_t n, uint64_t seed, float scale)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i++)
        p[i] = scale * ((float)(rng_next(&s) >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
}

/* Record the first failure as "what: detail". */
void bench_fail(shared *sh, const char *what, const char *detail)
{
    pthread_mutex_lock(&sh->error_lock);
    if (atomic_load(&sh->failed) == 0)
        snprintf(sh->error, sizeof sh->error, "%s: %s", what, detail);
    atomic_store(&sh->failed, 1);
    pthread_mutex_unlock(&sh->error_lock);
}


static fleet_tensor *tensor(shared *sh, int64_t rows, int64_t cols, const float *data)
{
    int64_t shape[2] = {rows, cols};
    int nd = rows > 0 ? 2 : 1;
    fleet_tensor *t = NULL;
    if (fleet_tensor_create(sh->dev, FLEET_DTYPE_F32, nd, rows > 0 ? shape : shape + 1, &t) !=
        FLEET_OK) {
        bench_fail(sh, "fleet_tensor_create", fleet_last_error());
        return NULL;
    }
    if (data != NULL &&
        fleet_tensor_copy_from_host(t, data, fleet_tensor_nbytes(t)) != FLEET_OK) {
        bench_fail(sh, "upload", fleet_last_error());
        fleet_tensor_release(t);
        return NULL;
    }
    return t;
}

/* Rows [0, rows) of y = x W^T + b (relu if asked), in double, compared
 * with got (float) to rtol 1e-4 over the row's scale. */
static bool check_linear(const float *x, const float *w, const float *b, int64_t in, int64_t out,
                         int64_t rows, bool relu, const float *got, double *y)
{
    bool ok = true;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b[o];
            for (int64_t i = 0; i < in; i++)
                acc += (double)x[r * in + i] * w[o * in + i];
            y[r * out + o] = relu && acc < 0 ? 0 : acc;
        }
    if (got != NULL)
        for (int64_t i = 0; i < rows * out; i++)
            ok &= fabs(got[i] - y[i]) <= 1e-4 * (1.0 + fabs(y[i]));
    return ok;
}

static void *linear_main(void *arg)
{
    worker *wk = arg;
    shared *sh = wk->sh;
    const workload *w = sh->w;
    fleet_tensor *x = NULL, *wt = NULL, *bt = NULL, *y = NULL;
    float *hx = malloc(sizeof(float) * (size_t)(w->batch * w->in));
    float *hw = malloc(sizeof(float) * (size_t)(w->out * w->in));
    float *hb = malloc(sizeof(float) * (size_t)w->out);
    float *hy = malloc(sizeof(float) * (size_t)(w->batch * w->out));
    double *ref = malloc(sizeof(double) * (size_t)(w->batch * w->out));
    fleet_stream *s;
    bool entered = false;
    CHECK(sh, fleet_stream_current(sh->dev, &s));
    fill(hx, w->batch * w->in, 1 + (uint64_t)wk->index, 1.0f);
    fill(hw, w->out * w->in, 1000 + (uint64_t)wk->index, 1.0f / sqrtf((float)w->in));
    fill(hb, w->out, 2000 + (uint64_t)wk->index, 0.1f);
    if ((x = tensor(sh, w->batch, w->in, hx)) == NULL || (wt = tensor(sh, w->out, w->in, hw)) == NULL ||
        (bt = tensor(sh, 0, w->out, hb)) == NULL || (y = tensor(sh, w->batch, w->out, NULL)) == NULL)
        goto out;
    CHECK(sh, fleet_linear(x, wt, bt, y));
    CHECK(sh, fleet_tensor_copy_to_host(y, hy, sizeof(float) * (size_t)(w->batch * w->out)));
    /* two rows are enough to catch a wrong result and cheap at 2048 */
    if (!check_linear(hx, hw, hb, w->in, w->out, w->batch < 2 ? w->batch : 2, false, hy, ref)) {
        bench_fail(sh, w->name, "fleet_linear's result differs from the reference");
        goto out;
    }
    entered = true;
    pthread_barrier_wait(&sh->ready);
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        CHECK(sh, fleet_linear(x, wt, bt, y));
        CHECK(sh, w->sync == SYNC_DEVICE ? fleet_device_synchronize(sh->dev)
                                         : fleet_stream_synchronize(s));
        atomic_fetch_add_explicit(&wk->ops, 1, memory_order_relaxed);
    }
out:
    if (!entered)
        pthread_barrier_wait(&sh->ready);
    if (x) fleet_tensor_release(x);
    if (wt) fleet_tensor_release(wt);
    if (bt) fleet_tensor_release(bt);
    if (y) fleet_tensor_release(y);
    free(hx);
    free(hw);
    free(hb);
    free(hy);
    free(ref);
    return NULL;
}

/* y (512) = the MLP of x (512), checked in double. */
static bool mlp_correct(const shared *sh, const float *hx, const float *hy)
{
    double ref[1024]; /* layer l's output, from cur (its input, as float) */
    float cur[1024];
    memcpy(cur, hx, sizeof(float) * 512);
    for (int l = 0; l < MLP_LAYERS; l++) {
        check_linear(cur, sh->mlp_w[l], sh->mlp_b[l], mlp_widths[l], mlp_widths[l + 1], 1,
                     l + 1 < MLP_LAYERS, NULL, ref);
        for (int64_t i = 0; i < mlp_widths[l + 1]; i++)
            cur[i] = (float)ref[i];
    }
    for (int i = 0; i < 512; i++)
        if (fabs(hy[i] - ref[i]) > 1e-4 * (1.0 + fabs(ref[i])))
            return false;
    return true;
}

/* A client of the batcher: one request at a time, submit then wait. */
static void *batcher_main(void *arg)
{
    worker *wk = arg;
    shared *sh = wk->sh;
    fleet_tensor *x = NULL, *y = NULL;
    fleet_ticket *t = NULL;
    float hx[512], hy[512];
    bool entered = false;
    fill(hx, 512, 7 + (uint64_t)wk->index, 1.0f);
    if ((x = tensor(sh, 1, 512, hx)) == NULL || (y = tensor(sh, 1, 512, NULL)) == NULL)
        goto out;
    const fleet_tensor *in[1] = {x};
    fleet_tensor *out[1] = {y};
    CHECK(sh, fleet_batcher_submit(sh->batcher, in, 1, out, 1, 0, &t));
    CHECK(sh, fleet_ticket_wait(t, -1));
    fleet_ticket_release(t);
    CHECK(sh, fleet_tensor_copy_to_host(y, hy, sizeof hy));
    if (!mlp_correct(sh, hx, hy)) {
        bench_fail(sh, "batcher", "a batched result differs from the reference");
        goto out;
    }
    entered = true;
    pthread_barrier_wait(&sh->ready);
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        double t0 = bench_now_s();
        CHECK(sh, fleet_batcher_submit(sh->batcher, in, 1, out, 1, 0, &t));
        fleet_status st = fleet_ticket_wait(t, -1);
        fleet_ticket_release(t);
        CHECK(sh, st);
        if (atomic_load_explicit(&sh->recording, memory_order_relaxed))
            wk->latency_us[wk->n_latency++ % LATENCY_SAMPLES] = (float)((bench_now_s() - t0) * 1e6);
        atomic_fetch_add_explicit(&wk->ops, 1, memory_order_relaxed);
    }
out:
    if (!entered)
        pthread_barrier_wait(&sh->ready);
    if (x) fleet_tensor_release(x);
    if (y) fleet_tensor_release(y);
    return NULL;
}

static void *mlp_main(void *arg)
{
    worker *wk = arg;
    shared *sh = wk->sh;
    fleet_tensor *x = NULL, *y = NULL;
    float hx[512], hy[512];
    fleet_stream *s;
    bool entered = false;
    CHECK(sh, fleet_stream_current(sh->dev, &s));
    fill(hx, 512, 7 + (uint64_t)wk->index, 1.0f);
    if ((x = tensor(sh, 1, 512, hx)) == NULL || (y = tensor(sh, 1, 512, NULL)) == NULL)
        goto out;
    const fleet_tensor *in[1] = {x};
    fleet_tensor *out[1] = {y};
    /* three runs: on cuda the first launches kernels, the second captures
     * the graph, the third replays it; each is checked */
    for (int k = 0; k < 3; k++) {
        CHECK(sh, fleet_model_run(sh->mlp, in, 1, out, 1));
        CHECK(sh, fleet_tensor_copy_to_host(y, hy, sizeof hy));
        if (!mlp_correct(sh, hx, hy)) {
            bench_fail(sh, "mlp", "fleet_model_run's result differs from the reference");
            goto out;
        }
    }
    entered = true;
    pthread_barrier_wait(&sh->ready);
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        CHECK(sh, fleet_model_run(sh->mlp, in, 1, out, 1));
        CHECK(sh, fleet_stream_synchronize(s));
        atomic_fetch_add_explicit(&wk->ops, 1, memory_order_relaxed);
    }
out:
    if (!entered)
        pthread_barrier_wait(&sh->ready);
    if (x) fleet_tensor_release(x);
    if (y) fleet_tensor_release(y);
    return NULL;
}

static int build_mlp(shared *sh)
{
    if (fleet_model_build_mlp(sh->dev, mlp_widths, 4, &sh->mlp) != FLEET_OK)
        return -1;
    for (int l = 0; l < MLP_LAYERS; l++) {
        int64_t in = mlp_widths[l], out = mlp_widths[l + 1];
        sh->mlp_w[l] = malloc(sizeof(float) * (size_t)(in * out));
        sh->mlp_b[l] = malloc(sizeof(float) * (size_t)out);
        fill(sh->mlp_w[l], in * out, 300 + (uint64_t)l, 1.0f / sqrtf((float)in));
        fill(sh->mlp_b[l], out, 400 + (uint64_t)l, 0.1f);
        char name[64];
        snprintf(name, sizeof name, "layers.%d.weight", l);
        if (fleet_model_set_weight(sh->mlp, name, sh->mlp_w[l], sizeof(float) * (size_t)(in * out)) !=
            FLEET_OK)
            return -1;
        snprintf(name, sizeof name, "layers.%d.bias", l);
        if (fleet_model_set_weight(sh->mlp, name, sh->mlp_b[l], sizeof(float) * (size_t)out) !=
            FLEET_OK)
            return -1;
    }
    return fleet_model_finalize(sh->mlp) == FLEET_OK ? 0 : -1;
}

/* ---- measurement ---------------------------------------------------------------------- */


double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t total_ops(worker *wk, int n)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += atomic_load_explicit(&wk[i].ops, memory_order_relaxed);
    return sum;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* p50 and p99 of the latencies the workers recorded. */
static void latency_percentiles(worker *wk, int n, result *r)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += wk[i].n_latency < LATENCY_SAMPLES ? wk[i].n_latency : LATENCY_SAMPLES;
    float *all = malloc(sizeof(float) * (total ? total : 1));
    size_t k = 0;
    for (int i = 0; i < n && all != NULL; i++) {
        size_t m = wk[i].n_latency < LATENCY_SAMPLES ? wk[i].n_latency : LATENCY_SAMPLES;
        memcpy(all + k, wk[i].latency_us, sizeof(float) * m);
        k += m;
    }
    if (all != NULL && total > 0) {
        qsort(all, total, sizeof *all, cmp_float);
        r->p50_us = all[total / 2];
        r->p99_us = all[total * 99 / 100];
    }
    free(all);
}

/* One thread count of one workload; 0 on success. */
int bench_measure(shared *sh, const options *o, result *r)
{
    worker *wk = calloc((size_t)sh->threads, sizeof *wk);
    if (wk == NULL)
        return -1;
    atomic_store(&sh->stop, false);
    pthread_barrier_init(&sh->ready, NULL, (unsigned)sh->threads + 1);
    workload_kind kind = sh->w->kind;
    void *(*fn)(void *) = kind == KIND_MLP       ? mlp_main
                          : kind == KIND_BATCHER ? batcher_main
                          : kind == KIND_MODEL   ? bench_model_main
                                                 : linear_main;
    bool latencies = kind == KIND_BATCHER || kind == KIND_MODEL;
    atomic_store(&sh->recording, false);
    for (int i = 0; i < sh->threads; i++) {
        wk[i].sh = sh;
        wk[i].index = i;
        if (latencies && (wk[i].latency_us = malloc(sizeof(float) * LATENCY_SAMPLES)) == NULL)
            bench_fail(sh, sh->w->name, "no host memory for latencies");
        pthread_create(&wk[i].tid, NULL, fn, &wk[i]);
    }
    fleet_batcher_stats bs0 = {0}, bs1 = {0};
    pthread_barrier_wait(&sh->ready);
    double rates[MAX_WINDOWS];
    if (atomic_load(&sh->failed) == 0) {
        sleep_ms(o->warmup_ms);
        atomic_store(&sh->recording, true);
        if (sh->batcher != NULL)
            fleet_batcher_get_stats(sh->batcher, &bs0);
        /* A window lasts window_ms and, for a slow op, until it holds
         * MIN_WINDOW_OPS ops (at most MAX_WINDOW_S): a rate from one or no
         * op in the window says nothing. */
        for (int k = 0; k < o->windows; k++) {
            uint64_t c0 = total_ops(wk, sh->threads), c1;
            double t0 = bench_now_s(), t1;
            sleep_ms(o->window_ms);
            while ((c1 = total_ops(wk, sh->threads)) - c0 < MIN_WINDOW_OPS &&
                   bench_now_s() - t0 < MAX_WINDOW_S && atomic_load(&sh->failed) == 0)
                sleep_ms(10);
            t1 = bench_now_s();
            rates[k] = (double)(c1 - c0) / (t1 - t0);
        }
    }
    atomic_store(&sh->stop, true);
    if (sh->batcher != NULL)
        fleet_batcher_get_stats(sh->batcher, &bs1);
    for (int i = 0; i < sh->threads; i++)
        pthread_join(wk[i].tid, NULL);
    pthread_barrier_destroy(&sh->ready);
    r->p50_us = r->p99_us = r->batch_rows = r->queue_p50_us = r->run_p50_us = 0;
    if (latencies)
        latency_percentiles(wk, sh->threads, r);
    if (sh->batcher != NULL) {
        uint64_t batches = bs1.batches - bs0.batches;
        r->batch_rows = batches ? (double)(bs1.rows - bs0.rows) / (double)batches : 0;
        r->queue_p50_us = bs1.queue_wait_p50_us;
        r->run_p50_us = bs1.run_p50_us;
    }
    for (int i = 0; i < sh->threads; i++)
        free(wk[i].latency_us);
    free(wk);
    if (atomic_load(&sh->failed) != 0)
        return -1;
    qsort(rates, (size_t)o->windows, sizeof rates[0], cmp_double);
    r->w = sh->w;
    r->threads = sh->threads;
    r->min = rates[0];
    r->max = rates[o->windows - 1];
    r->median = rates[o->windows / 2];
    return 0;
}

/* ---- options and output ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: fleet bench [--threads 1,2,4,8,16] [--workloads a,b,...] [--windows N]\n"
               "                   [--window-ms N] [--warmup-ms N] [--backend cpu|cuda]\n"
               "                   [--quick] [--json FILE] [--batch-delay-us N] [--batch-runners N]\n"
               "                   [--model model.onnx [--batch B]... [--dim name=N]... [--name NAME]]\n"
               "workloads:\n");
    for (int i = 0; i < N_WORKLOADS; i++)
        fprintf(f, "  %-17s %s\n", workloads[i].name, workloads[i].what);
    fprintf(f, "  --model           an ONNX model, one row per --batch (default 1; B,B,... or the\n"
               "                    option again): one model shared by all threads, each with its\n"
               "                    own inputs (as `fleet run` makes them) on its own stream, checked\n"
               "                    against a first run; runs/s, samples/s, p50/p99 ms per run. Row\n"
               "                    'model:NAME bB' (NAME: --name, else the file's or, for model.onnx,\n"
               "                    its folder's). --dim binds a named dimension (--dim sequence=128).\n"
               "                    With --model the workloads above run only if --workloads names them.\n");
}

/* --batch B[,B...]: appended to the list. */
static int parse_batches(const char *s, options *o)
{
    while (*s != '\0') {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 1 || v > FLEET_MODEL_MAX_BATCH || o->n_batches == MAX_BATCHES ||
            (*end != ',' && *end != '\0'))
            return -1;
        o->batches[o->n_batches++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* --dim name=N (N >= 1). */
static int parse_dim(const char *s, options *o)
{
    const char *eq = strchr(s, '=');
    char *end;
    if (eq == NULL || eq == s || (size_t)(eq - s) >= sizeof o->dim_names[0] ||
        o->n_dims == MAX_DIM_OPTS)
        return -1;
    long long v = strtoll(eq + 1, &end, 10);
    if (end == eq + 1 || *end != '\0' || v < 1)
        return -1;
    snprintf(o->dim_names[o->n_dims], sizeof o->dim_names[0], "%.*s", (int)(eq - s), s);
    o->dim_ptrs[o->n_dims] = o->dim_names[o->n_dims];
    o->dim_values[o->n_dims++] = v;
    return 0;
}

static int parse_counts(const char *s, options *o)
{
    o->n_counts = 0;
    while (*s != '\0') {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > MAX_THREADS || o->n_counts == MAX_COUNTS)
            return -1;
        o->counts[o->n_counts++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return o->n_counts > 0 ? 0 : -1;
}

static int parse_workloads(const char *s, options *o)
{
    memset(o->selected, 0, sizeof o->selected);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < N_WORKLOADS && strcmp(workloads[i].name, tok) != 0)
            i++;
        if (i == N_WORKLOADS) {
            fprintf(stderr, "fleet bench: unknown workload '%s'\n", tok);
            return -1;
        }
        o->selected[i] = true;
    }
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.counts = {1, 2, 4, 8, 16}, .n_counts = 5, .windows = 5, .window_ms = 300,
                   .warmup_ms = 200, .batch_delay_us = 100, .batch_runners = 2};
    for (int i = 0; i < N_WORKLOADS; i++)
        o->selected[i] = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--quick") == 0) {
            o->windows = 3;
            o->window_ms = 100;
            o->warmup_ms = 50;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL)
            bad = 1;
        else if (strcmp(a, "--threads") == 0)
            bad = parse_counts(v, o);
        else if (strcmp(a, "--workloads") == 0) {
            bad = parse_workloads(v, o);
            o->workloads_given = true;
        } else if (strcmp(a, "--model") == 0)
            o->model = v;
        else if (strcmp(a, "--name") == 0)
            o->model_name = v;
        else if (strcmp(a, "--batch") == 0)
            bad = parse_batches(v, o);
        else if (strcmp(a, "--dim") == 0)
            bad = parse_dim(v, o);
        else if (strcmp(a, "--windows") == 0)
            bad = parse_int(v, 1, MAX_WINDOWS, &o->windows);
        else if (strcmp(a, "--window-ms") == 0)
            bad = parse_int(v, 1, 600000, &o->window_ms);
        else if (strcmp(a, "--warmup-ms") == 0)
            bad = parse_int(v, 0, 600000, &o->warmup_ms);
        else if (strcmp(a, "--batch-delay-us") == 0) {
            int d = 0;
            bad = parse_int(v, 0, 10000000, &d);
            o->batch_delay_us = d;
        } else if (strcmp(a, "--batch-runners") == 0) {
            bad = parse_int(v, 1, 16, &o->batch_runners);
        } else if (strcmp(a, "--json") == 0)
            o->json = v;
        else if (strcmp(a, "--backend") == 0 && (strcmp(v, "cpu") == 0 || strcmp(v, "cuda") == 0))
            o->backend = v;
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "fleet bench: bad option %s %s\n", a, v ? v : "");
            usage(stderr);
            return -1;
        }
        i++;
    }
    if (o->model == NULL && (o->n_batches > 0 || o->n_dims > 0 || o->model_name != NULL)) {
        fprintf(stderr, "fleet bench: --batch, --dim and --name go with --model\n");
        usage(stderr);
        return -1;
    }
    if (o->model != NULL && !o->workloads_given)
        memset(o->selected, 0, sizeof o->selected);
    if (o->model != NULL && o->n_batches == 0)
        o->batches[o->n_batches++] = 1;
    return 0;
}

/* A ratio as JSON: null where it is not a number (a 1-thread rate of 0). */
/* The environment that steers the kernel libraries, as in force. */
static void print_library_settings(void)
{
    extern char **environ;
    int n = 0;
    for (char **e = environ; *e != NULL; e++)
        if (strncmp(*e, "OPENBLAS_", 9) == 0 || strncmp(*e, "OMP_", 4) == 0 ||
            strncmp(*e, "FLEET_", 6) == 0)
            printf("%s%s", n++ ? " " : "settings: ", *e);
    printf(n ? "\n" : "settings: none of OPENBLAS_*, OMP_*, FLEET_* set\n");
}

static const char *json_ratio(double x, char *buf, size_t size)
{
    if (!isfinite(x))
        return "null";
    snprintf(buf, size, "%.3f", x);
    return buf;
}

/* s as a JSON string, quotes included. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* One JSON object per result, after a comma when *rows (those written so
 * far) is not 0. A model row also has its batch, samples/s and file, and
 * its rates with decimals (a large model runs a few times a second). */
void bench_print_json(FILE *f, const result *rs, int n, const fleet_device *dev,
                       const char *model, int *rows)
{
    for (int i = 0; i < n; i++) {
        char sp[32], ef[32];
        bool m = rs[i].w->kind == KIND_MODEL;
        int dec = m ? 3 : 0;
        fprintf(f, "%s\n  {\"program\": \"fleet\", \"workload\": ", *rows > 0 ? "," : "");
        json_string(f, rs[i].w->name);
        fprintf(f, ", \"threads\": %d, \"ops_per_s\": %.*f, \"min\": %.*f, \"max\": %.*f",
                rs[i].threads, dec, rs[i].median, dec, rs[i].min, dec, rs[i].max);
        fprintf(f, ", \"speedup\": %s, \"efficiency\": %s, \"p50_us\": %.1f, \"p99_us\": %.1f, "
                   "\"batch_rows\": %.2f, \"queue_p50_us\": %.1f, \"run_p50_us\": %.1f, "
                   "\"device\": \"%s\"",
                json_ratio(rs[i].speedup, sp, sizeof sp),
                json_ratio(rs[i].efficiency, ef, sizeof ef), rs[i].p50_us, rs[i].p99_us,
                rs[i].batch_rows, rs[i].queue_p50_us, rs[i].run_p50_us, fleet_device_name(dev));
        if (m && model != NULL) {
            fprintf(f, ", \"batch\": %lld, \"samples_per_s\": %.3f, \"model\": ",
                    (long long)rs[i].w->batch, rs[i].median * (double)rs[i].w->batch);
            json_string(f, model);
        }
        fprintf(f, "}");
        (*rows)++;
    }
}

/* A rate for the table: whole numbers from 100, else with decimals. */
const char *bench_rate_str(double x, char *buf, size_t size)
{
    snprintf(buf, size, "%.*f", x >= 100 ? 0 : x >= 10 ? 1 : 2, x);
    return buf;
}

/* Speedup and efficiency of rs[k] against rs[0], the first thread count. */
void bench_scaling(result *rs, int k)
{
    rs[k].speedup = rs[k].median / rs[0].median;
    rs[k].efficiency = rs[k].speedup / (double)rs[k].threads * (double)rs[0].threads;
}

int fleet_cli_bench(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    fleet_device *dev;
    fleet_status st = o.backend == NULL
                          ? fleet_device_default(&dev)
                          : fleet_device_get(strcmp(o.backend, "cuda") == 0 ? FLEET_BACKEND_CUDA
                                                                            : FLEET_BACKEND_CPU,
                                             0, &dev);
    if (st != FLEET_OK) {
        fprintf(stderr, "fleet bench: %s\n", fleet_last_error());
        return 1;
    }
    FILE *json = NULL;
    if (o.json != NULL && (json = fopen(o.json, "w")) == NULL) {
        fprintf(stderr, "fleet bench: cannot write %s: %s\n", o.json, strerror(errno));
        return 1;
    }
    printf("fleet bench on %s: median of %d windows of %d ms after %d ms warm-up\n",
           fleet_device_name(dev), o.windows, o.window_ms, o.warmup_ms);
    printf("kernels: %s\n", fleet_backend_kernels(fleet_device_backend(dev)));
    print_library_settings();
    printf("\n");
    bool any = false;
    for (int i = 0; i < N_WORKLOADS; i++)
        any |= o.selected[i];
    if (any)
        printf("| workload | threads | ops/s | us/op | min | max | speedup | efficiency |\n"
               "|---|---|---|---|---|---|---|---|\n");
    if (json != NULL)
        fprintf(json, "[");
    int rc = 0, rows = 0;
    for (int i = 0; i < N_WORKLOADS && rc == 0; i++) {
        if (!o.selected[i])
            continue;
        workload_kind kind = workloads[i].kind;
        shared sh = {.dev = dev, .w = &workloads[i]};
        pthread_mutex_init(&sh.error_lock, NULL);
        if ((kind == KIND_MLP || kind == KIND_BATCHER) && build_mlp(&sh) != 0) {
            fprintf(stderr, "fleet bench: building the MLP: %s\n", fleet_last_error());
            rc = 1;
        }
        if (rc == 0 && kind == KIND_BATCHER) {
            fleet_batcher_config bc = fleet_batcher_config_default();
            bc.max_batch = 64;
            bc.max_delay_us = o.batch_delay_us;
            bc.max_inflight = o.batch_runners;
            if (fleet_batcher_create(sh.mlp, &bc, &sh.batcher) != FLEET_OK) {
                fprintf(stderr, "fleet bench: the batcher: %s\n", fleet_last_error());
                rc = 1;
            }
        }
        result rs[MAX_COUNTS];
        for (int k = 0; k < o.n_counts && rc == 0; k++) {
            sh.threads = o.counts[k];
            fprintf(stderr, "fleet bench: %s, %d thread%s...\n", workloads[i].name, sh.threads,
                    sh.threads > 1 ? "s" : "");
            if (bench_measure(&sh, &o, &rs[k]) != 0) {
                fprintf(stderr, "fleet bench: %s failed: %s\n", workloads[i].name, sh.error);
                rc = 1;
                break;
            }
            bench_scaling(rs, k);
            /* us/op: the time one op takes as each of the threads sees it */
            printf("| %s | %d | %.0f | %.1f | %.0f | %.0f | %.2f | %.2f |\n", workloads[i].name,
                   rs[k].threads, rs[k].median,
                   rs[k].median > 0 ? 1e6 * rs[k].threads / rs[k].median : 0.0, rs[k].min,
                   rs[k].max, rs[k].speedup, rs[k].efficiency);
            fflush(stdout);
        }
        if (json != NULL && rc == 0)
            bench_print_json(json, rs, o.n_counts, dev, NULL, &rows);
        if (sh.batcher != NULL) {
            fleet_batcher_destroy(sh.batcher);
            for (int k = 0; k < o.n_counts && rc == 0; k++)
                printf("|   batcher latency | %d clients | p50 %.0f us | p99 %.0f us | %.1f rows "
                       "per batch | queue p50 %.0f us | batch run p50 %.0f us |\n", rs[k].threads,
                       rs[k].p50_us, rs[k].p99_us, rs[k].batch_rows, rs[k].queue_p50_us,
                       rs[k].run_p50_us);
        }
        if (sh.mlp != NULL)
            fleet_model_destroy(sh.mlp);
        for (int l = 0; l < MLP_LAYERS; l++) {
            free(sh.mlp_w[l]);
            free(sh.mlp_b[l]);
        }
        pthread_mutex_destroy(&sh.error_lock);
    }
    if (rc == 0 && o.model != NULL)
        rc = bench_model_rows(&o, dev, json, &rows);
    if (json != NULL) {
        fprintf(json, "\n]\n");
        fclose(json);
    }
    return rc;
}
