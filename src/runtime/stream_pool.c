/* runtime/stream_pool.c — per-device stream pools and per-thread binding.
 *
 * The pool's `taken` bitmask is the single truth about exclusive ownership:
 * a slot is taken by one successful CAS that sets its bit and given back by
 * one fetch_and that clears it, so no slot ever has two exclusive owners
 * (verify/ models this protocol). Sharing (when no slot is free) takes no
 * bit at all. The mutex is only for threads that wait for a slot and for the
 * lazy creation of backend streams — never on the path of a bound thread.
 */
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/prim.h"
#include "runtime/device.h"
#include "runtime/dispatch.h"

/* The calling thread's bindings, one entry per device-table index. */
typedef struct thread_binding {
    int8_t slot[FLEET__MAX_DEVICES];          /* 0: not bound              */
    bool exclusive[FLEET__MAX_DEVICES];       /* slot bit held by us       */
    struct fleet_stream *current[FLEET__MAX_DEVICES]; /* explicit choice   */
    bool current_counted[FLEET__MAX_DEVICES]; /* in current's sharers      */
    bool armed;                               /* exit hook registered      */
} thread_binding;

static _Thread_local thread_binding tls;

static uint64_t pool_mask(const fleet__stream_pool *pool)
{
    /* bits 1..capacity-1; capacity <= 64 */
    uint64_t all = pool->capacity == 64 ? ~UINT64_C(0) : (UINT64_C(1) << pool->capacity) - 1;
    return all & ~UINT64_C(1);
}

void fleet__stream_pool_init(struct fleet_device *device, int capacity)
{
    fleet__stream_pool *pool = &device->pool;
    FLEET_ASSERT(capacity >= 2 && capacity <= FLEET__MAX_STREAMS);
    memset(pool, 0, sizeof *pool);
    pool->capacity = capacity;
    fleet_atomic_store_relaxed(&pool->next_hint, 1u);
    fleet__mutex_init(&pool->lock);
    fleet__cond_init(&pool->freed);
    for (int i = 0; i < FLEET__MAX_STREAMS; i++) {
        pool->streams[i].device = device;
        pool->streams[i].id = i;
    }
}

/* Take a free slot, searching from next_hint upward and wrapping. Returns
 * the slot id, or 0 when every slot is taken. */
static int try_take_free(fleet__stream_pool *pool, int hold)
{
    uint64_t mask = pool_mask(pool);
    /* seq_cst: pairs with release_slot's fetch_and + waiters load (a waiter
     * increments `waiters` before this load; see wait_for_slot). */
    uint64_t taken = fleet_atomic_load_seq_cst(&pool->taken);
    for (;;) {
        uint64_t free_bits = ~taken & mask;
        if (free_bits == 0)
            return 0;
        unsigned start = fleet_atomic_load_relaxed(&pool->next_hint);
        uint64_t above = start < 64 ? free_bits & (~UINT64_C(0) << start) : 0;
        int slot = __builtin_ctzll(above != 0 ? above : free_bits);
        if (fleet_atomic_cas_acq_rel(&pool->taken, &taken, taken | (UINT64_C(1) << slot))) {
            /* A slot whose bit was clear has no holder (verify/stream_pool.pml). */
            FLEET_DEBUG_ASSERT(fleet_atomic_load_relaxed(&pool->streams[slot].hold) ==
                               FLEET__HOLD_NONE);
            unsigned next = (unsigned)slot + 1;
            fleet_atomic_store_relaxed(&pool->next_hint, next >= (unsigned)pool->capacity ? 1u : next);
            fleet_atomic_store_relaxed(&pool->streams[slot].hold, hold);
            return slot;
        }
    }
}

static void release_slot(fleet__stream_pool *pool, int slot)
{
    fleet_atomic_store_relaxed(&pool->streams[slot].hold, FLEET__HOLD_NONE);
    uint64_t before = fleet_atomic_and_seq_cst(&pool->taken, ~(UINT64_C(1) << slot));
    FLEET_ASSERT(before & (UINT64_C(1) << slot));
    if (fleet_atomic_load_seq_cst(&pool->waiters) > 0) {
        fleet__mutex_lock(&pool->lock);
        fleet__cond_broadcast(&pool->freed);
        fleet__mutex_unlock(&pool->lock);
    }
}

