/* A model run by more threads than the pool has streams (FLEET_STREAMS=4:
 * three pool slots, so five of eight threads share a slot), while another
 * thread keeps calling fleet_device_synchronize. Every output must equal the
 * reference. On cuda this exercises the capture gate: only a thread holding
 * its stream alone may capture (at most one capture per exclusive slot),
 * threads sharing a stream take turns on its instance and launch the steps
 * one by one, and a device-wide sync waits for a capture in progress
 * instead of breaking it. A thread on an acquired stream captures too. */
#include <stdatomic.h>

#include "model_util.h"

#define THREADS 8

static fleet_device *dev;
static test_model tm;
static atomic_int stop;
static pthread_barrier_t all_bound;

typedef struct worker {
    int index, iters, checked;
    bool acquire;
} worker;

static void *syncer_main(void *arg)
{
    int *syncs = arg;
    while (!atomic_load(&stop)) {
        ASSERT_OK(fleet_device_synchronize(dev));
        (*syncs)++;
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    float x[4 * 32], y[4 * 16], want[4 * 16];
    test_rng r = test_rng_make(40 + (uint64_t)wk->index);
    fleet_stream *acquired = NULL;
    if (wk->acquire) {
        ASSERT_OK(fleet_stream_acquire_timeout(dev, -1, &acquired));
        ASSERT_OK(fleet_stream_set_current(acquired));
    } else {
        fleet_stream *s; /* bind now: all eight hold their binding at once */
        ASSERT_OK(fleet_stream_current(dev, &s));
        pthread_barrier_wait(&all_bound);
    }
    for (int i = 0; i < wk->iters; i++) {
        test_fill_random(x, 4 * 32, &r);
        test_model_run(&tm, dev, x, 4, y);
        test_model_reference(&tm, x, 4, want);
        ASSERT_CLOSE(y, want, 4 * 16, 1e-4, 1e-5);
        wk->checked++;
    }
    if (acquired != NULL) {
        ASSERT_OK(fleet_stream_reset_current(dev));
        ASSERT_OK(fleet_stream_release(acquired));
    }
    return NULL;
}

TEST(more_threads_than_streams_with_device_syncs)
{
    const int64_t widths[] = {32, 64, 64, 16};
    test_model_mlp(dev, widths, 4, 17, &tm);
    int iters = test_scaled(30) < 3 ? 3 : test_scaled(30);

    /* First one thread on an acquired stream, alone: it captures. */
    worker solo = {.index = 99, .iters = 3, .acquire = true};
    test_run_threads(1, worker_main, &solo, sizeof solo);
    ASSERT_EQ(solo.checked, 3);
    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    const char *graphs = getenv("FLEET_MODEL_GRAPHS");
    bool cuda = fleet_device_backend(dev) == FLEET_BACKEND_CUDA &&
                !(graphs && strcmp(graphs, "0") == 0); /* captures expected */
    ASSERT_EQ(st.graph_captures, cuda ? 1u : 0u);

    /* Then eight bound threads, five of them sharing, and a syncer. */
    pthread_t syncer;
    int syncs = 0;
    atomic_store(&stop, 0);
    ASSERT_EQ(pthread_create(&syncer, NULL, syncer_main, &syncs), 0);
    worker wk[THREADS];
    for (int t = 0; t < THREADS; t++)
        wk[t] = (worker){.index = t, .iters = iters};
    pthread_barrier_init(&all_bound, NULL, THREADS);
    test_run_threads(THREADS, worker_main, wk, sizeof wk[0]);
    pthread_barrier_destroy(&all_bound);
    atomic_store(&stop, 1);
    ASSERT_EQ(pthread_join(syncer, NULL), 0);
    for (int t = 0; t < THREADS; t++)
        ASSERT_EQ(wk[t].checked, iters);

    fleet_model_stats after;
    ASSERT_OK(fleet_model_get_stats(tm.m, &after));
    fleet_stream_pool_stats ps = test_pool_stats(dev);
    printf("  runs %llu  captures %llu  replays %llu  eager %llu  device syncs %d  "
           "shared bindings so far %llu\n", (unsigned long long)after.runs,
           (unsigned long long)after.graph_captures, (unsigned long long)after.graph_replays,
           (unsigned long long)after.eager_runs, syncs, (unsigned long long)ps.shared_total);
    ASSERT_GE(ps.shared_total, (uint64_t)(THREADS - 3));
    ASSERT_EQ(after.runs, 3u + (uint64_t)THREADS * (uint64_t)iters);
    ASSERT_EQ(after.graph_replays + after.eager_runs, after.runs);
    if (cuda) {
        /* at most one capture per pool slot in the second phase */
        ASSERT_LE(after.graph_captures, 1u + 3u);
        ASSERT_GE(after.eager_runs, 1u);
    } else {
        ASSERT_EQ(after.graph_captures, 0u);
    }
    test_model_free(&tm);
}

int main(int argc, char **argv)
{
    setenv("FLEET_STREAMS", "4", 1);
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
