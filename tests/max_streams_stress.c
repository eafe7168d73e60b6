/* Max Streams Stress: as many threads as pool slots (31 with the default
 * FLEET_STREAMS=32), all alive at once, each on a stream of its own (ids
 * exactly 1..31), each running 100 iterations (scaled) of
 * out = relu(a @ b + bias) with every result checked. The main thread never
 * binds. */
#include "test_util.h"

#define MAXT 64
#define M 16
#define K 32
#define N 16
#define NVAR 3 /* input variants per thread */

static fleet_device *dev;
static pthread_barrier_t all_bound, stats_read;

typedef struct worker {
    int index;
    int iters;
    int id;
    int checked;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct inputs {
        float a[NVAR][M * K], b[NVAR][K * N], bias[NVAR][N], want[NVAR][M * N];
    } *in = malloc(sizeof *in);
    ASSERT_TRUE(in != NULL);
    float(*a)[M * K] = in->a, (*b)[K * N] = in->b, (*bias)[N] = in->bias;
    float(*want)[M * N] = in->want;
    float got[M * N];
    test_rng r = test_rng_make(31 + (uint64_t)w->index);
    for (int v = 0; v < NVAR; v++) {
        test_fill_random(a[v], M * K, &r);
        test_fill_random(b[v], K * N, &r);
        test_fill_random(bias[v], N, &r);
        ref_matmul(a[v], b[v], NULL, want[v], M, K, N);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float y = want[v][i * N + j] + bias[v][j];
                want[v][i * N + j] = y > 0 ? y : 0;
            }
    }
    w->id = test_current_stream_id(dev);
    pthread_barrier_wait(&all_bound);
    pthread_barrier_wait(&stats_read);

    int64_t bshape[1] = {N};
    fleet_tensor *ta[NVAR], *tb[NVAR], *tbias[NVAR];
    for (int v = 0; v < NVAR; v++) {
        ta[v] = test_tensor_2d(dev, M, K, a[v]);
        tb[v] = test_tensor_2d(dev, K, N, b[v]);
        tbias[v] = test_tensor_new(dev, 1, bshape);
        ASSERT_OK(fleet_tensor_copy_from_host(tbias[v], bias[v], sizeof(float) * N));
    }
    fleet_tensor *out = test_tensor_2d(dev, M, N, NULL);
    for (int i = 0; i < w->iters; i++) {
        int v = (i + w->index) % NVAR;
        ASSERT_OK(fleet_matmul(ta[v], tb[v], out));
        ASSERT_OK(fleet_add(out, tbias[v], out));
        ASSERT_OK(fleet_relu(out, out));
        test_tensor_read(out, got);
        ASSERT_CLOSE(got, want[v], M * N, 1e-5, test_matmul_atol(K) + 1e-6);
        w->checked++;
    }
    ASSERT_EQ(test_current_stream_id(dev), w->id);
    for (int v = 0; v < NVAR; v++) {
        ASSERT_OK(fleet_tensor_release(ta[v]));
        ASSERT_OK(fleet_tensor_release(tb[v]));
        ASSERT_OK(fleet_tensor_release(tbias[v]));
    }
    ASSERT_OK(fleet_tensor_release(out));
    free(in);
    return NULL;
}

TEST(one_stream_per_thread_all_slots)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    ASSERT_EQ(st0.exclusive_in_use, 0);
    int n = st0.pool_slots;
    ASSERT_TRUE(n <= MAXT);
    if (getenv("FLEET_STREAMS") == NULL)
        ASSERT_EQ(n, 31);
    int iters = test_scaled(100);

    worker w[MAXT];
    pthread_t th[MAXT];
    memset(w, 0, sizeof w);
    ASSERT_EQ(pthread_barrier_init(&all_bound, NULL, (unsigned)n + 1), 0);
    ASSERT_EQ(pthread_barrier_init(&stats_read, NULL, (unsigned)n + 1), 0);
    for (int i = 0; i < n; i++) {
        w[i] = (worker){.index = i, .iters = iters, .id = -1};
        ASSERT_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    pthread_barrier_wait(&all_bound);
    fleet_stream_pool_stats live = test_pool_stats(dev);
    ASSERT_EQ(live.exclusive_in_use, n);
    ASSERT_EQ(live.shared_bindings, 0);
    ASSERT_EQ(live.shared_total, st0.shared_total);
    /* Exactly the ids 1..n, each once. */
    int seen[MAXT + 1] = {0};
    for (int i = 0; i < n; i++) {
        ASSERT_GE(w[i].id, 1);
        ASSERT_LE(w[i].id, n);
        seen[w[i].id]++;
    }
    for (int id = 1; id <= n; id++)
        ASSERT_EQ(seen[id], 1);
    pthread_barrier_wait(&stats_read);

    for (int i = 0; i < n; i++) {
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
        ASSERT_EQ(w[i].checked, iters);
    }
    pthread_barrier_destroy(&all_bound);
    pthread_barrier_destroy(&stats_read);
    printf("  %d threads x %d iterations (3 ops each), all values checked\n", n, iters);

    fleet_stream_pool_stats after = test_pool_stats(dev);
    ASSERT_EQ(after.exclusive_in_use, 0);
    ASSERT_EQ(after.shared_bindings, 0);
    ASSERT_EQ(after.shared_total, st0.shared_total);
    ASSERT_EQ(after.streams_created >= n, 1);
    fleet_memory_stats m;
    ASSERT_OK(fleet_memory_get_stats(dev, &m));
    ASSERT_EQ(m.live_blocks, 0);
}

TEST_MAIN()
