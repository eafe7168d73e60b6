/* runtime/lifecycle.c — lazy initialisation, shutdown, fork, the device table.
 *
 * States: UNINIT -> READY | FAILED, and any of them -> SHUTDOWN (final).
 * The fast path of every public call is one acquire load of `state`.
 * fleet registers no atexit teardown on purpose: at exit other threads may
 * still be running ops, and user atexit handlers may still call fleet; the
 * operating system reclaims memory and threads safely, fleet cannot.
 */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/handle.h"
#include "core/log.h"
#include "core/prim.h"
#include "core/spin.h"
#include "runtime/allocator.h"
#include "runtime/device.h"
#include "runtime/dispatch.h"

enum { STATE_UNINIT = 0, STATE_READY, STATE_FAILED, STATE_SHUTDOWN };

static fleet_atomic_int state = STATE_UNINIT;
/* rank 1: init, shutdown and the fork handlers. */
static fleet__mutex lifecycle_lock = {PTHREAD_MUTEX_INITIALIZER};

/* Written once under lifecycle_lock before state becomes READY/FAILED. */
static fleet__config config;
static fleet_status init_status;
static char init_error[512];
static struct fleet_device devices[FLEET__MAX_DEVICES];
static int device_count;
static const fleet__backend *backends[2];
static int backend_count;
static int first_device[2], devices_of[2];   /* per fleet_backend_kind */
static const char *why_no_devices[2];
static fleet_backend_kind default_backend;
static bool hooks_installed FLEET_GUARDED_BY(lifecycle_lock);
/* This thread holds lifecycle_lock for init or shutdown; and it forked from
 * inside them. A library may fork while fleet initialises it (a CUDA tool's
 * agent forks inside cuInit, which cuda_init reaches under the lock): the
 * fork handlers then take nothing, instead of waiting for the lock this very
 * thread holds. */
static _Thread_local bool in_lifecycle, forked_in_lifecycle;

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

const fleet__config *fleet__config_get(void)
{
    return &config;
}

int fleet__device_table_size(void)
{
    return device_count;
}

struct fleet_device *fleet__device_at(int index)
{
    return &devices[index];
}

static fleet_status add_backend(const fleet__backend *be) FLEET_REQUIRES(lifecycle_lock)
{
    int count = 0;
    const char *why = NULL;
    fleet_status st = fleet__backend_init(be, &config, &count, &why);
    if (st != FLEET_OK)
        return fleet__error_prefix(st, be->name);
    backends[backend_count++] = be;
    first_device[be->kind] = device_count;
    why_no_devices[be->kind] = why;
    for (int i = 0; i < count && device_count < FLEET__MAX_DEVICES; i++) {
        struct fleet_device *d = &devices[device_count];
        d->backend = be;
        d->kind = be->kind;
        d->ordinal = i;
        d->index = device_count;
        d->survives_fork = be->survives_fork;
        snprintf(d->name, sizeof d->name, "%s:%d", be->name, i);
        fleet__stream_pool_init(d, config.streams);
        if ((st = fleet__allocator_create(d, config.memory_limit, &d->allocator)) != FLEET_OK)
            return st;
        if ((st = fleet__event_pool_create(d, &d->events)) != FLEET_OK)
            return st;
        device_count++;
        devices_of[be->kind]++;
    }
    if (count == 0)
        FLEET_LOG_INFOF("%s backend: no device (%s)", be->name, why ? why : "none found");
    return FLEET_OK;
}

static fleet_status init_locked(void) FLEET_REQUIRES(lifecycle_lock)
{
    fleet_status st = fleet__config_from_env(&config);
    if (st != FLEET_OK)
        return st;
    fleet__log_set_level(config.log_level);
    fleet__spin_configure((uint64_t)config.cpu_spin_us);
    if (!hooks_installed) {
        fleet__thread_exit_hook_install(fleet__stream_pool_thread_exit);
        fleet__atfork_install(atfork_prepare, atfork_parent, atfork_child);
        hooks_installed = true;
    }
    why_no_devices[FLEET_BACKEND_CUDA] = "fleet was built without the cuda backend";
    if ((st = add_backend(&fleet__cpu_backend)) != FLEET_OK)
        return st;
#ifdef FLEET_HAVE_CUDA
    if ((st = add_backend(&fleet__cuda_backend)) != FLEET_OK)
        return st;
#endif
    if (config.backend_set && devices_of[config.backend] == 0)
        return fleet__error(FLEET_ERR_INVALID_CONFIG,
                            "FLEET_BACKEND=%s, but there is no %s device: %s",
                            fleet_backend_name(config.backend), fleet_backend_name(config.backend),
                            why_no_devices[config.backend] ? why_no_devices[config.backend]
                                                           : "none found");
    default_backend = config.backend_set ? config.backend
                      : devices_of[FLEET_BACKEND_CUDA] > 0 ? FLEET_BACKEND_CUDA
                                                            : FLEET_BACKEND_CPU;
    FLEET_LOG_INFOF("initialised: %d device(s), default backend %s, %d streams per device",
                    device_count, fleet_backend_name(default_backend), config.streams);
    return FLEET_OK;
}

