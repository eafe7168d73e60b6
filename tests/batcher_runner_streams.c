/* A batcher's runners hold their streams from creation: with the pool full
 * and FLEET_STREAM_WAIT_MS set (FLEET_STREAMS=4: three pool slots, the main
 * thread holds one), a batcher with more runners than free slots fails at
 * create with FLEET_ERR_POOL_EXHAUSTED and gives every slot back; one that
 * fits serves every request. */
#include "model_util.h"

static fleet_device *dev;
static test_model tm;

static fleet_status create(int runners, fleet_batcher **b)
{
    fleet_batcher_config c = fleet_batcher_config_default();
    c.max_inflight = runners;
    return fleet_batcher_create(tm.m, &c, b);
}

TEST(more_runners_than_free_streams_fail_at_create)
{
    fleet_stream_pool_stats before = test_pool_stats(dev);
    ASSERT_EQ(before.pool_slots, 3);
    ASSERT_EQ(before.exclusive_in_use, 1); /* this thread */
    fleet_batcher *b = NULL;
    ASSERT_REFUSED(create(3, &b), FLEET_ERR_POOL_EXHAUSTED, "fleet_batcher_create: runner");
    ASSERT_TRUE(b == NULL);
    ASSERT_EQ(test_pool_stats(dev).exclusive_in_use, 1); /* the runners' slots came back */

    ASSERT_OK(create(2, &b));
    ASSERT_EQ(test_pool_stats(dev).exclusive_in_use, 3);
    for (int i = 0; i < 20; i++) {
        float x[8], y[4], want[4];
        test_rng r = test_rng_make(100 + (uint64_t)i);
        test_fill_random(x, 8, &r);
        fleet_tensor *tx = test_tensor_2d(dev, 1, 8, x), *ty = test_tensor_2d(dev, 1, 4, NULL);
        const fleet_tensor *in[1] = {tx};
        fleet_tensor *out[1] = {ty};
        fleet_ticket *t;
        ASSERT_OK(fleet_batcher_submit(b, in, 1, out, 1, 0, &t));
        ASSERT_OK(fleet_ticket_wait(t, -1));
        ASSERT_OK(fleet_ticket_release(t));
        test_tensor_read(ty, y);
        test_model_reference(&tm, x, 1, want);
        ASSERT_CLOSE(y, want, 4, 1e-4, 1e-5);
        TEST_RELEASE(tx, ty);
    }
    ASSERT_OK(fleet_batcher_destroy(b));
    ASSERT_EQ(test_pool_stats(dev).exclusive_in_use, 1);
}

int main(int argc, char **argv)
{
    setenv("FLEET_STREAMS", "4", 1);
    setenv("FLEET_STREAM_WAIT_MS", "200", 1);
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &dev));
    const int64_t widths[] = {8, 16, 4};
    test_model_mlp(dev, widths, 3, 3, &tm); /* binds this thread: one slot */
    int rc = test_main(argc, argv);
    test_model_free(&tm);
    return rc;
}
