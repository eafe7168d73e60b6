/* A model shared by more threads than the pool has streams gives every run
 * its own rows.
 *
 * 32 threads run one MLP 32-64-64-16 with a random batch size per run (1..55,
 * so threads of one stream run different plans at the same time, each on
 * its own (plan, stream) instance), fresh input and output tensors each time,
 * and every output is read back and checked against the double reference.
 * FLEET_STREAMS defaults to 4 here (three pool slots); CTest runs this
 * program again with FLEET_STREAMS=3 FLEET_GRAPH_CACHE=2 (instances evicted
 * under load) and with the default 32 streams. */
#include <stdatomic.h>

#include "model_util.h"

#define THREADS 32
#define MAX_BATCH 55

static fleet_device *dev;
static test_model tm;

typedef struct worker {
    int index, runs, wrong;
    double worst;
    pthread_barrier_t *bound;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    static float x[THREADS][MAX_BATCH * 32], y[THREADS][MAX_BATCH * 16], want[THREADS][MAX_BATCH * 16];
    test_rng r = test_rng_make(77 + (uint64_t)w->index);
    fleet_stream *s; /* bind now: every thread holds its binding at once */
    ASSERT_OK(fleet_stream_current(dev, &s));
    pthread_barrier_wait(w->bound);
    for (int i = 0; i < w->runs; i++) {
        int64_t batch = 1 + (int64_t)(test_rng_next(&r) % MAX_BATCH);
        test_fill_random(x[w->index], batch * 32, &r);
        test_model_run(&tm, dev, x[w->index], batch, y[w->index]);
        test_model_reference(&tm, x[w->index], batch, want[w->index]);
        double err = test_normwise_error(y[w->index], want[w->index], batch * 16);
        if (!(err <= 1e-5)) {
            if (w->wrong < 3)
                printf("  thread %d run %d (batch %lld): normwise error %.3g\n", w->index, i,
                       (long long)batch, err);
            w->wrong++;
        }
        if (!(err <= w->worst))
            w->worst = err;
    }
    return NULL;
}

TEST(a_model_shared_by_more_threads_than_streams_gives_each_run_its_own_rows)
{
    const int64_t widths[] = {32, 64, 64, 16};
    test_model_mlp(dev, widths, 4, 23, &tm);
    int runs = test_scaled(40);
    worker w[THREADS];
    pthread_barrier_t bound;
    pthread_barrier_init(&bound, NULL, THREADS);
    for (int t = 0; t < THREADS; t++)
        w[t] = (worker){.index = t, .runs = runs, .bound = &bound};
    test_run_threads(THREADS, worker_main, w, sizeof w[0]);
    pthread_barrier_destroy(&bound);

    int wrong = 0;
    double worst = 0;
    for (int t = 0; t < THREADS; t++) {
        wrong += w[t].wrong;
        worst = w[t].worst > worst ? w[t].worst : worst;
    }
    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    fleet_stream_pool_stats ps = test_pool_stats(dev);
    printf("  %d runs, %d wrong, worst normwise error %.3g; plans %llu, captures %llu, replays "
           "%llu, eager %llu, evictions %llu; %d pool slots, %llu shared bindings\n",
           THREADS * runs, wrong, worst, (unsigned long long)st.plans,
           (unsigned long long)st.graph_captures, (unsigned long long)st.graph_replays,
           (unsigned long long)st.eager_runs, (unsigned long long)st.evictions, ps.pool_slots,
           (unsigned long long)ps.shared_total);
    ASSERT_EQ(wrong, 0);
    ASSERT_EQ(st.runs, (uint64_t)THREADS * (uint64_t)runs);
    ASSERT_EQ(st.graph_replays + st.eager_runs, st.runs);
    if (ps.pool_slots < THREADS)
        ASSERT_GE(ps.shared_total, (uint64_t)(THREADS - ps.pool_slots));
    test_model_free(&tm);
}

int main(int argc, char **argv)
{
    setenv("FLEET_STREAMS", "4", 0); /* CTest's variants set their own */
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
