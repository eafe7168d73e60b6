/* tests/allocator.c — the caching allocator: size classes, split, merge, best
 * fit, stale handles, the OOM cascade, limits, stats, per-stream caches and
 * concurrent use. Every test starts and ends with nothing allocated and an
 * empty cache, so absolute byte counts can be asserted.
 */
#include <pthread.h>

#include "test_util.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

static fleet_stream *current_stream(fleet_device *d)
{
    fleet_stream *s = NULL;
    ASSERT_OK(fleet_stream_current(d, &s));
    return s;
}

static fleet_stream *acquire(fleet_device *d)
{
    fleet_stream *s = NULL;
    ASSERT_OK(fleet_stream_acquire(d, &s));
    return s;
}

/* Stats, checking the accounting equation on every read. */
static fleet_memory_stats stats(fleet_device *d)
{
    fleet_memory_stats s;
    ASSERT_OK(fleet_memory_get_stats(d, &s));
    ASSERT_EQ(s.allocated + s.pending + s.cached, s.reserved);
    ASSERT_LE(s.allocated, s.peak_allocated);
    return s;
}

/* Nothing live, nothing pending, and after empty_cache nothing reserved. */
static void expect_clean(fleet_device *d)
{
    ASSERT_OK(fleet_memory_empty_cache(d));
    fleet_memory_stats s = stats(d);
    ASSERT_EQ(s.allocated, 0);
    ASSERT_EQ(s.pending, 0);
    ASSERT_EQ(s.live_blocks, 0);
    ASSERT_EQ(s.reserved, 0);
    ASSERT_EQ(s.cached, 0);
    ASSERT_EQ(s.segments, 0);
}

static fleet_allocation alloc_ok(fleet_stream *s, size_t bytes)
{
    fleet_allocation a;
    ASSERT_OK(fleet_memory_alloc(s, bytes, &a));
    ASSERT_TRUE(a.ptr != NULL);
    ASSERT_EQ(a.size, bytes);
    ASSERT_EQ((uintptr_t)a.ptr % 256, 0);
    return a;
}

static uintptr_t addr(const fleet_allocation *a)
{
    return (uintptr_t)a->ptr;
}

/* ---- size classes ------------------------------------------------------------ */

TEST(small_requests_round_to_512_in_2mib_segments)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    fleet_memory_stats s0 = stats(d);

    fleet_allocation a = alloc_ok(s, 1);
    fleet_memory_stats st = stats(d);
    ASSERT_EQ(st.allocated, 512);
    ASSERT_EQ(st.reserved, 2 * MIB);
    ASSERT_EQ(st.segments, 1);
    ASSERT_EQ(st.cached, 2 * MIB - 512);
    ASSERT_EQ(st.segment_allocs - s0.segment_allocs, 1);
    ASSERT_EQ(st.cache_hits - s0.cache_hits, 0);

    fleet_allocation b = alloc_ok(s, 513); /* -> 1024 */
    fleet_allocation c = alloc_ok(s, 1 * MIB); /* still small, same segment */
    st = stats(d);
    ASSERT_EQ(st.allocated, 512 + 1024 + 1 * MIB);
    ASSERT_EQ(st.reserved, 2 * MIB);
    ASSERT_EQ(st.segments, 1);
    ASSERT_EQ(st.live_blocks, 3);
    ASSERT_EQ(st.alloc_requests - s0.alloc_requests, 3);
    ASSERT_EQ(st.cache_hits - s0.cache_hits, 2);

    /* 1 MiB + 1 is large: rounded to 512 and carved from a 20 MiB segment. */
    fleet_allocation e = alloc_ok(s, 1 * MIB + 1);
    st = stats(d);
    ASSERT_EQ(st.allocated, 512 + 1024 + 1 * MIB + 1 * MIB + 512);
    ASSERT_EQ(st.reserved, 22 * MIB);
    ASSERT_EQ(st.segments, 2);

    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_free(&b));
    ASSERT_OK(fleet_memory_free(&c));
    ASSERT_OK(fleet_memory_free(&e));
    ASSERT_TRUE(a.ptr == NULL && a.block_ == NULL); /* zeroed on success */
    st = stats(d);
    ASSERT_EQ(st.allocated, 0);
    ASSERT_EQ(st.cached, 22 * MIB);
    expect_clean(d);
}

