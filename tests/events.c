/* Events: query on a gated stream, ordering across streams through
 * wait_event (checked with a log written by host functions), never-recorded
 * events, re-recording, destroy while a wait is pending, and a record on
 * another device's stream. Runs with FLEET_CPU_DEVICES=2. */
#include "test_util.h"

static fleet_device *dev;

/* ---- a log that host functions append to ---------------------------------- */

typedef struct log_entry {
    pthread_mutex_t *mu;
    char *buf;
    char tag;
} log_entry;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[64];

static void log_append(void *arg)
{
    log_entry *e = arg;
    pthread_mutex_lock(e->mu);
    size_t n = strlen(e->buf);
    e->buf[n] = e->tag;
    e->buf[n + 1] = 0;
    pthread_mutex_unlock(e->mu);
}

static void log_read(char *out)
{
    pthread_mutex_lock(&log_mu);
    strcpy(out, log_buf);
    pthread_mutex_unlock(&log_mu);
}

static void log_reset(void)
{
    pthread_mutex_lock(&log_mu);
    log_buf[0] = 0;
    pthread_mutex_unlock(&log_mu);
}

static void two_streams(fleet_stream **a, fleet_stream **b)
{
    dev = test_gate_device(); /* gated streams: see test_util.h */
    ASSERT_OK(fleet_stream_acquire(dev, a));
    ASSERT_OK(fleet_stream_acquire(dev, b));
    ASSERT_TRUE(*a != *b);
}

static void release_streams(fleet_stream *a, fleet_stream *b)
{
    ASSERT_OK(fleet_stream_synchronize(a));
    ASSERT_OK(fleet_stream_synchronize(b));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
}

TEST(query_on_gated_stream)
{
    fleet_stream *a, *b;
    two_streams(&a, &b);
    fleet_event *e;
    ASSERT_OK(fleet_event_create(dev, &e));
    test_gate g;
    test_gate_init(&g);
    ASSERT_OK(fleet_stream_launch_host_func(a, test_gate_wait, &g));
    ASSERT_OK(fleet_event_record(e, a));
    ASSERT_STATUS(fleet_event_query(e), FLEET_ERR_NOT_READY);
    ASSERT_STATUS(fleet_stream_query(a), FLEET_ERR_NOT_READY);
    test_sleep_ms(20);
    ASSERT_STATUS(fleet_event_query(e), FLEET_ERR_NOT_READY); /* still held */
    ASSERT_OK(fleet_stream_query(b));                          /* b is idle  */
    test_gate_open(&g);
    ASSERT_OK(fleet_event_synchronize(e));
    ASSERT_OK(fleet_event_query(e));
    ASSERT_OK(fleet_stream_query(a));
    ASSERT_OK(fleet_event_destroy(e));
    test_gate_destroy(&g);
    release_streams(a, b);
}

TEST(wait_event_orders_streams)
{
    fleet_stream *a, *b;
    two_streams(&a, &b);
    log_reset();
    log_entry a1 = {&log_mu, log_buf, 'a'}, b0 = {&log_mu, log_buf, '0'};
    log_entry b1 = {&log_mu, log_buf, 'b'}, a2 = {&log_mu, log_buf, 'A'};
    fleet_event *e;
    ASSERT_OK(fleet_event_create(dev, &e));
    test_gate g;
    test_gate_init(&g);
    ASSERT_OK(fleet_stream_launch_host_func(a, test_gate_wait, &g));
    ASSERT_OK(fleet_stream_launch_host_func(a, log_append, &a1));
    ASSERT_OK(fleet_event_record(e, a));
    ASSERT_OK(fleet_stream_launch_host_func(a, log_append, &a2)); /* after the mark */
    ASSERT_OK(fleet_stream_launch_host_func(b, log_append, &b0)); /* before the wait */
    ASSERT_OK(fleet_stream_wait_event(b, e));
    ASSERT_OK(fleet_stream_launch_host_func(b, log_append, &b1));
    /* b runs up to the wait, and no further while a is held. */
    char seen[64];
    double t0 = test_now_ms();
    do {
        log_read(seen);
        ASSERT_TRUE(test_now_ms() - t0 < 10000);
    } while (strcmp(seen, "0") != 0 && (test_sleep_ms(1), 1));
    test_sleep_ms(20);
    log_read(seen);
    ASSERT_TRUE(strcmp(seen, "0") == 0);
    ASSERT_STATUS(fleet_stream_query(b), FLEET_ERR_NOT_READY);
    test_gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    ASSERT_OK(fleet_stream_synchronize(a));
    log_read(seen);
    /* 'b' strictly after 'a'; 'A' (after the mark) may land either side of 'b'. */
    ASSERT_TRUE(strcmp(seen, "0abA") == 0 || strcmp(seen, "0aAb") == 0);
    ASSERT_OK(fleet_event_destroy(e));
    test_gate_destroy(&g);
    release_streams(a, b);
}

