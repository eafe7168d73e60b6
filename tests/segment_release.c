/* A segment goes back to the backend only after every stream that used its
 * blocks has passed them: fleet_memory_empty_cache and the OOM cascade wait
 * for (or leave alone) a segment whose released block an op still queued on
 * its stream reads or writes. Each case queues the op behind a gate (a host
 * function that blocks the stream), releases the tensor (stream-ordered: its
 * block is free at once), lets another thread empty the cache or run out
 * of memory, checks that thread is still waiting (or that the segment is
 * still reserved), then opens the gate and checks the op's values. Under
 * ASan a segment freed too early is a heap-use-after-free in the op. */
#include <stdatomic.h>

#include "test_util.h"

#define MIB ((int64_t)1 << 20)

static fleet_device *dev;

static fleet_memory_stats stats(void)
{
    fleet_memory_stats s;
    ASSERT_OK(fleet_memory_get_stats(dev, &s));
    ASSERT_EQ(s.allocated + s.pending + s.cached, s.reserved);
    return s;
}

typedef struct other {
    int64_t alloc_floats; /* 0: fleet_memory_empty_cache; else a tensor this big */
    atomic_int done;
    fleet_status st;
} other;

static void *other_main(void *arg)
{
    other *o = arg;
    if (o->alloc_floats == 0) {
        o->st = fleet_memory_empty_cache(dev);
    } else {
        fleet_tensor *t = NULL;
        o->st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, &o->alloc_floats, &t);
        if (t != NULL)
            ASSERT_OK(fleet_tensor_release(t));
    }
    atomic_store(&o->done, 1);
    return NULL;
}

static void sync_current(void)
{
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    ASSERT_OK(fleet_stream_synchronize(s));
}

/* x [n] random, y = relu(x) queued behind a gate on this thread's stream,
 * then x released; `o` runs in another thread meanwhile. */
static void relu_behind_gate(int64_t n, other *o)
{
    float *host = malloc(sizeof(float) * (size_t)n), *got = malloc(sizeof(float) * (size_t)n);
    test_rng r = test_rng_make(31);
    test_fill_random(host, n, &r);
    fleet_tensor *x = test_tensor_new(dev, 1, &n), *y = test_tensor_new(dev, 1, &n);
    ASSERT_OK(fleet_tensor_copy_from_host(x, host, sizeof(float) * (size_t)n));
    /* Once before the gate: under CUDA's lazy module loading, a kernel's
     * first launch may wait for the device to go idle, which behind the
     * gate would wait for the gate this thread opens later. */
    ASSERT_OK(fleet_relu(x, y));
    sync_current();
    test_gate g;
    test_gate_init(&g);
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    ASSERT_OK(fleet_stream_launch_host_func(s, test_gate_wait, &g));
    ASSERT_OK(fleet_relu(x, y));
    ASSERT_OK(fleet_tensor_release(x)); /* the relu has not run yet */
    printf("  relu queued behind the gate, x released\n");
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, other_main, o), 0);
    test_sleep_ms(100);
    ASSERT_EQ(atomic_load(&o->done), 0); /* it waits for the gate */
    printf("  the other thread waits; opening the gate\n");
    test_gate_open(&g);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    printf("  the other thread returned %s\n", fleet_status_name(o->st));
    test_tensor_read(y, got);
    for (int64_t i = 0; i < n; i++)
        ASSERT_TRUE(got[i] == (host[i] > 0 ? host[i] : 0.0f));
    ASSERT_OK(fleet_tensor_release(y));
    test_gate_destroy(&g);
    free(host);
    free(got);
}

TEST(empty_cache_waits_for_a_stream_still_reading_a_released_block)
{
    other o = {.alloc_floats = 0};
    relu_behind_gate(3 * MIB, &o); /* 12 MiB: a segment of its own */
    ASSERT_OK(o.st);
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_EQ(stats().reserved, 0);
}

TEST(oom_recovery_in_another_thread_keeps_a_segment_a_queued_op_reads)
{
    ASSERT_OK(fleet_memory_empty_cache(dev));
    ASSERT_OK(fleet_memory_set_limit(dev, (uint64_t)40 * MIB));
    /* 24 MiB more fits only once x's 12 MiB segment is released: the
     * cascade must wait for the gate (step 2 synchronizes the device). */
    other o = {.alloc_floats = 6 * MIB};
    relu_behind_gate(3 * MIB, &o);
    ASSERT_OK(o.st);
    ASSERT_OK(fleet_memory_set_limit(dev, 0));
    ASSERT_OK(fleet_memory_empty_cache(dev));
}