TEST(large_requests_own_segments_from_10mib)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);

    /* Exactly 10 MiB: a segment of its own, exactly that size. */
    fleet_allocation a = alloc_ok(s, 10 * MIB);
    fleet_memory_stats st = stats(d);
    ASSERT_EQ(st.reserved, 10 * MIB);
    ASSERT_EQ(st.allocated, 10 * MIB);
    ASSERT_EQ(st.cached, 0);

    /* 11 MiB + 1 -> 11 MiB + 512 in a 12 MiB segment; the 1 MiB - 512 rest
     * is not worth a block (a large remainder must exceed 1 MiB). */
    fleet_allocation b = alloc_ok(s, 11 * MIB + 1);
    st = stats(d);
    ASSERT_EQ(st.reserved, 22 * MIB);
    ASSERT_EQ(st.allocated, 22 * MIB);
    ASSERT_EQ(st.cached, 0);

    /* 10.5 MiB in a 12 MiB segment: the 1.5 MiB rest is split off and cached. */
    fleet_allocation c = alloc_ok(s, 10 * MIB + 512 * KIB);
    st = stats(d);
    ASSERT_EQ(st.reserved, 34 * MIB);
    ASSERT_EQ(st.allocated, 32 * MIB + 512 * KIB);
    ASSERT_EQ(st.cached, 1 * MIB + 512 * KIB);
    ASSERT_EQ(st.segments, 3);
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_free(&b));
    ASSERT_OK(fleet_memory_free(&c));
    expect_clean(d);

    /* Under 10 MiB: from a shared 20 MiB segment; a rest of <= 1 MiB stays
     * with the block. */
    fleet_allocation e = alloc_ok(s, 19 * MIB + 1);
    st = stats(d);
    ASSERT_EQ(st.reserved, 20 * MIB);
    ASSERT_EQ(st.allocated, 20 * MIB);
    ASSERT_OK(fleet_memory_free(&e));
    fleet_allocation f = alloc_ok(s, 4 * MIB);
    fleet_allocation g = alloc_ok(s, 4 * MIB);
    st = stats(d);
    ASSERT_EQ(st.reserved, 20 * MIB);
    ASSERT_EQ(st.segments, 1);
    ASSERT_EQ(addr(&g), addr(&f) + 4 * MIB);
    ASSERT_OK(fleet_memory_free(&f));
    ASSERT_OK(fleet_memory_free(&g));
    expect_clean(d);
}

/* ---- split, merge, best fit -------------------------------------------------------- */

TEST(split_packs_small_blocks_into_one_segment)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    fleet_allocation a = alloc_ok(s, 4096);
    fleet_allocation b = alloc_ok(s, 8192);
    fleet_memory_stats st = stats(d);
    ASSERT_EQ(st.segments, 1);
    /* a opened the segment, so it is at its start; b is carved right after. */
    ASSERT_EQ(addr(&b), addr(&a) + 4096);
    ASSERT_LE(addr(&b) + 8192, addr(&a) + 2 * MIB);
    memset(a.ptr, 0xAA, 4096);
    memset(b.ptr, 0xBB, 8192);
    ASSERT_EQ(((unsigned char *)a.ptr)[4095], 0xAA);
    ASSERT_EQ(((unsigned char *)b.ptr)[0], 0xBB);
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_free(&b));
    expect_clean(d);
}

TEST(merge_with_free_neighbours)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    fleet_allocation a = alloc_ok(s, 4096);
    fleet_allocation b = alloc_ok(s, 4096);
    fleet_allocation fence = alloc_ok(s, 4096); /* keeps a+b from merging with the rest */
    uintptr_t pa = addr(&a);
    ASSERT_EQ(addr(&b), pa + 4096);
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_free(&b));
    /* a and b are one 8 KiB block now: an 8 KiB request fits there exactly,
     * which best fit prefers to the big rest after the fence. */
    fleet_allocation m = alloc_ok(s, 8192);
    ASSERT_EQ(addr(&m), pa);
    fleet_memory_stats st = stats(d);
    ASSERT_EQ(st.segments, 1);
    ASSERT_EQ(st.allocated, 8192 + 4096);
    ASSERT_OK(fleet_memory_free(&m));
    ASSERT_OK(fleet_memory_free(&fence));
    /* Everything merged back into one block spanning the segment: that is
     * what lets empty_cache release it. */
    st = stats(d);
    ASSERT_EQ(st.cached, 2 * MIB);
    ASSERT_OK(fleet_memory_empty_cache(d));
    ASSERT_EQ(stats(d).reserved, 0);
    expect_clean(d);
}

