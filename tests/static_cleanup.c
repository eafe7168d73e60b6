/* Static Cleanup: explicit fleet_shutdown() after real work.
 *
 * Shutdown waits for queued work (a host function queued before it has run
 * when it returns), a second shutdown is FLEET_OK and a no-op, and every
 * kind of call afterwards — init, devices, streams, events, memory, tensors,
 * ops, from this thread or a new one — returns FLEET_ERR_SHUTDOWN with text
 * and touches nothing (a host buffer given to a refused copy is unchanged, a
 * refused host function never runs). Handle accessors stay valid. Releasing
 * a handle (a tensor, an event, a ticket, a batcher) still works after
 * shutdown and frees its host memory (LeakSanitizer checks), and a second
 * release of it is FLEET_ERR_STALE_HANDLE.
 */
#include <strings.h>

#include "test_util.h"

enum { M = 16, K = 24, N = 8 };

static fleet_device *dev;
static fleet_stream *cur, *def, *acq;
static fleet_event *ev;
static fleet_allocation al;
static fleet_tensor *ta, *tb, *tc, *tbias;

#define ASSERT_SHUT(expr) ASSERT_REFUSED(expr, FLEET_ERR_SHUTDOWN, "shut down")

static void slow_set(void *arg)
{
    test_sleep_ms(100);
    atomic_store((atomic_int *)arg, 1);
}

static void *thread_after_shutdown(void *arg)
{
    (void)arg;
    fleet_stream *s = NULL;
    ASSERT_EQ(fleet_last_error()[0], 0); /* a fresh thread has no error yet */
    ASSERT_SHUT(fleet_stream_current(dev, &s));
    ASSERT_TRUE(s == NULL);
    int64_t shape[1] = {4};
    fleet_tensor *t = NULL;
    ASSERT_SHUT(fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, shape, &t));
    ASSERT_SHUT(fleet_init());
    return NULL;
}

