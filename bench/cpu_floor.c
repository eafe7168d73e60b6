/* bench/cpu_floor.c — the direct-library floor of `fleet bench`'s cpu rows:
 * the same workloads as plain cblas calls, no fleet.
 *
 *     gcc -O2 bench/cpu_floor.c -o cpu_floor $(pkg-config --cflags --libs openblas) -lpthread
 *     ./cpu_floor [--threads 1,2] [--workloads linear64,linear2048,mlp]
 *                 [--windows 3] [--window-ms 300] [--warmup-ms 200]
 *
 * Workloads (shapes as cli/bench.c): y = x W^T + b, W [out, in] row-major.
 *   linear64    Linear 64->64 batch 4        sgemm (M=4)
 *   linear2048  Linear 2048->2048 batch 64   sgemm (M=64)
 *   mlp         MLP 512-1024-1024-512 batch 1, ReLU after the first two layers:
 *               three sgemv (M=1: OpenBLAS's sgemm is several times slower
 *               there, and fleet calls sgemv at M=1 too)
 * One op = one forward: y = bias (broadcast), then the BLAS call with beta=1,
 * then ReLU where the MLP has one — the work fleet's cpu gemm kernel does.
 * There is no stream or sync: the floor is the call itself.
 *
 * Threads: as fleet bench. Each linear thread has its own x, W, b, y (fleet's
 * linear threads do too); the MLP's weights are shared (fleet's threads share
 * one model), each thread has its own input and activations. BLAS is pinned
 * to one thread per call (openblas_set_num_threads(1), found with dlsym), so
 * T threads use T cores.
 *
 * Method (as cli/bench.c): every thread checks its first result against a
 * double reference, then loops counting ops; after the warm-up the main
 * thread reads the summed count at the edges of each window (a window lasts
 * until it holds 8 ops, 30 s at most) and reports the median window's ops/s
 * with min and max. Output: one JSON object per line per (workload, threads).
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <cblas.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64
#define MAX_WINDOWS 101
#define MIN_WINDOW_OPS 8
#define MAX_WINDOW_S 30.0

enum kind { LINEAR, MLP };
typedef struct {
    const char *name;
    enum kind kind;
    int in, out, batch;
} workload;

static const workload workloads[] = {
    {"linear64", LINEAR, 64, 64, 4},
    {"linear2048", LINEAR, 2048, 2048, 64},
    {"mlp", MLP, 0, 0, 1},
};
#define N_WORKLOADS (int)(sizeof workloads / sizeof workloads[0])

#define MLP_LAYERS 3
static const int mlp_widths[MLP_LAYERS + 1] = {512, 1024, 1024, 512};

/* ---- data: fleet bench's generator (values do not affect speed) ---------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static float *filled(int64_t n, uint64_t seed, float scale)
{
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; p != NULL && i < n; i++)
        p[i] = scale * ((float)(rng_next(&s) >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    return p;
}

/* ---- the ops ---------------------------------------------------------------- */

/* y[rows, out] = x[rows, in] W^T + b, ReLU if asked: sgemv at one row. */
static void linear(const float *x, const float *w, const float *b, float *y, int rows, int in,
                   int out, bool relu)
{
    for (int r = 0; r < rows; r++)
        memcpy(y + (size_t)r * out, b, sizeof(float) * (size_t)out);
    if (rows == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, 1.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in, w, in,
                    1.0f, y, out);
    if (relu)
        for (int64_t i = 0; i < (int64_t)rows * out; i++)
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

/* The same in double, compared with got to rtol 1e-4 (as fleet bench). */
static bool check(const float *x, const float *w, const float *b, const float *got, int rows,
                  int in, int out, bool relu)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double acc = b[o];
            for (int i = 0; i < in; i++)
                acc += (double)x[(size_t)r * in + i] * w[(size_t)o * in + i];
            if (relu && acc < 0)
                acc = 0;
            if (fabs(got[(size_t)r * out + o] - acc) > 1e-4 * (1.0 + fabs(acc)))
                return false;
        }
    return true;
}

/* ---- threads and windows ----------------------------------------------------- */

typedef struct {
    const workload *w;
    const float *mlp_w[MLP_LAYERS], *mlp_b[MLP_LAYERS]; /* shared by the mlp's threads */
    pthread_barrier_t ready;
    atomic_bool stop;
    atomic_int failed;
} shared;