TEST(best_fit_picks_smallest_fitting_block)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    /* Holes of 8 KiB, 4 KiB, 16 KiB and 4 KiB separated by live fences. */
    size_t hole_sizes[4] = {8 * KIB, 4 * KIB, 16 * KIB, 4 * KIB};
    fleet_allocation hole[4], fence[4];
    for (int i = 0; i < 4; i++) {
        hole[i] = alloc_ok(s, hole_sizes[i]);
        fence[i] = alloc_ok(s, 512);
    }
    uintptr_t hp[4];
    for (int i = 0; i < 4; i++) {
        hp[i] = addr(&hole[i]);
        ASSERT_OK(fleet_memory_free(&hole[i]));
    }
    /* 4 KiB: two exact holes; the lower address wins. */
    fleet_allocation x = alloc_ok(s, 4 * KIB);
    ASSERT_EQ(addr(&x), hp[1]);
    /* 6 KiB: the 8 KiB hole is the smallest that fits (4 KiB is too small). */
    fleet_allocation y = alloc_ok(s, 6 * KIB);
    ASSERT_EQ(addr(&y), hp[0]);
    /* The rest of the 8 KiB hole (2 KiB) is now the best fit for 2 KiB. */
    fleet_allocation z = alloc_ok(s, 2 * KIB);
    ASSERT_EQ(addr(&z), hp[0] + 6 * KIB);
    /* 12 KiB: only the 16 KiB hole and the rest of the segment fit. */
    fleet_allocation w = alloc_ok(s, 12 * KIB);
    ASSERT_EQ(addr(&w), hp[2]);
    fleet_allocation v = alloc_ok(s, 4 * KIB);
    /* 4 KiB: the rest of the 16 KiB hole and hole 3 tie; the lower wins. */
    ASSERT_EQ(addr(&v), hp[2] + 12 * KIB);
    ASSERT_OK(fleet_memory_free(&v));
    fleet_allocation v2 = alloc_ok(s, 4 * KIB);
    ASSERT_EQ(addr(&v2), hp[2] + 12 * KIB);
    ASSERT_EQ(stats(d).segments, 1);
    fleet_allocation *all[] = {&x, &y, &z, &w, &v2, &fence[0], &fence[1], &fence[2], &fence[3]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ASSERT_OK(fleet_memory_free(all[i]));
    expect_clean(d);
}

/* ---- stale handles ----------------------------------------------------------------- */

TEST(stale_handle_double_free_and_reuse)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    fleet_allocation a = alloc_ok(s, 4096);
    fleet_allocation old = a;
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_TRUE(a.ptr == NULL);
    ASSERT_REFUSED(fleet_memory_free(&old), FLEET_ERR_STALE_HANDLE, "stale");
    ASSERT_STR_CONTAINS(fleet_last_error(), "fleet_memory_free");

    /* The same block is handed out again: same address, new generation. */
    fleet_allocation b = alloc_ok(s, 4096);
    ASSERT_EQ(addr(&b), addr(&old));
    ASSERT_NE(b.generation_, old.generation_);
    memset(b.ptr, 0x5A, 4096);
    fleet_memory_stats before = stats(d);
    fleet_allocation old_copy = old;
    ASSERT_STATUS(fleet_memory_free(&old), FLEET_ERR_STALE_HANDLE);
    ASSERT_TRUE(memcmp(&old, &old_copy, sizeof old) == 0); /* a failed free touches nothing */
    ASSERT_STATUS(fleet_memory_record_stream(&old, s), FLEET_ERR_STALE_HANDLE);
    fleet_memory_stats after = stats(d);
    ASSERT_EQ(after.allocated, before.allocated);
    ASSERT_EQ(after.live_blocks, 1);
    ASSERT_EQ(((unsigned char *)b.ptr)[4095], 0x5A);
    /* The new allocation is still valid and freeable. */
    ASSERT_OK(fleet_memory_free(&b));
    ASSERT_EQ(stats(d).allocated, 0);
    expect_clean(d);
}