/* Wait up to timeout_ms (-1: forever) for a free slot. */
static fleet_status wait_for_slot(struct fleet_device *device, int64_t timeout_ms, int hold,
                                  int *out, const char *fn)
{
    fleet__stream_pool *pool = &device->pool;
    uint64_t deadline = fleet__deadline_after_ms(timeout_ms); /* -1: FLEET__FOREVER */
    fleet_status st = FLEET_OK;
    int slot;

    fleet_atomic_add_relaxed(&pool->waits_total, 1);
    fleet__mutex_lock(&pool->lock);
    /* Announce ourselves before looking: a releaser that clears a bit after
     * our look will then see waiters > 0 and broadcast under the lock we
     * hold until we sleep, so the wakeup cannot be lost. */
    fleet_atomic_add_seq_cst(&pool->waiters, 1);
    while ((slot = try_take_free(pool, hold)) == 0) {
        if (!fleet__cond_wait_until(&pool->freed, &pool->lock, deadline)) {
            if ((slot = try_take_free(pool, hold)) != 0)
                break;
            fleet_atomic_add_relaxed(&pool->timeouts_total, 1);
            st = fleet__error(FLEET_ERR_POOL_EXHAUSTED,
                              "%s: all %d pool streams of %s stayed taken for %lld ms",
                              fn, pool->capacity - 1, device->name, (long long)timeout_ms);
            break;
        }
    }
    fleet_atomic_sub_seq_cst(&pool->waiters, 1);
    fleet__mutex_unlock(&pool->lock);
    *out = slot;
    return st;
}

/* ---- the capture gate ----------------------------------------------------- */

static bool own_slot(int idx, int id)
{
    return tls.exclusive[idx] && tls.slot[idx] == id;
}

/* Count the calling thread among s's sharers, then wait out a capture in
 * progress (seq_cst on both sides: a capture that begins after our
 * increment sees it and is refused; one that began before is waited for). */
static void sharer_enter(struct fleet_stream *s)
{
    fleet_atomic_add_seq_cst(&s->sharers, 1);
    while (fleet_atomic_load_seq_cst(&s->capturing))
        fleet__sleep_ns(20000);
}

static void sharer_leave(struct fleet_stream *s)
{
    fleet_atomic_sub_seq_cst(&s->sharers, 1);
}

/* Forget the calling thread's explicit current stream on device idx. */
static void drop_current(int idx)
{
    if (tls.current_counted[idx])
        sharer_leave(tls.current[idx]);
    tls.current[idx] = NULL;
    tls.current_counted[idx] = false;
}

void fleet__stream_foreign_enter(struct fleet_stream *s)
{
    sharer_enter(s);
}

bool fleet__stream_foreign_try_enter(struct fleet_stream *s)
{
    fleet_atomic_add_seq_cst(&s->sharers, 1);
    if (!fleet_atomic_load_seq_cst(&s->capturing))
        return true;
    sharer_leave(s);
    return false;
}

void fleet__stream_foreign_leave(struct fleet_stream *s)
{
    sharer_leave(s);
}

bool fleet__stream_capture_begin(struct fleet_stream *s)
{
    int idx = s->device->index;
    bool acquired = fleet_atomic_load_relaxed(&s->hold) == FLEET__HOLD_ACQUIRED;
    if (s->id == 0 || !(acquired || own_slot(idx, s->id)))
        return false;
    int self = tls.current[idx] == s && tls.current_counted[idx] ? 1 : 0;
    int expected = 0;
    if (!fleet_atomic_cas_seq_cst(&s->capturing, &expected, 1))
        return false;
    if (fleet_atomic_load_seq_cst(&s->sharers) != self ||
        fleet_atomic_load_seq_cst(&s->device->syncing) != 0) {
        fleet_atomic_store_seq_cst(&s->capturing, 0);
        return false;
    }
    return true;
}

void fleet__stream_capture_end(struct fleet_stream *s)
{
    fleet_atomic_store_seq_cst(&s->capturing, 0);
}

void fleet__stream_capture_wait(const struct fleet_stream *s)
{
    while (fleet_atomic_load_seq_cst(&((struct fleet_stream *)s)->capturing))
        fleet__sleep_ns(20000);
}

/* ---- binding ------------------------------------------------------------------ */

