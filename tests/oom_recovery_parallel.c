/* OOM Recovery Parallel: with a memory limit, one thread's big allocation
 * fails cleanly while seven others keep computing correct results; once they
 * release their memory the same allocation succeeds, and nothing leaks.
 *
 * Budget (limit = baseline reserved + 128 MiB): each of the 7 workers holds a
 * 12 MiB ballast tensor (a segment of its own) plus small blocks, ~98 MiB in
 * all, so a 72 MiB request cannot fit while they run — even after the
 * allocator's cascade (release cached, synchronize, release unused) — but
 * fits once they are done.
 */
#include "test_util.h"

#define NWORKERS 7
#define MIB ((size_t)1 << 20)
#define BALLAST_FLOATS (12 * MIB / sizeof(float))
#define BIG_FLOATS (72 * MIB / sizeof(float))

static fleet_device *dev;
static atomic_int ready, oom_seen, done;

typedef struct worker {
    int index;
    int iterations;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    float *pattern = malloc(BALLAST_FLOATS * sizeof(float));
    ASSERT_TRUE(pattern != NULL);
    for (size_t i = 0; i < BALLAST_FLOATS; i++)
        pattern[i] = (float)((i * 31 + (size_t)w->index) % 1000);
    int64_t shape[1] = {(int64_t)BALLAST_FLOATS};
    fleet_tensor *ballast = test_tensor_new(dev, 1, shape);
    ASSERT_OK(fleet_tensor_copy_from_host(ballast, pattern, BALLAST_FLOATS * sizeof(float)));
    atomic_fetch_add(&ready, 1);
    int min_iters = test_scaled(30);
    for (int it = 0; it < min_iters || !atomic_load(&oom_seen); it++) {
        test_matmul_check(dev, 48, 64, 40, (uint64_t)(w->index * 100000 + it));
        w->iterations = it + 1;
    }
    /* The failed big allocation did not disturb live memory. */
    float *back = malloc(BALLAST_FLOATS * sizeof(float));
    ASSERT_TRUE(back != NULL);
    ASSERT_OK(fleet_tensor_copy_to_host(ballast, back, BALLAST_FLOATS * sizeof(float)));
    ASSERT_TRUE(memcmp(back, pattern, BALLAST_FLOATS * sizeof(float)) == 0);
    ASSERT_OK(fleet_tensor_release(ballast));
    free(back);
    free(pattern);
    atomic_fetch_add(&done, 1);
    return NULL;
}

typedef struct big_result {
    fleet_status tensor_status, alloc_status;
    char tensor_text[512], alloc_text[512];
} big_result;

static void *big_main(void *arg)
{
    big_result *res = arg;
    while (atomic_load(&ready) < NWORKERS)
        test_sleep_ms(1);
    int64_t shape[1] = {(int64_t)BIG_FLOATS};
    fleet_tensor *big = NULL;
    res->tensor_status = fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, shape, &big);
    snprintf(res->tensor_text, sizeof res->tensor_text, "%s", fleet_last_error());
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    fleet_allocation al;
    memset(&al, 0xab, sizeof al);
    res->alloc_status = fleet_memory_alloc(s, BIG_FLOATS * sizeof(float), &al);
    snprintf(res->alloc_text, sizeof res->alloc_text, "%s", fleet_last_error());
    ASSERT_TRUE(al.ptr == NULL); /* zeroed on failure */
    atomic_store(&oom_seen, 1);

    /* After the workers released everything, the same request fits. */
    while (atomic_load(&done) < NWORKERS)
        test_sleep_ms(1);
    ASSERT_OK(fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, shape, &big));
    float *host = malloc(BIG_FLOATS * sizeof(float));
    ASSERT_TRUE(host != NULL);
    for (size_t i = 0; i < BIG_FLOATS; i += 4096)
        host[i] = (float)i;
    ASSERT_OK(fleet_tensor_copy_from_host(big, host, BIG_FLOATS * sizeof(float)));
    float probe[4] = {0};
    const float *data = fleet_tensor_data(big); /* cpu: host memory */
    ASSERT_OK(fleet_stream_synchronize(s));
    probe[0] = data[0], probe[1] = data[4096], probe[2] = data[BIG_FLOATS - 4096];
    ASSERT_TRUE(probe[0] == 0.0f && probe[1] == 4096.0f && probe[2] == (float)(BIG_FLOATS - 4096));
    ASSERT_OK(fleet_tensor_release(big));
    free(host);
    return NULL;
}

