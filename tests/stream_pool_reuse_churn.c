/* Stream Pool Reuse Churn: 10 rounds of 8 concurrent threads (all 8 alive at
 * once). Each round gets 8 distinct slots and correct values; after each
 * round the pool is empty again (no leaked slot), nothing ever shares (80
 * bindings through 31 slots only work if slots come back), and slots used in
 * one round are reused in later ones. The main thread never binds. */
#include "test_util.h"

#define ROUNDS 10
#define PER_ROUND 8

static fleet_device *dev;
static pthread_barrier_t all_bound;

typedef struct worker {
    int round, index;
    int id;
    int checked;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    w->id = test_current_stream_id(dev);
    pthread_barrier_wait(&all_bound);
    uint64_t seed = 1000 * (uint64_t)w->round + 10 * (uint64_t)w->index;
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(test_matmul_check(dev, 12 + i, 20, 16, seed + (uint64_t)i), w->id);
        w->checked++;
    }
    return NULL;
}

TEST(ten_rounds_of_eight)
{
    ASSERT_OK(fleet_device_default(&dev));
    fleet_stream_pool_stats st0 = test_pool_stats(dev);
    int slots = st0.pool_slots;
    ASSERT_TRUE(slots >= PER_ROUND);
    int ids[ROUNDS][PER_ROUND];
    int reused_from_earlier = 0;

    for (int r = 0; r < ROUNDS; r++) {
        worker w[PER_ROUND];
        for (int i = 0; i < PER_ROUND; i++)
            w[i] = (worker){.round = r, .index = i, .id = -1};
        ASSERT_EQ(pthread_barrier_init(&all_bound, NULL, PER_ROUND), 0);
        test_run_threads(PER_ROUND, worker_main, w, sizeof w[0]);
        pthread_barrier_destroy(&all_bound);

        for (int i = 0; i < PER_ROUND; i++) {
            ASSERT_EQ(w[i].checked, 3);
            ASSERT_GE(w[i].id, 1);
            ASSERT_LE(w[i].id, slots);
            for (int j = 0; j < i; j++)
                ASSERT_NE(w[i].id, w[j].id);
            ids[r][i] = w[i].id;
            for (int q = 0; q < r; q++)
                for (int j = 0; j < PER_ROUND; j++)
                    if (ids[q][j] == w[i].id) {
                        reused_from_earlier++;
                        q = r;
                        break;
                    }
        }
        fleet_stream_pool_stats st = test_pool_stats(dev);
        ASSERT_EQ(st.exclusive_in_use, 0); /* no slot leaked by this round */
        ASSERT_EQ(st.shared_bindings, 0);
        ASSERT_EQ(st.bindings_total - st0.bindings_total, (uint64_t)(r + 1) * PER_ROUND);
        ASSERT_EQ(st.shared_total, st0.shared_total);
    }

    /* Every id seen in rounds 0..5 comes back in a later round: 8 of 31 slots
     * per round, the walk covers the whole pool every few rounds. */
    for (int r = 0; r + 1 < ROUNDS && (r + 1) * PER_ROUND + slots <= ROUNDS * PER_ROUND; r++)
        for (int i = 0; i < PER_ROUND; i++) {
            int again = 0;
            for (int q = r + 1; q < ROUNDS && !again; q++)
                for (int j = 0; j < PER_ROUND; j++)
                    again |= ids[q][j] == ids[r][i];
            ASSERT_TRUE(again);
        }
    printf("  %d of %d bindings reused a slot from an earlier round\n", reused_from_earlier,
           ROUNDS * PER_ROUND);
    ASSERT_GE(reused_from_earlier, ROUNDS * PER_ROUND - slots);
}

TEST_MAIN()
