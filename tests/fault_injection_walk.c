/* Every raw allocation can fail cleanly: a model's whole life (build, set
 * weights, finalize, two runs, read back, destroy) and a batcher round
 * (create, requests from two threads, waits, destroy) are each run once to
 * count the raw allocations they make (host memory, device segments,
 * backend streams and events, threads, handle-table chunks: core/prim.h's
 * fault hook), then once per N = 1..K with the Nth one failing. Each run
 * either succeeds with the right values or fails with a status and a text,
 * never crashes, and leaves nothing behind: tensor handles, allocated
 * device bytes and live blocks return to where they were (and under ASan,
 * LeakSanitizer checks host memory at exit). A last run without faults
 * works: a failure leaves fleet usable. */
#include "core/prim.h"
#include "model_util.h"
#include "tensor/tensor.h"

#define IN 8
#define HID 16
#define OUT 4

static fleet_device *dev;

typedef struct outcome {
    int ok, failed;
} outcome;

static float weights[2][HID * HID], biases[2][HID];

/* A status from a faulted run: OK, or an error that says something. */
static bool clean(fleet_status st)
{
    if (st == FLEET_OK)
        return true;
    ASSERT_TRUE(fleet_last_error()[0] != '\0');
    return false;
}

static void reference(const float *x, int64_t rows, float *y)
{
    float *h = malloc(sizeof(float) * (size_t)(rows * HID));
    ASSERT_TRUE(h != NULL);
    ref_linear(x, weights[0], biases[0], h, rows, IN, HID);
    for (int64_t i = 0; i < rows * HID; i++)
        h[i] = h[i] > 0 ? h[i] : 0;
    ref_linear(h, weights[1], biases[1], y, rows, HID, OUT);
    free(h);
}

static bool close_enough(const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-4 + 1e-4 * fabs(want[i])))
            return false;
    return true;
}

static fleet_status build_model(fleet_model **out)
{
    const int64_t widths[] = {IN, HID, OUT};
    fleet_model *m = NULL;
    fleet_status st = fleet_model_build_mlp(dev, widths, 3, &m);
    if (st != FLEET_OK)
        return st;
    if ((st = fleet_model_set_weight(m, "layers.0.weight", weights[0], sizeof(float) * HID * IN)) ==
            FLEET_OK &&
        (st = fleet_model_set_weight(m, "layers.0.bias", biases[0], sizeof(float) * HID)) == FLEET_OK &&
        (st = fleet_model_set_weight(m, "layers.1.weight", weights[1], sizeof(float) * OUT * HID)) ==
            FLEET_OK &&
        (st = fleet_model_set_weight(m, "layers.1.bias", biases[1], sizeof(float) * OUT)) == FLEET_OK)
        st = fleet_model_finalize(m);
    if (st != FLEET_OK) {
        (void)fleet_model_destroy(m);
        return st;
    }
    *out = m;
    return FLEET_OK;
}

/* One run of rows; true when it ran and the values are right. */
static fleet_status run_once(fleet_model *m, int64_t rows, uint64_t seed)
{
    float x[8 * IN], y[8 * OUT], want[8 * OUT];
    test_rng r = test_rng_make(seed);
    test_fill_random(x, rows * IN, &r);
    int64_t xs[2] = {rows, IN}, ys[2] = {rows, OUT};
    fleet_tensor *tx = NULL, *ty = NULL;
    fleet_status st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, xs, &tx);
    if (st == FLEET_OK)
        st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, ys, &ty);
    if (st == FLEET_OK)
        st = fleet_tensor_copy_from_host(tx, x, sizeof(float) * (size_t)(rows * IN));
    if (st == FLEET_OK) {
        const fleet_tensor *in[1] = {tx};
        fleet_tensor *out[1] = {ty};
        st = fleet_model_run(m, in, 1, out, 1);
    }
    if (st == FLEET_OK)
        st = fleet_tensor_copy_to_host(ty, y, sizeof(float) * (size_t)(rows * OUT));
    if (st == FLEET_OK) {
        reference(x, rows, want);
        ASSERT_TRUE(close_enough(y, want, rows * OUT)); /* success means the right values */
    }
    if (tx != NULL)
        ASSERT_OK(fleet_tensor_release(tx));
    if (ty != NULL)
        ASSERT_OK(fleet_tensor_release(ty));
    return st;
}