TEST(stale_handle_after_merge_recycles_metadata)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    fleet_allocation a = alloc_ok(s, 4096);
    fleet_allocation b = alloc_ok(s, 4096);
    fleet_allocation old_b = b;
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_free(&b)); /* b's block merges into a's: metadata recycled */
    ASSERT_STATUS(fleet_memory_free(&old_b), FLEET_ERR_STALE_HANDLE);
    /* Carving again reuses recycled metadata; the old handle stays stale. */
    fleet_allocation c = alloc_ok(s, 4096);
    fleet_allocation e = alloc_ok(s, 4096);
    ASSERT_EQ(addr(&e), addr(&old_b));
    ASSERT_STATUS(fleet_memory_free(&old_b), FLEET_ERR_STALE_HANDLE);
    ASSERT_EQ(stats(d).live_blocks, 2);
    ASSERT_OK(fleet_memory_free(&c));
    ASSERT_OK(fleet_memory_free(&e));
    expect_clean(d);
}

/* ---- out of memory ----------------------------------------------------------------- */

TEST(oom_injected_failure_recovered_by_releasing_cache)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    /* A cached, wholly free small segment... */
    fleet_allocation x = alloc_ok(s, 4096);
    ASSERT_OK(fleet_memory_free(&x));
    fleet_memory_stats s0 = stats(d);
    ASSERT_EQ(s0.reserved, 2 * MIB);
    /* ...is released by cascade step 1 when the backend refuses the next
     * segment, and the retry succeeds. */
    ASSERT_OK(fleet_memory_inject_failure(d, 1));
    fleet_allocation y = alloc_ok(s, 4 * MIB);
    fleet_memory_stats s1 = stats(d);
    ASSERT_EQ(s1.alloc_retries - s0.alloc_retries, 1);
    ASSERT_EQ(s1.ooms, s0.ooms);
    ASSERT_EQ(s1.segment_frees - s0.segment_frees, 1);
    ASSERT_EQ(s1.segment_allocs - s0.segment_allocs, 1); /* the failed one is not counted */
    ASSERT_EQ(s1.reserved, 20 * MIB);
    ASSERT_EQ(s1.segments, 1);
    memset(y.ptr, 1, 4 * MIB);
    ASSERT_OK(fleet_memory_free(&y));
    expect_clean(d);
}

TEST(oom_injected_failure_without_cache_is_reported)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    fleet_memory_stats s0 = stats(d);
    /* The 2nd raw allocation fails: the small segment is granted, the large
     * one is not, and nothing can be released (the small one is in use). */
    ASSERT_OK(fleet_memory_inject_failure(d, 2));
    fleet_allocation live = alloc_ok(s, 4096);
    fleet_allocation a;
    memset(&a, 0x7F, sizeof a);
    ASSERT_STATUS(fleet_memory_alloc(s, 3 * MIB, &a), FLEET_ERR_OUT_OF_MEMORY);
    ASSERT_TRUE(a.ptr == NULL && a.block_ == NULL && a.size == 0); /* zeroed on failure */
    const char *msg = fleet_last_error();
    ASSERT_STR_CONTAINS(msg, "requested 3145728 bytes");
    ASSERT_STR_CONTAINS(msg, "cpu:0");
    ASSERT_STR_CONTAINS(msg, "allocated 4096");
    ASSERT_STR_CONTAINS(msg, "cached 2093056");
    ASSERT_STR_CONTAINS(msg, "limit none");
    fleet_memory_stats s1 = stats(d);
    ASSERT_EQ(s1.ooms - s0.ooms, 1);
    ASSERT_EQ(s1.alloc_retries - s0.alloc_retries, 1);
    ASSERT_EQ(s1.allocated, 4096);
    ASSERT_EQ(s1.reserved, 2 * MIB);
    /* The injection fired once; the same request works now. */
    fleet_allocation b = alloc_ok(s, 3 * MIB);
    ASSERT_OK(fleet_memory_free(&b));
    ASSERT_OK(fleet_memory_free(&live));

    /* Disarming: inject 1, then 0, and the next allocation is not failed. */
    ASSERT_OK(fleet_memory_inject_failure(d, 1));
    ASSERT_OK(fleet_memory_inject_failure(d, 0));
    fleet_allocation c = alloc_ok(s, 12 * MIB);
    ASSERT_EQ(stats(d).ooms, s1.ooms);
    ASSERT_OK(fleet_memory_free(&c));
    expect_clean(d);
}