static fleet_status bind_thread(struct fleet_device *device)
{
    fleet__stream_pool *pool = &device->pool;
    int64_t wait_ms = fleet__config_get()->stream_wait_ms;
    bool exclusive = true;
    int slot = try_take_free(pool, FLEET__HOLD_BOUND);

    if (slot == 0 && wait_ms == 0) {
        uint32_t c = fleet_atomic_add_relaxed(&pool->share_cursor, 1u);
        slot = 1 + (int)(c % (uint32_t)(pool->capacity - 1));
        exclusive = false;
        sharer_enter(&pool->streams[slot]);
        fleet_atomic_add_relaxed(&pool->shared_bindings, 1);
        fleet_atomic_add_relaxed(&pool->shared_total, 1);
        FLEET_LOG_DEBUGF("%s: pool full, thread shares stream %d", device->name, slot);
    } else if (slot == 0) {
        fleet_status st = wait_for_slot(device, wait_ms, FLEET__HOLD_BOUND, &slot, "stream binding");
        if (st != FLEET_OK)
            return st;
    }
    fleet_atomic_add_relaxed(&pool->bindings_total, 1);
    tls.slot[device->index] = (int8_t)slot;
    tls.exclusive[device->index] = exclusive;
    if (!tls.armed) {
        tls.armed = true;
        fleet__thread_exit_arm(&tls);
    }
    return FLEET_OK;
}

fleet_status fleet__stream_current(struct fleet_device *device, struct fleet_stream **out)
{
    int idx = device->index;
    if (tls.current[idx] != NULL) {
        *out = tls.current[idx];
        return FLEET_OK;
    }
    if (FLEET_UNLIKELY(tls.slot[idx] == 0)) {
        fleet_status st = bind_thread(device);
        if (st != FLEET_OK)
            return st;
    }
    *out = &device->pool.streams[tls.slot[idx]];
    return FLEET_OK;
}

void fleet__stream_pool_thread_exit(void *value)
{
    thread_binding *b = value;
    int n = fleet__device_table_size();
    for (int i = 0; i < n; i++) {
        if (b->slot[i] == 0)
            continue;
        fleet__stream_pool *pool = &fleet__device_at(i)->pool;
        if (b->exclusive[i]) {
            FLEET_DEBUG_ASSERT(fleet_atomic_load_relaxed(&pool->streams[b->slot[i]].hold) ==
                               FLEET__HOLD_BOUND);
            release_slot(pool, b->slot[i]);
        } else {
            sharer_leave(&pool->streams[b->slot[i]]);
            fleet_atomic_sub_relaxed(&pool->shared_bindings, 1);
        }
        b->slot[i] = 0;
    }
    for (int i = 0; i < n; i++) {
        if (b->current_counted[i])
            sharer_leave(b->current[i]);
        b->current_counted[i] = false;
        b->current[i] = NULL;
    }
    /* A later thread-exit destructor (another library's) may use fleet again
     * and bind anew: re-arm then, so that binding is released too (glibc
     * runs destructors again for keys set during destruction). */
    b->armed = false;
}

fleet_status fleet__stream_native(struct fleet_stream *s, void **native)
{
    void *p = fleet_atomic_load_acquire(&s->native);
    if (FLEET_LIKELY(p != NULL)) {
        *native = p;
        return FLEET_OK;
    }
    struct fleet_device *device = s->device;
    fleet_status st = FLEET_OK;
    fleet__mutex_lock(&device->pool.lock);
    p = fleet_atomic_load_acquire(&s->native);
    if (p == NULL) {
        st = fleet__backend_stream_create(device, s->id == 0, &p);
        if (st != FLEET_OK)
            goto out;
        fleet_atomic_store_release(&s->native, p);
        fleet_atomic_add_relaxed(&device->pool.streams_created, 1);
    }
    *native = p;
out:
    fleet__mutex_unlock(&device->pool.lock);
    return st;
}

fleet_status fleet__device_synchronize(struct fleet_device *device)
{
    if (fleet__backend_can(device, FLEET__CAN_DEVICE_SYNC)) {
        /* Announce, then wait out captures already begun; one that begins
         * later sees `syncing` and is refused (seq_cst on both sides). */
        fleet_atomic_add_seq_cst(&device->syncing, 1);
        for (int i = 1; i < device->pool.capacity; i++)
            fleet__stream_capture_wait(&device->pool.streams[i]);
        fleet_status st = fleet__backend_device_synchronize(device);
        fleet_atomic_sub_seq_cst(&device->syncing, 1);
        return st;
    }
    fleet_status first = FLEET_OK;
    for (int i = 0; i < device->pool.capacity; i++) {
        void *native = fleet_atomic_load_acquire(&device->pool.streams[i].native);
        if (native == NULL)
            continue;
        fleet__stream_capture_wait(&device->pool.streams[i]);
        fleet_status st = fleet__backend_stream_synchronize(device, native);
        if (st != FLEET_OK && first == FLEET_OK)
            first = st;
    }
    return first;
}

