/* cuda_multi_gpu — several GPUs: each has its own stream pool and allocator,
 * ops run on two GPUs at once from two threads with correct values, and
 * tensors of two GPUs never meet in one op. Skips (exit 77) with fewer than
 * two cuda devices, saying so. */
#include "harness.h"
#include "test_util.h"

typedef struct gpu_job {
    fleet_device *dev;
    int ok;
} gpu_job;

static void *run_on_gpu(void *arg)
{
    gpu_job *j = arg;
    enum { M = 48, K = 96, N = 40 };
    static _Thread_local float a[M * K], b[K * N], want[M * N], got[M * N];
    test_rng r = test_rng_make((uint64_t)fleet_device_ordinal(j->dev) + 77);
    test_fill_random(a, M * K, &r);
    test_fill_random(b, K * N, &r);
    ref_matmul(a, b, NULL, want, M, K, N);
    fleet_tensor *ta = test_tensor_2d(j->dev, M, K, a), *tb = test_tensor_2d(j->dev, K, N, b);
    fleet_tensor *tc = test_tensor_2d(j->dev, M, N, NULL);
    j->ok = 1;
    for (int it = 0; it < 50; it++) {
        ASSERT_OK(fleet_matmul(ta, tb, tc));
        ASSERT_OK(fleet_tensor_copy_to_host(tc, got, sizeof got));
        for (int i = 0; i < M * N; i++)
            j->ok &= fabsf(got[i] - want[i]) <= 1e-4f * (1 + fabsf(want[i]));
    }
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(j->dev, &s));
    ASSERT_TRUE(fleet_stream_device(s) == j->dev);
    fleet_tensor_release(ta); fleet_tensor_release(tb); fleet_tensor_release(tc);
    return NULL;
}

TEST(two_gpus_each_with_own_pool_and_allocator)
{
    int n = 0;
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &n));
    if (n < 2)
        TEST_SKIP("cuda_multi_gpu needs two cuda devices, found %d", n);
    fleet_device *g0, *g1;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CUDA, 0, &g0));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CUDA, 1, &g1));
    ASSERT_STR_CONTAINS(fleet_device_name(g1), "cuda:1");
    fleet_memory_stats m0a, m1a, m0b, m1b;
    ASSERT_OK(fleet_memory_get_stats(g0, &m0a));
    ASSERT_OK(fleet_memory_get_stats(g1, &m1a));
    gpu_job jobs[2] = {{g0, 0}, {g1, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, run_on_gpu, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    ASSERT_TRUE(jobs[0].ok && jobs[1].ok);
    ASSERT_OK(fleet_memory_get_stats(g0, &m0b));
    ASSERT_OK(fleet_memory_get_stats(g1, &m1b));
    /* each device's allocator served its own thread */
    ASSERT_GE(m0b.alloc_requests, m0a.alloc_requests + 3);
    ASSERT_GE(m1b.alloc_requests, m1a.alloc_requests + 3);
    float v[4] = {1, 2, 3, 4};
    fleet_tensor *x0 = test_tensor_2d(g0, 2, 2, v), *x1 = test_tensor_2d(g1, 2, 2, v),
                  *o0 = test_tensor_2d(g0, 2, 2, NULL);
    ASSERT_REFUSED(fleet_matmul(x0, x1, o0), FLEET_ERR_INVALID_DEVICE, "cuda:1");
    fleet_stream *s1;
    ASSERT_OK(fleet_stream_current(g1, &s1));
    ASSERT_STATUS(fleet_tensor_record_stream(x0, s1), FLEET_ERR_INVALID_DEVICE);
    fleet_tensor_release(x0); fleet_tensor_release(x1); fleet_tensor_release(o0);
    printf("two_gpus: checked cuda:0 and cuda:1\n");
}

TEST_MAIN()
