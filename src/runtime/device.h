/* runtime/device.h — devices, pool streams and the runtime's internal API.
 *
 * Device structs live in a static table for the life of the process, so
 * fleet_device and fleet_stream pointers never dangle, even after shutdown
 * (calls then return FLEET_ERR_SHUTDOWN without touching backend state).
 */
#ifndef FLEET_RUNTIME_DEVICE_H
#define FLEET_RUNTIME_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/atomic.h"
#include "core/env.h"
#include "core/lock.h"
#include "fleet/stream.h"

#define FLEET__MAX_DEVICES 32

/* Who holds a pool slot exclusively (auxiliary to the pool's bitmask, which
 * is the truth). */
enum { FLEET__HOLD_NONE = 0, FLEET__HOLD_BOUND = 1, FLEET__HOLD_ACQUIRED = 2 };

struct fleet_stream {
    struct fleet_device *device;
    int id;                    /* 0 = default stream, 1..capacity-1 pooled   */
    fleet_atomic_ptr native;   /* backend stream, created on first use        */
    fleet_atomic_int hold;     /* FLEET__HOLD_*                               */
    /* CUDA graph capture gate (fleet__stream_capture_begin): threads using
     * the stream besides its exclusive binder (sharing it because the pool
     * was full, or having made it current explicitly), and whether a
     * capture is in progress. */
    fleet_atomic_int sharers;
    fleet_atomic_int capturing;
};

typedef struct fleet__stream_pool {
    int capacity;                   /* streams, default stream included       */
    /* Bit i set: pool slot i (1 <= i < capacity) is held exclusively.
     * Invariant: popcount(taken) == number of streams with hold != NONE. */
    fleet_atomic_u64 taken;
    fleet_atomic_u32 next_hint;     /* where the free-slot search starts      */
    fleet_atomic_u32 share_cursor;  /* round-robin position for sharing       */
    fleet_atomic_int waiters;       /* threads waiting for a free slot        */
    fleet_atomic_int shared_bindings;
    fleet_atomic_int streams_created;
    fleet_atomic_u64 bindings_total, shared_total, waits_total, timeouts_total;
    fleet__mutex lock;              /* rank 3: waits and lazy stream creation */
    fleet__cond freed;              /* signalled when a slot is released      */
    struct fleet_stream streams[FLEET__MAX_STREAMS];
} fleet__stream_pool;

struct fleet__allocator;
struct fleet__event_pool;

struct fleet_device {
    const fleet__backend *backend;
    fleet_backend_kind kind;
    int ordinal;                 /* within its backend                       */
    int index;                   /* within the device table                  */
    char name[16];               /* "cpu:0"                                  */
    bool survives_fork;          /* from the backend; tests may clear it     */
    fleet_atomic_bool forked;    /* set in a fork child if !survives_fork    */
    fleet__stream_pool pool;
    struct fleet__allocator *allocator;
    struct fleet__event_pool *events;
    /* Device-wide syncs in progress (one backend call covers every stream,
     * so no capture may be in progress: see fleet__stream_capture_begin). */
    fleet_atomic_int syncing;
};

/* ---- lifecycle (runtime/lifecycle.c) -------------------------------------- */

/* Make sure fleet is initialised and not shut down. Cheap after the first
 * call (one acquire load). Sets the error text on failure. */
fleet_status fleet__enter(void);
/* fleet__enter, then: device non-NULL and usable (not a forked child's
 * cuda device). `fn` names the public function for the error text. */
fleet_status fleet__enter_device(const struct fleet_device *device, const char *fn);
/* The global configuration (valid after a successful fleet__enter). */
const fleet__config *fleet__config_get(void);
/* Number of devices in the table and one of them. */
int fleet__device_table_size(void);
struct fleet_device *fleet__device_at(int index);

/* ---- stream pool (runtime/stream_pool.c) ---------------------------------- */

void fleet__stream_pool_init(struct fleet_device *device, int capacity);
/* The backend stream of `s`, created on first use. */
fleet_status fleet__stream_native(struct fleet_stream *s, void **native);
/* Current stream of the calling thread on `device` (binds if needed).
 * Does not call fleet__enter. */
fleet_status fleet__stream_current(struct fleet_device *device, struct fleet_stream **out);
/* Start capturing work submitted to `s` by the calling thread (the model
 * runtime's CUDA graphs): true only when no other thread can submit to it
 * meanwhile — s is a pool stream the caller holds alone (its exclusive
 * binding, or acquired and current in no other thread) — and then, until
 * fleet__stream_capture_end, a thread that starts sharing s or makes it
 * current waits. */
bool fleet__stream_capture_begin(struct fleet_stream *s);
void fleet__stream_capture_end(struct fleet_stream *s);
/* Around a submission to s made by a thread that may not be among s's
 * counted users (the calls that name a stream: fleet_event_record,
 * fleet_stream_wait_event, fleet_stream_launch_host_func; the allocator's
 * event on a using stream): counted like a sharer meanwhile, so a capture
 * that begins then is refused, and one in progress is waited out (enter) or
 * makes try_enter return false (the caller then must not submit). Work on a
 * capturing stream would be recorded into another thread's graph. */
void fleet__stream_foreign_enter(struct fleet_stream *s);
bool fleet__stream_foreign_try_enter(struct fleet_stream *s);
void fleet__stream_foreign_leave(struct fleet_stream *s);
/* Wait while another thread captures s (syncing a capturing stream would
 * break the capture); the capturing thread itself never syncs s. */
void fleet__stream_capture_wait(const struct fleet_stream *s);
/* Synchronize every created stream of the device. */
fleet_status fleet__device_synchronize(struct fleet_device *device);
/* Thread-exit hook: release the exiting thread's bindings. */
void fleet__stream_pool_thread_exit(void *value);
/* Fork support: take the pool lock (rank 3) / release it / in the child,
 * reset pool state (keeps acquired slots and the forking thread's own
 * bindings; other threads' bindings are gone with them) and release it. */
void fleet__stream_pool_atfork_prepare(struct fleet_device *device)
    FLEET_ACQUIRE(device->pool.lock);
void fleet__stream_pool_atfork_parent(struct fleet_device *device)
    FLEET_RELEASE(device->pool.lock);
void fleet__stream_pool_atfork_child(struct fleet_device *device)
    FLEET_RELEASE(device->pool.lock);
/* Validate a stream handle for public function `fn`: non-NULL, fleet
 * usable, its device usable. */
fleet_status fleet__enter_stream(const struct fleet_stream *stream, const char *fn);

/* ---- event pool (runtime/event_pool.c) ------------------------------------- */

/* Recycled native events of a device, for the allocator's record_stream. */
fleet_status fleet__event_pool_create(struct fleet_device *device, struct fleet__event_pool **out);
void fleet__event_pool_destroy(struct fleet__event_pool *pool);
fleet_status fleet__event_pool_get(struct fleet__event_pool *pool, void **native_event);
void fleet__event_pool_put(struct fleet__event_pool *pool, void *native_event);
void fleet__event_pool_atfork_prepare(struct fleet__event_pool *pool);
void fleet__event_pool_atfork_release(struct fleet__event_pool *pool);

/* ---- testing hooks (declared here, used by tests only) -------------------- */

/* Pretend the device's backend cannot survive fork (to test the
 * FLEET_ERR_FORKED path on cpu). */
void fleet__testing_set_survives_fork(struct fleet_device *device, bool survives);

#endif /* FLEET_RUNTIME_DEVICE_H */
