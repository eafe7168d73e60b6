/* runtime/dispatch.h — the one door to a backend (as ggml-backend.cpp wraps
 * each backend's iface).
 *
 * Every layer above the backends calls these, never the vtable of
 * backend/backend.h: a wrapper takes the device (which names its backend and
 * ordinal) and the native handles, and owns what an optional slot needs —
 * its fallback (copy_segments: one copy at a time) or its
 * FLEET_ERR_UNSUPPORTED, whose text is written in one place
 * (fleet__backend_require). `make static` checks that no file outside
 * src/backend/ and this layer calls through a slot.
 *
 * The wrappers add no checks of their own: their arguments were checked by
 * the caller (ops/, the runtime), as the backend contract says.
 */
#ifndef FLEET_RUNTIME_DISPATCH_H
#define FLEET_RUNTIME_DISPATCH_H

#include "runtime/device.h"

/* ---- what a backend can do -------------------------------------------------- */

typedef enum fleet__capability {
    FLEET__CAN_DEVICE_SYNC, /* one call waits for every stream of the device */
    FLEET__CAN_HOST_FUNC,   /* host functions on a stream                    */
    FLEET__CAN_ROWWISE,     /* softmax, layer norm, sum, mean                */
    FLEET__CAN_LINALG,      /* dense linear algebra                          */
    FLEET__CAN_GATHER,      /* the gather along a dimension (embedding), and
                             * the range                                     */
    FLEET__CAN_IM2COL,      /* convolution's im2col                          */
    FLEET__CAN_POOL,        /* 2-D max and average pooling                   */
    FLEET__CAN_CAPTURE,     /* graph capture and replay                      */
} fleet__capability;

bool fleet__backend_can(const struct fleet_device *dev, fleet__capability what);
/* FLEET_OK, or FLEET_ERR_UNSUPPORTED with "fn: the cpu backend has no
 * im2col" (fn NULL: the text starts at "the"). */
fleet_status fleet__backend_require(const char *fn, const struct fleet_device *dev,
                                    fleet__capability what);

/* ---- a backend's life (runtime/lifecycle.c) ----------------------------------- */

fleet_status fleet__backend_init(const fleet__backend *be, const fleet__config *cfg,
                                 int *device_count, const char **why_none);
void fleet__backend_shutdown(const fleet__backend *be);
void fleet__backend_atfork_prepare(const fleet__backend *be);
const char *fleet__backend_kernels(const fleet__backend *be);
void fleet__backend_atfork_parent(const fleet__backend *be);
void fleet__backend_atfork_child(const fleet__backend *be);

/* ---- streams and events --------------------------------------------------------- */

fleet_status fleet__backend_stream_create(const struct fleet_device *dev, bool is_default,
                                          void **out);
fleet_status fleet__backend_stream_synchronize(const struct fleet_device *dev, void *stream);
fleet_status fleet__backend_stream_query(const struct fleet_device *dev, void *stream);
/* Without FLEET__CAN_DEVICE_SYNC: FLEET_ERR_UNSUPPORTED, and the caller (the
 * stream pool, which knows the streams) syncs them one by one. */
fleet_status fleet__backend_device_synchronize(const struct fleet_device *dev);
fleet_status fleet__backend_launch_host_func(const struct fleet_device *dev, void *stream,
                                             fleet_host_fn fn, void *arg);

fleet_status fleet__backend_event_create(const struct fleet_device *dev, void **out);
void fleet__backend_event_destroy(const struct fleet_device *dev, void *event);
fleet_status fleet__backend_event_record(const struct fleet_device *dev, void *event,
                                         void *stream);
fleet_status fleet__backend_stream_wait_event(const struct fleet_device *dev, void *stream,
                                              void *event);
fleet_status fleet__backend_event_query(const struct fleet_device *dev, void *event);
fleet_status fleet__backend_event_synchronize(const struct fleet_device *dev, void *event);

