/* Real Models Parallel: the MLP 256-512-512-256, the Conv1d net 1->64->64->1
 * (length 1024) and a transformer encoder block, each shared by 2, 4 and 8
 * threads running it at once. The single-thread output of every input is
 * first checked against a plain-C reference; then every output of every
 * thread must equal the single-thread output for its input. One plan per
 * model (one batch size), whatever the number of threads; on cuda the runs
 * replay CUDA graphs. */
#include "model_util.h"

#define MAX_THREADS 8
#define RTOL 1e-5
#define ATOL 1e-5

static fleet_device *dev;

typedef struct model_case {
    const char *name;
    test_model tm;
    int64_t batch;
    float *x[MAX_THREADS];    /* each thread's input                */
    float *want[MAX_THREADS]; /* its single-thread output           */
} model_case;

typedef struct worker {
    model_case *mc;
    int index, iters;
    int checked;
    pthread_barrier_t *start;
} worker;

static void *worker_main(void *arg)
{
    worker *wk = arg;
    model_case *mc = wk->mc;
    size_t n = (size_t)(mc->batch * mc->tm.out_row);
    float *got = malloc(sizeof(float) * n);
    pthread_barrier_wait(wk->start);
    for (int i = 0; i < wk->iters; i++) {
        memset(got, 0, sizeof(float) * n);
        test_model_run(&mc->tm, dev, mc->x[wk->index], mc->batch, got);
        ASSERT_CLOSE(got, mc->want[wk->index], (int64_t)n, RTOL, ATOL);
        wk->checked++;
    }
    free(got);
    return NULL;
}

static void prepare(model_case *mc)
{
    size_t nin = (size_t)(mc->batch * mc->tm.in_row), nout = (size_t)(mc->batch * mc->tm.out_row);
    float *ref = malloc(sizeof(float) * nout);
    for (int t = 0; t < MAX_THREADS; t++) {
        test_rng r = test_rng_make(1000 + (uint64_t)t);
        mc->x[t] = malloc(sizeof(float) * nin);
        mc->want[t] = malloc(sizeof(float) * nout);
        test_fill_random(mc->x[t], (int64_t)nin, &r);
        test_model_run(&mc->tm, dev, mc->x[t], mc->batch, mc->want[t]);
        test_model_reference(&mc->tm, mc->x[t], mc->batch, ref);
        ASSERT_CLOSE(mc->want[t], ref, (int64_t)nout, 1e-3, 1e-4);
    }
    free(ref);
}

static void run_parallel(model_case *mc)
{
    fleet_model_stats before, after;
    ASSERT_OK(fleet_model_get_stats(mc->tm.m, &before));
    int iters = test_scaled(mc->tm.kind == TM_MLP ? 40 : 8);
    for (int threads = 2; threads <= MAX_THREADS; threads *= 2) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)threads);
        worker wk[MAX_THREADS];
        for (int t = 0; t < threads; t++)
            wk[t] = (worker){.mc = mc, .index = t, .iters = iters, .start = &start};
        test_run_threads(threads, worker_main, wk, sizeof wk[0]);
        for (int t = 0; t < threads; t++)
            ASSERT_EQ(wk[t].checked, iters);
        pthread_barrier_destroy(&start);
    }
    ASSERT_OK(fleet_model_get_stats(mc->tm.m, &after));
    printf("  %-24s runs %llu  compiles %llu  instances %llu  captures %llu  replays %llu  "
           "arena %zu B\n", mc->name, (unsigned long long)after.runs,
           (unsigned long long)after.compiles, (unsigned long long)after.instances_created,
           (unsigned long long)after.graph_captures, (unsigned long long)after.graph_replays,
           after.arena_bytes_max);
    ASSERT_EQ(after.compiles, 1u); /* one batch size: compiled once, by prepare() */
    ASSERT_EQ(after.runs - before.runs, (uint64_t)iters * (2 + 4 + 8));
    const char *graphs = getenv("FLEET_MODEL_GRAPHS");
    if (fleet_device_backend(dev) == FLEET_BACKEND_CUDA && !(graphs && strcmp(graphs, "0") == 0))
        ASSERT_GE(after.graph_replays, 1u);
    else
        ASSERT_EQ(after.graph_replays, 0u);
}

static void release(model_case *mc)
{
    for (int t = 0; t < MAX_THREADS; t++) {
        free(mc->x[t]);
        free(mc->want[t]);
    }
    test_model_free(&mc->tm);
}

TEST(mlp_256_512_512_256)
{
    model_case mc = {.name = "MLP 256-512-512-256", .batch = 4};
    const int64_t widths[] = {256, 512, 512, 256};
    test_model_mlp(dev, widths, 4, 7, &mc.tm);
    prepare(&mc);
    run_parallel(&mc);
    release(&mc);
}

TEST(conv1d_1_64_64_1_len1024)
{
    model_case mc = {.name = "Conv1d 1-64-64-1 L1024", .batch = 2};
    const int64_t channels[] = {1, 64, 64, 1};
    test_model_conv(dev, channels, 4, 3, 1024, 11, &mc.tm);
    prepare(&mc);
    run_parallel(&mc);
    release(&mc);
}

TEST(encoder_block)
{
    model_case mc = {.name = "encoder S16 D64 H4 F256", .batch = 2};
    test_model_encoder(dev, 16, 64, 4, 256, 13, &mc.tm);
    prepare(&mc);
    run_parallel(&mc);
    release(&mc);
}

int main(int argc, char **argv)
{
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
