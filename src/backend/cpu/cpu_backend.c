/* backend/cpu/cpu_backend.c — the cpu backend's vtable: devices are host
 * "devices" (FLEET_CPU_DEVICES of them, default 1), memory is aligned host
 * memory, streams are worker threads. */
#include "backend/backend.h"
#include "backend/cpu/cpu_conv.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_linalg.h"
#include "backend/cpu/cpu_rowwise.h"
#include "backend/cpu/cpu_stream.h"
#include "core/error.h"
#include "core/prim.h"

/* Segments are 256-byte aligned like cudaMalloc's, so alignment-sensitive
 * code behaves the same on both backends. */
#define CPU_SEGMENT_ALIGNMENT 256

static fleet_status cpu_init(const fleet__config *cfg, int *device_count, const char **why_none)
{
    *device_count = cfg->cpu_devices;
    *why_none = NULL;
    fleet__process_exit_hook_install(fleet__cpu_streams_quiesce_at_exit);
    fleet__cpu_blas_single_threaded();
    return FLEET_OK;
}

static void cpu_shutdown(void)
{
    fleet__cpu_streams_shutdown();
}

static fleet_status cpu_stream_create(int ordinal, bool is_default, void **out)
{
    (void)is_default;
    return fleet__cpu_stream_create(ordinal, (fleet__cpu_stream **)out);
}

static fleet_status cpu_stream_synchronize(void *s)
{
    return fleet__cpu_stream_synchronize(s);
}

static fleet_status cpu_stream_query(void *s)
{
    return fleet__cpu_stream_query(s);
}

typedef struct host_fn_args {
    fleet_host_fn fn;
    void *arg;
} host_fn_args;

static void host_fn_task(const void *p)
{
    const host_fn_args *h = p;
    h->fn(h->arg);
}

static fleet_status cpu_launch_host_func(void *s, fleet_host_fn fn, void *arg)
{
    host_fn_args h = {fn, arg};
    return fleet__cpu_stream_submit_host(s, host_fn_task, &h, sizeof h);
}

static fleet_status cpu_event_create(int ordinal, void **out)
{
    (void)ordinal;
    return fleet__cpu_event_create((fleet__cpu_event **)out);
}

static void cpu_event_destroy(void *e)
{
    fleet__cpu_event_destroy(e);
}

static fleet_status cpu_event_record(void *e, void *s)
{
    return fleet__cpu_event_record(e, s);
}

static fleet_status cpu_stream_wait_event(void *s, void *e)
{
    return fleet__cpu_stream_wait_event(s, e);
}

static fleet_status cpu_event_query(void *e)
{
    return fleet__cpu_event_query(e);
}

static fleet_status cpu_event_synchronize(void *e)
{
    return fleet__cpu_event_synchronize(e);
}

static fleet_status cpu_segment_alloc(int ordinal, size_t bytes, void **out)
{
    void *p = fleet__host_alloc_aligned(CPU_SEGMENT_ALIGNMENT, bytes);
    if (p == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cpu:%d: host allocation of %zu bytes failed",
                            ordinal, bytes);
    *out = p;
    return FLEET_OK;
}

static void cpu_segment_free(int ordinal, void *p)
{
    (void)ordinal;
    fleet__host_free(p);
}

const fleet__backend fleet__cpu_backend = {
    .name = "cpu",
    .kind = FLEET_BACKEND_CPU,
    .survives_fork = true,
    .init = cpu_init,
    .kernels = fleet__cpu_kernels,
    .shutdown = cpu_shutdown,
    .stream_create = cpu_stream_create,
    .stream_synchronize = cpu_stream_synchronize,
    .stream_query = cpu_stream_query,
    .stream_launch_host_func = cpu_launch_host_func,
    .event_create = cpu_event_create,
    .event_destroy = cpu_event_destroy,
    .event_record = cpu_event_record,
    .stream_wait_event = cpu_stream_wait_event,
    .event_query = cpu_event_query,
    .event_synchronize = cpu_event_synchronize,
    .segment_alloc = cpu_segment_alloc,
    .segment_free = cpu_segment_free,
    .copy_host_to_device = fleet__cpu_copy,
    .copy_device_to_host = fleet__cpu_copy,
    .copy_device_to_device = fleet__cpu_copy,
    .gemm = fleet__cpu_gemm,
    .linalg_workspace_size = fleet__cpu_linalg_workspace_size,
    .linalg = fleet__cpu_linalg,
    .gather = fleet__cpu_gather,
    .range = fleet__cpu_range,
    .im2col = fleet__cpu_im2col,
    .pool2d = fleet__cpu_pool2d,
    .elementwise = fleet__cpu_elementwise,
    .elementwise_supports = fleet__cpu_elementwise_supports,
    .rowwise = fleet__cpu_rowwise,
    .atfork_prepare = fleet__cpu_streams_atfork_prepare,
    .atfork_parent = fleet__cpu_streams_atfork_parent,
    .atfork_child = fleet__cpu_streams_atfork_child,
};
