/* tests/record_stream.c — fleet_memory_record_stream: a block used by other
 * streams is withheld from reuse until every using stream has passed the
 * event recorded at the free, and reused after.
 *
 * A using stream is kept "busy" deterministically: a host function on it
 * blocks on a gate that the test opens. While the gate is closed the stream
 * cannot have passed the free's event, so the block must be withheld.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "test_util.h"

#define MIB ((size_t)1 << 20)

/* ---- helpers ---------------------------------------------------------------------- */

typedef struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    int open;
    atomic_int passed; /* set by the host function once through */
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->m, NULL);
    pthread_cond_init(&g->c, NULL);
    g->open = 0;
    atomic_init(&g->passed, 0);
}

static void gate_wait_fn(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->m);
    while (!g->open)
        pthread_cond_wait(&g->c, &g->m);
    pthread_mutex_unlock(&g->m);
    atomic_store(&g->passed, 1);
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->m);
    g->open = 1;
    pthread_cond_broadcast(&g->c);
    pthread_mutex_unlock(&g->m);
}

static void gate_destroy(gate *g)
{
    pthread_mutex_destroy(&g->m);
    pthread_cond_destroy(&g->c);
}

/* Block stream `s` until the gate opens. */
static void hold(fleet_stream *s, gate *g)
{
    ASSERT_OK(fleet_stream_launch_host_func(s, gate_wait_fn, g));
}

static fleet_stream *acquire(fleet_device *d)
{
    fleet_stream *s = NULL;
    ASSERT_OK(fleet_stream_acquire(d, &s));
    return s;
}

static fleet_memory_stats stats(fleet_device *d)
{
    fleet_memory_stats s;
    ASSERT_OK(fleet_memory_get_stats(d, &s));
    ASSERT_EQ(s.allocated + s.pending + s.cached, s.reserved);
    return s;
}

static void expect_clean(fleet_device *d)
{
    ASSERT_OK(fleet_memory_empty_cache(d));
    fleet_memory_stats s = stats(d);
    ASSERT_EQ(s.allocated, 0);
    ASSERT_EQ(s.pending, 0);
    ASSERT_EQ(s.reserved, 0);
}

static fleet_allocation alloc_ok(fleet_stream *s, size_t bytes)
{
    fleet_allocation a;
    ASSERT_OK(fleet_memory_alloc(s, bytes, &a));
    ASSERT_TRUE(a.ptr != NULL);
    return a;
}

/* Allocate `n` blocks of `bytes` on `s`: none may be at `withheld`. */
static void expect_withheld(fleet_stream *s, void *withheld, size_t bytes, int n)
{
    fleet_allocation a[16];
    ASSERT_LE(n, 16);
    for (int i = 0; i < n; i++) {
        a[i] = alloc_ok(s, bytes);
        ASSERT_TRUE(a[i].ptr != withheld);
    }
    for (int i = 0; i < n; i++)
        ASSERT_OK(fleet_memory_free(&a[i]));
}

/* The next allocation of `bytes` on `s` is the block at `ptr` again (best fit
 * finds the exact-size hole it left). */
static void expect_reused(fleet_stream *s, void *ptr, size_t bytes)
{
    fleet_allocation a = alloc_ok(s, bytes);
    ASSERT_TRUE(a.ptr == ptr);
    ASSERT_OK(fleet_memory_free(&a));
}

/* A fresh segment on `owner` whose first block (the one under test) sits
 * before a live fence, so when it comes back it is an exact-size hole. */
typedef struct layout {
    fleet_allocation block, fence;
} layout;

static layout make_layout(fleet_stream *owner, size_t bytes)
{
    layout l;
    l.block = alloc_ok(owner, bytes);
    l.fence = alloc_ok(owner, 512);
    ASSERT_TRUE((char *)l.fence.ptr == (char *)l.block.ptr + (bytes + 511) / 512 * 512);
    return l;
}

