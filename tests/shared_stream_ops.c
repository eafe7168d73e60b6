/* Threads that share one stream each get their own values.
 *
 * Op chains as a user writes them (tests/op_chains.h: fresh tensors, inputs
 * copied in, GEMMs plain, with a transposed input view and with a long K that
 * GEMM libraries split, a bias added and ReLU and softmax in place,
 * attention, conv1d), read back and compared with a double-precision
 * reference, from threads that
 * submit to the same stream at the same time: eight threads on one acquired
 * stream, and 64 threads on the default pool (more threads than pool
 * streams, so most of them share). Every result is checked; the test fails
 * with the count of wrong results and the worst error. */
#include "op_chains.h"

static fleet_device *dev;

typedef struct tally {
    int results, wrong;
    double worst;
    int worst_kind;
} tally;

typedef struct worker {
    int index, chains;
    fleet_stream *shared; /* NULL: the thread's own binding */
    pthread_barrier_t *bound; /* all threads hold their binding at once */
    tally t;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    test_rng r = test_rng_make(1000 + (uint64_t)w->index);
    if (w->shared != NULL) {
        ASSERT_OK(fleet_stream_set_current(w->shared));
    } else {
        fleet_stream *s;
        ASSERT_OK(fleet_stream_current(dev, &s));
    }
    pthread_barrier_wait(w->bound);
    for (int c = 0; c < w->chains; c++) {
        int kind = (int)(test_rng_next(&r) % OP_CHAIN_KINDS);
        double err;
        ASSERT_OK(op_chain_run(dev, kind, &r, &err));
        w->t.results++;
        if (!(err <= OP_CHAIN_TOLERANCE)) {
            if (w->t.wrong < 3)
                printf("  thread %d chain %d (%s): normwise error %.3g\n", w->index, c,
                       op_chain_names[kind], err);
            w->t.wrong++;
        }
        if (!(err <= w->t.worst)) {
            w->t.worst = err;
            w->t.worst_kind = kind;
        }
    }
    if (w->shared != NULL)
        ASSERT_OK(fleet_stream_reset_current(dev));
    return NULL;
}

static void run_workers(int threads, int chains, fleet_stream *shared)
{
    worker *w = calloc((size_t)threads, sizeof *w);
    ASSERT_TRUE(w != NULL);
    pthread_barrier_t bound;
    pthread_barrier_init(&bound, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++)
        w[i] = (worker){.index = i, .chains = chains, .shared = shared, .bound = &bound};
    test_run_threads(threads, worker_main, w, sizeof w[0]);
    pthread_barrier_destroy(&bound);
    tally all = {0};
    for (int i = 0; i < threads; i++) {
        all.results += w[i].t.results;
        all.wrong += w[i].t.wrong;
        if (w[i].t.worst > all.worst) {
            all.worst = w[i].t.worst;
            all.worst_kind = w[i].t.worst_kind;
        }
    }
    printf("  %d threads: %d results, %d wrong, worst normwise error %.3g (%s)\n", threads,
           all.results, all.wrong, all.worst, op_chain_names[all.worst_kind]);
    ASSERT_EQ(all.results, threads * chains);
    ASSERT_EQ(all.wrong, 0);
    free(w);
}

TEST(threads_sharing_one_acquired_stream_get_their_own_values)
{
    fleet_stream *s = NULL;
    ASSERT_OK(fleet_stream_acquire(dev, &s));
    run_workers(8, test_scaled(40), s);
    ASSERT_OK(fleet_stream_release(s));
}

TEST(more_threads_than_pool_streams_get_their_own_values)
{
    fleet_stream_pool_stats before = test_pool_stats(dev);
    run_workers(64, test_scaled(48), NULL);
    fleet_stream_pool_stats after = test_pool_stats(dev);
    /* 64 threads over the pool's streams: most of them shared one */
    ASSERT_GE(after.shared_total - before.shared_total, (uint64_t)(64 - before.pool_slots));
}

int main(int argc, char **argv)
{
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