TEST(memory_limit_caps_reserved)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    ASSERT_OK(fleet_memory_set_limit(d, 3 * MIB));
    ASSERT_EQ(stats(d).limit, 3 * MIB);
    fleet_allocation a = alloc_ok(s, 1 * MIB);
    fleet_allocation b = alloc_ok(s, 1 * MIB); /* the rest of the same 2 MiB segment */
    fleet_memory_stats s0 = stats(d);
    ASSERT_EQ(s0.reserved, 2 * MIB);
    ASSERT_EQ(s0.cached, 0);
    /* A second segment would make 4 MiB > 3 MiB; nothing can be released. */
    fleet_allocation c;
    ASSERT_REFUSED(fleet_memory_alloc(s, 512, &c), FLEET_ERR_OUT_OF_MEMORY, "requested 512 bytes");
    ASSERT_STR_CONTAINS(fleet_last_error(), "limit 3145728");
    ASSERT_STR_CONTAINS(fleet_last_error(), "allocated 2097152");
    fleet_memory_stats s1 = stats(d);
    ASSERT_EQ(s1.ooms - s0.ooms, 1);
    ASSERT_EQ(s1.reserved, 2 * MIB);
    /* A large request can never fit under this limit. */
    ASSERT_STATUS(fleet_memory_alloc(s, 2 * MIB, &c), FLEET_ERR_OUT_OF_MEMORY);
    /* Freed memory is reused under the limit without new segments. */
    ASSERT_OK(fleet_memory_free(&b));
    c = alloc_ok(s, 512);
    ASSERT_EQ(addr(&c), addr(&a) + 1 * MIB);
    /* Lowering the limit below reserved frees nothing; cached reuse goes on. */
    ASSERT_OK(fleet_memory_set_limit(d, 1 * MIB));
    ASSERT_EQ(stats(d).reserved, 2 * MIB);
    fleet_allocation e = alloc_ok(s, 4096);
    ASSERT_OK(fleet_memory_free(&e));
    /* Lifting the limit lets new segments come again. */
    ASSERT_OK(fleet_memory_set_limit(d, 0));
    e = alloc_ok(s, 2 * MIB);
    ASSERT_EQ(stats(d).reserved, 22 * MIB);
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_free(&c));
    ASSERT_OK(fleet_memory_free(&e));
    expect_clean(d);
}

TEST(limit_cascade_releases_other_streams_cache)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *sa = acquire(d), *sb = acquire(d);
    /* Stream B holds a cached free segment that A cannot reuse... */
    fleet_allocation x = alloc_ok(sb, 4096);
    ASSERT_OK(fleet_memory_free(&x));
    ASSERT_EQ(stats(d).reserved, 2 * MIB);
    ASSERT_OK(fleet_memory_set_limit(d, 2 * MIB));
    fleet_memory_stats s0 = stats(d);
    /* ...but the cascade releases it, so A's new segment fits the limit. */
    fleet_allocation y = alloc_ok(sa, 4096);
    fleet_memory_stats s1 = stats(d);
    ASSERT_EQ(s1.alloc_retries - s0.alloc_retries, 1);
    ASSERT_EQ(s1.segment_frees - s0.segment_frees, 1);
    ASSERT_EQ(s1.reserved, 2 * MIB);
    ASSERT_EQ(s1.ooms, s0.ooms);
    ASSERT_OK(fleet_memory_free(&y));
    ASSERT_OK(fleet_memory_set_limit(d, 0));
    ASSERT_OK(fleet_stream_release(sa));
    ASSERT_OK(fleet_stream_release(sb));
    expect_clean(d);
}

/* ---- stats ------------------------------------------------------------------------ */

