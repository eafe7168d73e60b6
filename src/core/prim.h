/* core/prim.h — the thin layer over the operating system (mimalloc's prim.h).
 *
 * The rest of fleet never calls pthread_create, pthread_atfork, pthread keys,
 * clock_gettime or aligned_alloc directly; backends have their own layer for
 * driver calls (backend/cuda/).
 */
#ifndef FLEET_CORE_PRIM_H
#define FLEET_CORE_PRIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/status.h"

/* Monotonic clock in nanoseconds. */
uint64_t fleet__now_ns(void);
/* Deadlines, in fleet__now_ns units: the one home of timeout arithmetic.
 * It saturates: a timeout too large to represent (INT64_MAX ms, 2^62 us)
 * is FLEET__FOREVER, as is a negative one, so a huge timeout means "wait
 * forever", never "already expired". fleet__cond_wait_until(FOREVER)
 * waits without a timeout. */
#define FLEET__FOREVER UINT64_MAX
uint64_t fleet__deadline_after_ns(uint64_t ns);
uint64_t fleet__deadline_after_us(int64_t us);
uint64_t fleet__deadline_after_ms(int64_t ms);
void fleet__sleep_ns(uint64_t ns);

/* Threads. */
typedef struct fleet__thread {
    pthread_t handle;
} fleet__thread;
fleet_status fleet__thread_start(fleet__thread *t, void *(*fn)(void *), void *arg,
                                 const char *name);
void fleet__thread_join(fleet__thread *t);
/* A small number unique to the calling thread for the life of the process. */
uint64_t fleet__thread_token(void);

/* One process-wide thread-exit hook: `fn(value)` runs when a thread that
 * called fleet__thread_exit_arm(value) with a non-NULL value exits. */
void fleet__thread_exit_hook_install(void (*fn)(void *value));
void fleet__thread_exit_arm(void *value);

/* Process-exit hook: `fn` runs once from a library destructor, after every
 * atexit handler has run and before shared libraries (BLAS, the CUDA
 * runtime) are finalised, while other threads may still be running. */
void fleet__process_exit_hook_install(void (*fn)(void));

/* atexit(fn); false if it could not be registered. */
bool fleet__atexit_install(void (*fn)(void));

/* Fork handlers (prepare in the parent before fork, then parent or child). */
void fleet__atfork_install(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* Host memory. Every raw host allocation of the library goes through these
 * (free() releases them), so that fault injection reaches it. */
void *fleet__malloc(size_t bytes);
void *fleet__calloc(size_t n, size_t size);
void *fleet__realloc(void *p, size_t bytes);

/* Fault injection (tests): every raw allocation fleet makes — host memory
 * above, device segments, pinned staging buffers, backend streams and
 * events, handle-table chunks — first calls fleet__fault(); after
 * fleet__fault_arm(n), the nth such call returns true and that allocation
 * fails as if out of memory. n = 0 disarms; fleet__fault_seen() counts the
 * calls since the last arm (arm UINT64_MAX to count a scenario's). */
bool fleet__fault(void);
void fleet__fault_arm(uint64_t nth);
uint64_t fleet__fault_seen(void);

/* Host memory for backends: `alignment` a power of two. NULL on failure. */
void *fleet__host_alloc_aligned(size_t alignment, size_t bytes);
void fleet__host_free(void *p);

/* A spin-wait hint to the processor (x86's pause). */
static inline void fleet__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Online processors (>= 1). */
int fleet__cpu_count(void);

#endif /* FLEET_CORE_PRIM_H */
