/* Cross-Stream Tensor: a producer thread on stream A and a consumer thread on
 * stream B run concurrently, ordered by an event (recorded on A, waited on by
 * B); the consumer's values are exact. With record_stream, a tensor freed on
 * its own stream while another stream still reads it is withheld: allocations
 * made meanwhile on the freeing stream and filled with poison never get its
 * block, so the readers compute from the original values; once every reader
 * passed, the block is reused. */
#include "test_util.h"

#define M 16
#define K 32
#define N 24
#define P 8

static fleet_device *dev;
static float x_host[M * K], w1_host[K * N], w2_host[N * P];
static float z_expect[M * P]; /* the chain computed on one thread, one stream */

/* z = relu(x @ w1) @ w2 on the calling thread's stream. */
static void *chain_on_one_stream(void *arg)
{
    float *z = arg;
    fleet_tensor *x = test_tensor_2d(dev, M, K, x_host), *w1 = test_tensor_2d(dev, K, N, w1_host);
    fleet_tensor *w2 = test_tensor_2d(dev, N, P, w2_host);
    fleet_tensor *y = test_tensor_2d(dev, M, N, NULL), *tz = test_tensor_2d(dev, M, P, NULL);
    ASSERT_OK(fleet_matmul(x, w1, y));
    ASSERT_OK(fleet_relu(y, y));
    ASSERT_OK(fleet_matmul(y, w2, tz));
    test_tensor_read(tz, z);
    fleet_tensor *all[5] = {x, w1, w2, y, tz};
    for (int i = 0; i < 5; i++)
        ASSERT_OK(fleet_tensor_release(all[i]));
    return NULL;
}

/* ---- producer / consumer on two threads ------------------------------------- */

static pthread_barrier_t handed_over, consumer_queued;
static fleet_tensor *shared_y;
static fleet_event *y_ready;
static test_gate producer_gate;
static int id_a, id_b;

static void *producer(void *arg)
{
    (void)arg;
    fleet_stream *a;
    ASSERT_OK(fleet_stream_current(dev, &a));
    id_a = fleet_stream_id(a);
    fleet_tensor *x = test_tensor_2d(dev, M, K, x_host), *w1 = test_tensor_2d(dev, K, N, w1_host);
    shared_y = test_tensor_2d(dev, M, N, NULL);
    ASSERT_OK(fleet_event_create(dev, &y_ready));
    /* Hold A so the consumer surely queues its work before y exists. */
    ASSERT_OK(fleet_stream_launch_host_func(a, test_gate_wait, &producer_gate));
    ASSERT_OK(fleet_matmul(x, w1, shared_y));
    ASSERT_OK(fleet_relu(shared_y, shared_y));
    ASSERT_OK(fleet_event_record(y_ready, a));
    pthread_barrier_wait(&handed_over);
    pthread_barrier_wait(&consumer_queued);
    ASSERT_STATUS(fleet_event_query(y_ready), FLEET_ERR_NOT_READY);
    test_gate_open(&producer_gate);
    /* Drop the producer's references; B recorded its use of y. */
    ASSERT_OK(fleet_tensor_release(shared_y));
    ASSERT_OK(fleet_tensor_release(x));
    ASSERT_OK(fleet_tensor_release(w1));
    ASSERT_OK(fleet_stream_synchronize(a));
    return NULL;
}

static void *consumer(void *arg)
{
    float *z = arg;
    fleet_stream *b;
    ASSERT_OK(fleet_stream_current(dev, &b));
    id_b = fleet_stream_id(b);
    fleet_tensor *w2 = test_tensor_2d(dev, N, P, w2_host), *tz = test_tensor_2d(dev, M, P, NULL);
    pthread_barrier_wait(&handed_over);
    ASSERT_OK(fleet_stream_wait_event(b, y_ready));
    ASSERT_OK(fleet_tensor_record_stream(shared_y, b));
    ASSERT_OK(fleet_matmul(shared_y, w2, tz));
    ASSERT_STATUS(fleet_stream_query(b), FLEET_ERR_NOT_READY); /* waits for A */
    pthread_barrier_wait(&consumer_queued);
    test_tensor_read(tz, z);
    ASSERT_OK(fleet_tensor_release(w2));
    ASSERT_OK(fleet_tensor_release(tz));
    return NULL;
}

TEST(producer_consumer_event)
{
    ASSERT_OK(fleet_device_default(&dev));
    test_rng r = test_rng_make(5);
    test_fill_random(x_host, M * K, &r);
    test_fill_random(w1_host, K * N, &r);
    test_fill_random(w2_host, N * P, &r);
    test_run_threads(1, chain_on_one_stream, z_expect, 0);
    /* The chain itself against the plain-C reference. */
    float y_ref[M * N], z_ref[M * P];
    ref_matmul(x_host, w1_host, NULL, y_ref, M, K, N);
    for (int i = 0; i < M * N; i++)
        y_ref[i] = y_ref[i] > 0 ? y_ref[i] : 0;
    ref_matmul(y_ref, w2_host, NULL, z_ref, M, N, P);
    ASSERT_CLOSE(z_expect, z_ref, M * P, 1e-4, 1e-4);

    for (int round = 0; round < test_scaled(10); round++) {
        float z[M * P];
        memset(z, 0, sizeof z);
        test_gate_init(&producer_gate);
        ASSERT_EQ(pthread_barrier_init(&handed_over, NULL, 2), 0);
        ASSERT_EQ(pthread_barrier_init(&consumer_queued, NULL, 2), 0);
        pthread_t tp, tc;
        ASSERT_EQ(pthread_create(&tp, NULL, producer, NULL), 0);
        ASSERT_EQ(pthread_create(&tc, NULL, consumer, z), 0);
        ASSERT_EQ(pthread_join(tp, NULL), 0);
        ASSERT_EQ(pthread_join(tc, NULL), 0);
        ASSERT_NE(id_a, id_b);
        ASSERT_EQ(memcmp(z, z_expect, sizeof z), 0); /* exact */
        ASSERT_OK(fleet_event_destroy(y_ready));
        pthread_barrier_destroy(&handed_over);
        pthread_barrier_destroy(&consumer_queued);
        test_gate_destroy(&producer_gate);
    }
    fleet_memory_stats m;
    ASSERT_OK(fleet_device_synchronize(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &m));
    ASSERT_EQ(m.live_blocks, 0);
    /* Every y was withheld for its consumer; all consumers finished, so
     * empty_cache reclaims them all. */
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &m));
    ASSERT_EQ(m.pending, 0);
    ASSERT_EQ(m.reserved, 0);
}

