/* runtime/allocator.c — the stream-ordered caching allocator (fleet/memory.h).
 *
 * Structure. One shard per stream id of the device. A shard owns everything a
 * stream's memory needs: its lock, the segments allocated for the stream, the
 * free blocks carved from them (two best-fit indexes, small and large), the
 * blocks withheld for other streams (pending list), and pools of recycled
 * block metadata and event nodes. A block never moves to another shard, so a
 * free block is only ever reused on the stream it was allocated on: that is
 * what makes "free at once, stream-ordered" safe. Threads on different
 * streams never share a lock on the alloc/free path; the only device-wide
 * state they touch is one cache line of atomics for `allocated` and its peak.
 *
 * Block life: SPARE (metadata in the shard's pool) -> FREE (in an index) ->
 * ALLOCATED (handed out) -> FREE again, or PENDING (freed while other streams
 * may still use it; waits on one event per using stream) -> FREE. Merging
 * returns a block's metadata to SPARE. The generation changes on every
 * hand-out and every return to SPARE, so a handle matches its block only
 * while that very hand-out is live.
 *
 * Metadata is never given back to malloc before fleet__allocator_destroy:
 * a stale handle's block pointer always points at a valid struct whose
 * `shard` field never changes, so fleet_memory_free can find the right lock
 * before it knows whether the handle is current.
 *
 * Accounting, per shard under its lock and so per device as sums:
 *     allocated + pending + cached == reserved
 * where cached counts FREE blocks (including one being carved right now).
 * The device-wide `reserved` atomic is the sum of the shards' reserved plus
 * reservations in flight (taken before calling the backend, so concurrent
 * threads cannot overshoot the limit together).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/lock.h"
#include "core/log.h"
#include "core/prim.h"
#include "runtime/allocator.h"
#include "runtime/block_index.h"
#include "runtime/device.h"
#include "runtime/dispatch.h"

#define MIB ((size_t)1 << 20)
#define ROUNDING ((size_t)512)          /* every block size is a multiple of this   */
#define SMALL_MAX (1 * MIB)             /* requests up to this are small            */
#define SMALL_SEGMENT (2 * MIB)         /* small blocks are packed into these       */
#define LARGE_SEGMENT (20 * MIB)        /* large requests below LARGE_OWN share one */
#define LARGE_OWN (10 * MIB)            /* from here a request gets its own segment */
#define LARGE_OWN_ROUNDING (2 * MIB)    /* ... rounded up to this                   */
#define LARGE_SPLIT_MIN (1 * MIB)       /* a large remainder is kept if above this  */
/* Larger requests cannot be rounded without overflow; no device has that much. */
#define REQUEST_MAX (SIZE_MAX / 2)

#define BLOCKS_PER_CHUNK 64
#define EVENTS_PER_CHUNK 32
#define CACHE_LINE 64

typedef enum block_state {
    BLOCK_SPARE = 0, /* metadata in the shard's pool                          */
    BLOCK_FREE,      /* in the shard's small or large index                   */
    BLOCK_ALLOCATED, /* handed out; `generation` is in the caller's handle    */
    BLOCK_PENDING,   /* freed; waits for the events in `events`               */
} block_state;

struct fleet__shard;

/* An event recorded on a using stream at free time. */
typedef struct event_node {
    struct event_node *next;
    void *event;
} event_node;

typedef struct segment {
    char *ptr;
    size_t size;
    bool small;                  /* its blocks live in the small index      */
    uint64_t freed_at;           /* the shard's free_seq when a block of it
                                  * last became FREE (0: never used)         */
    struct fleet__block *first;  /* the block at ptr; never merged away     */
    struct segment *prev, *next; /* the shard's segments                    */
} segment;

struct fleet__block {
    struct fleet__shard *shard;        /* fixed for the life of the metadata */
    segment *segment;
    char *ptr;
    size_t size;
    struct fleet__block *prev, *next;  /* address neighbours in the segment  */
    struct fleet__block *link;         /* pending list, or the spare pool    */
    event_node *events;                /* PENDING: events not yet passed     */
    uint64_t generation;
    uint64_t uses;                     /* ALLOCATED: bit i = stream i uses it */
    block_state state;
};

typedef struct block_chunk {
    struct block_chunk *next;
    struct fleet__block blocks[BLOCKS_PER_CHUNK];
} block_chunk;

typedef struct event_chunk {
    struct event_chunk *next;
    event_node nodes[EVENTS_PER_CHUNK];
} event_chunk;

typedef struct fleet__shard {
    /* Rank 4. Several shards are only ever locked one at a time, or all in id
     * order (fork). Aligned so shards never share a cache line. Guards every
     * field below but `allocator` and `id`, and the shard's block metadata
     * (a comment, see core/lock.h; clang checks the helpers' FLEET_REQUIRES). */
    _Alignas(CACHE_LINE) fleet__mutex lock;
    struct fleet__allocator *allocator;
    int id;                           /* == the stream id it serves        */
    fleet__block_index small_free;    /* FREE blocks of small segments     */
    fleet__block_index large_free;    /* FREE blocks of large segments     */
    segment *segments;
    struct fleet__block *pending_list; /* PENDING blocks, through `link`   */
    struct fleet__block *spare_blocks;
    event_node *spare_events;
    block_chunk *block_chunks;
    event_chunk *event_chunks;
    /* Metadata created so far. Both indexes have room for this many entries,
     * so inserting a free block never allocates. */
    size_t block_count;
    /* Counts blocks becoming FREE: a segment may go back to the backend
     * only once the stream has passed the work queued before its last
     * free (release_everywhere). */
    uint64_t free_seq;
    /* Bytes; allocated + pending + cached == reserved. */
    uint64_t allocated, pending, cached, reserved;
    uint64_t segments_held, live_blocks, alloc_requests, cache_hits;
    uint64_t segment_allocs, segment_frees;
} shard;

