/* cli/model_cmd.c — the model commands of the fleet tool:
 *
 *   fleet info model.onnx [--dim name=N]... [--backend cpu|cuda]
 *       inputs, outputs, ops used, parameters, what folded and fused at load,
 *       what is unsupported
 *   fleet run model.onnx [--threads N] [--batch B] [--seconds S]
 *                        [--dim name=N]... [--backend cpu|cuda]
 *       N threads run one shared model on inputs made here (floats uniform
 *       in [-1, 1), integers 1, bools true: valid token ids and masks), then
 *       print each output's shape and checksum, runs/s, samples/s and the
 *       p50/p99 latency, with a progress line each second.
 *
 * Reading inputs from .npy files is not there yet. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fleet.h"
#include "fleet/onnx.h"

#define MAX_DIMS_OPT 16
#define MAX_THREADS 256

typedef struct opts {
    const char *path;
    const char *dim_names[MAX_DIMS_OPT];
    int64_t dim_values[MAX_DIMS_OPT];
    int n_dims;
    int threads;
    int64_t batch;
    double seconds;
    const char *backend;
} opts;

static int parse(int argc, char **argv, opts *o, const char *cmd)
{
    *o = (opts){.threads = 1, .batch = 1, .seconds = 3.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (a[0] != '-' && o->path == NULL) {
            o->path = a;
        } else if (strcmp(a, "--dim") == 0 && v != NULL && o->n_dims < MAX_DIMS_OPT) {
            const char *eq = strchr(v, '=');
            long long n = eq ? strtoll(eq + 1, &end, 10) : -1;
            if (eq == NULL || eq == v || *end != '\0' || n < 0) {
                fprintf(stderr, "fleet %s: --dim takes name=N, got '%s'\n", cmd, v);
                return 2;
            }
            o->dim_names[o->n_dims] = strndup(v, (size_t)(eq - v));
            o->dim_values[o->n_dims++] = n;
            i++;
        } else if (strcmp(a, "--threads") == 0 && v != NULL) {
            long n = strtol(v, &end, 10);
            if (*end != '\0' || n < 1 || n > MAX_THREADS) {
                fprintf(stderr, "fleet %s: --threads takes 1..%d\n", cmd, MAX_THREADS);
                return 2;
            }
            o->threads = (int)n;
            i++;
        } else if (strcmp(a, "--batch") == 0 && v != NULL) {
            long long n = strtoll(v, &end, 10);
            if (*end != '\0' || n < 1 || n > FLEET_MODEL_MAX_BATCH) {
                fprintf(stderr, "fleet %s: --batch takes 1..%lld\n", cmd,
                        (long long)FLEET_MODEL_MAX_BATCH);
                return 2;
            }
            o->batch = n;
            i++;
        } else if (strcmp(a, "--seconds") == 0 && v != NULL) {
            o->seconds = strtod(v, &end);
            if (*end != '\0' || !(o->seconds > 0 && o->seconds <= 3600)) {
                fprintf(stderr, "fleet %s: --seconds takes (0, 3600]\n", cmd);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--backend") == 0 && v != NULL) {
            o->backend = v;
            i++;
        } else {
            fprintf(stderr, "fleet %s: unknown or incomplete option '%s'\n", cmd, a);
            return 2;
        }
    }
    if (o->path == NULL) {
        fprintf(stderr, "fleet %s: give a model file (model.onnx)\n", cmd);
        return 2;
    }
    return 0;
}

static void opts_free(opts *o)
{
    for (int i = 0; i < o->n_dims; i++)
        free((char *)o->dim_names[i]);
}

static fleet_onnx_options onnx_options(const opts *o)
{
    fleet_onnx_options x = FLEET_ONNX_OPTIONS_INIT;
    x.dim_names = o->dim_names;
    x.dim_values = o->dim_values;
    x.n_dims = o->n_dims;
    return x;
}

static fleet_device *device_of(const opts *o, const char *cmd)
{
    fleet_device *d = NULL;
    fleet_status st;
    if (o->backend == NULL)
        st = fleet_device_default(&d);
    else if (strcmp(o->backend, "cpu") == 0)
        st = fleet_device_get(FLEET_BACKEND_CPU, 0, &d);
    else if (strcmp(o->backend, "cuda") == 0)
        st = fleet_device_get(FLEET_BACKEND_CUDA, 0, &d);
    else {
        fprintf(stderr, "fleet %s: --backend takes cpu or cuda\n", cmd);
        return NULL;
    }
    if (st != FLEET_OK)
        fprintf(stderr, "fleet %s: %s\n", cmd, fleet_last_error());
    return st == FLEET_OK ? d : NULL;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && len < cap; d++) {
        int w = shape[d] == FLEET_DIM_BATCH
                    ? snprintf(buf + len, cap - len, "%sbatch", d ? " x " : "")
                    : snprintf(buf + len, cap - len, "%s%lld", d ? " x " : "",
                               (long long)shape[d]);
        len += w > 0 ? (size_t)w : 0;
    }
    if (ndim == 0)
        snprintf(buf, cap, "scalar");
}

static void print_io(fleet_model *m)
{
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? fleet_model_output_count(m) : fleet_model_input_count(m);
        for (int i = 0; i < n; i++) {
            const char *name;
            fleet_dtype dt;
            int ndim;
            int64_t shape[FLEET_MAX_DIMS];
            char s[128];
            if ((pass ? fleet_model_output_info(m, i, &name, &dt, &ndim, shape)
                      : fleet_model_input_info(m, i, &name, &dt, &ndim, shape)) != FLEET_OK)
                continue;
            shape_str(ndim, shape, s, sizeof s);
            printf("  %-6s %-24s %-5s %s\n", pass ? "output" : "input", name,
                   fleet_dtype_name(dt), s);
        }
    }
}

int fleet_cli_model_info(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o, "info");
    fleet_device *dev = rc == 0 ? device_of(&o, "info") : NULL;
    if (dev == NULL) {
        opts_free(&o);
        return rc ? rc : 1;
    }
    fleet_onnx_options oo = onnx_options(&o);
    fleet_onnx_report r;
    fleet_status st = fleet_onnx_inspect(dev, o.path, &oo, &r);
    if (st != FLEET_OK) {
        fprintf(stderr, "fleet info: %s\n", fleet_last_error());
        opts_free(&o);
        return 1;
    }
    printf("%s: ONNX IR %lld, opset %lld, from %s\n", o.path, (long long)r.ir_version,
           (long long)r.opset, r.producer[0] != ' ' ? r.producer : "(no producer)");
    printf("  %d nodes, %d initializers, %lld parameters\n", r.nodes, r.initializers,
           (long long)r.parameters);
    printf("  ops: %s\n", r.ops);
    printf("  at load: %d nodes folded (computed from constants), %d fused\n", r.folded,
           r.fused);
    if (r.n_unsupported > 0) {
        printf("  unsupported (%d): %s\n", r.n_unsupported, r.unsupported);
        opts_free(&o);
        return 1;
    }
    fleet_model *m;
    if (fleet_model_load_onnx(dev, o.path, &oo, &m) == FLEET_OK) {
        print_io(m);
        fleet_model_destroy(m);
    }
    printf("  loads on %s\n", fleet_device_name(dev));
    opts_free(&o);
    return 0;
}

/* ---- run -------------------------------------------------------------------------------- */