typedef struct {
    shared *sh;
    int index;
    pthread_t tid;
    _Alignas(64) atomic_uint_fast64_t ops; /* its own cache line */
    char pad[64 - sizeof(atomic_uint_fast64_t)];
} worker;

static void *worker_main(void *arg)
{
    worker *wk = arg;
    shared *sh = wk->sh;
    const workload *w = sh->w;
    float *x = NULL, *wt = NULL, *b = NULL, *y = NULL, *act[MLP_LAYERS] = {NULL};
    if (w->kind == LINEAR) {
        x = filled((int64_t)w->batch * w->in, 1 + (uint64_t)wk->index, 1.0f);
        wt = filled((int64_t)w->out * w->in, 1000 + (uint64_t)wk->index, 1.0f / sqrtf((float)w->in));
        b = filled(w->out, 2000 + (uint64_t)wk->index, 0.1f);
        y = filled((int64_t)w->batch * w->out, 0, 0.0f);
        if (!x || !wt || !b || !y)
            atomic_store(&sh->failed, 1);
        else {
            linear(x, wt, b, y, w->batch, w->in, w->out, false);
            /* two rows catch a wrong call and are cheap at 2048 */
            if (!check(x, wt, b, y, w->batch < 2 ? w->batch : 2, w->in, w->out, false))
                atomic_store(&sh->failed, 2);
        }
    } else {
        x = filled(mlp_widths[0], 7 + (uint64_t)wk->index, 1.0f);
        for (int l = 0; l < MLP_LAYERS; l++)
            if ((act[l] = filled(mlp_widths[l + 1], 0, 0.0f)) == NULL)
                atomic_store(&sh->failed, 1);
        /* layer by layer, each checked on its float input */
        for (int l = 0; x != NULL && l < MLP_LAYERS && atomic_load(&sh->failed) == 0; l++) {
            const float *in = l == 0 ? x : act[l - 1];
            linear(in, sh->mlp_w[l], sh->mlp_b[l], act[l], 1, mlp_widths[l], mlp_widths[l + 1],
                   l + 1 < MLP_LAYERS);
            if (!check(in, sh->mlp_w[l], sh->mlp_b[l], act[l], 1, mlp_widths[l],
                       mlp_widths[l + 1], l + 1 < MLP_LAYERS))
                atomic_store(&sh->failed, 2);
        }
    }
    pthread_barrier_wait(&sh->ready);
    while (atomic_load(&sh->failed) == 0 &&
           !atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        if (w->kind == LINEAR)
            linear(x, wt, b, y, w->batch, w->in, w->out, false);
        else
            for (int l = 0; l < MLP_LAYERS; l++)
                linear(l == 0 ? x : act[l - 1], sh->mlp_w[l], sh->mlp_b[l], act[l], 1,
                       mlp_widths[l], mlp_widths[l + 1], l + 1 < MLP_LAYERS);
        atomic_fetch_add_explicit(&wk->ops, 1, memory_order_relaxed);
    }
    free(x);
    free(wt);
    free(b);
    free(y);
    for (int l = 0; l < MLP_LAYERS; l++)
        free(act[l]);
    return NULL;
}

static double now_s(void)
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

/* rates[0..windows) of one (workload, threads); 0 on success. */
static int measure(shared *sh, int threads, int windows, int window_ms, int warmup_ms,
                   double *rates)
{
    worker *wk = aligned_alloc(64, sizeof(worker) * (size_t)threads);
    if (wk == NULL)
        return -1;
    memset(wk, 0, sizeof(worker) * (size_t)threads);
    atomic_store(&sh->stop, false);
    pthread_barrier_init(&sh->ready, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        wk[i].sh = sh;
        wk[i].index = i;
        pthread_create(&wk[i].tid, NULL, worker_main, &wk[i]);
    }
    pthread_barrier_wait(&sh->ready);
    if (atomic_load(&sh->failed) == 0) {
        sleep_ms(warmup_ms);
        for (int k = 0; k < windows; k++) {
            uint64_t c0 = total_ops(wk, threads), c1;
            double t0 = now_s();
            sleep_ms(window_ms);
            while ((c1 = total_ops(wk, threads)) - c0 < MIN_WINDOW_OPS &&
                   now_s() - t0 < MAX_WINDOW_S)
                sleep_ms(10);
            rates[k] = (double)(c1 - c0) / (now_s() - t0);
        }
    }
    atomic_store(&sh->stop, true);
    for (int i = 0; i < threads; i++)
        pthread_join(wk[i].tid, NULL);
    pthread_barrier_destroy(&sh->ready);
    free(wk);
    return atomic_load(&sh->failed) == 0 ? 0 : -1;
}