/* ---- tests ------------------------------------------------------------------------ */

TEST(single_user_stream_withholds_until_event)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d);
    gate g;
    gate_init(&g);
    layout l = make_layout(a, 4096);
    void *p = l.block.ptr;
    hold(b, &g);
    ASSERT_OK(fleet_memory_record_stream(&l.block, b));
    ASSERT_OK(fleet_memory_free(&l.block));
    ASSERT_EQ(stats(d).pending, 4096);
    expect_withheld(a, p, 4096, 8);
    ASSERT_EQ(atomic_load(&g.passed), 0);
    ASSERT_EQ(stats(d).pending, 4096);
    /* B passes the event: the block comes back, to A's cache only. */
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    fleet_allocation on_b = alloc_ok(b, 4096);
    ASSERT_TRUE(on_b.ptr != p);
    ASSERT_OK(fleet_memory_free(&on_b));
    expect_reused(a, p, 4096);
    ASSERT_EQ(stats(d).pending, 0);
    ASSERT_OK(fleet_memory_free(&l.fence));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    gate_destroy(&g);
    expect_clean(d);
}

TEST(two_user_streams_withhold_until_both_passed)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d), *c = acquire(d);
    gate gb, gc;
    gate_init(&gb);
    gate_init(&gc);
    layout l = make_layout(a, 8192);
    void *p = l.block.ptr;
    hold(b, &gb);
    hold(c, &gc);
    ASSERT_OK(fleet_memory_record_stream(&l.block, b));
    ASSERT_OK(fleet_memory_record_stream(&l.block, c));
    ASSERT_OK(fleet_memory_free(&l.block));
    expect_withheld(a, p, 8192, 4);
    /* B passes; C still uses the block. */
    gate_open(&gb);
    ASSERT_OK(fleet_stream_synchronize(b));
    expect_withheld(a, p, 8192, 4);
    ASSERT_EQ(stats(d).pending, 8192);
    /* C passes too: reused. */
    gate_open(&gc);
    ASSERT_OK(fleet_stream_synchronize(c));
    expect_reused(a, p, 8192);
    ASSERT_EQ(stats(d).pending, 0);
    ASSERT_OK(fleet_memory_free(&l.fence));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    ASSERT_OK(fleet_stream_release(c));
    gate_destroy(&gb);
    gate_destroy(&gc);
    expect_clean(d);
}

TEST(recording_the_owner_stream_changes_nothing)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d);
    gate g;
    gate_init(&g);
    hold(b, &g); /* busy, but not recorded: irrelevant to the block */
    layout l = make_layout(a, 4096);
    void *p = l.block.ptr;
    ASSERT_OK(fleet_memory_record_stream(&l.block, a));
    ASSERT_OK(fleet_memory_free(&l.block));
    ASSERT_EQ(stats(d).pending, 0);
    expect_reused(a, p, 4096); /* stream-ordered: at once */
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    ASSERT_OK(fleet_memory_free(&l.fence));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    gate_destroy(&g);
    expect_clean(d);
}

TEST(repeated_record_is_one_use)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d);
    gate g;
    gate_init(&g);
    layout l = make_layout(a, 4096);
    void *p = l.block.ptr;
    hold(b, &g);
    for (int i = 0; i < 5; i++)
        ASSERT_OK(fleet_memory_record_stream(&l.block, b));
    ASSERT_OK(fleet_memory_record_stream(&l.block, a));
    ASSERT_OK(fleet_memory_free(&l.block));
    ASSERT_EQ(stats(d).pending, 4096); /* counted once */
    expect_withheld(a, p, 4096, 4);
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    expect_reused(a, p, 4096);
    ASSERT_OK(fleet_memory_free(&l.fence));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    gate_destroy(&g);
    expect_clean(d);
}