TEST(stats_invariant_and_peak_over_random_sequence)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    ASSERT_OK(fleet_memory_reset_peak(d));
    ASSERT_EQ(stats(d).peak_allocated, 0);
    fleet_memory_stats s0 = stats(d);
    enum { SLOTS = 24 };
    fleet_allocation live[SLOTS];
    size_t rounded[SLOTS];
    memset(live, 0, sizeof live);
    uint64_t allocated = 0, peak = 0, count = 0, allocs = 0;
    test_rng rng = test_rng_make(11);
    int steps = test_scaled(600);
    for (int i = 0; i < steps; i++) {
        int k = (int)(test_rng_next(&rng) % SLOTS);
        if (live[k].ptr == NULL) {
            /* Small sizes: split always happens, so a block is exactly the
             * rounded request and the expected bytes are known. */
            size_t bytes = 1 + (size_t)(test_rng_next(&rng) % (256 * KIB));
            live[k] = alloc_ok(s, bytes);
            rounded[k] = (bytes + 511) / 512 * 512;
            allocated += rounded[k];
            count++;
            allocs++;
            if (allocated > peak)
                peak = allocated;
        } else {
            ASSERT_OK(fleet_memory_free(&live[k]));
            allocated -= rounded[k];
            count--;
        }
        fleet_memory_stats st = stats(d); /* checks the equation */
        ASSERT_EQ(st.allocated, allocated);
        ASSERT_EQ(st.live_blocks, count);
        ASSERT_EQ(st.peak_allocated, peak);
        ASSERT_EQ(st.pending, 0);
        ASSERT_EQ(st.reserved, st.segments * 2 * MIB);
        ASSERT_EQ(st.alloc_requests - s0.alloc_requests, allocs);
        ASSERT_EQ(st.cache_hits - s0.cache_hits + st.segment_allocs - s0.segment_allocs, allocs);
    }
    for (int k = 0; k < SLOTS; k++)
        if (live[k].ptr != NULL)
            ASSERT_OK(fleet_memory_free(&live[k]));
    fleet_memory_stats st = stats(d);
    ASSERT_EQ(st.peak_allocated, peak);
    ASSERT_OK(fleet_memory_reset_peak(d));
    ASSERT_EQ(stats(d).peak_allocated, 0);
    expect_clean(d);
}

TEST(empty_cache_keeps_segments_in_use)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *sa = acquire(d), *sb = acquire(d);
    fleet_allocation a = alloc_ok(sa, 100);
    fleet_allocation b = alloc_ok(sa, 5 * MIB);
    fleet_allocation c = alloc_ok(sb, 64 * KIB);
    fleet_allocation e = alloc_ok(sb, 12 * MIB);
    fleet_memory_stats s0 = stats(d);
    ASSERT_EQ(s0.reserved, 2 * MIB + 20 * MIB + 2 * MIB + 12 * MIB);
    ASSERT_OK(fleet_memory_free(&b));
    ASSERT_OK(fleet_memory_free(&e));
    ASSERT_OK(fleet_memory_empty_cache(d));
    fleet_memory_stats s1 = stats(d);
    ASSERT_EQ(s1.reserved, 4 * MIB); /* the two small segments with live blocks stay */
    ASSERT_EQ(s1.segments, 2);
    ASSERT_EQ(s1.segment_frees - s0.segment_frees, 2);
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_OK(fleet_memory_free(&c));
    ASSERT_EQ(stats(d).cached, 4 * MIB);
    ASSERT_OK(fleet_memory_empty_cache(d));
    fleet_memory_stats s2 = stats(d);
    ASSERT_EQ(s2.reserved, 0);
    ASSERT_EQ(s2.segment_allocs - s2.segment_frees, 0);
    ASSERT_OK(fleet_stream_release(sa));
    ASSERT_OK(fleet_stream_release(sb));
    expect_clean(d);
}

/* ---- per-stream caches ------------------------------------------------------------- */

typedef struct free_job {
    fleet_allocation *a;
    fleet_status st;
} free_job;

static void *free_on_thread(void *arg)
{
    free_job *j = arg;
    j->st = fleet_memory_free(j->a);
    return NULL;
}

TEST(no_cross_stream_reuse)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_stream *sa = acquire(d), *sb = acquire(d);
    ASSERT_NE(fleet_stream_id(sa), fleet_stream_id(sb));
    fleet_allocation a = alloc_ok(sa, 4096);
    uintptr_t pa = addr(&a);
    ASSERT_OK(fleet_memory_free(&a));
    /* B must not get A's cached block, nor anything from A's segment. */
    fleet_allocation b = alloc_ok(sb, 4096);
    ASSERT_TRUE(addr(&b) < pa || addr(&b) >= pa + 2 * MIB);
    ASSERT_EQ(stats(d).segments, 2);
    /* A gets its own block back. */
    fleet_allocation a2 = alloc_ok(sa, 4096);
    ASSERT_EQ(addr(&a2), pa);
    /* A free from another thread returns the block to A's cache. */
    free_job j = {&a2, FLEET_ERR_INTERNAL};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, free_on_thread, &j), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(j.st);
    fleet_allocation b2 = alloc_ok(sb, 4096);
    ASSERT_TRUE(addr(&b2) < pa || addr(&b2) >= pa + 2 * MIB);
    fleet_allocation a3 = alloc_ok(sa, 4096);
    ASSERT_EQ(addr(&a3), pa);
    ASSERT_OK(fleet_memory_free(&a3));
    ASSERT_OK(fleet_memory_free(&b));
    ASSERT_OK(fleet_memory_free(&b2));
    ASSERT_OK(fleet_stream_release(sa));
    ASSERT_OK(fleet_stream_release(sb));
    expect_clean(d);
}

