/* backend/backend.h — the backend vtable (ggml's ggml-backend-impl.h).
 *
 * A backend is a table of functions over native handles (void *): a cpu
 * stream is a worker thread with a FIFO, a cuda stream a cudaStream_t. The
 * runtime above owns pooling, binding, caching and error text; a backend only
 * does what its hardware does and reports failures as fleet_status with the
 * detail set through fleet__error().
 *
 * Asynchrony contract, same for all backends:
 *   - stream work runs in submission order; the submitting call returns once
 *     the work is queued;
 *   - event_record captures all work submitted to the stream so far;
 *     stream_wait_event makes later work on a stream wait for it;
 *   - copies and kernels read their arguments when they run, so memory they
 *     touch must stay valid until then (the caching allocator's stream-ordered
 *     reuse provides that for device memory).
 *
 * Optional slots may be NULL. Nothing above the backends calls a slot: the
 * dispatch layer (runtime/dispatch.h) wraps each, with the optional slots'
 * fallbacks and FLEET_ERR_UNSUPPORTED.
 */
#ifndef FLEET_BACKEND_H
#define FLEET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"
#include "fleet/dtype.h"
#include "fleet/stream.h"
#include "backend/linalg_args.h"
#include "backend/kernel_args.h"

/* For b in 0..batch-1, with row-major matrices at a + b*stride_a, ...:
 *     C = alpha * op(A) @ op(B) (+ bias[n] broadcast over rows) + beta * C
 * op(X) is X or, with trans_x, X stored transposed (an [k,m] matrix for A).
 * lda/ldb/ldc are the stored matrices' row strides in elements; strides may
 * be 0 (the same matrix for every b). f32 everywhere; f16/bf16 on cuda
 * (computed in f32, no bias). */
typedef struct fleet__gemm_args {
    fleet_dtype dtype;
    int64_t m, n, k;
    const void *a;
    int64_t lda;
    bool trans_a;
    const void *b;
    int64_t ldb;
    bool trans_b;
    void *c;
    int64_t ldc;
    const void *bias; /* NULL: none */
    bool relu;        /* then max(0, .): only with a bias; a backend that
                       * cannot fuse it returns FLEET_ERR_UNSUPPORTED having
                       * launched nothing, and the op applies it apart */
    float alpha, beta;
    int64_t batch;    /* >= 1 */
    int64_t stride_a, stride_b, stride_c;
} fleet__gemm_args;

