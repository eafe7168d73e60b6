/* core/handle.c — handle tables (core/handle.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/error.h"
#include "core/handle.h"
#include "core/prim.h"

_Static_assert(sizeof(fleet__handle_slot) == 16, "objects start 16-byte aligned");

static void register_table(fleet__handle_table *t);

#define REFS_MASK UINT64_C(0xffffffff)
#define CLOSED (UINT64_C(1) << 32)
#define GEN_SHIFT 33
#define GEN_MASK UINT64_C(0x7fffffff)

/* handle = (index + 1) << 32 | generation << 1 | 1 */
static uintptr_t encode(uint32_t index, uint64_t gen)
{
    return (uintptr_t)(((uint64_t)index + 1) << 32 | (gen & GEN_MASK) << 1 | 1u);
}

/* The slot of an index on the free list (its chunk is published). */
static fleet__handle_slot *free_slot(fleet__handle_table *t, uint32_t index)
{
    char *chunk = fleet_atomic_load_acquire(&t->chunks[index / FLEET__HANDLE_CHUNK_SLOTS]);
    return (fleet__handle_slot *)(chunk + (size_t)(index % FLEET__HANDLE_CHUNK_SLOTS) * t->stride);
}

/* The slot of any index, or NULL when its chunk does not exist yet. */
static fleet__handle_slot *slot_at(fleet__handle_table *t, uint32_t index)
{
    if (fleet_atomic_load_acquire(&t->chunks[index / FLEET__HANDLE_CHUNK_SLOTS]) == NULL)
        return NULL;
    return free_slot(t, index);
}

static fleet__handle_slot *slot_of(const void *payload)
{
    return (fleet__handle_slot *)((char *)payload - sizeof(fleet__handle_slot));
}

static void *payload_of(fleet__handle_slot *s)
{
    return (char *)s + sizeof(fleet__handle_slot);
}

/* The slot a handle names, with the generation it expects; NULL if the
 * handle cannot be one of this table's. */
static fleet__handle_slot *decode(fleet__handle_table *t, uintptr_t h, uint64_t *gen)
{
    uint64_t v = (uint64_t)h;
    if ((v & 1u) == 0 || (v >> 32) == 0)
        return NULL;
    uint64_t index = (v >> 32) - 1;
    if (index >= (uint64_t)fleet_atomic_load_acquire(&t->n_chunks) * FLEET__HANDLE_CHUNK_SLOTS)
        return NULL;
    *gen = (v >> 1) & GEN_MASK;
    return slot_at(t, (uint32_t)index);
}

static bool live_word(uint64_t w, uint64_t gen)
{
    return ((w >> GEN_SHIFT) & GEN_MASK) == gen && (w & CLOSED) == 0 && (w & REFS_MASK) != 0;
}

/* A new chunk; its slots go on the free list (lock held). */
static bool grow(fleet__handle_table *t) FLEET_REQUIRES(t->lock)
{
    uint32_t n = fleet_atomic_load_relaxed(&t->n_chunks);
    if (n == FLEET__HANDLE_MAX_CHUNKS)
        return false;
    char *chunk = fleet__calloc(FLEET__HANDLE_CHUNK_SLOTS, t->stride);
    if (chunk == NULL)
        return false;
    for (uint32_t i = FLEET__HANDLE_CHUNK_SLOTS; i-- > 0;) {
        fleet__handle_slot *s = (fleet__handle_slot *)(chunk + (size_t)i * t->stride);
        s->index = n * FLEET__HANDLE_CHUNK_SLOTS + i;
        s->next_free = t->free_head;
        t->free_head = s->index + 1;
    }
    fleet_atomic_store_release(&t->chunks[n], chunk);
    fleet_atomic_store_release(&t->n_chunks, n + 1);
    return true;
}

fleet_status fleet__handle_new(fleet__handle_table *t, void **payload, uintptr_t *handle)
{
    if (FLEET_UNLIKELY(!fleet_atomic_load_acquire(&t->registered)))
        register_table(t);
    fleet__mutex_lock(&t->lock);
    if (t->free_head == 0 && !grow(t)) {
        fleet__mutex_unlock(&t->lock);
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY,
                            "no host memory for another %s (%" PRIu64 " live)", t->what,
                            fleet_atomic_load_relaxed(&t->live));
    }
    fleet__handle_slot *s = free_slot(t, t->free_head - 1);
    t->free_head = s->next_free;
    fleet__mutex_unlock(&t->lock);
    s->next_free = 0;
    void *p = payload_of(s);
    memset(p, 0, t->payload);
    uint64_t gen = (fleet_atomic_load_relaxed(&s->word) >> GEN_SHIFT) & GEN_MASK;
    /* Release: the zeroed payload is visible to whoever resolves the handle. */
    fleet_atomic_store_release(&s->word, gen << GEN_SHIFT | 1u);
    fleet_atomic_add_relaxed(&t->live, 1);
    *payload = p;
    *handle = encode(s->index, gen);
    return FLEET_OK;
}

void *fleet__handle_get(fleet__handle_table *t, uintptr_t handle)
{
    uint64_t gen;
    fleet__handle_slot *s = decode(t, handle, &gen);
    if (s == NULL || !live_word(fleet_atomic_load_acquire(&s->word), gen))
        return NULL;
    return payload_of(s);
}

