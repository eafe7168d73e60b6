/* The bounded instance cache under churn: FLEET_GRAPH_CACHE=6 while 4 threads
 * run two models at three batch sizes each (6 plans x 4 streams: 24 keys), each key
 * three times in a row — on cuda the second run captures a graph and the
 * third replays it — so instances, graphs and arenas are evicted and rebuilt
 * all the time, while other threads' instances are in use (those must never
 * be freed). Every output is checked against the plain-C reference. */
#include "model_util.h"

#define THREADS 4

static fleet_device *dev;
static test_model a, b;

typedef struct worker {
    int index, rounds, checked;
} worker;

static void *worker_main(void *arg)
{
    worker *wk = arg;
    float x[3 * 8], y[3 * 4], want[3 * 4];
    test_rng r = test_rng_make(900 + (uint64_t)wk->index);
    for (int round = 0; round < wk->rounds; round++)
        for (int key = 0; key < 6; key++) {
            const test_model *tm = (key + wk->index) % 2 ? &a : &b;
            int64_t batch = 1 + (key / 2 + wk->index) % 3;
            for (int rep = 0; rep < 3; rep++) {
                test_fill_random(x, batch * 8, &r);
                test_model_run(tm, dev, x, batch, y);
                test_model_reference(tm, x, batch, want);
                ASSERT_CLOSE(y, want, batch * 4, 1e-4, 1e-5);
                wk->checked++;
            }
        }
    return NULL;
}

TEST(evictions_under_churn_keep_every_output_right)
{
    const int64_t wa[] = {8, 16, 4}, wb[] = {8, 12, 4};
    test_model_mlp(dev, wa, 3, 1, &a);
    test_model_mlp(dev, wb, 3, 2, &b);
    int rounds = test_scaled(4) < 1 ? 1 : test_scaled(4);
    worker wk[THREADS];
    for (int t = 0; t < THREADS; t++)
        wk[t] = (worker){.index = t, .rounds = rounds};
    test_run_threads(THREADS, worker_main, wk, sizeof wk[0]);
    for (int t = 0; t < THREADS; t++)
        ASSERT_EQ(wk[t].checked, rounds * 6 * 3);
    fleet_model_stats sa, sb;
    ASSERT_OK(fleet_model_get_stats(a.m, &sa));
    ASSERT_OK(fleet_model_get_stats(b.m, &sb));
    printf("  instances %llu + %llu, evictions %llu + %llu, captures %llu + %llu, replays "
           "%llu + %llu\n", (unsigned long long)sa.instances_created,
           (unsigned long long)sb.instances_created, (unsigned long long)sa.evictions,
           (unsigned long long)sb.evictions, (unsigned long long)sa.graph_captures,
           (unsigned long long)sb.graph_captures, (unsigned long long)sa.graph_replays,
           (unsigned long long)sb.graph_replays);
    ASSERT_EQ(sa.compiles, 3u);
    ASSERT_EQ(sb.compiles, 3u);
    ASSERT_GE(sa.evictions + sb.evictions, 1u);
    /* live instances: at most the cache plus those in use (none now) */
    ASSERT_LE(sa.instances_created + sb.instances_created - sa.evictions - sb.evictions, 6u);
    const char *graphs = getenv("FLEET_MODEL_GRAPHS");
    if (fleet_device_backend(dev) == FLEET_BACKEND_CUDA && !(graphs && strcmp(graphs, "0") == 0)) {
        ASSERT_GE(sa.graph_captures + sb.graph_captures, 1u);
        ASSERT_GE(sa.graph_replays + sb.graph_replays, 1u);
    }
    test_model_free(&a);
    test_model_free(&b);
}

int main(int argc, char **argv)
{
    setenv("FLEET_GRAPH_CACHE", "6", 1);
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
