/* Graph Compilation Stress: 16 threads start at once on one shared model
 * that has never run, each running a mix of batch sizes: five shared by
 * every thread and one of its own. The compile counter must equal the number
 * of distinct batch sizes (21) — concurrent first calls compile once — and
 * every output row must equal the plain-C reference for its input row. The
 * graph cache is kept small (FLEET_GRAPH_CACHE=8, set before fleet starts)
 * so instances are evicted and rebuilt while others are in use. */
#include "model_util.h"

#define THREADS 16
#define SHARED 5
#define POOL_ROWS 64

static const int64_t shared_batches[SHARED] = {1, 2, 3, 5, 8};
static fleet_device *dev;
static test_model tm;
static float pool_x[POOL_ROWS * 64], pool_y[POOL_ROWS * 32];
static pthread_barrier_t start;

typedef struct worker {
    int index, rounds, checked;
} worker;

static void *worker_main(void *arg)
{
    worker *wk = arg;
    int64_t own = 10 + wk->index; /* distinct per thread: 10..25 */
    float *x = malloc(sizeof(float) * 32 * 64), *y = malloc(sizeof(float) * 32 * 32);
    int64_t *rows = malloc(sizeof(int64_t) * 32);
    test_rng r = test_rng_make(500 + (uint64_t)wk->index);
    pthread_barrier_wait(&start);
    for (int round = 0; round < wk->rounds; round++) {
        for (int k = 0; k <= SHARED; k++) {
            /* every thread walks the sizes in its own order */
            int j = (k + wk->index) % (SHARED + 1);
            int64_t batch = j < SHARED ? shared_batches[j] : own;
            for (int64_t b = 0; b < batch; b++) {
                rows[b] = (int64_t)(test_rng_next(&r) % POOL_ROWS);
                memcpy(x + b * 64, pool_x + rows[b] * 64, sizeof(float) * 64);
            }
            test_model_run(&tm, dev, x, batch, y);
            for (int64_t b = 0; b < batch; b++)
                ASSERT_CLOSE(y + b * 32, pool_y + rows[b] * 32, 32, 1e-4, 1e-5);
            wk->checked++;
        }
    }
    free(x);
    free(y);
    free(rows);
    return NULL;
}

TEST(sixteen_threads_shared_and_distinct_shapes)
{
    const int64_t widths[] = {64, 128, 32};
    test_model_mlp(dev, widths, 3, 21, &tm);
    test_rng r = test_rng_make(99);
    test_fill_random(pool_x, POOL_ROWS * 64, &r);
    test_model_reference(&tm, pool_x, POOL_ROWS, pool_y);

    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    ASSERT_EQ(st.compiles, 0u); /* nothing ran yet */

    int rounds = test_scaled(6);
    if (rounds < 1)
        rounds = 1;
    worker wk[THREADS];
    for (int t = 0; t < THREADS; t++)
        wk[t] = (worker){.index = t, .rounds = rounds};
    pthread_barrier_init(&start, NULL, THREADS);
    test_run_threads(THREADS, worker_main, wk, sizeof wk[0]);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < THREADS; t++)
        ASSERT_EQ(wk[t].checked, rounds * (SHARED + 1));

    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    printf("  compiles %llu  plans %llu  runs %llu  instances %llu  evictions %llu  "
           "captures %llu  replays %llu\n", (unsigned long long)st.compiles,
           (unsigned long long)st.plans, (unsigned long long)st.runs,
           (unsigned long long)st.instances_created, (unsigned long long)st.evictions,
           (unsigned long long)st.graph_captures, (unsigned long long)st.graph_replays);
    ASSERT_EQ(st.compiles, (uint64_t)(SHARED + THREADS));
    ASSERT_EQ(st.plans, (uint64_t)(SHARED + THREADS));
    ASSERT_EQ(st.runs, (uint64_t)(THREADS * rounds * (SHARED + 1)));
    /* 21 plans x 16 streams cannot fit in 8 instances */
    ASSERT_GE(st.evictions, 1u);
    ASSERT_EQ(st.instances_created - st.evictions <= 8 + THREADS, 1);

    /* A second wave on the same shapes compiles nothing new. */
    float x[64], y[32];
    memcpy(x, pool_x, sizeof x);
    test_model_run(&tm, dev, x, 1, y);
    ASSERT_CLOSE(y, pool_y, 32, 1e-4, 1e-5);
    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    ASSERT_EQ(st.compiles, (uint64_t)(SHARED + THREADS));
    test_model_free(&tm);
}

int main(int argc, char **argv)
{
    setenv("FLEET_GRAPH_CACHE", "8", 1);
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
