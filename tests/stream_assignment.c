/* Stream Assignment: distinct live threads get distinct pool streams while
 * slots are free; a thread's stream is stable; the default stream (id 0) is
 * shared and never bound automatically; set/reset_current and
 * acquire/release behave as stream.h says. */
#include "test_util.h"

#define NTHREADS 8

static fleet_device *dev;
static pthread_barrier_t all_bound;

typedef struct worker {
    fleet_stream *stream;
    int id;
} worker;

static void *bind_worker(void *arg)
{
    worker *w = arg;
    ASSERT_OK(fleet_stream_current(dev, &w->stream));
    w->id = fleet_stream_id(w->stream);
    pthread_barrier_wait(&all_bound); /* everybody holds a slot at once */
    for (int i = 0; i < 10; i++) {
        fleet_stream *again;
        ASSERT_OK(fleet_stream_current(dev, &again));
        ASSERT_TRUE(again == w->stream);
    }
    /* Running work does not move the thread either. */
    ASSERT_EQ(test_matmul_check(dev, 8, 16, 8, (uint64_t)w->id), w->id);
    return NULL;
}

TEST(distinct_and_stable_ids)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    ASSERT_EQ(st0.pool_slots, st0.capacity - 1);
    worker w[NTHREADS];
    memset(w, 0, sizeof w);
    ASSERT_EQ(pthread_barrier_init(&all_bound, NULL, NTHREADS), 0);
    test_run_threads(NTHREADS, bind_worker, w, sizeof w[0]);
    pthread_barrier_destroy(&all_bound);
    for (int i = 0; i < NTHREADS; i++) {
        ASSERT_GE(w[i].id, 1);
        ASSERT_LE(w[i].id, st0.capacity - 1);
        ASSERT_TRUE(fleet_stream_device(w[i].stream) == dev);
        for (int j = 0; j < i; j++) {
            ASSERT_NE(w[i].id, w[j].id);
            ASSERT_TRUE(w[i].stream != w[j].stream);
        }
    }
    fleet_stream_pool_stats st1 = test_pool_stats(dev);
    ASSERT_EQ(st1.bindings_total - st0.bindings_total, NTHREADS);
    ASSERT_EQ(st1.shared_total - st0.shared_total, 0);
    ASSERT_EQ(st1.exclusive_in_use, st0.exclusive_in_use);
}

static void *default_worker(void *arg)
{
    fleet_stream **out = arg;
    fleet_stream_pool_stats a = test_pool_stats(dev);
    ASSERT_OK(fleet_stream_get_default(dev, out));
    /* Asking for the default stream neither binds nor takes a slot ... */
    fleet_stream_pool_stats b = test_pool_stats(dev);
    ASSERT_EQ(b.exclusive_in_use, a.exclusive_in_use);
    ASSERT_EQ(b.bindings_total, a.bindings_total);
    /* ... and the automatic binding is a pool stream, never id 0. */
    int id = test_current_stream_id(dev);
    ASSERT_GE(id, 1);
    ASSERT_LE(id, a.capacity - 1);
    fleet_stream_pool_stats c = test_pool_stats(dev);
    ASSERT_EQ(c.bindings_total, a.bindings_total + 1);
    return NULL;
}

TEST(default_stream_rules)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream *d0, *d1, *d2;
    ASSERT_OK(fleet_stream_get_default(dev, &d0));
    ASSERT_OK(fleet_stream_get_default(dev, &d1));
    ASSERT_TRUE(d0 == d1);
    ASSERT_EQ(fleet_stream_id(d0), 0);
    ASSERT_TRUE(fleet_stream_device(d0) == dev);
    ASSERT_EQ(fleet_stream_id(NULL), -1);
    test_run_threads(1, default_worker, &d2, sizeof d2);
    ASSERT_TRUE(d2 == d0); /* one default stream, shared by every thread */
    ASSERT_STATUS(fleet_stream_release(d0), FLEET_ERR_INVALID_ARGUMENT);
    /* Work on the default stream runs and is ordered like any other. */
    atomic_int ran = 0;
    ASSERT_OK(fleet_stream_launch_host_func(d0, test_count_host_fn, &ran));
    ASSERT_OK(fleet_stream_synchronize(d0));
    ASSERT_EQ(atomic_load(&ran), 1);
}