/* ---- concurrency ------------------------------------------------------------------- */

typedef struct worker {
    fleet_device *dev;
    int index;
    int iterations;
    uint64_t allocs;
    int errors;
    char what[160];
} worker;

static uint32_t pattern(int thread, uint64_t n, size_t word)
{
    return (uint32_t)(thread * 0x01000193u) ^ (uint32_t)(n * 0x9E3779B1u) ^ (uint32_t)word;
}

/* Write (or check) the pattern: every word of small blocks, one word per
 * KiB of big ones (their bytes are what the allocator could confuse). */
static int fill_or_check(const fleet_allocation *a, int thread, uint64_t n, int check)
{
    uint32_t *w = a->ptr;
    size_t words = a->size / 4, step = a->size <= 64 * KIB ? 1 : 256;
    for (size_t i = 0; i < words; i += step) {
        if (!check)
            w[i] = pattern(thread, n, i);
        else if (w[i] != pattern(thread, n, i))
            return 0;
    }
    return 1;
}

static void *worker_main(void *arg)
{
    static const size_t sizes[] = {64, 512, 3000, 4096, 65536, 200000, 1 << 20, 3 << 20};
    worker *w = arg;
    fleet_stream *s = NULL;
    if (fleet_stream_acquire(w->dev, &s) != FLEET_OK) {
        snprintf(w->what, sizeof w->what, "acquire: %s", fleet_last_error());
        w->errors++;
        return NULL;
    }
    enum { LIVE = 8 };
    fleet_allocation live[LIVE];
    uint64_t tag[LIVE];
    memset(live, 0, sizeof live);
    test_rng rng = test_rng_make(100 + (uint64_t)w->index);
    for (int it = 0; it < w->iterations && w->errors == 0; it++) {
        int k = (int)(test_rng_next(&rng) % LIVE);
        if (live[k].ptr != NULL) {
            if (!fill_or_check(&live[k], w->index, tag[k], 1)) {
                snprintf(w->what, sizeof w->what, "data of block %p overwritten", live[k].ptr);
                w->errors++;
            }
            if (fleet_memory_free(&live[k]) != FLEET_OK) {
                snprintf(w->what, sizeof w->what, "free: %s", fleet_last_error());
                w->errors++;
            }
            continue;
        }
        size_t bytes = sizes[test_rng_next(&rng) % (sizeof sizes / sizeof sizes[0])];
        if (fleet_memory_alloc(s, bytes, &live[k]) != FLEET_OK) {
            snprintf(w->what, sizeof w->what, "alloc %zu: %s", bytes, fleet_last_error());
            w->errors++;
            break;
        }
        tag[k] = (uint64_t)it;
        w->allocs++;
        fill_or_check(&live[k], w->index, tag[k], 0);
    }
    for (int k = 0; k < LIVE; k++) {
        if (live[k].ptr == NULL)
            continue;
        if (!fill_or_check(&live[k], w->index, tag[k], 1))
            w->errors++;
        if (fleet_memory_free(&live[k]) != FLEET_OK)
            w->errors++;
    }
    fleet_stream_release(s);
    return NULL;
}

TEST(concurrent_threads_each_on_own_stream)
{
    fleet_device *d = test_cpu_device(0);
    expect_clean(d);
    fleet_memory_stats s0 = stats(d);
    enum { MAX_THREADS = 16 };
    int n = test_env_int("FLEET_TEST_THREADS", 8);
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    worker w[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < n; i++) {
        w[i] = (worker){.dev = d, .index = i, .iterations = test_scaled(4000)};
        ASSERT_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    uint64_t allocs = 0;
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
        if (w[i].errors != 0)
            fprintf(stderr, "thread %d: %s\n", i, w[i].what);
        ASSERT_EQ(w[i].errors, 0);
        allocs += w[i].allocs;
    }
    fleet_memory_stats st = stats(d);
    ASSERT_EQ(st.allocated, 0);
    ASSERT_EQ(st.live_blocks, 0);
    ASSERT_EQ(st.alloc_requests - s0.alloc_requests, allocs);
    ASSERT_GE(st.cache_hits - s0.cache_hits, allocs / 2); /* the cache does its job */
    ASSERT_EQ(st.cached, st.reserved);
    expect_clean(d);
}

