/* runtime/dispatch.c — the one door to a backend: thin wrappers over the
 * vtable, the optional slots' fallbacks and FLEET_ERR_UNSUPPORTED text. */
#include "runtime/dispatch.h"

#include "core/error.h"

static const char *const capability_names[] = {
    [FLEET__CAN_DEVICE_SYNC] = "device-wide synchronize",
    [FLEET__CAN_HOST_FUNC] = "host functions on streams",
    [FLEET__CAN_ROWWISE] = "row ops",
    [FLEET__CAN_LINALG] = "linear algebra",
    [FLEET__CAN_GATHER] = "gather",
    [FLEET__CAN_IM2COL] = "im2col",
    [FLEET__CAN_POOL] = "pooling",
    [FLEET__CAN_CAPTURE] = "graph capture",
};

bool fleet__backend_can(const struct fleet_device *dev, fleet__capability what)
{
    const fleet__backend *be = dev->backend;
    switch (what) {
    case FLEET__CAN_DEVICE_SYNC: return be->device_synchronize != NULL;
    case FLEET__CAN_HOST_FUNC: return be->stream_launch_host_func != NULL;
    case FLEET__CAN_ROWWISE: return be->rowwise != NULL;
    case FLEET__CAN_LINALG: return be->linalg != NULL && be->linalg_workspace_size != NULL;
    case FLEET__CAN_GATHER: return be->gather != NULL && be->range != NULL;
    case FLEET__CAN_IM2COL: return be->im2col != NULL;
    case FLEET__CAN_POOL: return be->pool2d != NULL;
    case FLEET__CAN_CAPTURE: return be->capture_begin != NULL;
    }
    return false;
}

fleet_status fleet__backend_require(const char *fn, const struct fleet_device *dev,
                                    fleet__capability what)
{
    if (fleet__backend_can(dev, what))
        return FLEET_OK;
    return fleet__error(FLEET_ERR_UNSUPPORTED, "%s%sthe %s backend has no %s", fn ? fn : "",
                        fn ? ": " : "", dev->backend->name, capability_names[what]);
}

/* ---- a backend's life ----------------------------------------------------------- */

fleet_status fleet__backend_init(const fleet__backend *be, const fleet__config *cfg,
                                 int *device_count, const char **why_none)
{
    return be->init(cfg, device_count, why_none);
}

const char *fleet__backend_kernels(const fleet__backend *be)
{
    return be->kernels();
}

void fleet__backend_shutdown(const fleet__backend *be)
{
    be->shutdown();
}

void fleet__backend_atfork_prepare(const fleet__backend *be)
{
    if (be->atfork_prepare != NULL)
        be->atfork_prepare();
}

void fleet__backend_atfork_parent(const fleet__backend *be)
{
    if (be->atfork_parent != NULL)
        be->atfork_parent();
}

void fleet__backend_atfork_child(const fleet__backend *be)
{
    if (be->atfork_child != NULL)
        be->atfork_child();
}

/* ---- streams and events --------------------------------------------------------- */

fleet_status fleet__backend_stream_create(const struct fleet_device *dev, bool is_default,
                                          void **out)
{
    return dev->backend->stream_create(dev->ordinal, is_default, out);
}

fleet_status fleet__backend_stream_synchronize(const struct fleet_device *dev, void *stream)
{
    return dev->backend->stream_synchronize(stream);
}

fleet_status fleet__backend_stream_query(const struct fleet_device *dev, void *stream)
{
    return dev->backend->stream_query(stream);
}

fleet_status fleet__backend_device_synchronize(const struct fleet_device *dev)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_DEVICE_SYNC);
    return st != FLEET_OK ? st : dev->backend->device_synchronize(dev->ordinal);
}

fleet_status fleet__backend_launch_host_func(const struct fleet_device *dev, void *stream,
                                             fleet_host_fn fn, void *arg)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_HOST_FUNC);
    return st != FLEET_OK ? st : dev->backend->stream_launch_host_func(stream, fn, arg);
}

fleet_status fleet__backend_event_create(const struct fleet_device *dev, void **out)
{
    return dev->backend->event_create(dev->ordinal, out);
}

void fleet__backend_event_destroy(const struct fleet_device *dev, void *event)
{
    dev->backend->event_destroy(event);
}