void *fleet__handle_acquire(fleet__handle_table *t, uintptr_t handle)
{
    uint64_t gen;
    fleet__handle_slot *s = decode(t, handle, &gen);
    if (s == NULL)
        return NULL;
    uint64_t w = fleet_atomic_load_acquire(&s->word);
    do {
        if (!live_word(w, gen))
            return NULL;
    } while (!fleet_atomic_cas_acq_rel(&s->word, &w, w + 1));
    return payload_of(s);
}

void fleet__handle_retain(fleet__handle_table *t, void *payload)
{
    (void)t;
    uint64_t before = fleet_atomic_add_acq_rel(&slot_of(payload)->word, 1);
    FLEET_ASSERT((before & REFS_MASK) != 0 && (before & REFS_MASK) != REFS_MASK);
}

bool fleet__handle_put(fleet__handle_table *t, void *payload)
{
    (void)t;
    uint64_t before = fleet_atomic_sub_acq_rel(&slot_of(payload)->word, 1);
    FLEET_ASSERT((before & REFS_MASK) != 0);
    return (before & REFS_MASK) == 1;
}

bool fleet__handle_drop(fleet__handle_table *t, uintptr_t handle, void **payload, bool *last)
{
    uint64_t gen;
    fleet__handle_slot *s = decode(t, handle, &gen);
    if (s == NULL)
        return false;
    uint64_t w = fleet_atomic_load_acquire(&s->word);
    do {
        if (!live_word(w, gen))
            return false;
    } while (!fleet_atomic_cas_acq_rel(&s->word, &w, w - 1));
    *payload = payload_of(s);
    *last = (w & REFS_MASK) == 1;
    return true;
}

fleet_status fleet__handle_close(fleet__handle_table *t, uintptr_t handle, const char *fn,
                                 void **payload, bool *last)
{
    uint64_t gen;
    fleet__handle_slot *s = decode(t, handle, &gen);
    if (s == NULL)
        return fleet__handle_stale(t, fn, t->what);
    uint64_t w = fleet_atomic_load_acquire(&s->word);
    do {
        if (!live_word(w, gen))
            return fleet__handle_stale(t, fn, t->what);
    } while (!fleet_atomic_cas_acq_rel(&s->word, &w, (w | CLOSED) - 1));
    *payload = payload_of(s);
    *last = (w & REFS_MASK) == 1;
    return FLEET_OK;
}

void fleet__handle_recycle(fleet__handle_table *t, void *payload)
{
    fleet__handle_slot *s = slot_of(payload);
    uint64_t w = fleet_atomic_load_relaxed(&s->word);
    FLEET_ASSERT((w & REFS_MASK) == 0);
    uint64_t gen = (((w >> GEN_SHIFT) & GEN_MASK) + 1) & GEN_MASK;
    fleet_atomic_store_release(&s->word, gen << GEN_SHIFT);
    fleet_atomic_sub_relaxed(&t->live, 1);
    fleet__mutex_lock(&t->lock);
    s->next_free = t->free_head;
    t->free_head = s->index + 1;
    fleet__mutex_unlock(&t->lock);
}

uintptr_t fleet__handle_of(fleet__handle_table *t, const void *payload)
{
    (void)t;
    const fleet__handle_slot *s = slot_of(payload);
    uint64_t w = fleet_atomic_load_relaxed((fleet_atomic_u64 *)&s->word);
    return encode(s->index, (w >> GEN_SHIFT) & GEN_MASK);
}

fleet_status fleet__handle_stale(const fleet__handle_table *t, const char *fn, const char *arg)
{
    return fleet__error(FLEET_ERR_STALE_HANDLE,
                        "%s: %s is a stale %s handle: it was already released (or is not a %s "
                        "fleet returned)", fn, arg, t->what, t->what);
}

uint64_t fleet__handle_live(fleet__handle_table *t)
{
    return fleet_atomic_load_relaxed(&t->live);
}

/* ---- fork: the tables used so far ------------------------------------------------- */

#define MAX_TABLES 8
static _Atomic(fleet__handle_table *) tables[MAX_TABLES];
static fleet_atomic_int n_tables;

static void register_table(fleet__handle_table *t)
{
    bool expected = false;
    if (!fleet_atomic_cas_acq_rel(&t->registered, &expected, true))
        return;
    int i = fleet_atomic_add_acq_rel(&n_tables, 1);
    FLEET_ASSERT(i < MAX_TABLES);
    fleet_atomic_store_release(&tables[i], t);
}

/* The tables locked by the last prepare (fork handlers run one at a time,
 * under the lifecycle lock), so a table registered meanwhile is not
 * released without having been taken. */
static fleet__handle_table *locked[MAX_TABLES];
static int n_locked;

/* One lock per table, a number the analysis cannot follow. */
void fleet__handle_tables_atfork_prepare(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    int n = fleet_atomic_load_acquire(&n_tables);
    n_locked = 0;
    for (int i = 0; i < n; i++) {
        fleet__handle_table *t = fleet_atomic_load_acquire(&tables[i]);
        if (t != NULL) {
            fleet__mutex_lock(&t->lock);
            locked[n_locked++] = t;
        }
    }
}

void fleet__handle_tables_atfork_release(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    while (n_locked > 0)
        fleet__mutex_unlock(&locked[--n_locked]->lock);
}