typedef struct worker {
    fleet_model *m;
    fleet_device *dev;
    int64_t batch;
    double seconds;
    atomic_int *go, *ready;
    atomic_long *runs_total;
    double *lat;      /* each run's latency, ms */
    long n_lat, cap_lat;
    fleet_tensor *in[FLEET_MODEL_MAX_IO], *out[FLEET_MODEL_MAX_IO];
    int ni, no;
    fleet_status st;
    char err[256];
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static fleet_status make_tensors(worker *w, unsigned seed)
{
    w->ni = fleet_model_input_count(w->m);
    w->no = fleet_model_output_count(w->m);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < (pass ? w->no : w->ni); i++) {
            const char *name;
            fleet_dtype dt;
            int ndim;
            int64_t shape[FLEET_MAX_DIMS];
            fleet_status st = pass ? fleet_model_output_info(w->m, i, &name, &dt, &ndim, shape)
                                   : fleet_model_input_info(w->m, i, &name, &dt, &ndim, shape);
            for (int d = 0; d < ndim; d++)
                shape[d] = shape[d] == FLEET_DIM_BATCH ? w->batch : shape[d];
            fleet_tensor **t = pass ? &w->out[i] : &w->in[i];
            if (st == FLEET_OK)
                st = fleet_tensor_create(w->dev, dt, ndim, shape, t);
            if (st != FLEET_OK)
                return st;
            if (pass)
                continue;
            size_t bytes = fleet_tensor_nbytes(*t), es = fleet_dtype_size(dt);
            unsigned char *h = malloc(bytes + 1);
            if (h == NULL)
                return FLEET_ERR_OUT_OF_MEMORY;
            for (size_t k = 0; k < bytes / (es ? es : 1); k++) {
                seed = seed * 1103515245u + 12345u;
                float f = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
                int64_t one = 1;
                if (dt == FLEET_DTYPE_F32)
                    memcpy(h + k * 4, &f, 4);
                else
                    memcpy(h + k * es, &one, es); /* little-endian: 1 in any width */
            }
            st = fleet_tensor_copy_from_host(*t, h, bytes);
            free(h);
            if (st != FLEET_OK)
                return st;
        }
    return FLEET_OK;
}

