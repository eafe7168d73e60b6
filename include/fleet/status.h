/* fleet/status.h — status codes and the thread-local error text.
 *
 * Every public function that can fail returns a fleet_status: FLEET_OK (0) on
 * success, a negative code otherwise. The code says what kind of failure it
 * was; fleet_last_error() says what exactly, in words, for the calling thread.
 *
 *     fleet_status st = fleet_matmul(a, b, out);
 *     if (st != FLEET_OK)
 *         fprintf(stderr, "%s: %s\n", fleet_status_str(st), fleet_last_error());
 *
 * A failed call changes nothing: outputs are left as they were and no memory
 * or stream slot is kept.
 */
#ifndef FLEET_STATUS_H
#define FLEET_STATUS_H

#include "fleet/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, text). Names and texts are generated from this one list so
 * they cannot drift apart (libuv's UV_ERRNO_MAP). */
#define FLEET_STATUS_MAP(X)                                                          \
    X(OK, 0, "success")                                                              \
    X(ERR_INVALID_ARGUMENT, -1, "invalid argument")                                  \
    X(ERR_NULL_POINTER, -2, "null pointer")                                          \
    X(ERR_SHAPE_MISMATCH, -3, "shape mismatch")                                      \
    X(ERR_DTYPE_MISMATCH, -4, "dtype mismatch")                                      \
    X(ERR_INVALID_DEVICE, -5, "invalid or mismatched device")                        \
    X(ERR_OUT_OF_MEMORY, -6, "out of memory")                                        \
    X(ERR_STALE_HANDLE, -7, "stale handle (already freed or reused)")                \
    X(ERR_POOL_EXHAUSTED, -8, "stream pool exhausted")                               \
    X(ERR_NOT_READY, -9, "not ready")                                                \
    X(ERR_TIMEOUT, -10, "timed out")                                                 \
    X(ERR_SHUTDOWN, -11, "fleet has been shut down")                                 \
    X(ERR_FORKED, -12, "device unusable in a forked child")                          \
    X(ERR_UNSUPPORTED, -13, "not supported by this backend")                         \
    X(ERR_BACKEND, -14, "backend or driver error")                                   \
    X(ERR_INVALID_CONFIG, -15, "invalid configuration")                              \
    X(ERR_QUEUE_FULL, -16, "queue full")                                             \
    X(ERR_INTERNAL, -17, "internal error")                                           \
    X(ERR_INVALID_MODEL, -18, "invalid or corrupt model file")                       \
    X(ERR_IO, -19, "input/output error")

typedef enum fleet_status {
#define FLEET_STATUS_ENUM_(name, value, text) FLEET_##name = value,
    FLEET_STATUS_MAP(FLEET_STATUS_ENUM_)
#undef FLEET_STATUS_ENUM_
} fleet_status;

/* Short constant text for a status ("out of memory"); "unknown status" for a
 * value outside the enum. Never NULL. Thread-safe. */
FLEET_API const char *fleet_status_str(fleet_status status);

/* Constant name of a status ("FLEET_ERR_OUT_OF_MEMORY"). Never NULL. */
FLEET_API const char *fleet_status_name(fleet_status status);

/* The detail text of the calling thread's most recent failed call, for
 * example "fleet_matmul: inner dimensions differ: a is 4x3, b is 5x2".
 * Empty string when no call of this thread has failed. The pointer stays
 * valid until this thread's next fleet call. */
FLEET_API const char *fleet_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_STATUS_H */