TEST(pending_stats_track_the_withheld_bytes)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d);
    gate g;
    gate_init(&g);
    layout l = make_layout(a, 5000); /* a 5120-byte block */
    fleet_allocation second = alloc_ok(a, 100000); /* 100352 */
    void *p = l.block.ptr, *q = second.ptr;
    hold(b, &g);
    ASSERT_OK(fleet_memory_record_stream(&l.block, b));
    ASSERT_OK(fleet_memory_record_stream(&second, b));
    fleet_memory_stats s0 = stats(d);
    ASSERT_OK(fleet_memory_free(&l.block));
    fleet_memory_stats s1 = stats(d);
    ASSERT_EQ(s1.pending, 5120);
    ASSERT_EQ(s1.allocated, s0.allocated - 5120);
    ASSERT_EQ(s1.live_blocks, s0.live_blocks - 1);
    ASSERT_EQ(s1.cached, s0.cached);
    ASSERT_OK(fleet_memory_free(&second));
    fleet_memory_stats s2 = stats(d);
    ASSERT_EQ(s2.pending, 5120 + 100352);
    ASSERT_EQ(s2.allocated, 512); /* the fence */
    expect_withheld(a, p, 5000, 4);
    expect_withheld(a, q, 100000, 4);
    ASSERT_EQ(stats(d).pending, 5120 + 100352);
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    /* Once b passed its events, the stats settle the blocks: nothing is
     * pending any more, and the owner's next allocation reuses them. */
    ASSERT_EQ(stats(d).pending, 0);
    expect_reused(a, p, 5000);
    fleet_memory_stats s3 = stats(d);
    ASSERT_EQ(s3.pending, 0);
    ASSERT_EQ(s3.allocated, 512);
    ASSERT_EQ(s3.cached, s3.reserved - 512);
    ASSERT_OK(fleet_memory_free(&l.fence));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    gate_destroy(&g);
    expect_clean(d);
}

typedef struct consume {
    const uint32_t *src;
    uint32_t *dst;
    size_t words;
} consume;

static void consume_fn(void *arg)
{
    consume *c = arg;
    memcpy(c->dst, c->src, c->words * sizeof(uint32_t));
}

TEST(poisoning_cannot_reach_a_recorded_block)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d);
    gate g;
    gate_init(&g);
    enum { WORDS = 16384 }; /* 64 KiB */
    size_t bytes = WORDS * sizeof(uint32_t);
    /* Producer on A: the data. */
    fleet_allocation x = alloc_ok(a, bytes);
    uint32_t *px = x.ptr;
    for (size_t i = 0; i < WORDS; i++)
        px[i] = (uint32_t)(i * 2654435761u) ^ 0x12345678u;
    uint32_t *seen = calloc(WORDS, sizeof *seen);
    ASSERT_TRUE(seen != NULL);
    /* Consumer on B reads it, but only after the gate. */
    consume c = {px, seen, WORDS};
    hold(b, &g);
    ASSERT_OK(fleet_stream_launch_host_func(b, consume_fn, &c));
    ASSERT_OK(fleet_memory_record_stream(&x, b));
    ASSERT_OK(fleet_memory_free(&x));
    /* A allocates and poisons as much as it likes meanwhile. */
    fleet_allocation poison[12];
    for (int k = 0; k < 12; k++) {
        size_t sz = (k % 3 == 0) ? bytes : (k % 3 == 1) ? bytes / 2 : bytes * 2;
        poison[k] = alloc_ok(a, sz);
        memset(poison[k].ptr, 0xEF, sz);
        ASSERT_TRUE((char *)poison[k].ptr + sz <= (char *)px ||
                    (char *)poison[k].ptr >= (char *)px + bytes);
    }
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    for (size_t i = 0; i < WORDS; i++)
        if (seen[i] != ((uint32_t)(i * 2654435761u) ^ 0x12345678u)) {
            fprintf(stderr, "word %zu: 0x%08x\n", i, seen[i]);
            ASSERT_TRUE(!"consumer saw poisoned data");
        }
    /* After B passed, the block is A's again (the poison blocks around it
     * are still live, so it is the only exact fit). */
    fleet_allocation again = alloc_ok(a, bytes);
    ASSERT_TRUE(again.ptr == px);
    ASSERT_OK(fleet_memory_free(&again));
    for (int k = 0; k < 12; k++)
        ASSERT_OK(fleet_memory_free(&poison[k]));
    free(seen);
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    gate_destroy(&g);
    expect_clean(d);
}

