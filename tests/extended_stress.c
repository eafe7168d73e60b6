/* Extended Stress: 8 threads x 100 and 16 threads x 50 iterations of
 * out = relu(a @ b), each iteration with fresh tensors (allocator churn) and
 * fresh random inputs; values checked against the plain-C reference on a
 * sample of iterations; afterwards the allocator's live bytes and blocks are
 * back at their baseline and its accounting invariant holds. */
#include "test_util.h"

#define M 32
#define K 64
#define N 48
#define SAMPLE_EVERY 7

static fleet_device *dev;

typedef struct worker {
    int index;
    int iters;
    int checked;
    int stream_id;
} worker;

static pthread_barrier_t start_line;

static void ref_matmul_relu(const float *a, const float *b, float *out)
{
    ref_matmul(a, b, NULL, out, M, K, N);
    for (int i = 0; i < M * N; i++)
        out[i] = out[i] > 0 ? out[i] : 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *got = malloc(sizeof(float) * M * N), *want = malloc(sizeof(float) * M * N);
    ASSERT_TRUE(a && b && got && want);
    test_rng r = test_rng_make(1000 + (uint64_t)w->index);
    w->stream_id = test_current_stream_id(dev);
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < w->iters; i++) {
        test_fill_random(a, M * K, &r);
        test_fill_random(b, K * N, &r);
        fleet_tensor *ta = test_tensor_2d(dev, M, K, a);
        fleet_tensor *tb = test_tensor_2d(dev, K, N, b);
        fleet_tensor *tc = test_tensor_2d(dev, M, N, NULL);
        ASSERT_OK(fleet_matmul(ta, tb, tc));
        ASSERT_OK(fleet_relu(tc, tc));
        int sample = (i % SAMPLE_EVERY) == (w->index % SAMPLE_EVERY) || i == w->iters - 1;
        if (sample) {
            test_tensor_read(tc, got);
            ref_matmul_relu(a, b, want);
            ASSERT_CLOSE(got, want, M * N, 1e-5, test_matmul_atol(K));
            for (int j = 0; j < M * N; j++)
                ASSERT_TRUE(got[j] >= 0.0f); /* relu really ran */
            w->checked++;
        }
        /* Released while the work may still be queued: stream-ordered free. */
        ASSERT_OK(fleet_tensor_release(ta));
        ASSERT_OK(fleet_tensor_release(tb));
        ASSERT_OK(fleet_tensor_release(tc));
    }
    ASSERT_EQ(test_current_stream_id(dev), w->stream_id);
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    ASSERT_OK(fleet_stream_synchronize(s));
    free(a);
    free(b);
    free(got);
    free(want);
    return NULL;
}

static void check_invariant(const fleet_memory_stats *m)
{
    ASSERT_EQ(m->allocated + m->pending + m->cached, m->reserved);
}

static void stress(int nthreads, int iters)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_memory_stats before, after;
    ASSERT_OK(fleet_memory_get_stats(dev, &before));
    check_invariant(&before);

    worker *w = calloc((size_t)nthreads, sizeof *w);
    ASSERT_TRUE(w != NULL);
    for (int i = 0; i < nthreads; i++)
        w[i] = (worker){.index = i, .iters = iters};
    ASSERT_EQ(pthread_barrier_init(&start_line, NULL, (unsigned)nthreads), 0);
    test_run_threads(nthreads, worker_main, w, sizeof w[0]);
    pthread_barrier_destroy(&start_line);

    int checked = 0;
    for (int i = 0; i < nthreads; i++) {
        ASSERT_GE(w[i].checked, iters / SAMPLE_EVERY);
        checked += w[i].checked;
        for (int j = 0; j < i; j++)
            ASSERT_NE(w[i].stream_id, w[j].stream_id);
    }
    printf("  %d threads x %d iterations, %d sampled results checked\n", nthreads, iters,
           checked);
    free(w);

    ASSERT_OK(fleet_device_synchronize(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &after));
    check_invariant(&after);
    ASSERT_EQ(after.allocated, before.allocated);
    ASSERT_EQ(after.live_blocks, before.live_blocks);
    ASSERT_EQ(after.pending, 0); /* nothing was recorded on another stream */
    ASSERT_GE(after.alloc_requests - before.alloc_requests, (uint64_t)nthreads * iters * 3);
    ASSERT_GE(after.peak_allocated, before.allocated + 3 * sizeof(float) * M * N);

    fleet_stream_pool_stats ps = test_pool_stats(dev);
    ASSERT_EQ(ps.exclusive_in_use, 0);
    ASSERT_EQ(ps.shared_bindings, 0);

    /* Everything cached can be given back: no block is still referenced. */
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &after));
    check_invariant(&after);
    ASSERT_EQ(after.allocated, before.allocated);
    if (before.allocated == 0) { /* no live block pins a segment */
        ASSERT_EQ(after.cached, 0);
        ASSERT_EQ(after.reserved, 0);
        ASSERT_EQ(after.segments, 0);
    }
}

TEST(stress_8_threads_x_100)
{
    stress(8, test_scaled(100)); /* threads are the point: only iterations scale */
}

TEST(stress_16_threads_x_50)
{
    stress(16, test_scaled(50));
}

TEST_MAIN()