void fleet__stream_pool_atfork_prepare(struct fleet_device *device)
{
    fleet__mutex_lock(&device->pool.lock);
}

void fleet__stream_pool_atfork_parent(struct fleet_device *device)
{
    fleet__mutex_unlock(&device->pool.lock);
}

void fleet__stream_pool_atfork_child(struct fleet_device *device)
{
    fleet__stream_pool *pool = &device->pool;
    int idx = device->index;
    uint64_t keep = 0;
    for (int i = 1; i < pool->capacity; i++) {
        int hold = fleet_atomic_load_relaxed(&pool->streams[i].hold);
        bool mine = tls.slot[idx] == i && tls.exclusive[idx];
        if (hold == FLEET__HOLD_ACQUIRED || mine)
            keep |= UINT64_C(1) << i;
        else
            fleet_atomic_store_relaxed(&pool->streams[i].hold, FLEET__HOLD_NONE);
    }
    fleet_atomic_store_relaxed(&pool->taken, keep);
    fleet_atomic_store_relaxed(&pool->waiters, 0);
    fleet_atomic_store_relaxed(&pool->shared_bindings,
                               tls.slot[idx] != 0 && !tls.exclusive[idx] ? 1 : 0);
    fleet__cond_init(&pool->freed);
    fleet__mutex_reset_in_child(&device->pool.lock);
}

/* ---- public API ------------------------------------------------------------ */

fleet_status fleet__enter_stream(const struct fleet_stream *stream, const char *fn)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    if (stream == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "%s: stream is NULL", fn);
    return fleet__enter_device(stream->device, fn);
}

fleet_status fleet_stream_current(fleet_device *device, fleet_stream **out)
{
    fleet_status st = fleet__enter_device(device, "fleet_stream_current");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_stream_current: out is NULL");
    return fleet__stream_current(device, out);
}

fleet_status fleet_stream_set_current(fleet_stream *stream)
{
    fleet_status st = fleet__enter_stream(stream, "fleet_stream_set_current");
    if (st != FLEET_OK)
        return st;
    int idx = stream->device->index;
    if (tls.current[idx] == stream)
        return FLEET_OK;
    drop_current(idx);
    tls.current[idx] = stream;
    tls.current_counted[idx] = !own_slot(idx, stream->id);
    if (tls.current_counted[idx])
        sharer_enter(stream);
    return FLEET_OK;
}

fleet_status fleet_stream_reset_current(fleet_device *device)
{
    fleet_status st = fleet__enter_device(device, "fleet_stream_reset_current");
    if (st != FLEET_OK)
        return st;
    drop_current(device->index);
    return FLEET_OK;
}

fleet_status fleet_stream_get_default(fleet_device *device, fleet_stream **out)
{
    fleet_status st = fleet__enter_device(device, "fleet_stream_get_default");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_stream_get_default: out is NULL");
    *out = &device->pool.streams[0];
    return FLEET_OK;
}

static fleet_status acquire(fleet_device *device, int64_t timeout_ms, fleet_stream **out,
                           const char *fn)
{
    fleet_status st = fleet__enter_device(device, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    FLEET_CHECK_ARG(timeout_ms >= -1, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: timeout_ms %lld (expected -1, 0 or more)", fn, (long long)timeout_ms);
    int slot = try_take_free(&device->pool, FLEET__HOLD_ACQUIRED);
    if (slot == 0 && timeout_ms == 0)
        return fleet__error(FLEET_ERR_POOL_EXHAUSTED, "%s: all %d pool streams of %s are taken",
                            fn, device->pool.capacity - 1, device->name);
    if (slot == 0) {
        st = wait_for_slot(device, timeout_ms, FLEET__HOLD_ACQUIRED, &slot, fn);
        if (st != FLEET_OK)
            return st;
    }
    *out = &device->pool.streams[slot];
    return FLEET_OK;
}

fleet_status fleet_stream_acquire_timeout(fleet_device *device, int64_t timeout_ms,
                                          fleet_stream **out)
{
    return acquire(device, timeout_ms, out, "fleet_stream_acquire_timeout");
}

fleet_status fleet_stream_acquire(fleet_device *device, fleet_stream **out)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    return acquire(device, fleet__config_get()->stream_wait_ms, out, "fleet_stream_acquire");
}

fleet_status fleet_stream_release(fleet_stream *stream)
{
    fleet_status st = fleet__enter_stream(stream, "fleet_stream_release");
    if (st != FLEET_OK)
        return st;
    int expected = FLEET__HOLD_ACQUIRED;
    if (stream->id == 0 || !fleet_atomic_cas_acq_rel(&stream->hold, &expected, FLEET__HOLD_NONE))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "fleet_stream_release: stream %d of %s was not acquired with "
                            "fleet_stream_acquire", stream->id, stream->device->name);
    /* Drop our own reference to the current choice if it points here. */
    if (tls.current[stream->device->index] == stream)
        drop_current(stream->device->index);
    release_slot(&stream->device->pool, stream->id);
    return FLEET_OK;
}