TEST(empty_cache_keeps_a_pending_segment)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d);
    gate g;
    gate_init(&g);
    fleet_allocation x = alloc_ok(a, 4096);
    void *p = x.ptr;
    hold(b, &g);
    ASSERT_OK(fleet_memory_record_stream(&x, b));
    ASSERT_OK(fleet_memory_free(&x));
    ASSERT_OK(fleet_memory_empty_cache(d));
    fleet_memory_stats s = stats(d);
    ASSERT_EQ(s.reserved, 2 * MIB);
    ASSERT_EQ(s.segments, 1);
    ASSERT_EQ(s.pending, 4096);
    ASSERT_EQ(s.allocated, 0);
    expect_withheld(a, p, 4096, 2);
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    /* empty_cache reclaims passed blocks first, then releases. */
    ASSERT_OK(fleet_memory_empty_cache(d));
    s = stats(d);
    ASSERT_EQ(s.pending, 0);
    ASSERT_EQ(s.reserved, 0);
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    gate_destroy(&g);
    expect_clean(d);
}

static void sleep_fn(void *arg)
{
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store((atomic_int *)arg, 1);
}

TEST(oom_cascade_synchronizes_and_reclaims_pending)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d);
    atomic_int slept;
    atomic_init(&slept, 0);
    /* B is busy for 50 ms with a block of A's recorded on it. */
    fleet_allocation x = alloc_ok(a, 4096);
    ASSERT_OK(fleet_stream_launch_host_func(b, sleep_fn, &slept));
    ASSERT_OK(fleet_memory_record_stream(&x, b));
    ASSERT_OK(fleet_memory_free(&x));
    ASSERT_OK(fleet_memory_set_limit(d, 20 * MIB));
    fleet_memory_stats s0 = stats(d);
    ASSERT_EQ(s0.pending, 4096);
    /* 20 MiB more does not fit beside the pending segment; step 1 cannot
     * release it (pending); step 2 synchronizes the device, reclaims the
     * block, releases its segment and the retry fits. */
    fleet_allocation big = alloc_ok(a, 4 * MIB);
    ASSERT_EQ(atomic_load(&slept), 1);
    fleet_memory_stats s1 = stats(d);
    ASSERT_EQ(s1.alloc_retries - s0.alloc_retries, 1);
    ASSERT_EQ(s1.ooms, s0.ooms);
    ASSERT_EQ(s1.pending, 0);
    ASSERT_EQ(s1.reserved, 20 * MIB);
    ASSERT_OK(fleet_memory_free(&big));
    ASSERT_OK(fleet_memory_set_limit(d, 0));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    expect_clean(d);
}

typedef struct freer {
    fleet_allocation *a;
    fleet_status st;
} freer;

static void *free_thread(void *arg)
{
    freer *f = arg;
    f->st = fleet_memory_free(f->a);
    return NULL;
}

TEST(free_from_another_thread_still_waits)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *a = acquire(d), *b = acquire(d);
    gate g;
    gate_init(&g);
    layout l = make_layout(a, 4096);
    void *p = l.block.ptr;
    hold(b, &g);
    ASSERT_OK(fleet_memory_record_stream(&l.block, b));
    freer f = {&l.block, FLEET_ERR_INTERNAL};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, free_thread, &f), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(f.st);
    expect_withheld(a, p, 4096, 4);
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    expect_reused(a, p, 4096);
    ASSERT_OK(fleet_memory_free(&l.fence));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    gate_destroy(&g);
    expect_clean(d);
}

