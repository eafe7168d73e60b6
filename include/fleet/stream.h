/* fleet/stream.h — per-thread streams, the stream pool, events.
 *
 * A stream is an ordered queue of work on one device: work on one stream runs
 * in submission order; work on different streams may run concurrently. Each
 * device has a pool of FLEET_STREAMS streams (default 32): stream 0 is the
 * device's default stream, streams 1..N-1 are pooled. Streams are created
 * lazily and never destroyed while the process lives, so a fleet_stream
 * pointer stays valid.
 *
 * Binding. A thread that needs a stream on a device and has not chosen one is
 * bound to a pool stream automatically, on its first call:
 *   1. it takes a free pool slot (lock-free bitmask). The search starts after
 *      the slot handed out last, so sequential threads walk the pool
 *      1, 2, ..., N-1, 1, 2, ... (each finds its predecessor's slot free again
 *      but moves on, which spreads work over all streams);
 *   2. when no slot is free: with FLEET_STREAM_WAIT_MS = 0 (default) it shares
 *      a slot chosen round-robin (never fails); with N > 0 it waits up to N ms
 *      for a slot to be freed, then fails with FLEET_ERR_POOL_EXHAUSTED; with
 *      -1 it waits as long as it takes. Waiting is not first-come-first-
 *      served: a freed slot goes to whichever thread takes it first, a newly
 *      arriving one included (no wakeup is lost: verify/stream_pool.pml).
 * The binding is stable for the thread's life, and its slot returns to the
 * pool when the thread exits. The default stream (id 0) is never bound
 * automatically; ask for it with fleet_stream_get_default().
 *
 *     fleet_device *dev;   fleet_device_default(&dev);
 *     fleet_stream *s;     fleet_stream_current(dev, &s);   // binds if needed
 *     ... submit work (ops use the current stream of their device) ...
 *     fleet_stream_synchronize(s);
 *
 * Thread-safety: every function here may be called from any thread.
 */
#ifndef FLEET_STREAM_H
#define FLEET_STREAM_H

#include <stdint.h>

#include "fleet/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fleet_stream fleet_stream;
typedef struct fleet_event fleet_event;

/* The calling thread's current stream on `device`, binding the thread to a
 * pool stream first if it has none (see above). */
FLEET_API fleet_status fleet_stream_current(fleet_device *device, fleet_stream **out);

/* Make `stream` the calling thread's current stream on its device. The
 * thread's automatic binding, if any, is kept (and released at thread exit);
 * passing NULL for `stream` is an error — use fleet_stream_reset_current(). */
FLEET_API fleet_status fleet_stream_set_current(fleet_stream *stream);

/* Forget the calling thread's explicit current stream on `device`: the next
 * fleet_stream_current() returns its automatic binding again. */
FLEET_API fleet_status fleet_stream_reset_current(fleet_device *device);

/* The device's default stream (id 0), shared by every thread that asks. */
FLEET_API fleet_status fleet_stream_get_default(fleet_device *device, fleet_stream **out);

/* Take a free pool stream for exclusive use until fleet_stream_release(),
 * from any thread. Follows FLEET_STREAM_WAIT_MS except that it never shares:
 * with 0 it fails at once with FLEET_ERR_POOL_EXHAUSTED when no slot is free.
 * An acquired stream is not released at thread exit. */
FLEET_API fleet_status fleet_stream_acquire(fleet_device *device, fleet_stream **out);

/* Like fleet_stream_acquire with an explicit wait: timeout_ms 0 = try once,
 * > 0 = wait that long, -1 = forever. */
FLEET_API fleet_status fleet_stream_acquire_timeout(fleet_device *device, int64_t timeout_ms,
                                          fleet_stream **out);