fleet_status fleet_init(void)
{
    int s = fleet_atomic_load_acquire(&state);
    if (s == STATE_UNINIT) {
        fleet__mutex_lock(&lifecycle_lock);
        in_lifecycle = true;
        s = fleet_atomic_load_acquire(&state);
        if (s == STATE_UNINIT) {
            init_status = init_locked();
            if (init_status != FLEET_OK)
                snprintf(init_error, sizeof init_error, "fleet_init: %s", fleet_last_error());
            s = init_status == FLEET_OK ? STATE_READY : STATE_FAILED;
            fleet_atomic_store_release(&state, s);
        }
        in_lifecycle = false;
        fleet__mutex_unlock(&lifecycle_lock);
    }
    switch (s) {
    case STATE_READY:
        return FLEET_OK;
    case STATE_FAILED:
        return fleet__error(init_status, "%s", init_error);
    default:
        return fleet__error(FLEET_ERR_SHUTDOWN, "fleet has been shut down (fleet_shutdown)");
    }
}

fleet_status fleet__enter(void)
{
    if (FLEET_LIKELY(fleet_atomic_load_acquire(&state) == STATE_READY))
        return FLEET_OK;
    return fleet_init();
}

fleet_status fleet__enter_device(const struct fleet_device *device, const char *fn)
{
    fleet_status st = fleet__enter();
    if (FLEET_UNLIKELY(st != FLEET_OK))
        return st;
    if (FLEET_UNLIKELY(device == NULL))
        return fleet__error(FLEET_ERR_NULL_POINTER, "%s: device is NULL", fn);
    if (FLEET_UNLIKELY(device < devices || device >= devices + device_count))
        return fleet__error(FLEET_ERR_INVALID_DEVICE, "%s: not a fleet device handle", fn);
    if (FLEET_UNLIKELY(fleet_atomic_load_relaxed(&device->forked)))
        return fleet__error(FLEET_ERR_FORKED,
                            "%s: %s cannot be used in a child process created by fork(); start "
                            "worker processes with posix_spawn or fork+exec instead",
                            fn, device->name);
    return FLEET_OK;
}

fleet_status fleet_shutdown(void)
{
    fleet__mutex_lock(&lifecycle_lock);
    in_lifecycle = true;
    int s = fleet_atomic_load_acquire(&state);
    fleet_atomic_store_release(&state, STATE_SHUTDOWN);
    if (s != STATE_READY)
        goto out; /* never initialised, failed, or already shut down */
    for (int i = 0; i < device_count; i++)
        if (!fleet_atomic_load_relaxed(&devices[i].forked))
            fleet__device_synchronize(&devices[i]);
    for (int b = 0; b < backend_count; b++) {
        bool usable = true;
        for (int i = 0; i < device_count; i++)
            if (devices[i].backend == backends[b] && fleet_atomic_load_relaxed(&devices[i].forked))
                usable = false;
        if (usable)
            fleet__backend_shutdown(backends[b]);
    }
    for (int i = 0; i < device_count; i++) {
        struct fleet_device *d = &devices[i];
        if (fleet_atomic_load_relaxed(&d->forked))
            continue; /* its driver state belongs to the parent */
        fleet__event_pool_destroy(d->events);
        fleet__allocator_destroy(d->allocator);
        d->events = NULL;
        d->allocator = NULL;
        for (int k = 0; k < FLEET__MAX_STREAMS; k++)
            fleet_atomic_store_relaxed(&d->pool.streams[k].native, NULL);
    }
    FLEET_LOG_INFOF("shut down");
out:
    in_lifecycle = false;
    fleet__mutex_unlock(&lifecycle_lock);
    return FLEET_OK;
}

/* ---- fork: every lock in rank order ------------------------------------------ */

/* These take or release a lock per device and stream, a number the analysis
 * cannot follow: each handler leaves exactly what the next one expects. */

static void atfork_prepare(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    if (in_lifecycle) {
        forked_in_lifecycle = true; /* the locks stay as they are */
        return;
    }
    fleet__mutex_lock(&lifecycle_lock);
    if (fleet_atomic_load_relaxed(&state) == STATE_READY) {
        for (int i = 0; i < device_count; i++)
            fleet__stream_pool_atfork_prepare(&devices[i]);
        for (int i = 0; i < device_count; i++)
            fleet__allocator_atfork_prepare(devices[i].allocator);
        for (int i = 0; i < device_count; i++)
            fleet__event_pool_atfork_prepare(devices[i].events);
        for (int b = 0; b < backend_count; b++)
            fleet__backend_atfork_prepare(backends[b]);
    }
    fleet__log_atfork_prepare();
    fleet__handle_tables_atfork_prepare();
}

