/* core/lock.h — the one mutex and condition-variable wrapper.
 *
 * Failures of the underlying calls are bugs (EINVAL, EDEADLK) and abort with
 * file:line. Style: lock, then `goto out` to a single unlock.
 *
 * Lock ranks (lower rank is taken first; never take a lower rank while holding
 * a higher one). Each lock's declaration repeats its rank; the file named
 * here is the one that declares it (scripts/house-rules.sh checks both).
 *   1  lifecycle: init/shutdown            runtime/lifecycle.c
 *   2  model runtime: a model's plan list  model/graph.h
 *      the graph cache (one)              model/graph_cache.c
 *      a (plan, stream) instance, held    model/graph_cache.h
 *      for a whole run
 *      a batcher's queue; a ticket        batch/batcher.c
 *      (never two of these at once)
 *   3  stream pool wait (per device)       runtime/device.h
 *   4  allocator shard (per stream; in stream-id order when several)
 *                                           runtime/allocator.c
 *   5  event pool (per device)             runtime/event_pool.c
 *   6  cpu stream queue (per cpu stream)   backend/cpu/cpu_stream.c
 *      cuda staging buffer (per stream)   backend/cuda/cuda_staging.h
 *      cuda library lock (per stream)     backend/cuda/cuda_backend.c
 *      (never two of these at once)
 *   7  cpu events (one for all)            backend/cpu/cpu_stream.c
 *   8  log output                          core/log.c
 *   9  a handle table's free list          core/handle.h
 *  10  a served model's completion list    serve/serve.h
 *      a server's connection table        serve/serve.h
 *      (leaves: held for list work only, no fleet call under them)
 * The fork handlers take ranks 1 and 3..9 in this order (runtime/lifecycle.c);
 * the graph cache has its own, registered later, so its prepare runs first
 * (out of rank order, harmless: no holder of the lifecycle lock takes it).
 * Models refuse use in a fork child, so their plan and instance locks never
 * need to be consistent there.
 *
 * Annotations for clang's -Wthread-safety (scripts/static-checks.sh, 0
 * warnings). In C, clang checks FLEET_GUARDED_BY on a global, or on a member
 * guarded by a global lock, and the function attributes, which may name a
 * lock through a parameter: FLEET_REQUIRES(sh->lock). It cannot check a
 * member guarded by a lock of the same struct: clang 14 rejects
 * `guarded_by(lock)` there, and clang 19 to 22 accept it but bind it to no
 * object, so every access warns, locked or not. Such members say "guards" or
 * "guarded by" in a comment, and each helper that expects the lock held
 * carries FLEET_REQUIRES, checked at every call. FLEET_NO_THREAD_SAFETY_ANALYSIS
 * is for functions the analysis cannot follow (the fork handlers, which take
 * a lock per device or stream), each with a comment saying why.
 */
#ifndef FLEET_CORE_LOCK_H
#define FLEET_CORE_LOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__clang__)
#define FLEET_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FLEET_THREAD_ANNOTATION(x)
#endif
#define FLEET_CAPABILITY(x) FLEET_THREAD_ANNOTATION(capability(x))
#define FLEET_GUARDED_BY(x) FLEET_THREAD_ANNOTATION(guarded_by(x))
#define FLEET_ACQUIRE(...) FLEET_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define FLEET_RELEASE(...) FLEET_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define FLEET_REQUIRES(...) FLEET_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define FLEET_NO_THREAD_SAFETY_ANALYSIS FLEET_THREAD_ANNOTATION(no_thread_safety_analysis)

typedef struct FLEET_CAPABILITY("mutex") fleet__mutex {
    pthread_mutex_t m;
} fleet__mutex;

typedef struct fleet__cond {
    pthread_cond_t c;
} fleet__cond;

void fleet__mutex_init(fleet__mutex *mu);
void fleet__mutex_destroy(fleet__mutex *mu);
void fleet__mutex_lock(fleet__mutex *mu) FLEET_ACQUIRE(mu);
void fleet__mutex_unlock(fleet__mutex *mu) FLEET_RELEASE(mu);
/* In a fork child, instead of unlocking a mutex the fork handler took: make
 * it a fresh, unlocked mutex. The child's copy may still count the parent's
 * threads that were waiting on a condition variable with it (glibc keeps
 * them among the mutex's users), which would make a later destroy fail. */
void fleet__mutex_reset_in_child(fleet__mutex *mu) FLEET_RELEASE(mu);

/* Condition variables wait on CLOCK_MONOTONIC. */
void fleet__cond_init(fleet__cond *cv);
void fleet__cond_destroy(fleet__cond *cv);
void fleet__cond_wait(fleet__cond *cv, fleet__mutex *mu) FLEET_REQUIRES(mu);
/* Wait until the monotonic deadline (ns, see fleet__now_ns; FLEET__FOREVER:
 * no timeout); false on timeout. */
bool fleet__cond_wait_until(fleet__cond *cv, fleet__mutex *mu, uint64_t deadline_ns)
    FLEET_REQUIRES(mu);
void fleet__cond_signal(fleet__cond *cv);
void fleet__cond_broadcast(fleet__cond *cv);

#endif /* FLEET_CORE_LOCK_H */
