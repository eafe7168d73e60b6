/* core/handle.h — handle tables: opaque public handles that can be checked.
 *
 * A public handle (a fleet_ticket *, say) is not the address of its object
 * but an encoded (slot index, generation) pair with its low bit set. The
 * object lives in a slot of a table whose memory is never returned to the
 * system, so resolving a handle always reads valid memory, and a handle
 * whose object was released (the slot's generation moved on) resolves to
 * nothing: FLEET_ERR_STALE_HANDLE, deterministically, never a read of freed
 * memory (as the allocator's generation-checked blocks do for memory).
 *
 * Each slot has one atomic word: generation (31 bits), a closed flag, and a
 * reference count. A new object has one reference (its owner's). Readers that
 * must keep the object alive across a wait take a reference
 * (fleet__handle_acquire) and drop it (fleet__handle_put); the owner's last
 * word is fleet__handle_close, which marks it closed (later acquires fail)
 * and drops its reference. Whoever drops the last reference gets `true` back
 * and must destroy the payload, then call fleet__handle_recycle, which moves
 * the generation on and gives the slot to the next fleet__handle_new.
 *
 *     void *p; uintptr_t h;
 *     fleet__handle_new(&table, &p, &h);            // refs 1, owner's
 *     void *q = fleet__handle_acquire(&table, h);   // NULL: stale or closed
 *     ... if (fleet__handle_put(&table, q)) destroy, recycle ...
 *
 * The generation wraps after 2^31 reuses of one slot. Thread-safe; the free
 * list's lock is rank 9 (a leaf: nothing is called under it).
 */
#ifndef FLEET_CORE_HANDLE_H
#define FLEET_CORE_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/atomic.h"
#include "core/lock.h"
#include "fleet/status.h"

#define FLEET__HANDLE_CHUNK_SLOTS 1024
#define FLEET__HANDLE_MAX_CHUNKS 16384 /* 16M live objects per table */

typedef struct fleet__handle_table {
    const char *what;   /* "ticket": for error texts */
    size_t payload;     /* bytes of each object      */
    size_t stride;      /* bytes of each slot        */
    _Atomic(char *) chunks[FLEET__HANDLE_MAX_CHUNKS];
    fleet_atomic_u32 n_chunks;
    fleet__mutex lock;  /* rank 9: guards free_head and growing */
    uint32_t free_head; /* slot index + 1; 0: none */
    fleet_atomic_u64 live;
    fleet_atomic_bool registered; /* in the fork handlers' list */
} fleet__handle_table;

/* A slot: this header, then the object (16-byte aligned). */
typedef struct fleet__handle_slot {
    fleet_atomic_u64 word;  /* generation << 33 | closed << 32 | refs */
    uint32_t index;
    uint32_t next_free;     /* free list link: slot index + 1, 0 ends */
} fleet__handle_slot;

/* A static table for objects of type `type`:
 *     static fleet__handle_table tickets = FLEET__HANDLE_TABLE_INIT("ticket", struct ticket); */
#define FLEET__HANDLE_TABLE_INIT(what_, type_)                                          \
    {.what = (what_), .payload = sizeof(type_),                                          \
     .stride = sizeof(fleet__handle_slot) + (sizeof(type_) + 15) / 16 * 16,              \
     .lock = {PTHREAD_MUTEX_INITIALIZER}}

/* A fresh object (zeroed) and its handle, with one reference. */
fleet_status fleet__handle_new(fleet__handle_table *t, void **payload, uintptr_t *handle);

/* Whether `handle` has the shape of a handle (low bit set). */
static inline bool fleet__handle_tagged(const void *handle)
{
    return ((uintptr_t)handle & 1u) != 0;
}

/* The object of a live, open handle, or NULL (stale, closed, or not a handle
 * of this table). Takes no reference: the caller must hold one (its own
 * handle) for as long as it uses the object. */
void *fleet__handle_get(fleet__handle_table *t, uintptr_t handle);
/* The same, taking a reference for the caller (NULL if there is none to be
 * had); fleet__handle_put gives it back. */
void *fleet__handle_acquire(fleet__handle_table *t, uintptr_t handle);
/* Take one more reference on an object the caller holds one for. */
void fleet__handle_retain(fleet__handle_table *t, void *payload);
/* Drop a reference; true if it was the last (destroy, then recycle). */
bool fleet__handle_put(fleet__handle_table *t, void *payload);
/* Drop one reference through `handle` itself (checked, so two releases of
 * one handle from two threads cannot both drop one): false if the handle
 * is stale or closed; else *payload and *last as for put. */
bool fleet__handle_drop(fleet__handle_table *t, uintptr_t handle, void **payload, bool *last);
/* The owner's release of `handle`: FLEET_OK with *last as for put, or
 * FLEET_ERR_STALE_HANDLE (with text naming `fn`) if the handle was already
 * closed or released. */
fleet_status fleet__handle_close(fleet__handle_table *t, uintptr_t handle, const char *fn,
                                 void **payload, bool *last);
/* Give the slot of an object whose last reference was dropped back. */
void fleet__handle_recycle(fleet__handle_table *t, void *payload);
/* The handle of a live object (for returning it again). */
uintptr_t fleet__handle_of(fleet__handle_table *t, const void *payload);
/* FLEET_ERR_STALE_HANDLE with "fn: arg: stale <what> handle ..." text. */
fleet_status fleet__handle_stale(const fleet__handle_table *t, const char *fn, const char *arg);

/* Objects live in the table now. */
uint64_t fleet__handle_live(fleet__handle_table *t);

/* Fork (runtime/lifecycle.c, after every lower rank): take the free-list
 * lock of every table used so far, and release them in parent and child. */
void fleet__handle_tables_atfork_prepare(void);
void fleet__handle_tables_atfork_release(void);

#endif /* FLEET_CORE_HANDLE_H */
