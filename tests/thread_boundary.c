/* Thread Boundary: one Linear layer (weight and bias created once by the main
 * thread) shared read-only by 2..8 threads, each computing out = x @ W + b
 * with its own input on its own stream. Outputs equal the plain-C reference;
 * each thread's stream id is recorded, stable, and distinct from the others'
 * and from the main thread's (the pool is far from full). */
#include "test_util.h"

#define IN 64
#define OUT 32
#define BATCH 8
#define MAX_THREADS 8

static fleet_device *dev;
static float w_host[IN * OUT], b_host[OUT];
static fleet_tensor *weight, *bias;
static fleet_event *weights_ready;
static int main_stream_id;

typedef struct worker {
    int index;
    int round;
    int iters;
    int stream_id;
    int checked;
} worker;

static pthread_barrier_t start_line;

static void *worker_main(void *arg)
{
    worker *wk = arg;
    float x[BATCH * IN], got[BATCH * OUT], want[BATCH * OUT];
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    wk->stream_id = fleet_stream_id(s);
    /* The weights were uploaded on the main thread's stream: order after it. */
    ASSERT_OK(fleet_stream_wait_event(s, weights_ready));
    pthread_barrier_wait(&start_line);
    test_rng r = test_rng_make(100 * (uint64_t)wk->round + (uint64_t)wk->index);
    for (int i = 0; i < wk->iters; i++) {
        test_fill_random(x, BATCH * IN, &r);
        fleet_tensor *tx = test_tensor_2d(dev, BATCH, IN, x);
        fleet_tensor *ty = test_tensor_2d(dev, BATCH, OUT, NULL);
        ASSERT_OK(fleet_matmul(tx, weight, ty));
        ASSERT_OK(fleet_add(ty, bias, ty));
        test_tensor_read(ty, got);
        ref_matmul(x, w_host, b_host, want, BATCH, IN, OUT);
        ASSERT_CLOSE(got, want, BATCH * OUT, 1e-5, test_matmul_atol(IN));
        ASSERT_EQ(test_current_stream_id(dev), wk->stream_id);
        ASSERT_OK(fleet_tensor_release(tx));
        ASSERT_OK(fleet_tensor_release(ty));
        wk->checked++;
    }
    return NULL;
}

TEST(shared_linear_2_to_8_threads)
{
    ASSERT_OK(fleet_device_default(&dev));
    test_rng r = test_rng_make(7);
    test_fill_random(w_host, IN * OUT, &r);
    test_fill_random(b_host, OUT, &r);

    /* The main thread creates the layer: this binds it to a pool stream. */
    int64_t bshape[1] = {OUT};
    weight = test_tensor_2d(dev, IN, OUT, w_host);
    bias = test_tensor_new(dev, 1, bshape);
    ASSERT_OK(fleet_tensor_copy_from_host(bias, b_host, sizeof b_host));
    fleet_stream *main_stream;
    ASSERT_OK(fleet_stream_current(dev, &main_stream));
    main_stream_id = fleet_stream_id(main_stream);
    ASSERT_GE(main_stream_id, 1);
    ASSERT_OK(fleet_event_create(dev, &weights_ready));
    ASSERT_OK(fleet_event_record(weights_ready, main_stream));

    int iters = test_scaled(10);
    for (int n = 2; n <= MAX_THREADS; n++) {
        worker w[MAX_THREADS];
        for (int i = 0; i < n; i++)
            w[i] = (worker){.index = i, .round = n, .iters = iters, .stream_id = -1};
        ASSERT_EQ(pthread_barrier_init(&start_line, NULL, (unsigned)n), 0);
        test_run_threads(n, worker_main, w, sizeof w[0]);
        pthread_barrier_destroy(&start_line);

        printf("  %d threads: stream ids", n);
        for (int i = 0; i < n; i++) {
            printf(" %d", w[i].stream_id);
            ASSERT_EQ(w[i].checked, iters);
            ASSERT_GE(w[i].stream_id, 1);
            ASSERT_NE(w[i].stream_id, main_stream_id);
            for (int j = 0; j < i; j++)
                ASSERT_NE(w[i].stream_id, w[j].stream_id);
        }
        printf("\n");
        /* Only the main thread's binding is left. */
        fleet_stream_pool_stats st = test_pool_stats(dev);
        ASSERT_EQ(st.exclusive_in_use, 1);
        ASSERT_EQ(st.shared_bindings, 0);
    }

    /* The shared layer was only read. */
    float w_back[IN * OUT], b_back[OUT];
    test_tensor_read(weight, w_back);
    test_tensor_read(bias, b_back);
    ASSERT_EQ(memcmp(w_back, w_host, sizeof w_back), 0);
    ASSERT_EQ(memcmp(b_back, b_host, sizeof b_back), 0);
    ASSERT_OK(fleet_event_destroy(weights_ready));
    ASSERT_OK(fleet_tensor_release(weight));
    ASSERT_OK(fleet_tensor_release(bias));
}

TEST_MAIN()