static fleet_status model_life(void)
{
    fleet_model *m = NULL;
    fleet_status st = build_model(&m);
    if (st != FLEET_OK)
        return st;
    st = run_once(m, 3, 1);
    if (st == FLEET_OK)
        st = run_once(m, 3, 2); /* a second run: replay, or the same steps */
    if (st == FLEET_OK)
        st = run_once(m, 5, 3); /* another batch size: a second plan */
    fleet_status d = fleet_model_destroy(m);
    return st != FLEET_OK ? st : d;
}

/* ---- a batcher round ------------------------------------------------------------------ */

static fleet_model *shared_model;
static fleet_batcher *batcher;

typedef struct submitter {
    uint64_t seed;
    fleet_status st;
} submitter;

static void *submit_main(void *arg)
{
    submitter *s = arg;
    float x[2 * IN], y[2 * OUT], want[2 * OUT];
    test_rng r = test_rng_make(s->seed);
    test_fill_random(x, 2 * IN, &r);
    int64_t xs[2] = {2, IN}, ys[2] = {2, OUT};
    fleet_tensor *tx = NULL, *ty = NULL;
    fleet_ticket *t = NULL;
    fleet_status st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, xs, &tx);
    if (st == FLEET_OK)
        st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, ys, &ty);
    if (st == FLEET_OK)
        st = fleet_tensor_copy_from_host(tx, x, sizeof x);
    if (st == FLEET_OK) {
        const fleet_tensor *in[1] = {tx};
        fleet_tensor *out[1] = {ty};
        st = fleet_batcher_submit(batcher, in, 1, out, 1, 0, &t);
    }
    if (st == FLEET_OK) {
        st = fleet_ticket_wait(t, -1);
        ASSERT_OK(fleet_ticket_release(t));
    }
    if (st == FLEET_OK)
        st = fleet_tensor_copy_to_host(ty, y, sizeof y);
    if (st == FLEET_OK) {
        reference(x, 2, want);
        ASSERT_TRUE(close_enough(y, want, 2 * OUT));
    }
    if (tx != NULL)
        ASSERT_OK(fleet_tensor_release(tx));
    if (ty != NULL)
        ASSERT_OK(fleet_tensor_release(ty));
    s->st = st;
    return NULL;
}

/* Its own model: the model's instances on the runners' streams (cached
 * until the model goes) go with it. */
static fleet_status batcher_round(void)
{
    fleet_status st = build_model(&shared_model);
    if (st != FLEET_OK)
        return st;
    if ((st = fleet_batcher_create(shared_model, NULL, &batcher)) != FLEET_OK) {
        (void)fleet_model_destroy(shared_model);
        return st;
    }
    submitter s[2] = {{.seed = 11}, {.seed = 12}};
    test_run_threads(2, submit_main, s, sizeof s[0]);
    fleet_status d = fleet_batcher_destroy(batcher);
    batcher = NULL;
    fleet_status dm = fleet_model_destroy(shared_model);
    d = d != FLEET_OK ? d : dm;
    for (int i = 0; i < 2; i++)
        if (s[i].st != FLEET_OK) {
            st = s[i].st;
            break;
        }
    return st != FLEET_OK ? st : d;
}

/* ---- the walk ------------------------------------------------------------------------- */

typedef struct baseline {
    uint64_t handles, allocated, live_blocks;
} baseline;

static baseline now(void)
{
    fleet_memory_stats s;
    ASSERT_OK(fleet_device_synchronize(dev));
    ASSERT_OK(fleet_memory_get_stats(dev, &s));
    return (baseline){fleet__tensor_handles_live(), s.allocated, s.live_blocks};
}