/* Return an acquired stream to the pool. FLEET_ERR_INVALID_ARGUMENT for the
 * default stream or a stream that is not held by an acquire. Work already
 * submitted to it still runs. Stream handles carry no generation: releasing
 * twice is refused only until another acquire takes the same slot — after
 * that, a second release would release the other holder's stream. Release
 * each acquired stream exactly once. */
FLEET_API fleet_status fleet_stream_release(fleet_stream *stream);

/* 0 for the default stream, 1..N-1 for pool streams. -1 for NULL. */
FLEET_API int fleet_stream_id(const fleet_stream *stream);
/* The stream's device; NULL for NULL. */
FLEET_API fleet_device *fleet_stream_device(const fleet_stream *stream);

/* Block until all work submitted to the stream before the call completed.
 * Returns the stream's sticky error if a task on it failed. */
FLEET_API fleet_status fleet_stream_synchronize(fleet_stream *stream);

/* FLEET_OK when all submitted work has completed, FLEET_ERR_NOT_READY if
 * not (that is not a failure: fleet_last_error() is not set). */
FLEET_API fleet_status fleet_stream_query(fleet_stream *stream);

/* Run fn(arg) on the stream, in order with its other work (the host
 * counterpart of cudaLaunchHostFunc). fn must not call fleet functions that
 * wait for this stream. On cuda, while fn blocks the stream, work that waits
 * for the device to go idle waits for fn too: a kernel's first launch under
 * CUDA's lazy module loading (CUDA_MODULE_LOADING=LAZY, the default) and the
 * first GEMM on a stream (its cuBLAS handle) may. */
typedef void (*fleet_host_fn)(void *arg);
FLEET_API fleet_status fleet_stream_launch_host_func(fleet_stream *stream, fleet_host_fn fn, void *arg);

/* Occupancy of a device's pool. */
typedef struct fleet_stream_pool_stats {
    int capacity;           /* FLEET_STREAMS, default stream included        */
    int pool_slots;         /* capacity - 1: slots that can be bound/acquired */
    int exclusive_in_use;   /* slots held now by a bound thread or an acquire */
    int acquired_in_use;    /* of those, held by fleet_stream_acquire         */
    int shared_bindings;    /* live threads bound to a slot they share        */
    int streams_created;    /* backend streams created so far (lazy)          */
    uint64_t bindings_total;  /* automatic bindings since start               */
    uint64_t shared_total;    /* of those, that had to share                  */
    uint64_t waits_total;     /* bindings/acquires that had to wait           */
    uint64_t timeouts_total;  /* waits that ended in POOL_EXHAUSTED           */
} fleet_stream_pool_stats;

FLEET_API fleet_status fleet_stream_pool_get_stats(fleet_device *device, fleet_stream_pool_stats *out);

/* Events mark a point in a stream's work. */
FLEET_API fleet_status fleet_event_create(fleet_device *device, fleet_event **out);
/* Destroying an event another stream still waits on is allowed; the wait
 * completes as recorded. NULL is ignored. The handle is checked: a destroyed
 * event is FLEET_ERR_STALE_HANDLE in every later call (a second destroy
 * too); destroy must not run concurrently with other calls on the event.
 * It still works after fleet_shutdown() and frees the event's host memory. */
FLEET_API fleet_status fleet_event_destroy(fleet_event *event);
/* Capture all work submitted to `stream` so far. Re-recording moves the mark.
 * The stream must be on the event's device. */
FLEET_API fleet_status fleet_event_record(fleet_event *event, fleet_stream *stream);
/* Make future work on `stream` wait until the event's captured work is done
 * (does not block the caller). An event never recorded is complete. */
FLEET_API fleet_status fleet_stream_wait_event(fleet_stream *stream, fleet_event *event);
/* FLEET_OK if complete, FLEET_ERR_NOT_READY if not (not an error). */
FLEET_API fleet_status fleet_event_query(fleet_event *event);
/* Block until complete. */
FLEET_API fleet_status fleet_event_synchronize(fleet_event *event);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_STREAM_H */
