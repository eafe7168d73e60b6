/* core/atomic.h — C11 atomics whose memory order is named at the call.
 *
 * The order is a decision: each wrapper says which one it makes (mimalloc's
 * mi_atomic_*). Use _relaxed for counters nobody synchronises on, _acquire /
 * _release for publishing data, _acq_rel for read-modify-writes that do both,
 * _seq_cst only where a store-then-load pattern across threads needs it
 * (and say why at the call). Nothing outside this header calls the C11
 * atomic functions directly (scripts/static-checks.sh checks).
 */
#ifndef FLEET_CORE_ATOMIC_H
#define FLEET_CORE_ATOMIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef _Atomic(uint64_t) fleet_atomic_u64;
typedef _Atomic(int64_t) fleet_atomic_i64;
typedef _Atomic(uint32_t) fleet_atomic_u32;
typedef _Atomic(int) fleet_atomic_int;
typedef _Atomic(bool) fleet_atomic_bool;
typedef _Atomic(void *) fleet_atomic_ptr;

#define fleet_atomic_init(p, v) atomic_init((p), (v))

#define fleet_atomic_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define fleet_atomic_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define fleet_atomic_load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)

#define fleet_atomic_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define fleet_atomic_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define fleet_atomic_store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)

#define fleet_atomic_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define fleet_atomic_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define fleet_atomic_sub_seq_cst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define fleet_atomic_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define fleet_atomic_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define fleet_atomic_sub_acq_rel(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_acq_rel)
#define fleet_atomic_and_acq_rel(p, v) atomic_fetch_and_explicit((p), (v), memory_order_acq_rel)
#define fleet_atomic_and_seq_cst(p, v) atomic_fetch_and_explicit((p), (v), memory_order_seq_cst)
#define fleet_atomic_or_acq_rel(p, v) atomic_fetch_or_explicit((p), (v), memory_order_acq_rel)
#define fleet_atomic_exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)

/* Strong CAS; on failure *expected receives the current value. */
#define fleet_atomic_cas_acq_rel(p, expected, desired)                         \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),         \
                                            memory_order_acq_rel, memory_order_acquire)
#define fleet_atomic_cas_seq_cst(p, expected, desired)                         \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),         \
                                            memory_order_seq_cst, memory_order_seq_cst)
#define fleet_atomic_cas_relaxed(p, expected, desired)                         \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),         \
                                            memory_order_relaxed, memory_order_relaxed)

/* Raise *p to at least v (for peaks). */
static inline void fleet_atomic_max_relaxed(fleet_atomic_u64 *p, uint64_t v)
{
    uint64_t cur = fleet_atomic_load_relaxed(p);
    while (cur < v && !fleet_atomic_cas_relaxed(p, &cur, v)) {
    }
}

#endif /* FLEET_CORE_ATOMIC_H */