/* ---- bad input --------------------------------------------------------------------- */

TEST(bad_input_is_rejected_and_changes_nothing)
{
    fleet_device *d = test_cpu_device(0);
    fleet_stream *s = current_stream(d);
    expect_clean(d);
    fleet_allocation a;
    memset(&a, 0x55, sizeof a);
    ASSERT_STATUS(fleet_memory_alloc(NULL, 16, &a), FLEET_ERR_NULL_POINTER);
    ASSERT_TRUE(a.ptr == NULL && a.block_ == NULL);
    memset(&a, 0x55, sizeof a);
    ASSERT_STATUS(fleet_memory_alloc(s, 0, &a), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_TRUE(a.ptr == NULL && a.block_ == NULL);
    ASSERT_STATUS(fleet_memory_alloc(s, 16, NULL), FLEET_ERR_NULL_POINTER);
    fleet_memory_stats s0 = stats(d);
    ASSERT_REFUSED(fleet_memory_alloc(s, SIZE_MAX, &a), FLEET_ERR_OUT_OF_MEMORY, "requested");
    ASSERT_EQ(stats(d).ooms - s0.ooms, 1);

    fleet_allocation zero;
    memset(&zero, 0, sizeof zero);
    ASSERT_STATUS(fleet_memory_free(&zero), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_memory_free(NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_memory_record_stream(&zero, s), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_memory_get_stats(NULL, &s0), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_memory_get_stats(d, NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_memory_empty_cache(NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_memory_set_limit(NULL, 1), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_memory_inject_failure(NULL, 1), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_memory_reset_peak(NULL), FLEET_ERR_NULL_POINTER);

    a = alloc_ok(s, 4096);
    ASSERT_STATUS(fleet_memory_record_stream(NULL, s), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_memory_record_stream(&a, NULL), FLEET_ERR_NULL_POINTER);
    /* A stream of another device. */
    fleet_device *d1 = test_cpu_device(1);
    ASSERT_TRUE(d1 != d);
    fleet_stream *s1 = current_stream(d1);
    ASSERT_REFUSED(fleet_memory_record_stream(&a, s1), FLEET_ERR_INVALID_DEVICE, "cpu:1");
    /* A tampered handle. */
    fleet_allocation bent = a;
    bent.ptr = (char *)bent.ptr + 512;
    ASSERT_STATUS(fleet_memory_free(&bent), FLEET_ERR_INVALID_ARGUMENT);
    fleet_memory_stats s1st = stats(d);
    ASSERT_EQ(s1st.allocated, 4096);
    ASSERT_EQ(s1st.pending, 0);
    /* The failed record left no use behind: the free is immediate. */
    uintptr_t pa = addr(&a);
    ASSERT_OK(fleet_memory_free(&a));
    ASSERT_EQ(stats(d).pending, 0);
    fleet_allocation again = alloc_ok(s, 4096);
    ASSERT_EQ(addr(&again), pa);
    ASSERT_OK(fleet_memory_free(&again));

    /* Device 1 has its own allocator. */
    fleet_allocation other = alloc_ok(s1, 4096);
    ASSERT_EQ(stats(d).allocated, 0);
    fleet_memory_stats o = stats(d1);
    ASSERT_EQ(o.allocated, 4096);
    ASSERT_OK(fleet_memory_free(&other));
    expect_clean(d1);
    expect_clean(d);
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    unsetenv("FLEET_MEMORY_LIMIT"); /* tests set their own limits */
    int rc = test_main(argc, argv);
    if (rc == 0) {
        /* Shutdown frees every segment, live blocks included (sanitizers
         * check nothing leaks), and later calls are refused. */
        fleet_device *d = test_cpu_device(0);
        fleet_stream *s = current_stream(d); /* streams outlive shutdown */
        fleet_allocation live = alloc_ok(s, 12345);
        ASSERT_OK(fleet_shutdown());
        ASSERT_STATUS(fleet_memory_free(&live), FLEET_ERR_SHUTDOWN);
        fleet_allocation x;
        ASSERT_STATUS(fleet_memory_get_stats(d, NULL), FLEET_ERR_SHUTDOWN);
        ASSERT_STATUS(fleet_memory_alloc(s, 1, &x), FLEET_ERR_SHUTDOWN);
    }
    return rc;
}