TEST(shutdown_is_idempotent_and_final)
{
    ASSERT_OK(fleet_init());
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &dev));

    /* Work: a checked matmul + bias on the current stream, from other
     * threads too, an acquired stream, an event, a live raw allocation. */
    static float a[M * K], b[K * N], bias[N], want[M * N], got[M * N];
    test_rng r = test_rng_make(1);
    test_fill_random(a, M * K, &r);
    test_fill_random(b, K * N, &r);
    test_fill_random(bias, N, &r);
    ref_matmul(a, b, NULL, want, M, K, N);
    for (int i = 0; i < M * N; i++)
        want[i] += bias[i % N];
    ta = test_tensor_2d(dev, M, K, a);
    tb = test_tensor_2d(dev, K, N, b);
    tc = test_tensor_2d(dev, M, N, NULL);
    int64_t bshape[1] = {N};
    tbias = test_tensor_new(dev, 1, bshape);
    ASSERT_OK(fleet_tensor_copy_from_host(tbias, bias, sizeof bias));
    ASSERT_OK(fleet_matmul(ta, tb, tc));
    ASSERT_OK(fleet_add(tc, tbias, tc));
    test_tensor_read(tc, got);
    ASSERT_CLOSE(got, want, M * N, TEST_MATMUL_RTOL, test_matmul_atol(K));
    test_matmul_check(dev, 40, 40, 40, 2);
    ASSERT_OK(fleet_stream_current(dev, &cur));
    ASSERT_OK(fleet_stream_get_default(dev, &def));
    ASSERT_OK(fleet_stream_acquire(dev, &acq));
    int cur_id = fleet_stream_id(cur), acq_id = fleet_stream_id(acq);
    ASSERT_GE(cur_id, 1);
    ASSERT_GE(acq_id, 1);
    ASSERT_OK(fleet_event_create(dev, &ev));
    ASSERT_OK(fleet_event_record(ev, cur));
    ASSERT_OK(fleet_memory_alloc(acq, 4096, &al));
    size_t nbytes = fleet_tensor_nbytes(tc);
    ASSERT_EQ(nbytes, sizeof got);

    /* Queued work that shutdown must wait for. */
    atomic_int ran;
    atomic_init(&ran, 0);
    ASSERT_OK(fleet_matmul(ta, tb, tc));
    ASSERT_OK(fleet_stream_launch_host_func(cur, slow_set, &ran));

    ASSERT_OK(fleet_shutdown());
    ASSERT_EQ(atomic_load(&ran), 1);
    ASSERT_OK(fleet_shutdown()); /* idempotent */

    /* Lifecycle and devices. */
    int count = -1;
    fleet_device *d2 = NULL;
    ASSERT_SHUT(fleet_init());
    ASSERT_SHUT(fleet_device_count(FLEET_BACKEND_CPU, &count));
    ASSERT_SHUT(fleet_device_get(FLEET_BACKEND_CPU, 0, &d2));
    ASSERT_SHUT(fleet_device_default(&d2));
    ASSERT_SHUT(fleet_device_synchronize(dev));

    /* Streams. */
    fleet_stream *s2 = NULL;
    fleet_stream_pool_stats ps;
    atomic_int hf;
    atomic_init(&hf, 0);
    ASSERT_SHUT(fleet_stream_current(dev, &s2));
    ASSERT_SHUT(fleet_stream_set_current(acq));
    ASSERT_SHUT(fleet_stream_reset_current(dev));
    ASSERT_SHUT(fleet_stream_get_default(dev, &s2));
    ASSERT_SHUT(fleet_stream_acquire(dev, &s2));
    ASSERT_SHUT(fleet_stream_acquire_timeout(dev, 10, &s2));
    ASSERT_SHUT(fleet_stream_release(acq));
    ASSERT_SHUT(fleet_stream_synchronize(cur));
    ASSERT_SHUT(fleet_stream_synchronize(def));
    ASSERT_SHUT(fleet_stream_query(cur));
    ASSERT_SHUT(fleet_stream_launch_host_func(cur, test_count_host_fn, &hf));
    ASSERT_SHUT(fleet_stream_pool_get_stats(dev, &ps));
    ASSERT_TRUE(s2 == NULL);

    /* Events. */
    fleet_event *e2 = NULL;
    ASSERT_SHUT(fleet_event_create(dev, &e2));
    ASSERT_SHUT(fleet_event_record(ev, cur));
    ASSERT_SHUT(fleet_stream_wait_event(cur, ev));
    ASSERT_SHUT(fleet_event_query(ev));
    ASSERT_SHUT(fleet_event_synchronize(ev));
    ASSERT_OK(fleet_event_destroy(ev)); /* frees its host memory */
    ASSERT_STATUS(fleet_event_destroy(ev), FLEET_ERR_STALE_HANDLE);
    ASSERT_STATUS(fleet_event_query(ev), FLEET_ERR_SHUTDOWN);

    /* Memory. */
    fleet_allocation al2;
    fleet_memory_stats ms;
    ASSERT_SHUT(fleet_memory_alloc(cur, 64, &al2));
    ASSERT_SHUT(fleet_memory_free(&al));
    ASSERT_TRUE(al.ptr != NULL); /* a refused free leaves the handle as it was */
    ASSERT_SHUT(fleet_memory_record_stream(&al, cur));
    ASSERT_SHUT(fleet_memory_get_stats(dev, &ms));
    ASSERT_SHUT(fleet_memory_reset_peak(dev));
    ASSERT_SHUT(fleet_memory_empty_cache(dev));
    ASSERT_SHUT(fleet_memory_set_limit(dev, 1 << 20));
    ASSERT_SHUT(fleet_memory_inject_failure(dev, 1));

    /* Tensors and ops. */
    fleet_tensor *t2 = NULL;
    int64_t shape[2] = {2, 2};
    static float sentinel[M * N];
    for (int i = 0; i < M * N; i++)
        got[i] = sentinel[i] = -123.0f - (float)i;
    ASSERT_SHUT(fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, shape, &t2));
    ASSERT_SHUT(fleet_tensor_retain(tc));
    ASSERT_SHUT(fleet_tensor_copy_from_host(tc, want, nbytes));
    ASSERT_SHUT(fleet_tensor_copy_to_host(tc, got, nbytes));
    ASSERT_CLOSE(got, sentinel, M * N, 0, 0);
    ASSERT_SHUT(fleet_tensor_record_stream(tc, acq));
    ASSERT_SHUT(fleet_matmul(ta, tb, tc));
    ASSERT_SHUT(fleet_add(tc, tbias, tc));
    ASSERT_SHUT(fleet_relu(tc, tc));

    /* Refused work never runs. */
    test_sleep_ms(50);
    ASSERT_EQ(atomic_load(&hf), 0);

    /* A thread that starts after shutdown is refused too. */
    test_run_threads(1, thread_after_shutdown, NULL, 0);

    /* Constant facts stay readable; status text is pure. */
    ASSERT_STR_CONTAINS(fleet_device_name(dev), "cpu:0");
    ASSERT_EQ(fleet_device_backend(dev), FLEET_BACKEND_CPU);
    ASSERT_EQ(fleet_device_ordinal(dev), 0);
    ASSERT_EQ(fleet_stream_id(cur), cur_id);
    ASSERT_EQ(fleet_stream_id(acq), acq_id);
    ASSERT_EQ(fleet_stream_id(def), 0);
    ASSERT_TRUE(fleet_stream_device(cur) == dev);
    ASSERT_STR_CONTAINS(fleet_status_str(FLEET_ERR_SHUTDOWN), "shut down");
    ASSERT_STR_CONTAINS(fleet_status_name(FLEET_ERR_SHUTDOWN), "FLEET_ERR_SHUTDOWN");

    /* Handles can still be released: host memory is freed, once. */
    ASSERT_EQ(fleet_tensor_dim(tc, 0), M); /* accessors still read them */
    fleet_tensor *views[] = {ta, tb, tc, tbias};
    for (int i = 0; i < 4; i++)
        ASSERT_OK(fleet_tensor_release(views[i]));
    ASSERT_STATUS(fleet_tensor_release(tc), FLEET_ERR_STALE_HANDLE);
    ASSERT_EQ(fleet_tensor_dim(tc, 0), -1);

    /* Still idempotent after all that. */
    ASSERT_OK(fleet_shutdown());
    ASSERT_OK(fleet_shutdown());
    ASSERT_SHUT(fleet_init());
}

TEST_MAIN()