static void *set_current_worker(void *arg)
{
    (void)arg;
    fleet_stream *autos, *deflt, *acq, *cur;
    ASSERT_OK(fleet_stream_current(dev, &autos));
    ASSERT_OK(fleet_stream_get_default(dev, &deflt));
    ASSERT_OK(fleet_stream_acquire(dev, &acq));
    ASSERT_TRUE(acq != autos);
    fleet_stream_pool_stats held = test_pool_stats(dev);

    /* Current = the default stream. */
    ASSERT_OK(fleet_stream_set_current(deflt));
    ASSERT_OK(fleet_stream_current(dev, &cur));
    ASSERT_TRUE(cur == deflt);
    ASSERT_EQ(test_matmul_check(dev, 4, 8, 4, 1), 0);

    /* Current = an acquired stream; ops really go there: gate it, submit a
     * matmul, and the acquired stream (not the automatic one) is busy. */
    ASSERT_OK(fleet_stream_set_current(acq));
    ASSERT_OK(fleet_stream_current(dev, &cur));
    ASSERT_TRUE(cur == acq);
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4];
    fleet_tensor *ta = test_tensor_2d(dev, 2, 2, a), *tb = test_tensor_2d(dev, 2, 2, b);
    fleet_tensor *tc = test_tensor_2d(dev, 2, 2, NULL);
    test_gate g; /* uploads first: copy_from_host may wait for the stream */
    test_gate_init(&g);
    ASSERT_OK(fleet_stream_launch_host_func(acq, test_gate_wait, &g));
    ASSERT_OK(fleet_matmul(ta, tb, tc));
    ASSERT_STATUS(fleet_stream_query(acq), FLEET_ERR_NOT_READY);
    ASSERT_OK(fleet_stream_synchronize(autos)); /* not held up by the gate */
    test_gate_open(&g);
    test_tensor_read(tc, c);
    ASSERT_EQ(memcmp(a, c, sizeof c), 0);
    ASSERT_OK(fleet_tensor_release(ta));
    ASSERT_OK(fleet_tensor_release(tb));
    ASSERT_OK(fleet_tensor_release(tc));
    ASSERT_OK(fleet_stream_synchronize(acq));
    test_gate_destroy(&g);

    /* Choosing a stream kept the automatic binding. */
    fleet_stream_pool_stats now = test_pool_stats(dev);
    ASSERT_EQ(now.exclusive_in_use, held.exclusive_in_use);
    ASSERT_NE(fleet_stream_set_current(NULL), FLEET_OK);
    ASSERT_OK(fleet_stream_current(dev, &cur));
    ASSERT_TRUE(cur == acq); /* a failed call changes nothing */

    /* Reset: back to the automatic binding. */
    ASSERT_OK(fleet_stream_reset_current(dev));
    ASSERT_OK(fleet_stream_current(dev, &cur));
    ASSERT_TRUE(cur == autos);
    ASSERT_OK(fleet_stream_release(acq));
    return NULL;
}

TEST(set_and_reset_current)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    test_run_threads(1, set_current_worker, NULL, 0);
    fleet_stream_pool_stats st1 = test_pool_stats(dev);
    ASSERT_EQ(st1.exclusive_in_use, st0.exclusive_in_use);
    ASSERT_EQ(st1.acquired_in_use, st0.acquired_in_use);
}

static void *acquire_in_thread(void *arg)
{
    fleet_stream **out = arg;
    ASSERT_OK(fleet_stream_acquire(dev, out));
    return NULL; /* exits holding it: an acquired stream outlives the thread */
}

static void *bind_and_report(void *arg)
{
    *(int *)arg = test_current_stream_id(dev);
    return NULL;
}

TEST(acquire_and_release)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    fleet_stream *a, *b;
    ASSERT_OK(fleet_stream_acquire(dev, &a));
    ASSERT_OK(fleet_stream_acquire_timeout(dev, 0, &b));
    ASSERT_TRUE(a != b);
    ASSERT_GE(fleet_stream_id(a), 1);
    ASSERT_GE(fleet_stream_id(b), 1);
    fleet_stream_pool_stats st1 = test_pool_stats(dev);
    ASSERT_EQ(st1.acquired_in_use, st0.acquired_in_use + 2);
    ASSERT_EQ(st1.exclusive_in_use, st0.exclusive_in_use + 2);
    ASSERT_EQ(st1.bindings_total, st0.bindings_total); /* acquire is not a binding */

    /* While held, automatic bindings never land on them. */
    int ids[2 * 64];
    int n = 2 * st0.pool_slots;
    for (int i = 0; i < n; i++) {
        test_run_threads(1, bind_and_report, &ids[i], sizeof ids[i]);
        ASSERT_NE(ids[i], fleet_stream_id(a));
        ASSERT_NE(ids[i], fleet_stream_id(b));
    }

    /* Acquired in a thread that then exited: still held, released from here. */
    fleet_stream *c;
    test_run_threads(1, acquire_in_thread, &c, sizeof c);
    ASSERT_EQ(test_pool_stats(dev).acquired_in_use, st0.acquired_in_use + 3);
    ASSERT_OK(fleet_stream_release(c));

    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    fleet_stream_pool_stats st2 = test_pool_stats(dev);
    ASSERT_EQ(st2.acquired_in_use, st0.acquired_in_use);
    ASSERT_EQ(st2.exclusive_in_use, st0.exclusive_in_use);

    /* Releasing what is not acquired: twice, the default, a bound stream. */
    ASSERT_STATUS(fleet_stream_release(a), FLEET_ERR_INVALID_ARGUMENT);
    fleet_stream *d;
    ASSERT_OK(fleet_stream_get_default(dev, &d));
    ASSERT_STATUS(fleet_stream_release(d), FLEET_ERR_INVALID_ARGUMENT);
    fleet_stream *mine;
    ASSERT_OK(fleet_stream_current(dev, &mine)); /* main thread binds here */
    ASSERT_STATUS(fleet_stream_release(mine), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(test_current_stream_id(dev), fleet_stream_id(mine)); /* still bound */
    fleet_status null_st = fleet_stream_release(NULL);
    ASSERT_TRUE(null_st == FLEET_ERR_NULL_POINTER || null_st == FLEET_ERR_INVALID_ARGUMENT);
    fleet_stream_pool_stats st3 = test_pool_stats(dev);
    ASSERT_EQ(st3.acquired_in_use, st0.acquired_in_use);
    ASSERT_EQ(st3.exclusive_in_use, st0.exclusive_in_use + 1);
}

TEST_MAIN()