static void walk(const char *what, fleet_status (*scenario)(void))
{
    ASSERT_OK(scenario()); /* warm: streams, library state */
    baseline base = now();
    fleet__fault_arm(UINT64_MAX);
    ASSERT_OK(scenario());
    uint64_t k = fleet__fault_seen();
    fleet__fault_arm(0);
    ASSERT_GE(k, 5);
    outcome o = {0, 0};
    for (uint64_t n = 1; n <= k; n++) {
        fleet__fault_arm(n);
        fleet_status st = scenario();
        fleet__fault_arm(0);
        if (clean(st))
            o.ok++;
        else
            o.failed++;
        baseline after = now();
        if (after.handles != base.handles || after.allocated != base.allocated ||
            after.live_blocks != base.live_blocks) {
            char m[256];
            snprintf(m, sizeof m, "%s, allocation %llu failing (%s): handles %llu -> %llu, "
                     "allocated %llu -> %llu, live blocks %llu -> %llu", what,
                     (unsigned long long)n, fleet_status_name(st),
                     (unsigned long long)base.handles, (unsigned long long)after.handles,
                     (unsigned long long)base.allocated, (unsigned long long)after.allocated,
                     (unsigned long long)base.live_blocks, (unsigned long long)after.live_blocks);
            test_fail_(__FILE__, __LINE__, m);
        }
    }
    printf("  %s: %llu allocation points walked: %d failed cleanly, %d succeeded anyway\n", what,
           (unsigned long long)k, o.failed, o.ok);
    ASSERT_GE(o.failed, 1);
    ASSERT_OK(scenario()); /* still usable */
}

/* The first use of a pool stream creates it (and, on cpu, its worker): each
 * round takes the next never-used slot with fleet_stream_acquire (slots are
 * handed out in order), so the walk reaches those allocations too. This
 * test comes first, while most slots are unused. */
static fleet_status first_use_of_a_stream(void)
{
    fleet_stream *s = NULL;
    fleet_status st = fleet_stream_acquire(dev, &s);
    if (st != FLEET_OK)
        return st;
    int64_t n = 64;
    fleet_tensor *t = NULL;
    float host[64], got[64];
    test_rng r = test_rng_make(3);
    test_fill_random(host, 64, &r);
    if ((st = fleet_stream_set_current(s)) == FLEET_OK &&
        (st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 1, &n, &t)) == FLEET_OK &&
        (st = fleet_tensor_copy_from_host(t, host, sizeof host)) == FLEET_OK &&
        (st = fleet_relu(t, t)) == FLEET_OK &&
        (st = fleet_tensor_copy_to_host(t, got, sizeof got)) == FLEET_OK)
        for (int i = 0; i < 64; i++)
            ASSERT_TRUE(got[i] == (host[i] > 0 ? host[i] : 0.0f));
    if (t != NULL)
        ASSERT_OK(fleet_tensor_release(t));
    ASSERT_OK(fleet_stream_reset_current(dev));
    ASSERT_OK(fleet_stream_release(s));
    return st;
}

TEST(the_first_use_of_a_stream_can_fail_cleanly)
{
    fleet_stream_pool_stats ps = test_pool_stats(dev);
    fleet__fault_arm(UINT64_MAX);
    ASSERT_OK(first_use_of_a_stream());
    uint64_t k = fleet__fault_seen();
    fleet__fault_arm(0);
    ASSERT_GE(k, 2);                               /* the stream, its worker, ... */
    ASSERT_LE((int)k + 1, ps.pool_slots - ps.streams_created); /* a fresh slot each */
    int failed = 0;
    for (uint64_t n = 1; n <= k; n++) {
        fleet__fault_arm(n);
        fleet_status st = first_use_of_a_stream();
        fleet__fault_arm(0);
        failed += !clean(st);
    }
    printf("  first use of a stream: %llu allocation points walked, %d failed cleanly\n",
           (unsigned long long)k, failed);
    ASSERT_GE(failed, 1);
    ASSERT_OK(first_use_of_a_stream());
}

TEST(every_allocation_of_a_model_life_can_fail_cleanly)
{
    walk("model life", model_life);
}

TEST(every_allocation_of_a_batcher_round_can_fail_cleanly)
{
    walk("batcher round", batcher_round);
}

int main(int argc, char **argv)
{
    test_rng r = test_rng_make(5);
    test_fill_random(weights[0], HID * IN, &r);
    test_fill_random(biases[0], HID, &r);
    test_fill_random(weights[1], OUT * HID, &r);
    test_fill_random(biases[1], OUT, &r);
    setenv("FLEET_LOG_LEVEL", "error", 0); /* the injected failures' warnings are expected */
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