TEST(unrecorded_event_is_complete)
{
    fleet_stream *a, *b;
    two_streams(&a, &b);
    fleet_event *e;
    ASSERT_OK(fleet_event_create(dev, &e));
    ASSERT_OK(fleet_event_query(e));
    ASSERT_OK(fleet_event_synchronize(e));
    atomic_int ran = 0;
    ASSERT_OK(fleet_stream_wait_event(a, e));
    ASSERT_OK(fleet_stream_launch_host_func(a, test_count_host_fn, &ran));
    ASSERT_OK(fleet_stream_synchronize(a));
    ASSERT_EQ(atomic_load(&ran), 1);
    ASSERT_OK(fleet_event_destroy(e));
    ASSERT_OK(fleet_event_destroy(NULL)); /* NULL is ignored */
    release_streams(a, b);
}

TEST(rerecord_moves_the_mark)
{
    fleet_stream *a, *b;
    two_streams(&a, &b);
    fleet_event *e;
    ASSERT_OK(fleet_event_create(dev, &e));
    ASSERT_OK(fleet_event_record(e, a)); /* a is idle: complete */
    ASSERT_OK(fleet_event_synchronize(e));
    ASSERT_OK(fleet_event_query(e));

    test_gate g;
    test_gate_init(&g);
    ASSERT_OK(fleet_stream_launch_host_func(a, test_gate_wait, &g));
    ASSERT_OK(fleet_event_record(e, a)); /* forward onto held work */
    ASSERT_STATUS(fleet_event_query(e), FLEET_ERR_NOT_READY);

    /* A wait captures the mark as it is when the wait is made. */
    atomic_int ran = 0;
    ASSERT_OK(fleet_stream_wait_event(b, e));
    ASSERT_OK(fleet_stream_launch_host_func(b, test_count_host_fn, &ran));

    ASSERT_OK(fleet_event_record(e, b)); /* moved onto b: behind b's wait */
    ASSERT_STATUS(fleet_event_query(e), FLEET_ERR_NOT_READY);
    fleet_stream *c;
    ASSERT_OK(fleet_stream_acquire(dev, &c));
    ASSERT_OK(fleet_event_record(e, c)); /* moved onto idle c: complete */
    ASSERT_OK(fleet_event_synchronize(e));
    ASSERT_OK(fleet_event_query(e));
    test_sleep_ms(20);
    ASSERT_EQ(atomic_load(&ran), 0); /* b still waits for the old mark on a */
    ASSERT_STATUS(fleet_stream_query(b), FLEET_ERR_NOT_READY);

    test_gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    ASSERT_EQ(atomic_load(&ran), 1);
    ASSERT_OK(fleet_event_destroy(e));
    test_gate_destroy(&g);
    ASSERT_OK(fleet_stream_release(c));
    release_streams(a, b);
}

TEST(destroy_while_wait_pending)
{
    fleet_stream *a, *b;
    two_streams(&a, &b);
    for (int round = 0; round < test_scaled(20); round++) {
        fleet_event *e;
        ASSERT_OK(fleet_event_create(dev, &e));
        test_gate g;
        test_gate_init(&g);
        atomic_int ran = 0;
        ASSERT_OK(fleet_stream_launch_host_func(a, test_gate_wait, &g));
        ASSERT_OK(fleet_event_record(e, a));
        ASSERT_OK(fleet_stream_wait_event(b, e));
        ASSERT_OK(fleet_stream_launch_host_func(b, test_count_host_fn, &ran));
        ASSERT_OK(fleet_event_destroy(e)); /* b still waits on it */
        if (round == 0)
            test_sleep_ms(20);
        ASSERT_EQ(atomic_load(&ran), 0); /* the wait completes as recorded ... */
        ASSERT_STATUS(fleet_stream_query(b), FLEET_ERR_NOT_READY);
        test_gate_open(&g);
        ASSERT_OK(fleet_stream_synchronize(b)); /* ... once a passed the mark */
        ASSERT_EQ(atomic_load(&ran), 1);
        ASSERT_OK(fleet_stream_synchronize(a));
        test_gate_destroy(&g);
    }
    release_streams(a, b);
}

TEST(record_on_other_device_fails)
{
    ASSERT_OK(fleet_device_default(&dev));
    int n = 0;
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CPU, &n));
    ASSERT_EQ(n, 2);
    fleet_device *dev1;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &dev1));
    ASSERT_TRUE(dev1 != dev);
    ASSERT_EQ(fleet_device_ordinal(dev1), 1);
    fleet_event *e;
    ASSERT_OK(fleet_event_create(dev, &e));
    fleet_stream *s1, *s0;
    ASSERT_OK(fleet_stream_acquire(dev1, &s1));
    ASSERT_OK(fleet_stream_acquire(dev, &s0));
    ASSERT_TRUE(fleet_stream_device(s1) == dev1);
    ASSERT_STATUS(fleet_event_record(e, s1), FLEET_ERR_INVALID_DEVICE);
    /* The failed call changed nothing: e is still never-recorded, usable on dev. */
    ASSERT_OK(fleet_event_query(e));
    ASSERT_OK(fleet_event_record(e, s0));
    ASSERT_OK(fleet_event_synchronize(e));
    ASSERT_OK(fleet_event_destroy(e));
    ASSERT_OK(fleet_stream_release(s1));
    ASSERT_OK(fleet_stream_release(s0));
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
}
