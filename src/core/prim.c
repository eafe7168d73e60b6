/* core/prim.c — POSIX implementation of the OS layer. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/prim.h"

uint64_t fleet__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t fleet__deadline_after_ns(uint64_t ns)
{
    uint64_t now = fleet__now_ns();
    return ns >= FLEET__FOREVER - now ? FLEET__FOREVER : now + ns;
}

static uint64_t deadline_after_units(int64_t n, uint64_t ns_per_unit)
{
    if (n < 0 || (uint64_t)n > FLEET__FOREVER / ns_per_unit)
        return FLEET__FOREVER;
    return fleet__deadline_after_ns((uint64_t)n * ns_per_unit);
}

uint64_t fleet__deadline_after_us(int64_t us)
{
    return deadline_after_units(us, 1000u);
}

uint64_t fleet__deadline_after_ms(int64_t ms)
{
    return deadline_after_units(ms, 1000000u);
}

void fleet__sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

fleet_status fleet__thread_start(fleet__thread *t, void *(*fn)(void *), void *arg,
                                 const char *name)
{
    int rc = fleet__fault() ? EAGAIN : pthread_create(&t->handle, NULL, fn, arg);
    if (rc != 0)
        return fleet__error(FLEET_ERR_BACKEND, "cannot start thread %s: %s", name, strerror(rc));
    if (name != NULL)
        pthread_setname_np(t->handle, name); /* cosmetic: failure is harmless */
    return FLEET_OK;
}

void fleet__thread_join(fleet__thread *t)
{
    FLEET_ASSERT(pthread_join(t->handle, NULL) == 0);
}

static fleet_atomic_u64 next_thread_token = 1;
static _Thread_local uint64_t my_thread_token;

uint64_t fleet__thread_token(void)
{
    if (my_thread_token == 0)
        my_thread_token = fleet_atomic_add_relaxed(&next_thread_token, 1);
    return my_thread_token;
}

static pthread_key_t exit_key;

void fleet__thread_exit_hook_install(void (*fn)(void *value))
{
    FLEET_ASSERT(pthread_key_create(&exit_key, fn) == 0);
}

void fleet__thread_exit_arm(void *value)
{
    FLEET_ASSERT(pthread_setspecific(exit_key, value) == 0);
}

static void (*_Atomic process_exit_hook)(void);

void fleet__process_exit_hook_install(void (*fn)(void))
{
    fleet_atomic_store_release(&process_exit_hook, fn);
}

/* Destructors of the program (and of libfleet.so) run in _dl_fini after all
 * atexit handlers, and before those of the libraries fleet depends on. */
__attribute__((destructor)) static void run_process_exit_hook(void)
{
    void (*fn)(void) = fleet_atomic_load_acquire(&process_exit_hook);
    if (fn != NULL)
        fn();
}

bool fleet__atexit_install(void (*fn)(void))
{
    return atexit(fn) == 0;
}

void fleet__atfork_install(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    FLEET_ASSERT(pthread_atfork(prepare, parent, child) == 0);
}

/* ---- fault injection ----------------------------------------------------------- */

static fleet_atomic_u64 fault_countdown; /* 0: disarmed */
static fleet_atomic_u64 fault_seen;

bool fleet__fault(void)
{
    uint64_t n = fleet_atomic_load_relaxed(&fault_countdown);
    if (FLEET_LIKELY(n == 0))
        return false;
    fleet_atomic_add_relaxed(&fault_seen, 1);
    while (n > 0) {
        if (fleet_atomic_cas_relaxed(&fault_countdown, &n, n - 1))
            return n == 1;
    }
    return false;
}

void fleet__fault_arm(uint64_t nth)
{
    fleet_atomic_store_relaxed(&fault_seen, 0);
    fleet_atomic_store_relaxed(&fault_countdown, nth);
}

uint64_t fleet__fault_seen(void)
{
    return fleet_atomic_load_relaxed(&fault_seen);
}

void *fleet__malloc(size_t bytes)
{
    return fleet__fault() ? NULL : malloc(bytes);
}

void *fleet__calloc(size_t n, size_t size)
{
    return fleet__fault() ? NULL : calloc(n, size);
}

void *fleet__realloc(void *p, size_t bytes)
{
    return fleet__fault() ? NULL : realloc(p, bytes);
}

void *fleet__host_alloc_aligned(size_t alignment, size_t bytes)
{
    void *p = NULL;
    if (fleet__fault() || posix_memalign(&p, alignment, bytes) != 0)
        return NULL;
    return p;
}

void fleet__host_free(void *p)
{
    free(p);
}

int fleet__cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