static void atfork_parent(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    if (forked_in_lifecycle) {
        forked_in_lifecycle = false;
        return;
    }
    fleet__handle_tables_atfork_release();
    fleet__log_atfork_release();
    if (fleet_atomic_load_relaxed(&state) == STATE_READY) {
        for (int b = backend_count - 1; b >= 0; b--)
            fleet__backend_atfork_parent(backends[b]);
        for (int i = device_count - 1; i >= 0; i--)
            fleet__event_pool_atfork_release(devices[i].events);
        for (int i = device_count - 1; i >= 0; i--)
            fleet__allocator_atfork_release(devices[i].allocator);
        for (int i = device_count - 1; i >= 0; i--)
            fleet__stream_pool_atfork_parent(&devices[i]);
    }
    fleet__mutex_unlock(&lifecycle_lock);
}

static void atfork_child(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    if (forked_in_lifecycle) {
        forked_in_lifecycle = false; /* a helper that execs; fleet is mid-init here */
        return;
    }
    fleet__handle_tables_atfork_release();
    fleet__log_atfork_release();
    if (fleet_atomic_load_relaxed(&state) == STATE_READY) {
        for (int b = backend_count - 1; b >= 0; b--)
            fleet__backend_atfork_child(backends[b]);
        for (int i = device_count - 1; i >= 0; i--)
            fleet__event_pool_atfork_release(devices[i].events);
        for (int i = device_count - 1; i >= 0; i--)
            fleet__allocator_atfork_release(devices[i].allocator);
        for (int i = device_count - 1; i >= 0; i--) {
            fleet__stream_pool_atfork_child(&devices[i]);
            if (!devices[i].survives_fork)
                fleet_atomic_store_relaxed(&devices[i].forked, true);
        }
    }
    fleet__mutex_unlock(&lifecycle_lock);
}

void fleet__testing_set_survives_fork(struct fleet_device *device, bool survives)
{
    device->survives_fork = survives;
}

/* ---- devices: public API ----------------------------------------------------- */

const char *fleet_backend_name(fleet_backend_kind backend)
{
    switch (backend) {
    case FLEET_BACKEND_CPU: return "cpu";
    case FLEET_BACKEND_CUDA: return "cuda";
    }
    return "unknown";
}

const char *fleet_backend_kernels(fleet_backend_kind backend)
{
    if (fleet_init() != FLEET_OK)
        return "unknown (fleet_init failed)";
    for (int b = 0; b < backend_count; b++)
        if (backends[b]->kind == backend)
            return fleet__backend_kernels(backends[b]);
    return backend == FLEET_BACKEND_CUDA ? "none (fleet was built without the cuda backend)"
                                         : "none";
}

static bool backend_valid(fleet_backend_kind b)
{
    return b == FLEET_BACKEND_CPU || b == FLEET_BACKEND_CUDA;
}

fleet_status fleet_device_count(fleet_backend_kind backend, int *count)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(count != NULL, FLEET_ERR_NULL_POINTER, "fleet_device_count: count is NULL");
    FLEET_CHECK_ARG(backend_valid(backend), FLEET_ERR_INVALID_ARGUMENT,
                    "fleet_device_count: unknown backend %d", (int)backend);
    *count = devices_of[backend];
    return FLEET_OK;
}

fleet_status fleet_device_get(fleet_backend_kind backend, int ordinal, fleet_device **out)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_device_get: out is NULL");
    FLEET_CHECK_ARG(backend_valid(backend), FLEET_ERR_INVALID_ARGUMENT,
                    "fleet_device_get: unknown backend %d", (int)backend);
    if (devices_of[backend] == 0)
        return fleet__error(FLEET_ERR_INVALID_DEVICE, "fleet_device_get: no %s device: %s",
                            fleet_backend_name(backend),
                            why_no_devices[backend] ? why_no_devices[backend] : "none found");
    if (ordinal < 0 || ordinal >= devices_of[backend])
        return fleet__error(FLEET_ERR_INVALID_DEVICE,
                            "fleet_device_get: %s device %d does not exist (%d present)",
                            fleet_backend_name(backend), ordinal, devices_of[backend]);
    *out = &devices[first_device[backend] + ordinal];
    return FLEET_OK;
}

fleet_status fleet_device_default(fleet_device **out)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_device_default: out is NULL");
    return fleet_device_get(default_backend, 0, out);
}

fleet_backend_kind fleet_device_backend(const fleet_device *device)
{
    return device->kind;
}

int fleet_device_ordinal(const fleet_device *device)
{
    return device->ordinal;
}

const char *fleet_device_name(const fleet_device *device)
{
    return device == NULL ? "(null)" : device->name;
}

fleet_status fleet_device_synchronize(fleet_device *device)
{
    fleet_status st = fleet__enter_device(device, "fleet_device_synchronize");
    if (st != FLEET_OK)
        return st;
    return fleet__device_synchronize(device);
}