struct fleet__allocator {
    struct fleet_device *device;
    int nshards;
    fleet_atomic_u64 limit;            /* 0 = none                              */
    fleet_atomic_u64 reserved;         /* sum of shards + reservations in flight */
    fleet_atomic_u64 inject_countdown; /* n > 0: the nth raw allocation fails   */
    fleet_atomic_u64 alloc_retries;
    fleet_atomic_u64 ooms;
    /* Written by every alloc and free of every stream (the peak needs the
     * device-wide sum): a cache line of their own. */
    _Alignas(CACHE_LINE) fleet_atomic_u64 allocated;
    fleet_atomic_u64 peak;
    shard shards[];
};

/* Why a new segment could not be had. */
typedef enum grow_result {
    GROW_OK = 0,
    GROW_LIMIT,   /* FLEET_MEMORY_LIMIT would be exceeded          */
    GROW_BACKEND, /* the backend (or fault injection) is out of memory */
    GROW_BROKEN,  /* the backend failed otherwise (closed at process
                   * exit, a device error): not a memory shortage, so no
                   * cascade; its status and text are the caller's answer */
    GROW_HOST,    /* no host memory for the allocator's metadata   */
} grow_result;

#define SHARD_CHECK(sh)                                                                  \
    FLEET_DEBUG_ASSERT((sh)->allocated + (sh)->pending + (sh)->cached == (sh)->reserved)

static size_t round_up(size_t n, size_t multiple)
{
    return (n + multiple - 1) / multiple * multiple;
}

static size_t segment_size_for(size_t rounded)
{
    if (rounded <= SMALL_MAX)
        return SMALL_SEGMENT;
    if (rounded < LARGE_OWN)
        return LARGE_SEGMENT;
    return round_up(rounded, LARGE_OWN_ROUNDING);
}

static fleet__block_index *index_of(shard *sh, const struct fleet__block *b)
    FLEET_REQUIRES(sh->lock)
{
    return b->segment->small ? &sh->small_free : &sh->large_free;
}

/* ---- metadata pools --------------------------------------------------------- */

static bool add_block_chunk(shard *sh) FLEET_REQUIRES(sh->lock)
{
    size_t want = sh->block_count + BLOCKS_PER_CHUNK;
    /* Reserve index room first: a reservation that is not followed by a chunk
     * is only unused capacity. */
    if (!fleet__block_index_reserve(&sh->small_free, want) ||
        !fleet__block_index_reserve(&sh->large_free, want))
        return false;
    block_chunk *c = fleet__calloc(1, sizeof *c);
    if (c == NULL)
        return false;
    c->next = sh->block_chunks;
    sh->block_chunks = c;
    for (int i = 0; i < BLOCKS_PER_CHUNK; i++) {
        struct fleet__block *b = &c->blocks[i];
        b->shard = sh;
        b->state = BLOCK_SPARE;
        b->link = sh->spare_blocks;
        sh->spare_blocks = b;
    }
    sh->block_count = want;
    return true;
}

/* Make sure `n` (1 or 2) spare blocks exist. */
static bool have_spare_blocks(shard *sh, int n) FLEET_REQUIRES(sh->lock)
{
    const struct fleet__block *b = sh->spare_blocks;
    if (b != NULL && (n == 1 || b->link != NULL))
        return true;
    return add_block_chunk(sh);
}

static struct fleet__block *take_block(shard *sh) FLEET_REQUIRES(sh->lock)
{
    if (!have_spare_blocks(sh, 1))
        return NULL;
    struct fleet__block *b = sh->spare_blocks;
    sh->spare_blocks = b->link;
    b->link = NULL;
    return b;
}

static void recycle_block(shard *sh, struct fleet__block *b) FLEET_REQUIRES(sh->lock)
{
    b->state = BLOCK_SPARE;
    b->generation++;
    b->segment = NULL;
    b->ptr = NULL;
    b->size = 0;
    b->prev = b->next = NULL;
    b->events = NULL;
    b->uses = 0;
    b->link = sh->spare_blocks;
    sh->spare_blocks = b;
}

static event_node *take_event_node(shard *sh) FLEET_REQUIRES(sh->lock)
{
    if (sh->spare_events == NULL) {
        event_chunk *c = fleet__calloc(1, sizeof *c);
        if (c == NULL)
            return NULL;
        c->next = sh->event_chunks;
        sh->event_chunks = c;
        for (int i = 0; i < EVENTS_PER_CHUNK; i++) {
            c->nodes[i].next = sh->spare_events;
            sh->spare_events = &c->nodes[i];
        }
    }
    event_node *n = sh->spare_events;
    sh->spare_events = n->next;
    n->next = NULL;
    return n;
}

static void recycle_event_node(shard *sh, event_node *n) FLEET_REQUIRES(sh->lock)
{
    n->event = NULL;
    n->next = sh->spare_events;
    sh->spare_events = n;
}

/* ---- carving and merging ------------------------------------------------------ */