fleet_status fleet__backend_event_record(const struct fleet_device *dev, void *event,
                                         void *stream)
{
    return dev->backend->event_record(event, stream);
}

fleet_status fleet__backend_stream_wait_event(const struct fleet_device *dev, void *stream,
                                              void *event)
{
    return dev->backend->stream_wait_event(stream, event);
}

fleet_status fleet__backend_event_query(const struct fleet_device *dev, void *event)
{
    return dev->backend->event_query(event);
}

fleet_status fleet__backend_event_synchronize(const struct fleet_device *dev, void *event)
{
    return dev->backend->event_synchronize(event);
}

/* ---- memory and copies ---------------------------------------------------------- */

fleet_status fleet__backend_segment_alloc(const struct fleet_device *dev, size_t bytes,
                                          void **out)
{
    return dev->backend->segment_alloc(dev->ordinal, bytes, out);
}

void fleet__backend_segment_free(const struct fleet_device *dev, void *ptr)
{
    dev->backend->segment_free(dev->ordinal, ptr);
}

fleet_status fleet__backend_copy_host_to_device(const struct fleet_device *dev, void *stream,
                                                void *dst, const void *src, size_t bytes)
{
    return dev->backend->copy_host_to_device(stream, dst, src, bytes);
}

fleet_status fleet__backend_copy_device_to_host(const struct fleet_device *dev, void *stream,
                                                void *dst, const void *src, size_t bytes)
{
    return dev->backend->copy_device_to_host(stream, dst, src, bytes);
}

fleet_status fleet__backend_copy_device_to_device(const struct fleet_device *dev, void *stream,
                                                  void *dst, const void *src, size_t bytes)
{
    return dev->backend->copy_device_to_device(stream, dst, src, bytes);
}

fleet_status fleet__backend_copy_segments(const struct fleet_device *dev, void *stream,
                                          const fleet__segments_args *args)
{
    const fleet__backend *be = dev->backend;
    if (args->n == 0)
        return FLEET_OK;
    if (be->copy_segments != NULL)
        return be->copy_segments(stream, args);
    fleet_status st = FLEET_OK;
    for (int i = 0; i < args->n && st == FLEET_OK; i++)
        st = be->copy_device_to_device(stream, args->dst[i], args->src[i], (size_t)args->bytes[i]);
    return st;
}

/* ---- kernels -------------------------------------------------------------------- */

fleet_status fleet__backend_gemm(const struct fleet_device *dev, void *stream,
                                 const fleet__gemm_args *args)
{
    return dev->backend->gemm(stream, args);
}

fleet_status fleet__backend_elementwise(const struct fleet_device *dev, void *stream,
                                        const fleet__elementwise_args *args)
{
    return dev->backend->elementwise(stream, args);
}

static const char *const ew_names[FLEET__EW_COUNT_] = {
    [FLEET__EW_COPY] = "copy", [FLEET__EW_RELU] = "relu", [FLEET__EW_GELU] = "gelu",
    [FLEET__EW_SILU] = "silu", [FLEET__EW_TANH] = "tanh", [FLEET__EW_SIGMOID] = "sigmoid",
    [FLEET__EW_ERF] = "erf", [FLEET__EW_EXP] = "exp", [FLEET__EW_LOG] = "log",
    [FLEET__EW_SQRT] = "sqrt", [FLEET__EW_NEG] = "neg", [FLEET__EW_ABS] = "abs",
    [FLEET__EW_RECIPROCAL] = "reciprocal", [FLEET__EW_GELU_TANH] = "gelu (tanh)",
    [FLEET__EW_LEAKY_RELU] = "leaky_relu", [FLEET__EW_CLIP] = "clip", [FLEET__EW_CAST] = "cast",
    [FLEET__EW_ADD] = "add", [FLEET__EW_SUB] = "sub", [FLEET__EW_MUL] = "mul",
    [FLEET__EW_DIV] = "div", [FLEET__EW_POW] = "pow", [FLEET__EW_MAX] = "max",
    [FLEET__EW_MIN] = "min", [FLEET__EW_EQUAL] = "equal", [FLEET__EW_LESS] = "less",
    [FLEET__EW_LESS_EQUAL] = "less_equal", [FLEET__EW_GREATER] = "greater",
    [FLEET__EW_GREATER_EQUAL] = "greater_equal", [FLEET__EW_WHERE] = "where"};

