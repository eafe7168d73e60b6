/* Simple Parallel: 2 and 4 threads run matmuls at once; every result equals
 * the single-thread reference bit for bit (the same fleet matmul run on one
 * thread first) and the double-accumulating plain-C reference within 1e-5. */
#include "test_util.h"

#define NSETS 4
#define M 48
#define K 96
#define N 64

static float in_a[NSETS][M * K], in_b[NSETS][K * N];
static float ref_fleet[NSETS][M * N]; /* single-thread fleet result */
static float ref_plain[NSETS][M * N]; /* ref_matmul                  */
static fleet_device *dev;

/* out = a @ b for input set s on the calling thread's stream. */
static void fleet_matmul_host(int s, float *out)
{
    fleet_tensor *a = test_tensor_2d(dev, M, K, in_a[s]);
    fleet_tensor *b = test_tensor_2d(dev, K, N, in_b[s]);
    fleet_tensor *c = test_tensor_2d(dev, M, N, NULL);
    ASSERT_OK(fleet_matmul(a, b, c));
    test_tensor_read(c, out);
    ASSERT_OK(fleet_tensor_release(a));
    ASSERT_OK(fleet_tensor_release(b));
    ASSERT_OK(fleet_tensor_release(c));
}

static void *reference_thread(void *arg)
{
    (void)arg;
    for (int s = 0; s < NSETS; s++) {
        fleet_matmul_host(s, ref_fleet[s]);
        ref_matmul(in_a[s], in_b[s], NULL, ref_plain[s], M, K, N);
        ASSERT_CLOSE(ref_fleet[s], ref_plain[s], M * N, 1e-5, test_matmul_atol(K));
    }
    return NULL;
}

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    ASSERT_OK(fleet_device_default(&dev));
    test_rng r = test_rng_make(11);
    for (int s = 0; s < NSETS; s++) {
        test_fill_random(in_a[s], M * K, &r);
        test_fill_random(in_b[s], K * N, &r);
    }
    /* The single-thread reference, computed alone on its own thread. */
    test_run_threads(1, reference_thread, NULL, 0);
}

typedef struct worker {
    int index;
    int iters;
    int stream_id;
    int checked;
} worker;

static pthread_barrier_t start_line;

static void *worker_main(void *arg)
{
    worker *w = arg;
    float got[M * N];
    w->stream_id = test_current_stream_id(dev);
    pthread_barrier_wait(&start_line); /* all threads submit at once */
    for (int i = 0; i < w->iters; i++) {
        int s = (w->index + i) % NSETS;
        fleet_matmul_host(s, got);
        ASSERT_EQ(memcmp(got, ref_fleet[s], sizeof got), 0);
        ASSERT_CLOSE(got, ref_plain[s], M * N, 1e-5, test_matmul_atol(K));
        ASSERT_EQ(test_current_stream_id(dev), w->stream_id);
        w->checked++;
    }
    return NULL;
}

static void run_parallel(int nthreads)
{
    setup();
    worker w[8];
    memset(w, 0, sizeof w);
    int iters = test_scaled(20);
    for (int i = 0; i < nthreads; i++)
        w[i] = (worker){.index = i, .iters = iters};
    ASSERT_EQ(pthread_barrier_init(&start_line, NULL, (unsigned)nthreads), 0);
    test_run_threads(nthreads, worker_main, w, sizeof w[0]);
    pthread_barrier_destroy(&start_line);
    for (int i = 0; i < nthreads; i++) {
        ASSERT_EQ(w[i].checked, iters);
        ASSERT_GE(w[i].stream_id, 1);
        for (int j = 0; j < i; j++)
            ASSERT_NE(w[i].stream_id, w[j].stream_id); /* pool far from full */
    }
    fleet_stream_pool_stats st = test_pool_stats(dev);
    ASSERT_EQ(st.exclusive_in_use, 0);
    ASSERT_EQ(st.shared_bindings, 0);
}

TEST(parallel_2_threads)
{
    run_parallel(2);
}

TEST(parallel_4_threads)
{
    run_parallel(4);
}

TEST_MAIN()