static void index_insert(shard *sh, struct fleet__block *b) FLEET_REQUIRES(sh->lock)
{
    fleet__block_index_insert(index_of(sh, b), b->size, (uintptr_t)b->ptr, b);
}

static void index_remove(shard *sh, struct fleet__block *b) FLEET_REQUIRES(sh->lock)
{
    fleet__block_index_remove(index_of(sh, b), b->size, (uintptr_t)b->ptr);
}

/* Shrink the FREE, unindexed block `b` to `size` bytes when the rest is worth
 * keeping as a free block of its own. */
static void carve(shard *sh, struct fleet__block *b, size_t size) FLEET_REQUIRES(sh->lock)
{
    size_t rest = b->size - size;
    bool worth = b->segment->small ? rest >= ROUNDING : rest > LARGE_SPLIT_MIN;
    if (!worth)
        return;
    struct fleet__block *r = take_block(sh);
    if (r == NULL)
        return; /* no host memory for metadata: hand out the whole block instead */
    r->segment = b->segment;
    r->ptr = b->ptr + size;
    r->size = rest;
    r->state = BLOCK_FREE;
    r->prev = b;
    r->next = b->next;
    if (b->next != NULL)
        b->next->prev = r;
    b->next = r;
    b->size = size;
    index_insert(sh, r);
}

/* `b` just became FREE (its bytes already counted in cached): merge it with
 * FREE neighbours and index the result. Work queued before now may still
 * use it: reusable at once on this stream (stream order), but its segment
 * is returned to the backend only after the stream passes this point. */
static void make_free(shard *sh, struct fleet__block *b) FLEET_REQUIRES(sh->lock)
{
    b->state = BLOCK_FREE;
    b->segment->freed_at = ++sh->free_seq;
    struct fleet__block *p = b->prev;
    if (p != NULL && p->state == BLOCK_FREE) {
        index_remove(sh, p);
        p->size += b->size;
        p->next = b->next;
        if (b->next != NULL)
            b->next->prev = p;
        recycle_block(sh, b);
        b = p;
    }
    struct fleet__block *n = b->next;
    if (n != NULL && n->state == BLOCK_FREE) {
        index_remove(sh, n);
        b->size += n->size;
        b->next = n->next;
        if (n->next != NULL)
            n->next->prev = b;
        recycle_block(sh, n);
    }
    index_insert(sh, b);
}

/* ---- segments --------------------------------------------------------------- */

/* Take `bytes` of the device's reserve, unless that would pass the limit. */
static bool reserve_bytes(struct fleet__allocator *a, size_t bytes)
{
    uint64_t cur = fleet_atomic_load_relaxed(&a->reserved);
    for (;;) {
        uint64_t limit = fleet_atomic_load_relaxed(&a->limit);
        if (cur + bytes < cur || (limit != 0 && cur + bytes > limit))
            return false;
        if (fleet_atomic_cas_relaxed(&a->reserved, &cur, cur + bytes))
            return true;
    }
}

/* Fault injection: true when this raw allocation is the armed one. */
static bool injected_failure(struct fleet__allocator *a)
{
    uint64_t n = fleet_atomic_load_relaxed(&a->inject_countdown);
    while (n > 0) {
        if (fleet_atomic_cas_relaxed(&a->inject_countdown, &n, n - 1))
            return n == 1;
    }
    return false;
}

/* Get a segment for a request of `rounded` bytes from the backend; its whole
 * span becomes one FREE block, returned unindexed in *out. On GROW_BROKEN,
 * *broken is the backend's status (its text is the thread's last error). */
static grow_result grow(shard *sh, size_t rounded, struct fleet__block **out,
                        fleet_status *broken) FLEET_REQUIRES(sh->lock)
{
    struct fleet__allocator *a = sh->allocator;
    struct fleet_device *dev = a->device;
    size_t seg_size = segment_size_for(rounded);
    /* Metadata first (the segment's block and the split remainder): a host
     * failure then has nothing to undo. */
    if (!have_spare_blocks(sh, 2))
        return GROW_HOST;
    segment *seg = fleet__malloc(sizeof *seg);
    if (seg == NULL)
        return GROW_HOST;
    if (!reserve_bytes(a, seg_size)) {
        free(seg);
        return GROW_LIMIT;
    }
    void *ptr = NULL;
    fleet_status st = injected_failure(a)
                          ? FLEET_ERR_OUT_OF_MEMORY
                          : fleet__backend_segment_alloc(dev, seg_size, &ptr);
    if (st != FLEET_OK) {
        fleet_atomic_sub_relaxed(&a->reserved, (uint64_t)seg_size);
        free(seg);
        *broken = st;
        return st == FLEET_ERR_OUT_OF_MEMORY ? GROW_BACKEND : GROW_BROKEN;
    }
    struct fleet__block *b = take_block(sh);
    FLEET_ASSERT(b != NULL); /* have_spare_blocks(sh, 2) above */
    *seg = (segment){.ptr = ptr, .size = seg_size, .small = rounded <= SMALL_MAX, .first = b,
                     .next = sh->segments};
    if (sh->segments != NULL)
        sh->segments->prev = seg;
    sh->segments = seg;
    b->segment = seg;
    b->ptr = ptr;
    b->size = seg_size;
    b->state = BLOCK_FREE;
    sh->reserved += seg_size;
    sh->cached += seg_size;
    sh->segments_held++;
    sh->segment_allocs++;
    *out = b;
    return GROW_OK;
}