TEST(one_thread_ooms_seven_keep_going)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &dev));
    ASSERT_OK(fleet_memory_empty_cache(dev));
    fleet_memory_stats base;
    ASSERT_OK(fleet_memory_get_stats(dev, &base));
    ASSERT_EQ(base.live_blocks, 0);
    ASSERT_OK(fleet_memory_set_limit(dev, base.reserved + 128 * MIB));
    fleet_memory_stats st;
    ASSERT_OK(fleet_memory_get_stats(dev, &st));
    ASSERT_EQ(st.limit, base.reserved + 128 * MIB);

    atomic_init(&ready, 0);
    atomic_init(&oom_seen, 0);
    atomic_init(&done, 0);
    worker w[NWORKERS];
    pthread_t t[NWORKERS], tb;
    big_result res;
    memset(&res, 0, sizeof res);
    for (int i = 0; i < NWORKERS; i++) {
        w[i] = (worker){.index = i, .iterations = 0};
        ASSERT_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    ASSERT_EQ(pthread_create(&tb, NULL, big_main, &res), 0);
    for (int i = 0; i < NWORKERS; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    ASSERT_EQ(pthread_join(tb, NULL), 0);

    /* The big requests failed with an informative out-of-memory error. */
    ASSERT_EQ(res.tensor_status, FLEET_ERR_OUT_OF_MEMORY);
    ASSERT_EQ(res.alloc_status, FLEET_ERR_OUT_OF_MEMORY);
    const char *texts[2] = {res.tensor_text, res.alloc_text};
    for (int i = 0; i < 2; i++) {
        ASSERT_STR_CONTAINS(texts[i], "requested");
        ASSERT_STR_CONTAINS(texts[i], "allocated");
        ASSERT_STR_CONTAINS(texts[i], "cached");
        ASSERT_STR_CONTAINS(texts[i], "limit");
    }
    /* The workers all finished their loops (values checked in each). */
    for (int i = 0; i < NWORKERS; i++)
        ASSERT_GE(w[i].iterations, test_scaled(30));

    /* Counted, and no leak. */
    ASSERT_OK(fleet_memory_get_stats(dev, &st));
    ASSERT_EQ(st.ooms, base.ooms + 2);
    ASSERT_GE(st.alloc_retries, base.alloc_retries + 2);
    ASSERT_EQ(st.allocated, base.allocated);
    ASSERT_EQ(st.live_blocks, 0);
    ASSERT_LE(st.reserved, base.reserved + 128 * MIB);
    ASSERT_LE(st.peak_allocated, base.reserved + 128 * MIB);
    ASSERT_OK(fleet_device_synchronize(dev));
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &st));
    ASSERT_EQ(st.pending, 0);
    ASSERT_EQ(st.cached, 0);
    ASSERT_EQ(st.reserved, 0);
    ASSERT_EQ(st.segments, 0);
    ASSERT_OK(fleet_memory_set_limit(dev, 0));
}

/* An injected backend failure. The cascade retries only when it could
 * release something: with nothing cached the request fails with
 * FLEET_ERR_OUT_OF_MEMORY (and the next one succeeds); with a cached segment
 * to give back, the retry absorbs the failure (counted in alloc_retries)
 * while other threads compute unaffected. */
static void *matmul_worker(void *arg)
{
    for (int it = 0; it < test_scaled(20); it++)
        test_matmul_check(dev, 32, 32, 32, (uint64_t)(uintptr_t)arg * 1000 + (uint64_t)it);
    return NULL;
}

static void *cache_a_segment(void *arg)
{
    (void)arg;
    int64_t shape[1] = {(int64_t)(16 * MIB / sizeof(float))};
    ASSERT_OK(fleet_tensor_release(test_tensor_new(dev, 1, shape))); /* stays cached */
    return NULL;
}

TEST(injected_failure_while_others_run)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &dev));
    int64_t shape[1] = {(int64_t)(16 * MIB / sizeof(float))};
    fleet_tensor *x = NULL;
    fleet_memory_stats base, st;
    /* Nothing cached (and no other thread that could take the failure): the
     * failure surfaces, once. */
    ASSERT_OK(fleet_device_synchronize(dev));
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &base));
    ASSERT_OK(fleet_memory_inject_failure(dev, 1));
    ASSERT_REFUSED(fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, shape, &x), FLEET_ERR_OUT_OF_MEMORY,
                   "requested");
    ASSERT_OK(fleet_memory_get_stats(dev, &st));
    ASSERT_EQ(st.ooms, base.ooms + 1);
    ASSERT_EQ(st.allocated, base.allocated);
    x = test_tensor_new(dev, 1, shape); /* disarmed: succeeds */
    ASSERT_OK(fleet_tensor_release(x));

    /* Others compute meanwhile; whoever takes the next injected failure
     * retries after the cascade releases the cached segment. */
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, matmul_worker, (void *)(i + 1)), 0);
    /* A cached segment on another stream: the retry absorbs the failure. */
    test_run_threads(1, cache_a_segment, NULL, 0);
    ASSERT_OK(fleet_memory_get_stats(dev, &base));
    ASSERT_GE(base.cached, 16 * MIB);
    ASSERT_OK(fleet_memory_inject_failure(dev, 1));
    int64_t bigger[1] = {(int64_t)(24 * MIB / sizeof(float))}; /* no cached block fits */
    x = test_tensor_new(dev, 1, bigger);
    ASSERT_OK(fleet_tensor_release(x));
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    ASSERT_OK(fleet_memory_get_stats(dev, &st));
    ASSERT_EQ(st.ooms, base.ooms);
    ASSERT_GE(st.alloc_retries, base.alloc_retries + 1);
    ASSERT_EQ(st.allocated, 0);
    ASSERT_OK(fleet_memory_inject_failure(dev, 0));
    ASSERT_OK(fleet_device_synchronize(dev));
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &st));
    ASSERT_EQ(st.reserved, 0);
}

TEST_MAIN()