/* ---- main ---------------------------------------------------------------------- */

/* "1,2,4" into counts; the number of them, or -1. */
static int parse_list(const char *s, int *counts, int max)
{
    int n = 0;
    while (*s != '\0') {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > MAX_THREADS || n == max || (*end != ',' && *end != '\0'))
            return -1;
        counts[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
    }
    return n > 0 ? n : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cpu_floor [--threads 1,2] [--workloads linear64,linear2048,mlp]\n"
               "                 [--windows 3] [--window-ms 300] [--warmup-ms 200]\n");
}

int main(int argc, char **argv)
{
    int counts[16] = {1, 2}, n_counts = 2, windows = 3, window_ms = 300, warmup_ms = 200;
    const char *names = "linear64,linear2048,mlp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        bool bad = v == NULL;
        if (bad)
            ;
        else if (strcmp(a, "--threads") == 0)
            bad = (n_counts = parse_list(v, counts, 16)) < 0;
        else if (strcmp(a, "--workloads") == 0)
            names = v;
        else if (strcmp(a, "--windows") == 0)
            bad = (windows = atoi(v)) < 1 || windows > MAX_WINDOWS;
        else if (strcmp(a, "--window-ms") == 0)
            bad = (window_ms = atoi(v)) < 1;
        else if (strcmp(a, "--warmup-ms") == 0)
            bad = (warmup_ms = atoi(v)) < 0;
        else
            bad = true;
        if (bad) {
            fprintf(stderr, "cpu_floor: bad option %s %s\n", a, v ? v : "");
            usage(stderr);
            return 2;
        }
        i++;
    }

    /* BLAS on one thread per call: the parallelism is the caller's threads. */
    void (*set_threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    char *(*get_config)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_config");
    if (set_threads != NULL)
        set_threads(1);
    char blas[256];
    snprintf(blas, sizeof blas, "%s", get_config ? get_config() : "unknown (not OpenBLAS)");

    int rc = 0;
    for (int i = 0; i < N_WORKLOADS && rc == 0; i++) {
        /* selected: names holds workloads[i].name as a whole item */
        size_t len = strlen(workloads[i].name);
        bool selected = false;
        for (const char *p = names; (p = strstr(p, workloads[i].name)) != NULL; p += len)
            selected |= (p == names || p[-1] == ',') && (p[len] == ',' || p[len] == '\0');
        if (!selected)
            continue;
        shared sh = {.w = &workloads[i]};
        float *mw[MLP_LAYERS] = {NULL}, *mb[MLP_LAYERS] = {NULL};
        for (int l = 0; workloads[i].kind == MLP && l < MLP_LAYERS; l++) {
            int64_t in = mlp_widths[l], out = mlp_widths[l + 1];
            sh.mlp_w[l] = mw[l] = filled(in * out, 300 + (uint64_t)l, 1.0f / sqrtf((float)in));
            sh.mlp_b[l] = mb[l] = filled(out, 400 + (uint64_t)l, 0.1f);
            if (mw[l] == NULL || mb[l] == NULL)
                atomic_store(&sh.failed, 1);
        }
        for (int k = 0; k < n_counts && rc == 0; k++) {
            double rates[MAX_WINDOWS];
            if (atomic_load(&sh.failed) != 0 ||
                measure(&sh, counts[k], windows, window_ms, warmup_ms, rates) != 0) {
                fprintf(stderr, "cpu_floor: %s: %s\n", workloads[i].name,
                        atomic_load(&sh.failed) == 2 ? "result differs from the reference"
                                                     : "out of memory");
                rc = 1;
                break;
            }
            qsort(rates, (size_t)windows, sizeof rates[0], cmp_double);
            printf("{\"program\": \"floor\", \"workload\": \"%s\", \"threads\": %d, "
                   "\"ops_per_s\": %.1f, \"min\": %.1f, \"max\": %.1f, \"call\": \"%s\", "
                   "\"blas\": \"%s\"}\n",
                   workloads[i].name, counts[k], rates[windows / 2], rates[0],
                   rates[windows - 1], workloads[i].kind == MLP || workloads[i].batch == 1
                                           ? "sgemv" : "sgemm", blas);
            fflush(stdout);
        }
        for (int l = 0; l < MLP_LAYERS; l++) {
            free(mw[l]);
            free(mb[l]);
        }
    }
    return rc;
}
