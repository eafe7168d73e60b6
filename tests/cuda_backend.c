/* cuda_backend — the cuda backend on a real GPU: device discovery, ops
 * against a double-precision reference, streams and events, the caching
 * allocator over cudaMalloc, and mixing devices. Skips (exit 77) when no
 * cuda device is present, saying why. */
#include "harness.h"
#include "test_util.h"

static fleet_device *cuda0(void)
{
    int n = 0;
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &n));
    if (n == 0) {
        fleet_device *d;
        fleet_device_get(FLEET_BACKEND_CUDA, 0, &d); /* sets the reason */
        TEST_SKIP("no cuda device: %s", fleet_last_error());
    }
    fleet_device *d = NULL;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CUDA, 0, &d));
    return d;
}

static fleet_tensor *upload(fleet_device *d, int64_t r, int64_t c, const float *host)
{
    int64_t shape[2] = {r, c};
    fleet_tensor *t = NULL;
    ASSERT_OK(fleet_tensor_create(d, FLEET_DTYPE_F32, c > 0 ? 2 : 1, c > 0 ? shape : &r, &t));
    if (host)
        ASSERT_OK(fleet_tensor_copy_from_host(t, host, fleet_tensor_nbytes(t)));
    return t;
}

/* relu(a @ b + bias) on the GPU against the plain-C reference, odd sizes. */
TEST(ops_match_reference)
{
    fleet_device *d = cuda0();
    ASSERT_STR_CONTAINS(fleet_device_name(d), "cuda:0");
    static const int64_t shapes[][3] = {{1, 1, 1}, {4, 64, 64}, {7, 13, 5}, {33, 257, 129}, {64, 2048, 2048}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        test_rng r = test_rng_make(s);
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
        float *bias = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * m * n);
        float *got = malloc(sizeof(float) * m * n);
        test_fill_random(a, m * k, &r);
        test_fill_random(b, k * n, &r);
        test_fill_random(bias, n, &r);
        ref_matmul(a, b, NULL, want, m, k, n);
        for (int64_t i = 0; i < m * n; i++) {
            float v = want[i] + bias[i % n];
            want[i] = v > 0 ? v : 0;
        }
        fleet_tensor *ta = upload(d, m, k, a), *tb = upload(d, k, n, b),
                      *tc = upload(d, m, n, NULL);
        fleet_tensor *tbias = upload(d, n, 0, bias);
        ASSERT_OK(fleet_matmul(ta, tb, tc));
        ASSERT_OK(fleet_add(tc, tbias, tc));
        ASSERT_OK(fleet_relu(tc, tc));
        ASSERT_OK(fleet_tensor_copy_to_host(tc, got, sizeof(float) * m * n));
        /* float32 accumulation, no TF32: error grows like sqrt(k). */
        ASSERT_CLOSE(got, want, m * n, 1e-5, 2e-6 * sqrt((double)k) * 4);
        fleet_tensor_release(ta); fleet_tensor_release(tb);
        fleet_tensor_release(tc); fleet_tensor_release(tbias);
        free(a); free(b); free(bias); free(want); free(got);
    }
}

/* A producer stream and a consumer stream ordered by an event, on the GPU. */
TEST(events_order_two_streams)
{
    fleet_device *d = cuda0();
    fleet_stream *s1, *s2;
    ASSERT_OK(fleet_stream_acquire(d, &s1));
    ASSERT_OK(fleet_stream_acquire(d, &s2));
    ASSERT_NE(fleet_stream_id(s1), fleet_stream_id(s2));
    const int64_t n = 1 << 20;
    float *host = malloc(sizeof(float) * n), *back = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++)
        host[i] = (float)(i % 1000) - 500.0f;
    ASSERT_OK(fleet_stream_set_current(s1));
    fleet_tensor *x = upload(d, n, 0, host), *y = upload(d, n, 0, NULL);
    ASSERT_OK(fleet_relu(x, x)); /* on s1 */
    fleet_event *e;
    ASSERT_OK(fleet_event_create(d, &e));
    ASSERT_OK(fleet_event_record(e, s1));
    ASSERT_OK(fleet_stream_wait_event(s2, e));
    ASSERT_OK(fleet_stream_set_current(s2));
    ASSERT_OK(fleet_tensor_record_stream(x, s2));
    ASSERT_OK(fleet_add(x, x, y)); /* on s2, after relu on s1 */
    ASSERT_OK(fleet_tensor_copy_to_host(y, back, sizeof(float) * n));
    for (int64_t i = 0; i < n; i++) /* exact: small integers */
        host[i] = host[i] > 0 ? 2 * host[i] : 0;
    ASSERT_CLOSE(back, host, n, 0.0, 0.0);
    ASSERT_OK(fleet_event_synchronize(e));
    ASSERT_OK(fleet_event_query(e));
    ASSERT_OK(fleet_event_destroy(e));
    fleet_tensor_release(x);
    fleet_tensor_release(y);
    ASSERT_OK(fleet_stream_reset_current(d));
    ASSERT_OK(fleet_stream_release(s1));
    ASSERT_OK(fleet_stream_release(s2));
    free(host);
    free(back);
}