TEST(record_on_another_device_is_refused)
{
    fleet_device *d = test_cpu_device(0), *d1 = test_cpu_device(1);
    expect_clean(d);
    fleet_stream *a = acquire(d), *other = acquire(d1);
    gate g;
    gate_init(&g);
    hold(other, &g);
    layout l = make_layout(a, 4096);
    void *p = l.block.ptr;
    ASSERT_REFUSED(fleet_memory_record_stream(&l.block, other), FLEET_ERR_INVALID_DEVICE, "cpu:1");
    ASSERT_STR_CONTAINS(fleet_last_error(), "cpu:0");
    /* Nothing was recorded: the free is immediate even though `other` is busy. */
    ASSERT_OK(fleet_memory_free(&l.block));
    ASSERT_EQ(stats(d).pending, 0);
    expect_reused(a, p, 4096);
    /* A stale handle cannot be recorded either. */
    fleet_allocation y = alloc_ok(a, 4096), stale = y;
    ASSERT_OK(fleet_memory_free(&y));
    ASSERT_STATUS(fleet_memory_record_stream(&stale, a), FLEET_ERR_STALE_HANDLE);
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(other));
    ASSERT_OK(fleet_memory_free(&l.fence));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(other));
    gate_destroy(&g);
    expect_clean(d);
}

/* The same through tensors on the default device (cuda where present): a
 * tensor released while a busy stream still reads it is withheld and counted
 * as pending until that stream passes, on every backend. */
TEST(a_tensor_withheld_for_a_busy_stream_counts_as_pending)
{
    fleet_device *d = NULL;
    ASSERT_OK(fleet_device_default(&d));
    fleet_stream *a = acquire(d), *b = acquire(d);
    ASSERT_OK(fleet_stream_set_current(a));
    fleet_memory_stats before = stats(d);
    gate g;
    gate_init(&g);
    int64_t shape[1] = {1024};
    fleet_tensor *t = NULL;
    ASSERT_OK(fleet_tensor_create(d, FLEET_DTYPE_F32, 1, shape, &t));
    hold(b, &g);
    ASSERT_OK(fleet_tensor_record_stream(t, b));
    ASSERT_OK(fleet_tensor_release(t));
    fleet_memory_stats held = stats(d);
    ASSERT_EQ(held.pending, before.pending + 4096);
    ASSERT_EQ(held.allocated, before.allocated);
    ASSERT_EQ(atomic_load(&g.passed), 0);
    gate_open(&g);
    ASSERT_OK(fleet_stream_synchronize(b));
    fleet_memory_stats after = stats(d);
    ASSERT_EQ(after.pending, before.pending);
    ASSERT_EQ(after.allocated, before.allocated);
    ASSERT_OK(fleet_stream_reset_current(d));
    ASSERT_OK(fleet_stream_release(a));
    ASSERT_OK(fleet_stream_release(b));
    gate_destroy(&g);
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    unsetenv("FLEET_MEMORY_LIMIT");
    int rc = test_main(argc, argv);
    if (rc == 0) {
        /* Shutdown with a block still on the pending list (its event passed
         * but nothing queried it): the allocator must dispose of the event and
         * the segment
         * (sanitizers check nothing leaks or is freed twice). */
        fleet_device *d = test_cpu_device(0);
        fleet_stream *a = acquire(d), *b = acquire(d);
        fleet_allocation x = alloc_ok(a, 4096);
        ASSERT_OK(fleet_memory_record_stream(&x, b));
        ASSERT_OK(fleet_memory_free(&x));
        ASSERT_OK(fleet_stream_synchronize(b));
        /* No stats call here: it would settle the block. */
        ASSERT_OK(fleet_shutdown());
    }
    return rc;
}
