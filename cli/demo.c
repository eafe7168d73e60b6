/* cli/demo.c — `fleet demo` and `fleet info`. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fleet.h"

typedef struct demo_thread {
    pthread_t handle;
    fleet_device *device;
    int index, iters;
    int64_t size;
    int stream_id;
    int checked, wrong;
    double max_abs_err;
    fleet_status status;
    char error[256];
} demo_thread;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(float *p, int64_t n, uint64_t *seed)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((double)(rng_next(seed) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* relu(a @ b) in double precision: the value fleet must reproduce. */
static void reference(const float *a, const float *b, float *c, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t k = 0; k < n; k++)
                acc += (double)a[i * n + k] * b[k * n + j];
            c[i * n + j] = acc > 0 ? (float)acc : 0.0f;
        }
}

#define DEMO_TRY(expr)                                                                   \
    do {                                                                                 \
        if ((t->status = (expr)) != FLEET_OK)                                            \
            goto out;                                                                    \
    } while (0)

static void *demo_main(void *arg)
{
    demo_thread *t = arg;
    int64_t n = t->size, nn = n * n;
    int64_t shape[2] = {n, n};
    size_t bytes = (size_t)nn * sizeof(float);
    float *ha = malloc(bytes), *hb = malloc(bytes), *hc = malloc(bytes), *want = malloc(bytes);
    fleet_tensor *a = NULL, *b = NULL, *c = NULL;
    fleet_stream *stream;
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(t->index + 1) * 0x100000001b3ull;

    t->status = FLEET_OK;
    if (!ha || !hb || !hc || !want) {
        t->status = FLEET_ERR_OUT_OF_MEMORY;
        snprintf(t->error, sizeof t->error, "out of host memory");
        goto done;
    }
    DEMO_TRY(fleet_stream_current(t->device, &stream));
    t->stream_id = fleet_stream_id(stream);
    DEMO_TRY(fleet_tensor_create(t->device, FLEET_DTYPE_F32, 2, shape, &a));
    DEMO_TRY(fleet_tensor_create(t->device, FLEET_DTYPE_F32, 2, shape, &b));
    DEMO_TRY(fleet_tensor_create(t->device, FLEET_DTYPE_F32, 2, shape, &c));
    for (int it = 0; it < t->iters; it++) {
        fill(ha, nn, &seed);
        fill(hb, nn, &seed);
        DEMO_TRY(fleet_tensor_copy_from_host(a, ha, bytes));
        DEMO_TRY(fleet_tensor_copy_from_host(b, hb, bytes));
        DEMO_TRY(fleet_matmul(a, b, c));
        DEMO_TRY(fleet_relu(c, c));
        DEMO_TRY(fleet_tensor_copy_to_host(c, hc, bytes));
        reference(ha, hb, want, n);
        /* float32 accumulation over n terms: allow ~sqrt(n) roundings of
         * the magnitudes involved. */
        double tol = 1e-5 * sqrt((double)n);
        int bad = 0;
        for (int64_t i = 0; i < nn; i++) {
            double err = fabs((double)hc[i] - want[i]);
            if (err > t->max_abs_err)
                t->max_abs_err = err;
            bad |= err > tol * (1.0 + fabs(want[i]));
        }
        t->checked++;
        t->wrong += bad;
    }
out:
    if (t->status != FLEET_OK)
        snprintf(t->error, sizeof t->error, "%s", fleet_last_error());
    fleet_tensor_release(a);
    fleet_tensor_release(b);
    fleet_tensor_release(c);
done:
    free(ha);
    free(hb);
    free(hc);
    free(want);
    return NULL;
}

static int parse_opt(int argc, char **argv, int *i, const char *name, long lo, long hi, long *out)
{
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "fleet demo: %s needs a value\n", name);
        return -1;
    }
    char *end;
    errno = 0;
    long v = strtol(argv[*i + 1], &end, 10);
    if (*end != '\0' || errno || v < lo || v > hi) {
        fprintf(stderr, "fleet demo: %s expects an integer in [%ld, %ld]\n", name, lo, hi);
        return -1;
    }
    *out = v;
    *i += 1;
    return 1;
}

