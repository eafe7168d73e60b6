/* fleet_model_run_host: a run from host buffers into host buffers in one call
 * (what the Python binding calls) gives the plain-C reference's values on
 * every device, from several threads at once; a bad count, size or pointer is
 * refused with its reason, leaves the outputs alone and keeps no memory. */
#include <pthread.h>

#include "model_util.h"

#define THREADS 8

static fleet_device *devs[2];
static int n_devs;

static uint64_t live_blocks(fleet_device *dev)
{
    fleet_memory_stats ms;
    ASSERT_OK(fleet_memory_get_stats(dev, &ms));
    return ms.live_blocks;
}

static void check_run(test_model *tm, int64_t batch, uint64_t seed)
{
    int64_t nx = batch * tm->in_row, ny = batch * tm->out_row;
    float *x = malloc(sizeof(float) * (size_t)nx), *y = malloc(sizeof(float) * (size_t)ny),
          *want = malloc(sizeof(float) * (size_t)ny);
    test_rng r = test_rng_make(seed);
    test_fill_random(x, nx, &r);
    test_model_reference(tm, x, batch, want);
    size_t xb = sizeof(float) * (size_t)nx, yb = sizeof(float) * (size_t)ny;
    ASSERT_OK(fleet_model_run_host(tm->m, batch, (const void *[]){x}, (size_t[]){xb}, 1,
                                   (void *[]){y}, (size_t[]){yb}, 1));
    ASSERT_CLOSE(y, want, ny, 1e-4, 1e-5);
    free(x);
    free(y);
    free(want);
}

TEST(run_host_matches_the_reference)
{
    const int64_t widths[] = {24, 40, 40, 12};
    for (int d = 0; d < n_devs; d++) {
        test_model tm;
        test_model_mlp(devs[d], widths, 4, 3, &tm);
        for (int64_t batch = 1; batch <= 33; batch += 8)
            check_run(&tm, batch, (uint64_t)batch);
        /* The plans' arenas stay (one per batch size); the runs' tensors do not. */
        uint64_t base = live_blocks(devs[d]);
        for (int64_t batch = 1; batch <= 33; batch += 8)
            check_run(&tm, batch, (uint64_t)(100 + batch));
        ASSERT_EQ(live_blocks(devs[d]), base);
        fleet_model_stats st;
        ASSERT_OK(fleet_model_get_stats(tm.m, &st));
        ASSERT_EQ(st.runs, 10);
        test_model_free(&tm);
    }
}

typedef struct {
    test_model *tm;
    int k;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 20; i++)
        check_run(a->tm, 1 + (a->k + i) % 5, (uint64_t)(100 * a->k + i));
    return NULL;
}

TEST(run_host_from_threads_sharing_a_model)
{
    const int64_t widths[] = {16, 32, 8};
    test_model tm;
    test_model_mlp(devs[0], widths, 3, 11, &tm);
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int k = 0; k < THREADS; k++) {
        args[k] = (worker_arg){&tm, k};
        ASSERT_EQ(pthread_create(&th[k], NULL, worker, &args[k]), 0);
    }
    for (int k = 0; k < THREADS; k++)
        pthread_join(th[k], NULL);
    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    ASSERT_EQ(st.runs, THREADS * 20);
    test_model_free(&tm);
}

TEST(run_host_refuses_bad_arguments_and_changes_nothing)
{
    const int64_t widths[] = {8, 16, 4};
    test_model tm;
    test_model_mlp(devs[0], widths, 3, 5, &tm);
    float x[3 * 8] = {0}, y[3 * 4];
    for (int i = 0; i < 12; i++)
        y[i] = 42.0f;
    const void *in[] = {x};
    void *out[] = {y};
    size_t xb[] = {sizeof x}, yb[] = {sizeof y};
    uint64_t base = live_blocks(devs[0]);

    ASSERT_STATUS(fleet_model_run_host(NULL, 3, in, xb, 1, out, yb, 1), FLEET_ERR_NULL_POINTER);
    ASSERT_REFUSED(fleet_model_run_host(tm.m, 3, in, xb, 2, out, yb, 1),
                   FLEET_ERR_INVALID_ARGUMENT, "the model has 1 and 1");
    ASSERT_STATUS(fleet_model_run_host(tm.m, 3, NULL, xb, 1, out, yb, 1), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_model_run_host(tm.m, 3, in, xb, 1, out, NULL, 1), FLEET_ERR_NULL_POINTER);
    ASSERT_REFUSED(fleet_model_run_host(tm.m, 3, (const void *[]){NULL}, xb, 1, out, yb, 1),
                   FLEET_ERR_NULL_POINTER, "input 0 ('x') is NULL");
    /* sizes that are not the shape's at this batch */
    ASSERT_REFUSED(fleet_model_run_host(tm.m, 2, in, xb, 1, out, yb, 1), FLEET_ERR_SHAPE_MISMATCH,
                   "input 0 ('x') is 96 bytes; f32 [2, 8] at batch 2 is 64");
    ASSERT_REFUSED(fleet_model_run_host(tm.m, 3, in, xb, 1, out, (size_t[]){sizeof y - 4}, 1),
                   FLEET_ERR_SHAPE_MISMATCH, "output 0 ('y') is 44 bytes; f32 [3, 4]");
    ASSERT_REFUSED(fleet_model_run_host(tm.m, 0, in, xb, 1, out, yb, 1),
                   FLEET_ERR_INVALID_ARGUMENT, "batch 0 outside");
    for (int i = 0; i < 12; i++)
        ASSERT_TRUE(y[i] == 42.0f);
    ASSERT_EQ(live_blocks(devs[0]), base);
    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    ASSERT_EQ(st.runs, 0);
    /* and then it runs */
    ASSERT_OK(fleet_model_run_host(tm.m, 3, in, xb, 1, out, yb, 1));
    float want[12];
    test_model_reference(&tm, x, 3, want);
    ASSERT_CLOSE(y, want, 12, 1e-5, 1e-6);
    test_model_free(&tm);
}

int main(int argc, char **argv)
{
    n_devs = test_devices(devs);
    return test_main(argc, argv);
}