/* A segment that is one FREE block. */
static bool segment_unused(const segment *seg)
{
    return seg->first->state == BLOCK_FREE && seg->first->next == NULL;
}

/* Give every unused segment whose last free came at or before free_seq
 * `passed` (work queued before it has run) back to the backend. Returns the
 * bytes released. */
static uint64_t release_free_segments(shard *sh, uint64_t passed) FLEET_REQUIRES(sh->lock)
{
    struct fleet__allocator *a = sh->allocator;
    uint64_t released = 0;
    segment *next;
    for (segment *seg = sh->segments; seg != NULL; seg = next) {
        next = seg->next;
        struct fleet__block *b = seg->first;
        if (!segment_unused(seg) || seg->freed_at > passed)
            continue;
        index_remove(sh, b);
        recycle_block(sh, b);
        if (seg->prev != NULL)
            seg->prev->next = seg->next;
        else
            sh->segments = seg->next;
        if (seg->next != NULL)
            seg->next->prev = seg->prev;
        fleet__backend_segment_free(a->device, seg->ptr);
        sh->cached -= seg->size;
        sh->reserved -= seg->size;
        sh->segments_held--;
        sh->segment_frees++;
        fleet_atomic_sub_relaxed(&a->reserved, (uint64_t)seg->size);
        released += seg->size;
        free(seg);
    }
    SHARD_CHECK(sh);
    return released;
}

/* The newest freed_at among the unused segments: 0 when each of them was
 * never handed out, UINT64_MAX when there is none. */
static uint64_t newest_unused(shard *sh) FLEET_REQUIRES(sh->lock)
{
    uint64_t newest = 0;
    bool any = false;
    for (const segment *seg = sh->segments; seg != NULL; seg = seg->next)
        if (segment_unused(seg)) {
            any = true;
            newest = seg->freed_at > newest ? seg->freed_at : newest;
        }
    return any ? newest : UINT64_MAX;
}

/* Has stream s run everything queued on it so far? With `wait`, make it so
 * (waiting out another thread's capture first); without, answer now. An
 * event marks the point, so work queued later is not waited for. Called
 * without locks. */
static bool stream_passed(struct fleet_device *dev, struct fleet_stream *s, bool wait)
{
    void *native = fleet_atomic_load_acquire(&s->native);
    if (native == NULL)
        return true; /* never used */
    void *ev;
    if (fleet__event_pool_get(dev->events, &ev) != FLEET_OK)
        return wait && fleet__backend_stream_synchronize(dev, native) == FLEET_OK;
    bool recorded;
    if (wait) {
        fleet__stream_foreign_enter(s);
        recorded = true;
    } else {
        recorded = fleet__stream_foreign_try_enter(s);
    }
    if (recorded) {
        recorded = fleet__backend_event_record(dev, ev, native) == FLEET_OK;
        fleet__stream_foreign_leave(s);
    }
    bool passed;
    if (!recorded)
        passed = wait && fleet__backend_stream_synchronize(dev, native) == FLEET_OK;
    else if (wait)
        passed = fleet__backend_event_synchronize(dev, ev) == FLEET_OK;
    else
        passed = fleet__backend_event_query(dev, ev) == FLEET_OK;
    fleet__event_pool_put(dev->events, ev);
    return passed;
}

/* ---- pending blocks (record_stream) ------------------------------------------ */

/* Record an event on `s` for the PENDING-to-be block `b`. false when that
 * cannot be done (the caller then synchronizes `s` instead). */
static bool record_use(shard *sh, struct fleet__block *b, struct fleet_stream *s)
    FLEET_REQUIRES(sh->lock)
{
    struct fleet_device *dev = sh->allocator->device;
    void *native;
    /* record_stream created the backend stream, so this is the lock-free fast
     * path (creating it would take the pool lock, rank 3, under ours). */
    if (fleet__stream_native(s, &native) != FLEET_OK)
        return false;
    event_node *n = take_event_node(sh);
    if (n == NULL)
        return false;
    if (fleet__event_pool_get(dev->events, &n->event) != FLEET_OK) {
        recycle_event_node(sh, n);
        return false;
    }
    /* Another thread may be capturing s: an event recorded then would be a
     * node of its graph, never completing here. Waiting is not allowed
     * under our lock, so the caller synchronizes s instead. */
    bool recorded = fleet__stream_foreign_try_enter(s);
    if (!recorded)
        (void)fleet__error(FLEET_ERR_NOT_READY, "another thread is capturing a CUDA graph on it");
    if (recorded) {
        recorded = fleet__backend_event_record(dev, n->event, native) == FLEET_OK;
        fleet__stream_foreign_leave(s);
    }
    if (!recorded) {
        fleet__event_pool_put(dev->events, n->event);
        recycle_event_node(sh, n);
        return false;
    }
    n->next = b->events;
    b->events = n;
    return true;
}

/* Return the events of pending blocks that have passed; a block whose events
 * all passed becomes FREE. Returns whether any did. */