int fleet_cli_demo(int argc, char **argv)
{
    long threads = 8, iters = 50, size = 64;
    for (int i = 1; i < argc; i++) {
        int r = parse_opt(argc, argv, &i, "--threads", 1, 1024, &threads);
        if (r == 0)
            r = parse_opt(argc, argv, &i, "--iters", 1, 1000000, &iters);
        if (r == 0)
            r = parse_opt(argc, argv, &i, "--size", 1, 4096, &size);
        if (r == 0) {
            fprintf(stderr, "fleet demo: unknown option '%s'\n", argv[i]);
            return 2;
        }
        if (r < 0)
            return 2;
    }
    fleet_device *dev;
    if (fleet_device_default(&dev) != FLEET_OK) {
        fprintf(stderr, "fleet demo: %s\n", fleet_last_error());
        return 1;
    }
    printf("fleet demo: %ld threads x %ld iterations of relu(A @ B), %ldx%ld f32, on %s\n",
           threads, iters, size, size, fleet_device_name(dev));
    demo_thread *ts = calloc((size_t)threads, sizeof *ts);
    if (ts == NULL)
        return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < threads; i++) {
        ts[i] = (demo_thread){.device = dev, .index = (int)i, .iters = (int)iters, .size = size};
        if (pthread_create(&ts[i].handle, NULL, demo_main, &ts[i]) != 0) {
            fprintf(stderr, "fleet demo: cannot start thread %ld\n", i);
            return 1;
        }
    }
    for (long i = 0; i < threads; i++)
        pthread_join(ts[i].handle, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    int failed = 0;
    printf("\n| thread | stream | results checked | wrong | max abs. error |\n"
           "|---:|---:|---:|---:|---:|\n");
    for (long i = 0; i < threads; i++) {
        demo_thread *t = &ts[i];
        if (t->status != FLEET_OK) {
            printf("| %ld | %d | error: %s: %s | | |\n", i, t->stream_id,
                   fleet_status_name(t->status), t->error);
            failed = 1;
            continue;
        }
        printf("| %ld | %d | %d | %d | %.2e |\n", i, t->stream_id, t->checked, t->wrong,
               t->max_abs_err);
        failed |= t->wrong != 0 || t->checked != iters;
    }
    fleet_stream_pool_stats ps;
    fleet_memory_stats ms;
    fleet_stream_pool_get_stats(dev, &ps);
    fleet_memory_get_stats(dev, &ms);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("\nstreams created %d, bindings %llu (%llu shared); memory peak %llu bytes, "
           "%llu segment allocations; %.3f s\n",
           ps.streams_created, (unsigned long long)ps.bindings_total,
           (unsigned long long)ps.shared_total, (unsigned long long)ms.peak_allocated,
           (unsigned long long)ms.segment_allocs, secs);
    printf("%s\n", failed ? "FAILED: some results were wrong or calls failed"
                          : "all results correct");
    free(ts);
    fleet_shutdown();
    return failed;
}

int fleet_cli_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fleet_status st = fleet_init();
    if (st != FLEET_OK) {
        fprintf(stderr, "fleet info: %s\n", fleet_last_error());
        return 1;
    }
    fleet_backend_kind kinds[] = {FLEET_BACKEND_CPU, FLEET_BACKEND_CUDA};
    for (int k = 0; k < 2; k++) {
        int n = 0;
        fleet_device_count(kinds[k], &n);
        printf("%s: %d device(s)\n", fleet_backend_name(kinds[k]), n);
        if (n > 0)
            printf("  kernels: %s\n", fleet_backend_kernels(kinds[k]));
        for (int i = 0; i < n; i++) {
            fleet_device *d;
            fleet_stream_pool_stats ps;
            fleet_memory_stats ms;
            fleet_device_get(kinds[k], i, &d);
            fleet_stream_pool_get_stats(d, &ps);
            fleet_memory_get_stats(d, &ms);
            char limit[32] = "none";
            if (ms.limit)
                snprintf(limit, sizeof limit, "%llu bytes", (unsigned long long)ms.limit);
            printf("  %s: %d streams (1 default + %d pooled), memory limit %s\n",
                   fleet_device_name(d), ps.capacity, ps.pool_slots, limit);
        }
    }
    fleet_device *def;
    if (fleet_device_default(&def) == FLEET_OK)
        printf("default device: %s\n", fleet_device_name(def));
    else
        printf("default device: none (%s)\n", fleet_last_error());
    return 0;
}
