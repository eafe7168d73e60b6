/* Thread Churn: 50 sequential short-lived threads, then 4 spawners each
 * running 20 short-lived threads one after another (4 alive at once, binding
 * and exiting concurrently). Each thread runs a checked op. Slots return on
 * exit: afterwards the pool is empty, nothing was shared, and the allocator
 * holds no live block. The main thread never binds. */
#include "test_util.h"

static fleet_device *dev;
static atomic_int ops_checked;

typedef struct churner {
    uint64_t seed;
    int id;
} churner;

/* One short life: bind, one checked matmul + a checked add, exit. */
static void *short_lived(void *arg)
{
    churner *c = arg;
    c->id = test_matmul_check(dev, 8, 16, 12, c->seed);
    float x[6] = {1, -2, 3, -4, 5, -6}, y[6];
    float bias[3] = {0.5f, 0.25f, -1};
    int64_t bshape[1] = {3};
    fleet_tensor *tx = test_tensor_2d(dev, 2, 3, x);
    fleet_tensor *tb = test_tensor_new(dev, 1, bshape);
    ASSERT_OK(fleet_tensor_copy_from_host(tb, bias, sizeof bias));
    ASSERT_OK(fleet_add(tx, tb, tx));
    ASSERT_OK(fleet_relu(tx, tx));
    test_tensor_read(tx, y);
    const float want[6] = {1.5f, 0, 2, 0, 5.25f, 0};
    ASSERT_EQ(memcmp(y, want, sizeof y), 0);
    ASSERT_OK(fleet_tensor_release(tx));
    ASSERT_OK(fleet_tensor_release(tb));
    atomic_fetch_add(&ops_checked, 1);
    return NULL;
}

static void check_empty(const fleet_stream_pool_stats *st0, uint64_t expect_bindings,
                        uint64_t live_blocks0)
{
    fleet_stream_pool_stats st = test_pool_stats(dev);
    ASSERT_EQ(st.exclusive_in_use, 0);
    ASSERT_EQ(st.shared_bindings, 0);
    ASSERT_EQ(st.acquired_in_use, 0);
    ASSERT_EQ(st.bindings_total - st0->bindings_total, expect_bindings);
    ASSERT_EQ(st.shared_total, st0->shared_total);
    ASSERT_LE(st.streams_created, st.capacity);
    fleet_memory_stats m;
    ASSERT_OK(fleet_memory_get_stats(dev, &m));
    ASSERT_EQ(m.live_blocks, live_blocks0);
}

TEST(sequential_50)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    fleet_memory_stats m0;
    ASSERT_OK(fleet_memory_get_stats(dev, &m0));
    atomic_store(&ops_checked, 0);
    int n = 50;
    for (int i = 0; i < n; i++) {
        churner c = {.seed = (uint64_t)i, .id = -1};
        test_run_threads(1, short_lived, &c, sizeof c);
        ASSERT_GE(c.id, 1);
        /* The slot came back before join returned. */
        ASSERT_EQ(test_pool_stats(dev).exclusive_in_use, 0);
    }
    ASSERT_EQ(atomic_load(&ops_checked), n);
    check_empty(&st0, (uint64_t)n, m0.live_blocks);
}

typedef struct spawner {
    int index;
    int lives;
    int ids[20];
} spawner;

static void *spawner_main(void *arg)
{
    spawner *s = arg; /* never calls fleet itself: does not bind */
    for (int i = 0; i < s->lives; i++) {
        churner c = {.seed = 1000 + 100 * (uint64_t)s->index + (uint64_t)i, .id = -1};
        test_run_threads(1, short_lived, &c, sizeof c);
        s->ids[i] = c.id;
    }
    return NULL;
}

TEST(concurrent_4_x_20)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    fleet_memory_stats m0;
    ASSERT_OK(fleet_memory_get_stats(dev, &m0));
    atomic_store(&ops_checked, 0);
    spawner s[4];
    memset(s, 0, sizeof s);
    for (int i = 0; i < 4; i++)
        s[i] = (spawner){.index = i, .lives = 20};
    test_run_threads(4, spawner_main, s, sizeof s[0]);
    ASSERT_EQ(atomic_load(&ops_checked), 80);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 20; j++) {
            ASSERT_GE(s[i].ids[j], 1);
            ASSERT_LE(s[i].ids[j], st0.pool_slots);
        }
    check_empty(&st0, 80, m0.live_blocks);
}

/* Many more lives than slots, so leaked slots would show up as sharing. */
TEST(concurrent_churn_beyond_pool)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    fleet_memory_stats m0;
    ASSERT_OK(fleet_memory_get_stats(dev, &m0));
    atomic_store(&ops_checked, 0);
    int rounds = test_scaled(5);
    for (int r = 0; r < rounds; r++) {
        spawner s[4];
        memset(s, 0, sizeof s);
        for (int i = 0; i < 4; i++)
            s[i] = (spawner){.index = 10 * r + i, .lives = 20};
        test_run_threads(4, spawner_main, s, sizeof s[0]);
    }
    ASSERT_EQ(atomic_load(&ops_checked), 80 * rounds);
    check_empty(&st0, 80 * (uint64_t)rounds, m0.live_blocks);
}

/* A thread that binds again from a thread-exit destructor running after
 * fleet's own (another library's, say) gets that slot released too. */
static pthread_key_t late_key;
static fleet_device *late_dev;
static atomic_int late_stream = -1;

static void late_destructor(void *v)
{
    (void)v;
    fleet_stream *s = NULL;
    ASSERT_OK(fleet_stream_current(late_dev, &s));
    atomic_store(&late_stream, fleet_stream_id(s));
}

static void *late_worker(void *arg)
{
    (void)arg;
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(late_dev, &s)); /* binds, arms fleet's exit hook */
    pthread_setspecific(late_key, (void *)1);     /* key made after fleet's: runs later */
    return NULL;
}

TEST(binding_from_a_later_exit_destructor_is_released)
{
    ASSERT_OK(fleet_device_default(&late_dev));
    ASSERT_OK(fleet_init());
    ASSERT_EQ(pthread_key_create(&late_key, late_destructor), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, late_worker, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_GE(atomic_load(&late_stream), 1); /* it did bind again */
    fleet_stream_pool_stats ps;
    ASSERT_OK(fleet_stream_pool_get_stats(late_dev, &ps));
    ASSERT_EQ(ps.exclusive_in_use, 0);
    ASSERT_EQ(ps.shared_bindings, 0);
    pthread_key_delete(late_key);
}

TEST_MAIN()