static bool reclaim_pending(shard *sh) FLEET_REQUIRES(sh->lock)
{
    struct fleet_device *dev = sh->allocator->device;
    bool any = false;
    struct fleet__block **pp = &sh->pending_list;
    while (*pp != NULL) {
        struct fleet__block *b = *pp;
        FLEET_DEBUG_ASSERT(b->state == BLOCK_PENDING);
        event_node **np = &b->events;
        while (*np != NULL) {
            event_node *n = *np;
            /* Any answer but "not yet" means the stream is past the event: a
             * failed query (sticky stream error) cannot make it pass later. */
            if (fleet__backend_event_query(dev, n->event) == FLEET_ERR_NOT_READY) {
                np = &n->next;
                continue;
            }
            *np = n->next;
            fleet__event_pool_put(dev->events, n->event);
            recycle_event_node(sh, n);
        }
        if (b->events != NULL) {
            pp = &b->link;
            continue;
        }
        *pp = b->link;
        b->link = NULL;
        sh->pending -= b->size;
        sh->cached += b->size;
        make_free(sh, b);
        any = true;
    }
    SHARD_CHECK(sh);
    return any;
}

/* ---- alloc -------------------------------------------------------------------- */

static void hand_out(shard *sh, struct fleet__block *b, size_t bytes, bool hit,
                     fleet_allocation *out) FLEET_REQUIRES(sh->lock)
{
    struct fleet__allocator *a = sh->allocator;
    /* Only a FREE block is handed out: no live hand-out, no event a using
     * stream has yet to pass, not listed (verify/allocator.pml). */
    FLEET_DEBUG_ASSERT(b->state == BLOCK_FREE && b->events == NULL && b->link == NULL &&
                       b->uses == 0);
    b->state = BLOCK_ALLOCATED;
    b->generation++;
    b->uses = 0;
    sh->cached -= b->size;
    sh->allocated += b->size;
    sh->live_blocks++;
    sh->alloc_requests++;
    sh->cache_hits += hit;
    uint64_t now = fleet_atomic_add_relaxed(&a->allocated, (uint64_t)b->size) + b->size;
    fleet_atomic_max_relaxed(&a->peak, now);
    *out = (fleet_allocation){
        .ptr = b->ptr, .size = bytes, .block_ = b, .generation_ = b->generation};
    SHARD_CHECK(sh);
}

/* Under sh->lock: serve from the shard's cache, else from a new segment
 * (*why and *broken as grow sets them when that fails). */
static bool try_alloc(shard *sh, size_t bytes, size_t rounded, grow_result *why,
                      fleet_status *broken, fleet_allocation *out) FLEET_REQUIRES(sh->lock)
{
    if (sh->pending_list != NULL)
        reclaim_pending(sh);
    fleet__block_index *idx = rounded <= SMALL_MAX ? &sh->small_free : &sh->large_free;
    struct fleet__block *b = fleet__block_index_best_fit(idx, rounded);
    bool hit = b != NULL;
    if (hit) {
        index_remove(sh, b);
    } else {
        *why = grow(sh, rounded, &b, broken);
        if (*why != GROW_OK)
            return false;
    }
    carve(sh, b, rounded);
    hand_out(sh, b, bytes, hit, out);
    return true;
}

static void sum_stats(struct fleet__allocator *a, fleet_memory_stats *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < a->nshards; i++) {
        shard *sh = &a->shards[i];
        fleet__mutex_lock(&sh->lock);
        /* `pending` means "not yet passed": settle what has passed by now. */
        if (sh->pending_list != NULL)
            reclaim_pending(sh);
        s->allocated += sh->allocated;
        s->pending += sh->pending;
        s->cached += sh->cached;
        s->reserved += sh->reserved;
        s->segments += sh->segments_held;
        s->live_blocks += sh->live_blocks;
        s->alloc_requests += sh->alloc_requests;
        s->cache_hits += sh->cache_hits;
        s->segment_allocs += sh->segment_allocs;
        s->segment_frees += sh->segment_frees;
        fleet__mutex_unlock(&sh->lock);
    }
    s->peak_allocated = fleet_atomic_load_relaxed(&a->peak);
    s->limit = fleet_atomic_load_relaxed(&a->limit);
    s->alloc_retries = fleet_atomic_load_relaxed(&a->alloc_retries);
    s->ooms = fleet_atomic_load_relaxed(&a->ooms);
}

/* Release the unused segments of every shard, one lock at a time in id
 * order: a segment whose blocks work on its stream may still read goes back
 * only once the stream has passed that work (one rule for every backend;
 * cuda's cudaFree would also wait, cpu's free would not). With `wait`
 * (empty_cache, and OOM step 2 after its device sync) each stream with
 * such segments is waited for; without (OOM step 1), only what has already
 * passed is released. `reclaim` first frees pending blocks whose events
 * passed. Called without locks. Returns whether anything was freed or
 * released. */
static bool release_everywhere(struct fleet__allocator *a, bool reclaim, bool wait)
{
    bool progress = false;
    for (int i = 0; i < a->nshards; i++) {
        shard *sh = &a->shards[i];
        fleet__mutex_lock(&sh->lock);
        if (reclaim && sh->pending_list != NULL)
            progress |= reclaim_pending(sh);
        uint64_t newest = newest_unused(sh), seen = sh->free_seq;
        if (newest == 0) /* only segments that were never used */
            progress |= release_free_segments(sh, 0) > 0;
        fleet__mutex_unlock(&sh->lock);
        if (newest == 0 || newest == UINT64_MAX)
            continue;
        if (!stream_passed(a->device, &a->device->pool.streams[i], wait))
            continue;
        fleet__mutex_lock(&sh->lock);
        progress |= release_free_segments(sh, seen) > 0;
        fleet__mutex_unlock(&sh->lock);
    }
    return progress;
}