/* ---- memory and copies ---------------------------------------------------------- */

fleet_status fleet__backend_segment_alloc(const struct fleet_device *dev, size_t bytes,
                                          void **out);
void fleet__backend_segment_free(const struct fleet_device *dev, void *ptr);
fleet_status fleet__backend_copy_host_to_device(const struct fleet_device *dev, void *stream,
                                                void *dst, const void *src, size_t bytes);
fleet_status fleet__backend_copy_device_to_host(const struct fleet_device *dev, void *stream,
                                                void *dst, const void *src, size_t bytes);
fleet_status fleet__backend_copy_device_to_device(const struct fleet_device *dev, void *stream,
                                                  void *dst, const void *src, size_t bytes);
/* args->n device-to-device copies: one launch where the backend batches
 * them, else one copy after another (stopping at the first failure). */
fleet_status fleet__backend_copy_segments(const struct fleet_device *dev, void *stream,
                                          const fleet__segments_args *args);

/* ---- kernels -------------------------------------------------------------------- */

fleet_status fleet__backend_gemm(const struct fleet_device *dev, void *stream,
                                 const fleet__gemm_args *args);
fleet_status fleet__backend_elementwise(const struct fleet_device *dev, void *stream,
                                        const fleet__elementwise_args *args);
/* An elementwise op's name ("add", "gelu (tanh)"), for messages. */
const char *fleet__ew_name(int op);
/* FLEET_OK, or FLEET_ERR_UNSUPPORTED "fn: the cpu backend has no <op> from
 * i64 to f16" when the backend's elementwise kernel lacks the combination. */
fleet_status fleet__backend_require_elementwise(const char *fn, const struct fleet_device *dev,
                                                int op, int dtype, int out_dtype);
/* The optional kernels: FLEET_ERR_UNSUPPORTED (fleet__backend_require's
 * text) where the backend lacks them; ops call fleet__backend_require with
 * their name first, before taking scratch memory. */
fleet_status fleet__backend_rowwise(const struct fleet_device *dev, void *stream,
                                    const fleet__rowwise_args *args);
fleet_status fleet__backend_linalg_workspace_size(const struct fleet_device *dev, void *stream,
                                                  const fleet__linalg_args *args, size_t *bytes);
fleet_status fleet__backend_linalg(const struct fleet_device *dev, void *stream,
                                   const fleet__linalg_args *args);
fleet_status fleet__backend_gather(const struct fleet_device *dev, void *stream,
                                   const fleet__gather_args *args);
fleet_status fleet__backend_range(const struct fleet_device *dev, void *stream,
                                  const fleet__range_args *args);
fleet_status fleet__backend_im2col(const struct fleet_device *dev, void *stream,
                                   const fleet__im2col_args *args);
fleet_status fleet__backend_pool2d(const struct fleet_device *dev, void *stream,
                                   const fleet__pool_args *args);

/* ---- graph capture and replay (FLEET__CAN_CAPTURE; backend.h says how) --------- */

fleet_status fleet__backend_capture_begin(const struct fleet_device *dev, void *stream);
fleet_status fleet__backend_capture_end(const struct fleet_device *dev, void *stream, bool keep,
                                        void **exec);
fleet_status fleet__backend_graph_launch(const struct fleet_device *dev, void *stream,
                                         void *exec);
void fleet__backend_graph_destroy(const struct fleet_device *dev, void *exec);
fleet_status fleet__backend_graph_copy(const struct fleet_device *dev, void *stream, void *dst,
                                       const void *src, size_t bytes);
fleet_status fleet__backend_capture_last_node(const struct fleet_device *dev, void *stream,
                                              void **node);
fleet_status fleet__backend_graph_set_copy(const struct fleet_device *dev, void *exec, void *node,
                                           void *dst, const void *src, size_t bytes);

#endif /* FLEET_RUNTIME_DISPATCH_H */
