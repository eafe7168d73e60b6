/* ops/ops.c — matrix products: shape rules and dispatch to the backend's
 * GEMM on the calling thread's current stream. Every check happens before
 * anything is submitted, so a failed call changes nothing. */
#include <stdint.h>

#include "core/error.h"
#include "fleet/ops.h"
#include "ops/ops_internal.h"

fleet_status fleet_matmul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    static const char fn[] = "fleet_matmul";
    const fleet_tensor *ts[] = {a, b, out};
    static const char *const names[] = {"a", "b", "out"};
    fleet__op_call call;
    fleet_status st = fleet__op_enter_all(fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    if (a->ndim != 2 || b->ndim != 2 || out->ndim != 2)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: 2-D tensors expected, got a %d-D, b %d-D, out %d-D", fn, a->ndim,
                            b->ndim, out->ndim);
    if (a->shape[1] != b->shape[0])
        return fleet__op_shape_error(fn, "inner dimensions differ", a, "a", b, "b");
    if (out->shape[0] != a->shape[0] || out->shape[1] != b->shape[1])
        return fleet__op_shape_error(fn, "out must be a.rows x b.cols", out, "out", a, "a");
    st = fleet__op_begin(&call, fn, ts, names, 3, FLEET__OP_CONTIGUOUS);
    if (st != FLEET_OK)
        return st;
    if (fleet__overlaps(out, a) || fleet__overlaps(out, b))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps an input", fn);
    fleet__gemm_args g = {
        .dtype = a->dtype,
        .m = a->shape[0], .n = b->shape[1], .k = a->shape[1],
        .a = fleet_tensor_data(a), .lda = a->shape[1] > 0 ? a->shape[1] : 1,
        .b = fleet_tensor_data(b), .ldb = b->shape[1] > 0 ? b->shape[1] : 1,
        .c = fleet_tensor_data(out), .ldc = out->shape[1] > 0 ? out->shape[1] : 1,
        .alpha = 1.0f, .beta = 0.0f,
    };
    return call.device->backend->gemm(call.stream, &g);
}