/* conv1d's im2col scratch is freed right after submission; another
 * thread's OOM recovery must not return its segment while im2col and the
 * GEMM are still queued. */
TEST(conv_scratch_survives_another_threads_oom_recovery)
{
    ASSERT_OK(fleet_memory_empty_cache(dev));
    const int64_t B = 4, C = 16, L = 16384, O = 8, K = 5;
    int64_t xs[3] = {B, C, L}, ws[3] = {O, C, K}, bs[1] = {O}, ys[3] = {B, O, L};
    int64_t nx = B * C * L, nw = O * C * K, ny = B * O * L;
    float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)nw);
    float *bias = malloc(sizeof(float) * (size_t)O), *got = malloc(sizeof(float) * (size_t)ny);
    test_rng r = test_rng_make(7);
    test_fill_random(x, nx, &r);
    test_fill_random(w, nw, &r);
    test_fill_random(bias, O, &r);
    fleet_tensor *tx = test_tensor_new(dev, 3, xs), *tw = test_tensor_new(dev, 3, ws);
    fleet_tensor *tb = test_tensor_new(dev, 1, bs), *ty = test_tensor_new(dev, 3, ys);
    ASSERT_OK(fleet_tensor_copy_from_host(tx, x, sizeof(float) * (size_t)nx));
    ASSERT_OK(fleet_tensor_copy_from_host(tw, w, sizeof(float) * (size_t)nw));
    ASSERT_OK(fleet_tensor_copy_from_host(tb, bias, sizeof(float) * (size_t)O));
    fleet_memory_stats base = stats();
    /* room for the scratch (C*K*L floats per image, 20 MiB for the four: a
     * segment of its own) and no more */
    ASSERT_OK(fleet_memory_set_limit(dev, base.reserved + (uint64_t)20 * MIB));
    /* The conv once first: creating the stream's cuBLAS handle and
     * workspace, and a kernel's first launch under lazy module loading, may
     * wait for the device to go idle (cuda), which behind the gate would
     * wait for the gate this thread opens later. */
    ASSERT_OK(fleet_conv1d(tx, tw, tb, 1, K / 2, 1, ty));
    sync_current();
    test_gate g;
    test_gate_init(&g);
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    ASSERT_OK(fleet_stream_launch_host_func(s, test_gate_wait, &g));
    ASSERT_OK(fleet_conv1d(tx, tw, tb, 1, K / 2, 1, ty)); /* scratch freed, work queued */
    other o = {.alloc_floats = 3 * MIB}; /* 12 MiB: over the limit unless released */
    printf("  conv1d queued behind the gate, its scratch released\n");
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, other_main, &o), 0);
    test_sleep_ms(100);
    ASSERT_EQ(atomic_load(&o.done), 0);
    printf("  the other thread waits; opening the gate\n");
    test_gate_open(&g);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    printf("  the other thread returned %s\n", fleet_status_name(o.st));
    ASSERT_OK(o.st);
    test_tensor_read(ty, got);
    for (int64_t b = 0; b < B; b++)
        for (int64_t oc = 0; oc < O; oc++)
            for (int64_t l = 0; l < L; l += 97) {
                double acc = bias[oc];
                for (int64_t c = 0; c < C; c++)
                    for (int64_t k = 0; k < K; k++) {
                        int64_t p = l + k - K / 2;
                        if (p >= 0 && p < L)
                            acc += (double)w[(oc * C + c) * K + k] * x[(b * C + c) * L + p];
                    }
                double v = got[(b * O + oc) * L + l];
                ASSERT_TRUE(fabs(v - acc) <= 1e-4 + 1e-4 * fabs(acc));
            }
    ASSERT_OK(fleet_memory_set_limit(dev, 0));
    TEST_RELEASE(tx, tw, tb, ty);
    test_gate_destroy(&g);
    free(x), free(w), free(bias), free(got);
}

int main(int argc, char **argv)
{
    unsetenv("FLEET_MEMORY_LIMIT");
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