static fleet_status out_of_memory(struct fleet__allocator *a, const struct fleet_stream *stream,
                                  size_t bytes, size_t rounded, grow_result why)
{
    fleet_atomic_add_relaxed(&a->ooms, 1);
    fleet_memory_stats s;
    sum_stats(a, &s);
    const char *reason = "the request is larger than any device";
    if (why == GROW_LIMIT)
        reason = "a new segment would exceed the memory limit";
    else if (why == GROW_BACKEND)
        reason = "the backend refused a new segment";
    else if (why == GROW_HOST)
        reason = "no host memory for allocator metadata";
    char limit[32] = "none";
    if (s.limit != 0)
        snprintf(limit, sizeof limit, "%" PRIu64 " bytes", s.limit);
    return fleet__error(FLEET_ERR_OUT_OF_MEMORY,
                        "fleet_memory_alloc: out of memory on %s: requested %zu bytes (%zu rounded,"
                        " segment %zu) on stream %d: %s; allocated %" PRIu64 ", pending %" PRIu64
                        ", cached %" PRIu64 ", reserved %" PRIu64 " bytes, limit %s",
                        a->device->name, bytes, rounded,
                        rounded <= REQUEST_MAX ? segment_size_for(rounded) : (size_t)0,
                        stream->id, reason, s.allocated, s.pending, s.cached, s.reserved, limit);
}

/* The OOM cascade: (1) release every shard's cached free segments and retry;
 * (2) synchronize the device, reclaim every pending block, release again and
 * retry; (3) FLEET_ERR_OUT_OF_MEMORY. A step retries only when it freed
 * something or the device's reserve shrank meanwhile (another thread freed):
 * otherwise the same request would fail the same way. Called without locks. */
static fleet_status alloc_slow(struct fleet__allocator *a, shard *sh,
                               const struct fleet_stream *stream, size_t bytes, size_t rounded,
                               grow_result why, fleet_allocation *out)
{
    fleet_atomic_add_relaxed(&a->alloc_retries, 1);
    uint64_t reserved_seen = fleet_atomic_load_relaxed(&a->reserved);
    for (int step = 1; step <= 2; step++) {
        bool progress;
        if (step == 1) {
            progress = release_everywhere(a, false, false);
        } else {
            /* Must hold no shard lock: a stream may be waiting for one. A sticky
             * stream error does not stop the memory from being reclaimed. */
            (void)fleet__device_synchronize(a->device);
            progress = release_everywhere(a, true, true);
        }
        uint64_t reserved_now = fleet_atomic_load_relaxed(&a->reserved);
        progress |= reserved_now < reserved_seen;
        reserved_seen = reserved_now;
        if (!progress)
            continue;
        fleet_status broken = FLEET_OK;
        fleet__mutex_lock(&sh->lock);
        bool ok = try_alloc(sh, bytes, rounded, &why, &broken, out);
        fleet__mutex_unlock(&sh->lock);
        if (ok) {
            FLEET_LOG_DEBUGF("fleet_memory_alloc: %zu bytes on %s stream %d succeeded after"
                             " cascade step %d", bytes, a->device->name, stream->id, step);
            return FLEET_OK;
        }
        if (why == GROW_BROKEN)
            return fleet__error_prefix(broken, "fleet_memory_alloc");
    }
    return out_of_memory(a, stream, bytes, rounded, why);
}

fleet_status fleet_memory_alloc(fleet_stream *stream, size_t bytes, fleet_allocation *out)
{
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_memory_alloc: out is NULL");
    memset(out, 0, sizeof *out);
    FLEET_CHECK_ARG(stream != NULL, FLEET_ERR_NULL_POINTER, "fleet_memory_alloc: stream is NULL");
    fleet_status st = fleet__enter_device(stream->device, "fleet_memory_alloc");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(bytes > 0, FLEET_ERR_INVALID_ARGUMENT,
                    "fleet_memory_alloc: size is 0 (allocations must be at least 1 byte)");
    struct fleet__allocator *a = stream->device->allocator;
    FLEET_ASSERT(a != NULL && stream->id >= 0 && stream->id < a->nshards);
    if (bytes > REQUEST_MAX)
        return out_of_memory(a, stream, bytes, bytes, GROW_OK);
    size_t rounded = round_up(bytes, ROUNDING);
    shard *sh = &a->shards[stream->id];
    grow_result why = GROW_OK;
    fleet_status broken = FLEET_OK;
    fleet__mutex_lock(&sh->lock);
    bool ok = try_alloc(sh, bytes, rounded, &why, &broken, out);
    fleet__mutex_unlock(&sh->lock);
    if (FLEET_LIKELY(ok))
        return FLEET_OK;
    if (why == GROW_BROKEN)
        return fleet__error_prefix(broken, "fleet_memory_alloc");
    return alloc_slow(a, sh, stream, bytes, rounded, why, out);
}

/* ---- free and record_stream ------------------------------------------------------ */

/* Under the block's shard lock: is the handle the block's live hand-out? */
static fleet_status check_handle(const struct fleet__block *b, const fleet_allocation *h,
                                 const char *fn)
{
    if (b->generation != h->generation_ || b->state != BLOCK_ALLOCATED)
        return fleet__error(FLEET_ERR_STALE_HANDLE,
                            "%s: stale handle: the allocation at %p was already freed (handle"
                            " generation %" PRIu64 ", block now at generation %" PRIu64 ", %s)",
                            fn, h->ptr, h->generation_, b->generation,
                            b->state == BLOCK_ALLOCATED ? "allocated again" : "not allocated");
    if (b->ptr != h->ptr)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: handle was modified: its ptr %p is not its block's %p", fn, h->ptr,
                            (void *)b->ptr);
    return FLEET_OK;
}