typedef struct fleet__backend {
    const char *name;
    fleet_backend_kind kind;
    /* false: after fork, the child must not touch this backend (cuda). */
    bool survives_fork;

    /* Discover devices; called once at fleet init. 0 devices is not an error
     * (the detail of why goes to the log and to *why_none). */
    fleet_status (*init)(const fleet__config *cfg, int *device_count, const char **why_none);
    /* The kernel libraries the backend runs on, with their versions
     * ("OpenBLAS 0.3.21 ..."); valid after init, constant after. */
    const char *(*kernels)(void);
    /* Stop workers, destroy native objects; called once at fleet_shutdown
     * after every stream was synchronized. */
    void (*shutdown)(void);

    /* Streams are created lazily by the runtime and destroyed only by
     * shutdown. `is_default` marks a device's stream 0. */
    fleet_status (*stream_create)(int ordinal, bool is_default, void **out);
    fleet_status (*stream_synchronize)(void *stream);
    /* Optional: wait for all work of device `ordinal` in one call (cuda:
     * cudaDeviceSynchronize); without it the runtime syncs each stream. */
    fleet_status (*device_synchronize)(int ordinal);
    fleet_status (*stream_query)(void *stream);
    fleet_status (*stream_launch_host_func)(void *stream, fleet_host_fn fn, void *arg);

    fleet_status (*event_create)(int ordinal, void **out);
    void (*event_destroy)(void *event);
    fleet_status (*event_record)(void *event, void *stream);
    fleet_status (*stream_wait_event)(void *stream, void *event);
    fleet_status (*event_query)(void *event);
    fleet_status (*event_synchronize)(void *event);

    /* Raw memory under the caching allocator: at least 256-byte aligned. On
     * failure returns FLEET_ERR_OUT_OF_MEMORY and sets no other state. */
    fleet_status (*segment_alloc)(int ordinal, size_t bytes, void **out);
    void (*segment_free)(int ordinal, void *ptr);

    /* Copies on a stream. For host_to_device the host source must stay
     * valid until the copy ran (cuda stages it through a pinned buffer and
     * returns once it is staged); for device_to_host the host destination
     * holds the data only after the stream reached the copy (cuda waits for
     * that before returning). */
    fleet_status (*copy_host_to_device)(void *stream, void *dst, const void *src, size_t bytes);
    fleet_status (*copy_device_to_host)(void *stream, void *dst, const void *src, size_t bytes);
    fleet_status (*copy_device_to_device)(void *stream, void *dst, const void *src, size_t bytes);
    /* Optional: args->n device-to-device copies in one launch; without it
     * the caller makes them one by one. */
    fleet_status (*copy_segments)(void *stream, const fleet__segments_args *args);

    /* Kernels. Arguments are validated by ops/; a backend only checks what
     * it cannot do (a dtype it lacks: FLEET_ERR_UNSUPPORTED). */
    fleet_status (*gemm)(void *stream, const fleet__gemm_args *args);
    fleet_status (*elementwise)(void *stream, const fleet__elementwise_args *args);
    /* Whether `elementwise` takes op (a fleet__ew_op) from dtype to out_dtype;
     * asked before anything is submitted, so an op the backend lacks is
     * refused with a clear text (and a model at load, not at its first run). */
    bool (*elementwise_supports)(int op, int dtype, int out_dtype);
    /* softmax, layer norm, sum, mean along one dimension (kernel_args.h). */
    fleet_status (*rowwise)(void *stream, const fleet__rowwise_args *args);

    /* Optional: dense linear algebra (backend/linalg_args.h). The scratch
     * bytes `linalg` needs for these args (0: none), then the op itself;
     * FLEET_ERR_UNSUPPORTED for sizes the library cannot take. */
    fleet_status (*linalg_workspace_size)(void *stream, const fleet__linalg_args *args,
                                          size_t *bytes);
    fleet_status (*linalg)(void *stream, const fleet__linalg_args *args);

    /* Optional: the gather (embedding, ONNX's Gather) and convolution's im2col
     * (kernel_args.h). */
    fleet_status (*gather)(void *stream, const fleet__gather_args *args);
    /* Optional: a range (kernel_args.h); with the gather's capability. */
    fleet_status (*range)(void *stream, const fleet__range_args *args);
    fleet_status (*im2col)(void *stream, const fleet__im2col_args *args);
    /* Optional: 2-D max and average pooling (kernel_args.h). */
    fleet_status (*pool2d)(void *stream, const fleet__pool_args *args);

    /* Optional: graph capture and replay (CUDA graphs). capture_begin makes
     * the stream record instead of run what the calling thread submits;
     * capture_end stops it and, when `keep`, instantiates what was recorded
     * into *exec (with !keep, or on failure, the recording is dropped and
     * the stream is as before capture_begin). graph_launch runs an exec on a
     * stream; graph_destroy frees one (allowed while a launch of it is still
     * running: it is then freed when that finishes). */
    fleet_status (*capture_begin)(void *stream);
    fleet_status (*capture_end)(void *stream, bool keep, void **exec);
    fleet_status (*graph_launch)(void *stream, void *exec);
    void (*graph_destroy)(void *exec);
    /* A device-to-device copy for a capture, whose node can be pointed at
     * other memory after instantiation: graph_copy submits it,
     * capture_last_node gives the node the stream's last submission became,
     * graph_set_copy retargets that node of exec (same byte count). */
    fleet_status (*graph_copy)(void *stream, void *dst, const void *src, size_t bytes);
    fleet_status (*capture_last_node)(void *stream, void **node);
    fleet_status (*graph_set_copy)(void *exec, void *node, void *dst, const void *src,
                                   size_t bytes);

    /* Fork: prepare takes the backend's locks (after the runtime's), parent
     * releases them, child releases them and resets the backend so the child
     * starts with fresh streams (when survives_fork) or is left unusable. */
    void (*atfork_prepare)(void);
    void (*atfork_parent)(void);
    void (*atfork_child)(void);
} fleet__backend;

extern const fleet__backend fleet__cpu_backend;
#ifdef FLEET_HAVE_CUDA
extern const fleet__backend fleet__cuda_backend;
#endif

#endif /* FLEET_BACKEND_H */