static void *run_main(void *arg)
{
    worker *w = arg;
    fleet_stream *s = NULL;
    /* one run first, on this thread's stream: compiles the plan (once) and
     * builds this stream's instance */
    fleet_status st = fleet_stream_current(w->dev, &s);
    if (st == FLEET_OK)
        st = fleet_model_run(w->m, (const fleet_tensor *const *)w->in, w->ni, w->out, w->no);
    if (st == FLEET_OK)
        st = fleet_stream_synchronize(s);
    atomic_fetch_add(w->ready, 1);
    while (atomic_load(w->go) == 0)
        ;
    double end = now_s() + w->seconds;
    while (st == FLEET_OK && now_s() < end) {
        double t0 = now_s();
        st = fleet_model_run(w->m, (const fleet_tensor *const *)w->in, w->ni, w->out, w->no);
        if (st == FLEET_OK)
            st = fleet_stream_synchronize(s);
        if (st != FLEET_OK)
            break;
        if (w->n_lat == w->cap_lat) {
            long cap = w->cap_lat ? w->cap_lat * 2 : 1024;
            double *l = realloc(w->lat, sizeof *l * (size_t)cap);
            if (l == NULL)
                break;
            w->lat = l;
            w->cap_lat = cap;
        }
        w->lat[w->n_lat++] = (now_s() - t0) * 1e3;
        atomic_fetch_add(w->runs_total, 1);
    }
    w->st = st;
    if (st != FLEET_OK)
        snprintf(w->err, sizeof w->err, "%s", fleet_last_error());
    return NULL;
}

