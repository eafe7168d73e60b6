/* Stream Pool Sync Active: 8 workers keep submitting work while another
 * thread calls fleet_device_synchronize 10 times. Each worker, per iteration,
 * enqueues a matmul and then a host function that counts done[w]; only after
 * both enqueues returned does it count submitted[w]. The sync thread
 * snapshots submitted[] before each sync and, when the sync returns, requires
 * done[w] >= snapshot[w]: everything submitted before the call completed.
 * Worker results are checked on a sample of iterations. */
#include "test_util.h"

#define NWORKERS 8
#define M 64
#define K 64
#define N 64
#define CHECK_EVERY 8

static fleet_device *dev;
static atomic_int stop;
static atomic_int submitted[NWORKERS], done[NWORKERS];
static float a_host[M * K], b_host[K * N], want[M * N];
static pthread_barrier_t start_line;

/* Host function: slow the stream a little so syncs find work queued. */
static void finish_one(void *arg)
{
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_add((atomic_int *)arg, 1);
}

typedef struct worker {
    int index;
    int iters;
    int checked;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    fleet_stream *s;
    ASSERT_OK(fleet_stream_current(dev, &s));
    fleet_tensor *ta = test_tensor_2d(dev, M, K, a_host), *tb = test_tensor_2d(dev, K, N, b_host);
    fleet_tensor *tc = test_tensor_2d(dev, M, N, NULL);
    float *got = malloc(sizeof(float) * M * N);
    ASSERT_TRUE(got != NULL);
    pthread_barrier_wait(&start_line);
    while (!atomic_load(&stop)) {
        ASSERT_OK(fleet_matmul(ta, tb, tc));
        ASSERT_OK(fleet_stream_launch_host_func(s, finish_one, &done[w->index]));
        atomic_fetch_add(&submitted[w->index], 1); /* after the enqueues returned */
        w->iters++;
        if (w->iters % CHECK_EVERY == 0) { /* also bounds the queue length */
            test_tensor_read(tc, got);
            ASSERT_CLOSE(got, want, M * N, 1e-5, test_matmul_atol(K));
            ASSERT_EQ(atomic_load(&done[w->index]), atomic_load(&submitted[w->index]));
            w->checked++;
        }
    }
    ASSERT_OK(fleet_stream_synchronize(s));
    ASSERT_OK(fleet_tensor_release(ta));
    ASSERT_OK(fleet_tensor_release(tb));
    ASSERT_OK(fleet_tensor_release(tc));
    free(got);
    return NULL;
}

typedef struct syncer {
    int syncs;
    int found_pending; /* syncs that started with work still outstanding */
} syncer;

static void *sync_main(void *arg)
{
    syncer *sy = arg;
    for (int i = 0; i < 10; i++) {
        test_sleep_ms(5);
        int snap[NWORKERS], pending = 0;
        for (int w = 0; w < NWORKERS; w++)
            snap[w] = atomic_load(&submitted[w]);
        for (int w = 0; w < NWORKERS; w++)
            pending |= atomic_load(&done[w]) < snap[w];
        ASSERT_OK(fleet_device_synchronize(dev));
        for (int w = 0; w < NWORKERS; w++) {
            int d = atomic_load(&done[w]);
            if (d < snap[w]) {
                char msg[128];
                snprintf(msg, sizeof msg, "sync %d: worker %d done %d < submitted %d", i, w, d,
                         snap[w]);
                test_fail_(__FILE__, __LINE__, msg);
            }
        }
        sy->syncs++;
        sy->found_pending += pending;
    }
    return NULL;
}

TEST(device_sync_while_workers_run)
{
    ASSERT_OK(fleet_device_default(&dev));
    test_rng r = test_rng_make(3);
    test_fill_random(a_host, M * K, &r);
    test_fill_random(b_host, K * N, &r);
    ref_matmul(a_host, b_host, NULL, want, M, K, N);
    for (int w = 0; w < NWORKERS; w++) {
        atomic_store(&submitted[w], 0);
        atomic_store(&done[w], 0);
    }
    atomic_store(&stop, 0);

    worker wk[NWORKERS];
    pthread_t th[NWORKERS], ts;
    syncer sy = {0, 0};
    ASSERT_EQ(pthread_barrier_init(&start_line, NULL, NWORKERS + 1), 0);
    for (int w = 0; w < NWORKERS; w++) {
        wk[w] = (worker){.index = w};
        ASSERT_EQ(pthread_create(&th[w], NULL, worker_main, &wk[w]), 0);
    }
    pthread_barrier_wait(&start_line);
    ASSERT_EQ(pthread_create(&ts, NULL, sync_main, &sy), 0);
    ASSERT_EQ(pthread_join(ts, NULL), 0);
    atomic_store(&stop, 1);
    for (int w = 0; w < NWORKERS; w++)
        ASSERT_EQ(pthread_join(th[w], NULL), 0);
    pthread_barrier_destroy(&start_line);

    ASSERT_EQ(sy.syncs, 10);
    printf("  10 syncs, %d began with work outstanding; iterations per worker:", sy.found_pending);
    ASSERT_OK(fleet_device_synchronize(dev));
    for (int w = 0; w < NWORKERS; w++) {
        printf(" %d", wk[w].iters);
        ASSERT_GE(wk[w].iters, 1);
        ASSERT_EQ(atomic_load(&done[w]), atomic_load(&submitted[w]));
        ASSERT_EQ(atomic_load(&submitted[w]), wk[w].iters);
    }
    printf("\n");
    fleet_stream_pool_stats st = test_pool_stats(dev);
    ASSERT_EQ(st.exclusive_in_use, 0);
}

/* A sync with nothing submitted returns at once and succeeds. */
TEST(device_sync_idle)
{
    ASSERT_OK(fleet_device_default(&dev));
    ASSERT_OK(fleet_device_synchronize(dev));
    ASSERT_OK(fleet_device_synchronize(dev));
}

TEST_MAIN()
