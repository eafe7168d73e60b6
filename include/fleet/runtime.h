/* fleet/runtime.h — library lifecycle and devices.
 *
 * fleet initialises itself lazily and thread-safely on the first call of any
 * thread; fleet_init() only makes that moment explicit and reports a bad
 * configuration early. Configuration comes from the environment, read once at
 * initialisation:
 *
 *   FLEET_BACKEND         cpu | cuda       default backend (default: cuda when a
 *                                          usable GPU is present, else cpu)
 *   FLEET_STREAMS         2..64            streams per device, stream 0 is the
 *                                          default stream (default 32)
 *   FLEET_STREAM_WAIT_MS  -1 | 0 | N       binding when every pool stream is
 *                                          taken: 0 share round-robin (default),
 *                                          N wait N ms then fail, -1 wait forever
 *   FLEET_MEMORY_LIMIT    bytes[K|M|G]     per-device cap on reserved memory
 *                                          (default: none)
 *   FLEET_CPU_DEVICES     1..16            number of cpu devices (default 1)
 *   FLEET_GRAPH_CACHE     1..4096          model instances kept, each a plan's
 *                                          arena (and CUDA graph) on one stream
 *                                          (default 64; see fleet/model.h)
 *   FLEET_MODEL_GRAPHS    0 | 1            1: models replay CUDA graphs on cuda
 *                                          (default); 0: launch kernels one by one
 *   FLEET_LOG_LEVEL       error|warn|info|debug|trace   (default warn)
 *
 * A malformed value makes initialisation fail with FLEET_ERR_INVALID_CONFIG
 * and every later call return the same status; so does FLEET_BACKEND naming
 * a backend with no usable device here (the text says why: no GPU, the
 * driver, a build without cuda). Numbers are plain decimal digits, with a
 * leading '-' only where a negative value is allowed: no blanks, no '+'.
 *
 * Lifetime. fleet_shutdown() synchronises every device, stops the backend
 * workers and returns all memory; it is idempotent, and every other call made
 * after it returns FLEET_ERR_SHUTDOWN (fleet cannot be re-initialised in the
 * same process). It must not run concurrently with other fleet calls. Without
 * it, process exit — exit() while other threads still run ops, and atexit
 * handlers that call fleet — neither crashes nor hangs: fleet registers no
 * atexit teardown and the operating system reclaims everything. After the
 * last atexit handler, a library destructor lets each cpu worker finish its
 * current task and parks it, so libraries finalised next (OpenBLAS) never
 * run under a task. On cuda, the CUDA runtime unloads itself from an atexit
 * handler it registers at its first call, which fleet makes when it
 * initialises; fleet registers one right after it, which runs first, closes
 * the cuda backend and waits (up to 2 s) for CUDA calls in flight in other
 * threads. The runtime and cuBLAS/cuSOLVER also load kernels lazily, on
 * their first launch, and register those kernels' teardown then; fleet
 * registers its guard again after the first launch of each kind of kernel
 * it makes (GEMMs, elementwise, row ops, ...). So on cuda an atexit handler
 * works when it was registered after fleet's first use of the kinds of op
 * it runs; one registered earlier gets FLEET_ERR_SHUTDOWN, with a text
 * naming process exit, from every call that needs a cuda device — never a
 * crash. (A kernel the libraries first load after the handler's
 * registration for a kind fleet had used before — a new GEMM shape, say —
 * is outside what fleet can see.) On cpu, handlers work in either order.
 *
 * fork(): the parent continues unaffected. In the child, the cpu backend works
 * (fresh streams and workers; work that was still queued at the fork is not
 * carried over), while every device of a backend that cannot survive fork
 * (cuda) returns FLEET_ERR_FORKED: use posix_spawn or fork+exec instead.
 */
#ifndef FLEET_RUNTIME_H
#define FLEET_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fleet_backend_kind {
    FLEET_BACKEND_CPU = 0,
    FLEET_BACKEND_CUDA = 1,
} fleet_backend_kind;

/* A device: one GPU, or one cpu device. Owned by fleet, valid for the life of
 * the process (calls on it after shutdown return FLEET_ERR_SHUTDOWN). */
typedef struct fleet_device fleet_device;

/* Initialise now (optional). Thread-safe; returns the initialisation status,
 * the same on every call. */
FLEET_API fleet_status fleet_init(void);

/* Tear everything down. Idempotent: a second call returns FLEET_OK and does
 * nothing. Must not race with other fleet calls. */
FLEET_API fleet_status fleet_shutdown(void);

/* Number of devices of a backend (0 when the backend is absent or has no
 * usable device; that is not an error). */
FLEET_API fleet_status fleet_device_count(fleet_backend_kind backend, int *count);

/* The device `ordinal` of `backend`; FLEET_ERR_INVALID_DEVICE when there is
 * no such device, with the reason (not built, no GPU, ordinal out of range). */
FLEET_API fleet_status fleet_device_get(fleet_backend_kind backend, int ordinal, fleet_device **out);

/* Device 0 of the default backend (see FLEET_BACKEND). */
FLEET_API fleet_status fleet_device_default(fleet_device **out);

/* Facts about a device. Never fail on a valid handle. */
FLEET_API fleet_backend_kind fleet_device_backend(const fleet_device *device);
FLEET_API int fleet_device_ordinal(const fleet_device *device);
/* "cpu:0", "cuda:1"; constant for the life of the process. */
FLEET_API const char *fleet_device_name(const fleet_device *device);

/* Wait until all work submitted to any stream of the device before this call
 * has completed. Work submitted concurrently by other threads after the call
 * began may or may not be waited for. Returns the first sticky stream error
 * found, if any. */
FLEET_API fleet_status fleet_device_synchronize(fleet_device *device);

/* Name of a backend ("cpu", "cuda"). */
FLEET_API const char *fleet_backend_name(fleet_backend_kind backend);

/* The kernel libraries a backend runs on, with versions, e.g. "OpenBLAS
 * 0.3.21 (Zen kernels, 1 thread per call)" or "cuBLAS 13.0.0"; it says so
 * when the cpu backend runs on a BLAS that is not OpenBLAS (the reference
 * BLAS is 20x slower). Initializes fleet if needed; never NULL. */
FLEET_API const char *fleet_backend_kernels(fleet_backend_kind backend);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_RUNTIME_H */