/* Caching over cudaMalloc: reuse without new segments, the limit and an
 * injected driver failure both end in FLEET_ERR_OUT_OF_MEMORY with text. */
TEST(allocator_over_cudamalloc)
{
    fleet_device *d = cuda0();
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(d, &s));
    fleet_memory_stats m0, m1;
    fleet_allocation a;
    ASSERT_OK(fleet_memory_alloc(s, 1 << 20, &a));
    void *p = a.ptr;
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_get_stats(d, &m0));
    for (int i = 0; i < 100; i++) {
        ASSERT_OK(fleet_memory_alloc(s, 1 << 20, &a));
        ASSERT_TRUE(a.ptr == p);
        ASSERT_OK(fleet_memory_free(&a));
    }
    ASSERT_OK(fleet_memory_get_stats(d, &m1));
    ASSERT_EQ(m1.segment_allocs, m0.segment_allocs);
    ASSERT_EQ(m1.allocated + m1.pending + m1.cached, m1.reserved);

    ASSERT_OK(fleet_memory_set_limit(d, m1.reserved + (4u << 20)));
    ASSERT_REFUSED(fleet_memory_alloc(s, (size_t)64 << 20, &a), FLEET_ERR_OUT_OF_MEMORY, "limit");
    ASSERT_OK(fleet_memory_set_limit(d, 0));
    ASSERT_OK(fleet_memory_empty_cache(d));
    ASSERT_OK(fleet_memory_inject_failure(d, 1));
    ASSERT_STATUS(fleet_memory_alloc(s, (size_t)64 << 20, &a), FLEET_ERR_OUT_OF_MEMORY);
    ASSERT_OK(fleet_memory_alloc(s, (size_t)64 << 20, &a)); /* one-shot: works again */
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_empty_cache(d));
    ASSERT_OK(fleet_memory_get_stats(d, &m1));
    ASSERT_EQ(m1.allocated, 0);
}

/* Tensors of a cpu and a cuda device never meet in one op. */
TEST(mixed_devices_are_refused)
{
    fleet_device *g = cuda0(), *c;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &c));
    float v[4] = {1, 2, 3, 4};
    fleet_tensor *tg = upload(g, 2, 2, v), *tc = upload(c, 2, 2, v), *out = upload(g, 2, 2, NULL);
    ASSERT_STATUS(fleet_matmul(tg, tc, out), FLEET_ERR_INVALID_DEVICE);
    ASSERT_STATUS(fleet_add(tc, tg, out), FLEET_ERR_INVALID_DEVICE);
    fleet_stream *cs;
    ASSERT_OK(fleet_stream_current(c, &cs));
    ASSERT_STATUS(fleet_tensor_record_stream(tg, cs), FLEET_ERR_INVALID_DEVICE);
    fleet_tensor_release(tg); fleet_tensor_release(tc); fleet_tensor_release(out);
}

/* Host transfers go through the stream's pinned staging buffer (2 MiB):
 * sizes below, at and above it, and several chunks, round-trip exactly;
 * two threads sharing one stream take turns with the buffer. */
typedef struct copy_job {
    fleet_stream *stream;
    int64_t n;
    uint32_t salt;
    int ok;
} copy_job;

static void *round_trip(void *arg)
{
    copy_job *j = arg;
    fleet_device *d = fleet_stream_device(j->stream);
    ASSERT_OK(fleet_stream_set_current(j->stream));
    float *h = malloc(sizeof(float) * (size_t)j->n), *back = malloc(sizeof(float) * (size_t)j->n);
    for (int64_t i = 0; i < j->n; i++)
        h[i] = (float)((uint32_t)i * 2654435761u ^ j->salt);
    fleet_tensor *t = upload(d, j->n, 0, h);
    ASSERT_OK(fleet_tensor_copy_to_host(t, back, sizeof(float) * (size_t)j->n));
    j->ok = memcmp(h, back, sizeof(float) * (size_t)j->n) == 0;
    fleet_tensor_release(t);
    free(h);
    free(back);
    return NULL;
}

TEST(host_transfers_through_pinned_staging)
{
    fleet_device *d = cuda0();
    fleet_stream *s;
    ASSERT_OK(fleet_stream_acquire(d, &s));
    const int64_t sizes[] = {1, 4097, (2 << 20) / 4, (2 << 20) / 4 + 1, 3 * (1 << 20) + 17};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        copy_job j = {s, sizes[i], (uint32_t)i * 7919u, 0};
        round_trip(&j);
        ASSERT_TRUE(j.ok);
    }
    copy_job jobs[2] = {{s, 3 * (1 << 20) + 5, 11, 0}, {s, (1 << 20) + 3, 13, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, round_trip, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    ASSERT_TRUE(jobs[0].ok && jobs[1].ok);
    ASSERT_OK(fleet_stream_release(s));
}

TEST_MAIN()
