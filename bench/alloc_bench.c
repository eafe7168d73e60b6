/* bench/alloc_bench.c — cost of a cached fleet_memory_alloc + fleet_memory_free
 * pair, next to malloc + free.
 *
 * Cases: 512 B, 64 KiB and 4 MiB; one thread; two threads each on a stream
 * of its own (the intended use: no shared lock); two threads sharing one
 * stream (they contend on that stream's shard lock). Each thread warms up,
 * then times several windows; the table gives the median ns per pair over
 * all windows of all threads, with min and max. A benchmark, not a test: it
 * asserts nothing about time.
 *
 *     bench_alloc [windows] [pairs_per_window]
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"

#define MAX_THREADS 2
#define MAX_WINDOWS 32

typedef enum bench_mode { MODE_FLEET, MODE_MALLOC } bench_mode;

typedef struct thread_ctx {
    bench_mode mode;
    fleet_device *dev;
    fleet_stream *shared; /* NULL: acquire a stream of its own */
    size_t bytes;
    int windows;
    long pairs;
    pthread_barrier_t *barrier;
    double ns[MAX_WINDOWS];
    int failed;
} thread_ctx;

static void *volatile sink;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* `n` alloc+free pairs; false on a failed call. */
static int pairs(thread_ctx *t, fleet_stream *s, long n)
{
    if (t->mode == MODE_MALLOC) {
        for (long i = 0; i < n; i++) {
            void *p = malloc(t->bytes);
            if (p == NULL)
                return 0;
            sink = p; /* keeps the compiler from eliding the pair */
            free(p);
        }
        return 1;
    }
    for (long i = 0; i < n; i++) {
        fleet_allocation a;
        if (fleet_memory_alloc(s, t->bytes, &a) != FLEET_OK)
            return 0;
        sink = a.ptr;
        if (fleet_memory_free(&a) != FLEET_OK)
            return 0;
    }
    return 1;
}

static void *thread_main(void *arg)
{
    thread_ctx *t = arg;
    fleet_stream *s = t->shared;
    if (t->mode == MODE_FLEET && s == NULL && fleet_stream_acquire(t->dev, &s) != FLEET_OK) {
        fprintf(stderr, "fleet_stream_acquire: %s\n", fleet_last_error());
        t->failed = 1;
    }
    if (!t->failed && !pairs(t, s, t->pairs / 2 + 1)) /* warm-up: fills the cache */
        t->failed = 1;
    for (int w = 0; w < t->windows; w++) {
        pthread_barrier_wait(t->barrier); /* both threads time the same moment */
        uint64_t t0 = now_ns();
        if (!t->failed && !pairs(t, s, t->pairs))
            t->failed = 1;
        t->ns[w] = (double)(now_ns() - t0) / (double)t->pairs;
    }
    if (t->mode == MODE_FLEET && t->shared == NULL && s != NULL)
        fleet_stream_release(s);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct result {
    double median, min, max;
} result;

static int run_case(bench_mode mode, fleet_device *dev, size_t bytes, int threads, int share,
                    int windows, long pair_count, result *out)
{
    thread_ctx ctx[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    pthread_barrier_t barrier;
    fleet_stream *shared = NULL;
    if (mode == MODE_FLEET && share && fleet_stream_acquire(dev, &shared) != FLEET_OK) {
        fprintf(stderr, "fleet_stream_acquire: %s\n", fleet_last_error());
        return 0;
    }
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        ctx[i] = (thread_ctx){.mode = mode, .dev = dev, .shared = shared, .bytes = bytes,
                              .windows = windows, .pairs = pair_count, .barrier = &barrier};
        pthread_create(&tid[i], NULL, thread_main, &ctx[i]);
    }
    double all[MAX_THREADS * MAX_WINDOWS];
    int n = 0, failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        failed |= ctx[i].failed;
        for (int w = 0; w < windows; w++)
            all[n++] = ctx[i].ns[w];
    }
    pthread_barrier_destroy(&barrier);
    if (shared != NULL)
        fleet_stream_release(shared);
    if (failed) {
        fprintf(stderr, "a call failed: %s\n", fleet_last_error());
        return 0;
    }
    if (n == 0)
        return 0; /* no thread or no window: nothing was timed */
    qsort(all, (size_t)n, sizeof all[0], cmp_double);
    out->min = all[0];
    out->max = all[n - 1];
    out->median = n % 2 ? all[n / 2] : (all[n / 2 - 1] + all[n / 2]) / 2;
    return 1;
}

static const char *size_name(size_t bytes, char *buf, size_t len)
{
    if (bytes >= (1u << 20))
        snprintf(buf, len, "%zu MiB", bytes >> 20);
    else if (bytes >= 1024)
        snprintf(buf, len, "%zu KiB", bytes >> 10);
    else
        snprintf(buf, len, "%zu B", bytes);
    return buf;
}

int main(int argc, char **argv)
{
    int windows = argc > 1 ? atoi(argv[1]) : 9;
    long pair_count = argc > 2 ? atol(argv[2]) : 200000;
    if (windows < 1 || windows > MAX_WINDOWS || pair_count < 1) {
        fprintf(stderr, "usage: %s [windows 1..%d] [pairs_per_window]\n", argv[0], MAX_WINDOWS);
        return 2;
    }
    fleet_device *dev;
    if (fleet_device_default(&dev) != FLEET_OK) {
        fprintf(stderr, "fleet_device_default: %s\n", fleet_last_error());
        return 1;
    }
    fleet_memory_stats before, after;
    fleet_memory_get_stats(dev, &before);

    static const size_t sizes[] = {512, 64 << 10, 4 << 20};
    static const struct {
        const char *name;
        bench_mode mode;
        int threads, share;
    } cases[] = {
        {"fleet, own stream", MODE_FLEET, 1, 0},
        {"fleet, own stream each", MODE_FLEET, 2, 0},
        {"fleet, one shared stream", MODE_FLEET, 2, 1},
        {"malloc/free", MODE_MALLOC, 1, 0},
        {"malloc/free", MODE_MALLOC, 2, 0},
    };
    printf("# cached alloc+free pair, %s, %d windows x %ld pairs, median over windows and"
           " threads\n\n", fleet_device_name(dev), windows, pair_count);
    printf("| size | workload | threads | ns/pair median | min | max |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            result r;
            char buf[32];
            if (!run_case(cases[c].mode, dev, sizes[s], cases[c].threads, cases[c].share, windows,
                          pair_count, &r))
                return 1;
            printf("| %s | %s | %d | %.1f | %.1f | %.1f |\n", size_name(sizes[s], buf, sizeof buf),
                   cases[c].name, cases[c].threads, r.median, r.min, r.max);
        }
    }
    fleet_memory_get_stats(dev, &after);
    uint64_t requests = after.alloc_requests - before.alloc_requests;
    printf("\nfleet allocations: %" PRIu64 ", served from cache: %" PRIu64
           ", new segments: %" PRIu64 "\n",
           requests, after.cache_hits - before.cache_hits,
           after.segment_allocs - before.segment_allocs);
    fleet_shutdown();
    return 0;
}