const char *fleet__ew_name(int op)
{
    return op >= 0 && op < FLEET__EW_COUNT_ ? ew_names[op] : "unknown op";
}

fleet_status fleet__backend_require_elementwise(const char *fn, const struct fleet_device *dev,
                                                int op, int dtype, int out_dtype)
{
    const fleet__backend *be = dev->backend;
    if (be->elementwise_supports != NULL && be->elementwise_supports(op, dtype, out_dtype))
        return FLEET_OK;
    const char *name = fleet__ew_name(op);
    if (dtype == out_dtype)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "%s: the %s backend has no %s for %s", fn,
                            be->name, name, fleet_dtype_name((fleet_dtype)dtype));
    return fleet__error(FLEET_ERR_UNSUPPORTED, "%s: the %s backend has no %s from %s to %s", fn,
                        be->name, name, fleet_dtype_name((fleet_dtype)dtype),
                        fleet_dtype_name((fleet_dtype)out_dtype));
}

fleet_status fleet__backend_rowwise(const struct fleet_device *dev, void *stream,
                                    const fleet__rowwise_args *args)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_ROWWISE);
    return st != FLEET_OK ? st : dev->backend->rowwise(stream, args);
}

fleet_status fleet__backend_linalg_workspace_size(const struct fleet_device *dev, void *stream,
                                                  const fleet__linalg_args *args, size_t *bytes)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_LINALG);
    return st != FLEET_OK ? st : dev->backend->linalg_workspace_size(stream, args, bytes);
}

fleet_status fleet__backend_linalg(const struct fleet_device *dev, void *stream,
                                   const fleet__linalg_args *args)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_LINALG);
    return st != FLEET_OK ? st : dev->backend->linalg(stream, args);
}

fleet_status fleet__backend_gather(const struct fleet_device *dev, void *stream,
                                   const fleet__gather_args *args)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_GATHER);
    return st != FLEET_OK ? st : dev->backend->gather(stream, args);
}

fleet_status fleet__backend_range(const struct fleet_device *dev, void *stream,
                                  const fleet__range_args *args)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_GATHER);
    return st != FLEET_OK ? st : dev->backend->range(stream, args);
}

fleet_status fleet__backend_im2col(const struct fleet_device *dev, void *stream,
                                   const fleet__im2col_args *args)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_IM2COL);
    return st != FLEET_OK ? st : dev->backend->im2col(stream, args);
}

fleet_status fleet__backend_pool2d(const struct fleet_device *dev, void *stream,
                                   const fleet__pool_args *args)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_POOL);
    return st != FLEET_OK ? st : dev->backend->pool2d(stream, args);
}

/* ---- graph capture and replay --------------------------------------------------- */

fleet_status fleet__backend_capture_begin(const struct fleet_device *dev, void *stream)
{
    fleet_status st = fleet__backend_require(NULL, dev, FLEET__CAN_CAPTURE);
    return st != FLEET_OK ? st : dev->backend->capture_begin(stream);
}

fleet_status fleet__backend_capture_end(const struct fleet_device *dev, void *stream, bool keep,
                                        void **exec)
{
    return dev->backend->capture_end(stream, keep, exec);
}

fleet_status fleet__backend_graph_launch(const struct fleet_device *dev, void *stream,
                                         void *exec)
{
    return dev->backend->graph_launch(stream, exec);
}

void fleet__backend_graph_destroy(const struct fleet_device *dev, void *exec)
{
    dev->backend->graph_destroy(exec);
}

fleet_status fleet__backend_graph_copy(const struct fleet_device *dev, void *stream, void *dst,
                                       const void *src, size_t bytes)
{
    return dev->backend->graph_copy(stream, dst, src, bytes);
}

fleet_status fleet__backend_capture_last_node(const struct fleet_device *dev, void *stream,
                                              void **node)
{
    return dev->backend->capture_last_node(stream, node);
}

fleet_status fleet__backend_graph_set_copy(const struct fleet_device *dev, void *exec, void *node,
                                           void *dst, const void *src, size_t bytes)
{
    return dev->backend->graph_set_copy(exec, node, dst, src, bytes);
}