/* ---- record_stream: withheld while readers run (poisoning) ---------------- */

#define R 64
#define C 64
#define POISON_PER_ROUND 4
#define MAX_READERS 3

static void *record_stream_poison(void *arg)
{
    int nreaders = *(int *)arg;
    float v[R * C], want[R * C], got[R * C], poison[R * C];
    for (int i = 0; i < R * C; i++) {
        v[i] = (float)(1 + i % 97) * 0.25f;
        want[i] = v[i] + v[i];
        poison[i] = -7777.0f;
    }
    /* Start with nothing pending (earlier tests' blocks are reclaimed lazily). */
    fleet_memory_stats m;
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &m));
    ASSERT_EQ(m.pending, 0);

    fleet_stream *a, *rd[MAX_READERS];
    ASSERT_OK(fleet_stream_acquire(dev, &a));
    ASSERT_OK(fleet_stream_set_current(a));
    fleet_tensor *x = test_tensor_2d(dev, R, C, v);
    ASSERT_OK(fleet_stream_synchronize(a));
    const void *old = fleet_tensor_data(x);
    size_t nbytes = fleet_tensor_nbytes(x);

    test_gate gate[MAX_READERS];
    fleet_tensor *out[MAX_READERS];
    for (int i = 0; i < nreaders; i++) {
        ASSERT_OK(fleet_stream_acquire(dev, &rd[i]));
        ASSERT_OK(fleet_stream_set_current(rd[i]));
        out[i] = test_tensor_2d(dev, R, C, NULL);
        test_gate_init(&gate[i]);
        ASSERT_OK(fleet_stream_launch_host_func(rd[i], test_gate_wait, &gate[i]));
        ASSERT_OK(fleet_add(x, x, out[i])); /* reads x once the gate opens */
        ASSERT_OK(fleet_tensor_record_stream(x, rd[i]));
    }

    /* Free x on its own stream while every reader is still held. */
    ASSERT_OK(fleet_stream_set_current(a));
    ASSERT_OK(fleet_tensor_release(x));
    ASSERT_OK(fleet_memory_get_stats(dev, &m));
    ASSERT_EQ(m.pending, nbytes);

    fleet_tensor *kept[(MAX_READERS + 1) * POISON_PER_ROUND + 8];
    int nkept = 0;
    for (int i = 0; i < nreaders; i++) {
        /* Reuse pressure on A: same-size blocks, filled with poison. */
        ASSERT_OK(fleet_stream_set_current(a));
        for (int j = 0; j < POISON_PER_ROUND; j++) {
            fleet_tensor *p = test_tensor_2d(dev, R, C, poison);
            ASSERT_TRUE(fleet_tensor_data(p) != old);
            kept[nkept++] = p;
        }
        ASSERT_OK(fleet_stream_synchronize(a)); /* the poison is written */
        test_gate_open(&gate[i]);
        ASSERT_OK(fleet_stream_set_current(rd[i]));
        test_tensor_read(out[i], got);
        ASSERT_EQ(memcmp(got, want, sizeof got), 0); /* from the original x */
        if (i + 1 < nreaders) { /* others still read it */
            ASSERT_OK(fleet_memory_get_stats(dev, &m));
            ASSERT_EQ(m.pending, nbytes);
        }
    }

    /* Every reader passed: the block is free for A again. */
    ASSERT_OK(fleet_stream_set_current(a));
    int reused = 0;
    for (int j = 0; j < 8 && !reused; j++) {
        fleet_tensor *p = test_tensor_2d(dev, R, C, NULL);
        reused = fleet_tensor_data(p) == old;
        kept[nkept++] = p;
    }
    ASSERT_TRUE(reused);
    ASSERT_OK(fleet_memory_get_stats(dev, &m));
    ASSERT_EQ(m.pending, 0);

    for (int i = 0; i < nkept; i++)
        ASSERT_OK(fleet_tensor_release(kept[i]));
    for (int i = 0; i < nreaders; i++) {
        ASSERT_OK(fleet_tensor_release(out[i]));
        ASSERT_OK(fleet_stream_synchronize(rd[i]));
        ASSERT_OK(fleet_stream_release(rd[i]));
        test_gate_destroy(&gate[i]);
    }
    ASSERT_OK(fleet_stream_synchronize(a));
    ASSERT_OK(fleet_stream_reset_current(dev));
    ASSERT_OK(fleet_stream_release(a));
    return NULL;
}

TEST(record_stream_one_reader_poison)
{
    dev = test_gate_device(); /* gated streams: see test_util.h */
    int n = 1;
    test_run_threads(1, record_stream_poison, &n, 0);
}

TEST(record_stream_three_readers_poison)
{
    dev = test_gate_device(); /* gated streams: see test_util.h */
    int n = 3;
    test_run_threads(1, record_stream_poison, &n, 0);
}

TEST_MAIN()