/* Resolve a handle to its block's shard after checking fleet is alive (after
 * shutdown the metadata is gone, so the block must not be touched). */
static fleet_status handle_shard(const fleet_allocation *h, const char *fn, shard **out)
{
    FLEET_CHECK_ARG(h->ptr != NULL && h->block_ != NULL, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: the handle is empty (zeroed, or from a failed allocation)", fn);
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    shard *sh = ((struct fleet__block *)h->block_)->shard;
    st = fleet__enter_device(sh->allocator->device, fn);
    if (st != FLEET_OK)
        return st;
    *out = sh;
    return FLEET_OK;
}

/* ALLOCATED -> PENDING for a block with recorded uses: one event per using
 * stream. Returns the streams no event could be recorded on (the caller
 * synchronizes them and only then queues the block); with none, the block
 * is queued on the pending list now. */
static uint64_t retire_recorded(shard *sh, struct fleet__block *b) FLEET_REQUIRES(sh->lock)
{
    struct fleet_device *dev = sh->allocator->device;
    uint64_t unrecorded = 0;
    for (uint64_t m = b->uses; m != 0; m &= m - 1) {
        int id = __builtin_ctzll(m);
        if (!record_use(sh, b, &dev->pool.streams[id])) {
            FLEET_LOG_WARNF("fleet_memory_free: no event for stream %d of %s (%s);"
                            " synchronizing it instead", id, dev->name, fleet_last_error());
            unrecorded |= UINT64_C(1) << id;
        }
    }
    b->uses = 0;
    b->state = BLOCK_PENDING;
    sh->allocated -= b->size;
    sh->pending += b->size;
    if (unrecorded == 0) {
        b->link = sh->pending_list;
        sh->pending_list = b;
    }
    return unrecorded;
}

/* A PENDING block kept off the list until `streams` reached the free. */
static void retire_after_sync(shard *sh, struct fleet__block *b, uint64_t streams)
{
    struct fleet_device *dev = sh->allocator->device;
    for (uint64_t m = streams; m != 0; m &= m - 1) {
        void *native;
        struct fleet_stream *s = &dev->pool.streams[__builtin_ctzll(m)];
        fleet__stream_capture_wait(s);
        if (fleet__stream_native(s, &native) == FLEET_OK)
            (void)fleet__backend_stream_synchronize(dev, native);
    }
    fleet__mutex_lock(&sh->lock);
    b->link = sh->pending_list;
    sh->pending_list = b;
    fleet__mutex_unlock(&sh->lock);
}

fleet_status fleet_memory_free(fleet_allocation *allocation)
{
    FLEET_CHECK_ARG(allocation != NULL, FLEET_ERR_NULL_POINTER,
                    "fleet_memory_free: allocation is NULL");
    shard *sh;
    fleet_status st = handle_shard(allocation, "fleet_memory_free", &sh);
    if (st != FLEET_OK)
        return st;
    struct fleet__block *b = allocation->block_;
    uint64_t unrecorded = 0;
    fleet__mutex_lock(&sh->lock);
    st = check_handle(b, allocation, "fleet_memory_free");
    if (st != FLEET_OK)
        goto out;
    FLEET_DEBUG_ASSERT(b->events == NULL && b->link == NULL);
    fleet_atomic_sub_relaxed(&sh->allocator->allocated, (uint64_t)b->size);
    sh->live_blocks--;
    if (b->uses != 0) {
        unrecorded = retire_recorded(sh, b);
    } else {
        /* Stream-ordered: later work on this stream runs after the work that
         * used the block, so it is reusable at once. */
        sh->allocated -= b->size;
        sh->cached += b->size;
        make_free(sh, b);
    }
    memset(allocation, 0, sizeof *allocation);
    SHARD_CHECK(sh);
out:
    fleet__mutex_unlock(&sh->lock);
    if (unrecorded != 0)
        retire_after_sync(sh, b, unrecorded);
    return st;
}

fleet_status fleet_memory_record_stream(const fleet_allocation *allocation, fleet_stream *stream)
{
    FLEET_CHECK_ARG(allocation != NULL, FLEET_ERR_NULL_POINTER,
                    "fleet_memory_record_stream: allocation is NULL");
    FLEET_CHECK_ARG(stream != NULL, FLEET_ERR_NULL_POINTER,
                    "fleet_memory_record_stream: stream is NULL");
    shard *sh;
    fleet_status st = handle_shard(allocation, "fleet_memory_record_stream", &sh);
    if (st != FLEET_OK)
        return st;
    struct fleet_device *dev = sh->allocator->device;
    if (stream->device != dev)
        return fleet__error(FLEET_ERR_INVALID_DEVICE,
                            "fleet_memory_record_stream: the stream is on %s, the allocation on %s",
                            stream->device->name, dev->name);
    FLEET_ASSERT(stream->id >= 0 && stream->id < sh->allocator->nshards);
    bool own = stream->id == sh->id;
    if (!own) {
        /* The free records an event on this stream under the shard lock, where
         * the stream must already exist (see record_use). */
        void *native;
        if ((st = fleet__stream_native(stream, &native)) != FLEET_OK)
            return st;
    }
    struct fleet__block *b = allocation->block_;
    fleet__mutex_lock(&sh->lock);
    st = check_handle(b, allocation, "fleet_memory_record_stream");
    if (st == FLEET_OK && !own)
        b->uses |= UINT64_C(1) << stream->id;
    fleet__mutex_unlock(&sh->lock);
    return st;
}

/* ---- stats and control ----------------------------------------------------------- */

fleet_status fleet_memory_get_stats(fleet_device *device, fleet_memory_stats *out)
{
    fleet_status st = fleet__enter_device(device, "fleet_memory_get_stats");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_memory_get_stats: out is NULL");
    sum_stats(device->allocator, out);
    return FLEET_OK;
}

fleet_status fleet_memory_reset_peak(fleet_device *device)
{
    fleet_status st = fleet__enter_device(device, "fleet_memory_reset_peak");
    if (st != FLEET_OK)
        return st;
    struct fleet__allocator *a = device->allocator;
    fleet_atomic_store_relaxed(&a->peak, fleet_atomic_load_relaxed(&a->allocated));
    return FLEET_OK;
}

fleet_status fleet_memory_empty_cache(fleet_device *device)
{
    fleet_status st = fleet__enter_device(device, "fleet_memory_empty_cache");
    if (st != FLEET_OK)
        return st;
    release_everywhere(device->allocator, true, true);
    return FLEET_OK;
}

fleet_status fleet_memory_set_limit(fleet_device *device, uint64_t bytes)
{
    fleet_status st = fleet__enter_device(device, "fleet_memory_set_limit");
    if (st != FLEET_OK)
        return st;
    fleet_atomic_store_relaxed(&device->allocator->limit, bytes);
    return FLEET_OK;
}

fleet_status fleet_memory_inject_failure(fleet_device *device, uint64_t nth)
{
    fleet_status st = fleet__enter_device(device, "fleet_memory_inject_failure");
    if (st != FLEET_OK)
        return st;
    fleet_atomic_store_relaxed(&device->allocator->inject_countdown, nth);
    return FLEET_OK;
}

/* ---- internal side (allocator.h) ---------------------------------------------------- */

fleet_status fleet__allocator_create(struct fleet_device *device, uint64_t limit,
                                     struct fleet__allocator **out)
{
    int n = device->pool.capacity;
    FLEET_ASSERT(n >= 1 && n <= FLEET__MAX_STREAMS); /* the pool is initialised first */
    size_t bytes = sizeof(struct fleet__allocator) + (size_t)n * sizeof(shard);
    struct fleet__allocator *a = fleet__host_alloc_aligned(CACHE_LINE, bytes);
    if (a == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY,
                            "%s: no host memory for the caching allocator (%zu bytes)",
                            device->name, bytes);
    memset(a, 0, bytes);
    a->device = device;
    a->nshards = n;
    fleet_atomic_init(&a->limit, limit);
    fleet_atomic_init(&a->reserved, 0);
    fleet_atomic_init(&a->inject_countdown, 0);
    fleet_atomic_init(&a->alloc_retries, 0);
    fleet_atomic_init(&a->ooms, 0);
    fleet_atomic_init(&a->allocated, 0);
    fleet_atomic_init(&a->peak, 0);
    for (int i = 0; i < n; i++) {
        shard *sh = &a->shards[i];
        fleet__mutex_init(&sh->lock);
        sh->allocator = a;
        sh->id = i;
        fleet__block_index_init(&sh->small_free);
        fleet__block_index_init(&sh->large_free);
    }
    *out = a;
    return FLEET_OK;
}

void fleet__allocator_destroy(struct fleet__allocator *a)
{
    if (a == NULL)
        return;
    struct fleet_device *dev = a->device;
    for (int i = 0; i < a->nshards; i++) {
        shard *sh = &a->shards[i];
        /* The device was synchronized, so pending events have passed. They are
         * destroyed here rather than pooled: shutdown may have destroyed the
         * event pool already (it does, in lifecycle.c). */
        for (struct fleet__block *b = sh->pending_list; b != NULL; b = b->link)
            for (event_node *n = b->events; n != NULL; n = n->next)
                fleet__backend_event_destroy(dev, n->event);
        segment *next;
        for (segment *seg = sh->segments; seg != NULL; seg = next) {
            next = seg->next;
            fleet__backend_segment_free(dev, seg->ptr);
            free(seg);
        }
        for (block_chunk *c = sh->block_chunks, *cn; c != NULL; c = cn) {
            cn = c->next;
            free(c);
        }
        for (event_chunk *c = sh->event_chunks, *cn; c != NULL; c = cn) {
            cn = c->next;
            free(c);
        }
        fleet__block_index_destroy(&sh->small_free);
        fleet__block_index_destroy(&sh->large_free);
        fleet__mutex_destroy(&sh->lock);
    }
    fleet__host_free(a);
}

/* One lock per shard, a number the analysis cannot follow; lifecycle.c's fork
 * handlers pair these two. */
FLEET_NO_THREAD_SAFETY_ANALYSIS
void fleet__allocator_atfork_prepare(struct fleet__allocator *a)
{
    for (int i = 0; i < a->nshards; i++)
        fleet__mutex_lock(&a->shards[i].lock);
}

FLEET_NO_THREAD_SAFETY_ANALYSIS
void fleet__allocator_atfork_release(struct fleet__allocator *a)
{
    for (int i = a->nshards - 1; i >= 0; i--)
        fleet__mutex_unlock(&a->shards[i].lock);
}