/* The nearest-rank percentile's index among n sorted values. */
static long rank(long n, double q)
{
    long k = (long)ceil(q * (double)n);
    return k < 1 ? 0 : k - 1;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_outputs(const worker *w)
{
    for (int i = 0; i < w->no; i++) {
        const char *name;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        char s[128];
        fleet_model_output_info(w->m, i, &name, &dt, &ndim, shape);
        for (int d = 0; d < ndim; d++)
            shape[d] = shape[d] == FLEET_DIM_BATCH ? w->batch : shape[d];
        shape_str(ndim, shape, s, sizeof s);
        size_t bytes = fleet_tensor_nbytes(w->out[i]), es = fleet_dtype_size(dt);
        unsigned char *h = malloc(bytes + 1);
        double sum = 0, asum = 0;
        if (h != NULL && fleet_tensor_copy_to_host(w->out[i], h, bytes) == FLEET_OK) {
            for (size_t k = 0; k < bytes / (es ? es : 1); k++) {
                double v = 0;
                if (dt == FLEET_DTYPE_F32) {
                    float f;
                    memcpy(&f, h + k * 4, 4);
                    v = f;
                } else if (dt == FLEET_DTYPE_I64) {
                    int64_t x;
                    memcpy(&x, h + k * 8, 8);
                    v = (double)x;
                } else if (dt == FLEET_DTYPE_I32) {
                    int32_t x;
                    memcpy(&x, h + k * 4, 4);
                    v = x;
                } else if (dt == FLEET_DTYPE_BOOL) {
                    v = h[k];
                }
                sum += v;
                asum += fabs(v);
            }
        }
        free(h);
        printf("  output %-24s %-5s %-20s sum %.6g, sum |x| %.6g\n", name, fleet_dtype_name(dt),
               s, sum, asum);
    }
}

int fleet_cli_run(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o, "run");
    fleet_device *dev = rc == 0 ? device_of(&o, "run") : NULL;
    if (dev == NULL) {
        opts_free(&o);
        return rc ? rc : 1;
    }
    fleet_onnx_options oo = onnx_options(&o);
    fleet_model *m;
    double t0 = now_s();
    if (fleet_model_load_onnx(dev, o.path, &oo, &m) != FLEET_OK) {
        fprintf(stderr, "fleet run: %s\n", fleet_last_error());
        opts_free(&o);
        return 1;
    }
    fleet_model_stats ms;
    fleet_model_get_stats(m, &ms);
    printf("%s on %s: loaded in %.0f ms (%llu nodes folded, %llu fused at load), "
           "%d thread(s), batch %lld, %.1f s\n",
           o.path, fleet_device_name(dev), (now_s() - t0) * 1e3,
           (unsigned long long)ms.load_folded, (unsigned long long)ms.load_fused, o.threads,
           (long long)o.batch, o.seconds);
    atomic_int go = 0, ready = 0;
    atomic_long runs = 0;
    worker *w = calloc((size_t)o.threads, sizeof *w);
    pthread_t th[MAX_THREADS] = {0};
    int started = 0;
    fleet_status st = w != NULL ? FLEET_OK : FLEET_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < o.threads && st == FLEET_OK; i++) {
        w[i] = (worker){.m = m, .dev = dev, .batch = o.batch, .seconds = o.seconds, .go = &go,
                        .ready = &ready, .runs_total = &runs};
        st = make_tensors(&w[i], 17u + (unsigned)i);
    }
    for (int i = 0; i < o.threads && st == FLEET_OK; i++, started++)
        if (pthread_create(&th[i], NULL, run_main, &w[i]) != 0)
            st = FLEET_ERR_INTERNAL;
    if (st != FLEET_OK)
        fprintf(stderr, "fleet run: %s\n", fleet_last_error());
    while (atomic_load(&ready) < started)
        ;
    double start = now_s();
    atomic_store(&go, 1);
    for (int sec = 1; st == FLEET_OK && sec < (int)ceil(o.seconds); sec++) {
        struct timespec one = {1, 0};
        nanosleep(&one, NULL);
        printf("  ... %d s: %ld runs\n", sec, atomic_load(&runs));
        fflush(stdout);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double elapsed = now_s() - start;
    long total = 0, n_lat = 0;
    for (int i = 0; i < started; i++) {
        total += w[i].n_lat;
        if (w[i].st != FLEET_OK) {
            fprintf(stderr, "fleet run: thread %d: %s\n", i, w[i].err);
            st = w[i].st;
        }
    }
    double *all = total > 0 ? malloc(sizeof *all * (size_t)total) : NULL;
    for (int i = 0; i < started && all != NULL; i++) {
        memcpy(all + n_lat, w[i].lat, sizeof *all * (size_t)w[i].n_lat);
        n_lat += w[i].n_lat;
    }
    if (st == FLEET_OK && n_lat > 0) {
        qsort(all, (size_t)n_lat, sizeof *all, by_value);
        print_outputs(&w[0]);
        printf("  %ld runs in %.2f s: %.1f runs/s, %.1f samples/s; latency p50 %.3f ms, "
               "p99 %.3f ms\n",
               n_lat, elapsed, (double)n_lat / elapsed, (double)n_lat * (double)o.batch / elapsed,
               all[rank(n_lat, 0.50)], all[rank(n_lat, 0.99)]);
    }
    free(all);
    for (int i = 0; w != NULL && i < o.threads; i++) {
        for (int k = 0; k < FLEET_MODEL_MAX_IO; k++) {
            if (w[i].in[k])
                fleet_tensor_release(w[i].in[k]);
            if (w[i].out[k])
                fleet_tensor_release(w[i].out[k]);
        }
        free(w[i].lat);
    }
    free(w);
    fleet_model_destroy(m);
    opts_free(&o);
    return st == FLEET_OK ? 0 : 1;
}
