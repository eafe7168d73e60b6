/* ops/copies.c — many copies on one stream, batched: contiguous pairs are
 * gathered and go to the backend as one copy_segments launch per
 * FLEET__SEGMENTS_MAX (the dispatch layer copies them one by one where the
 * backend cannot batch); any other layout is copied by the copy kernel at
 * once. The batcher's gather and scatter. */
#include "core/error.h"
#include "ops/ops_internal.h"

void fleet__copy_list_begin(fleet__copy_list *l, const fleet__op_call *call)
{
    l->call = *call;
    l->segments.n = 0;
}

fleet_status fleet__copy_list_flush(fleet__copy_list *l)
{
    fleet_status st = fleet__backend_copy_segments(l->call.device, l->call.native, &l->segments);
    l->segments.n = 0;
    return st;
}

fleet_status fleet__copy_list_add(fleet__copy_list *l, const fleet_tensor *src, fleet_tensor *dst)
{
    if (!fleet_tensor_is_contiguous(src) || !fleet_tensor_is_contiguous(dst))
        return fleet__op_elementwise(&l->call, FLEET__EW_COPY, src, NULL, dst);
    fleet_status st = FLEET_OK;
    if (l->segments.n == FLEET__SEGMENTS_MAX)
        st = fleet__copy_list_flush(l);
    fleet__segments_args *a = &l->segments;
    a->dst[a->n] = fleet_tensor_data(dst);
    a->src[a->n] = fleet_tensor_data(src);
    a->bytes[a->n++] = fleet_tensor_nbytes(dst);
    return st;
}