int fleet_stream_id(const fleet_stream *stream)
{
    return stream == NULL ? -1 : stream->id;
}

fleet_device *fleet_stream_device(const fleet_stream *stream)
{
    return stream == NULL ? NULL : stream->device;
}

fleet_status fleet_stream_synchronize(fleet_stream *stream)
{
    fleet_status st = fleet__enter_stream(stream, "fleet_stream_synchronize");
    if (st != FLEET_OK)
        return st;
    void *native = fleet_atomic_load_acquire(&stream->native);
    if (native == NULL)
        return FLEET_OK; /* never used: nothing to wait for */
    fleet__stream_capture_wait(stream);
    return fleet__backend_stream_synchronize(stream->device, native);
}

fleet_status fleet_stream_query(fleet_stream *stream)
{
    fleet_status st = fleet__enter_stream(stream, "fleet_stream_query");
    if (st != FLEET_OK)
        return st;
    void *native = fleet_atomic_load_acquire(&stream->native);
    if (native == NULL)
        return FLEET_OK;
    fleet__stream_capture_wait(stream);
    return fleet__backend_stream_query(stream->device, native);
}

fleet_status fleet_stream_launch_host_func(fleet_stream *stream, fleet_host_fn fn, void *arg)
{
    fleet_status st = fleet__enter_stream(stream, "fleet_stream_launch_host_func");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(fn != NULL, FLEET_ERR_NULL_POINTER, "fleet_stream_launch_host_func: fn is NULL");
    if ((st = fleet__backend_require("fleet_stream_launch_host_func", stream->device,
                                     FLEET__CAN_HOST_FUNC)) != FLEET_OK)
        return st;
    void *native;
    if ((st = fleet__stream_native(stream, &native)) != FLEET_OK)
        return st;
    fleet__stream_foreign_enter(stream);
    st = fleet__backend_launch_host_func(stream->device, native, fn, arg);
    fleet__stream_foreign_leave(stream);
    return st;
}

fleet_status fleet_stream_pool_get_stats(fleet_device *device, fleet_stream_pool_stats *out)
{
    fleet_status st = fleet__enter_device(device, "fleet_stream_pool_get_stats");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_stream_pool_get_stats: out is NULL");
    fleet__stream_pool *pool = &device->pool;
    uint64_t taken = fleet_atomic_load_acquire(&pool->taken);
    int acquired = 0;
    for (int i = 1; i < pool->capacity; i++)
        acquired += fleet_atomic_load_relaxed(&pool->streams[i].hold) == FLEET__HOLD_ACQUIRED;
    *out = (fleet_stream_pool_stats){
        .capacity = pool->capacity,
        .pool_slots = pool->capacity - 1,
        .exclusive_in_use = __builtin_popcountll(taken),
        .acquired_in_use = acquired,
        .shared_bindings = fleet_atomic_load_relaxed(&pool->shared_bindings),
        .streams_created = fleet_atomic_load_relaxed(&pool->streams_created),
        .bindings_total = fleet_atomic_load_relaxed(&pool->bindings_total),
        .shared_total = fleet_atomic_load_relaxed(&pool->shared_total),
        .waits_total = fleet_atomic_load_relaxed(&pool->waits_total),
        .timeouts_total = fleet_atomic_load_relaxed(&pool->timeouts_total),
    };
    return FLEET_OK;
}
