/* ops/gather.c — fleet_embedding (rows of a weight table) and fleet_gather
 * (elements along any dimension, ONNX's Gather), one gather kernel; and
 * the range a model's index arithmetic starts from (fleet_model_range).
 *
 * Indices live on the device and the op is asynchronous, so their values
 * cannot be checked at the call without waiting for the stream. The kernels
 * instead treat an index outside the dimension like a padding index: that
 * output slice is written with zeros and nothing outside x is read. */
#include "core/error.h"
#include "ops/ops_internal.h"

/* What both ops ask of indices: i32 or i64, contiguous, on x's device. */
static fleet_status check_indices(const char *fn, const fleet_tensor *x,
                                  const fleet_tensor *indices, const char *xn)
{
    if (indices->device != x->device)
        return fleet__error(FLEET_ERR_INVALID_DEVICE, "%s: %s is on %s, indices on %s", fn, xn,
                            x->device->name, indices->device->name);
    if (indices->dtype != FLEET_DTYPE_I32 && indices->dtype != FLEET_DTYPE_I64)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: indices must be i32 or i64, got %s", fn,
                            fleet_dtype_name(indices->dtype));
    if (!fleet_tensor_is_contiguous(indices))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: indices is not contiguous (fleet_copy it first)", fn);
    return FLEET_OK;
}

/* Checks shared by both past their shape rules: devices, dtypes, layout. */
static fleet_status begin(fleet__op_call *call, const char *fn, const fleet_tensor *x,
                          const fleet_tensor *indices, fleet_tensor *out, const char *xn,
                          unsigned flags)
{
    fleet_status st = check_indices(fn, x, indices, xn);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *fs[] = {x, out};
    const char *const fnames[] = {xn, "out"};
    if ((st = fleet__op_begin(call, fn, fs, fnames, 2, FLEET__OP_CONTIGUOUS | flags)) != FLEET_OK)
        return st;
    if (out->dtype != x->dtype)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: out must be %s, got %s", fn,
                            fleet_dtype_name(x->dtype), fleet_dtype_name(out->dtype));
    if (fleet__overlaps(out, x) || fleet__overlaps(out, indices))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps an input", fn);
    return fleet__backend_require(fn, call->device, FLEET__CAN_GATHER);
}

fleet_status fleet_embedding(const fleet_tensor *weight_h, const fleet_tensor *indices_h,
                             fleet_tensor *out_h)
{
    static const char fn[] = "fleet_embedding";
    const fleet_tensor *ts[] = {weight_h, indices_h, out_h};
    static const char *const names[] = {"weight", "indices", "out"};
    fleet_status st = fleet__op_enter_all(fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *weight = ts[0], *indices = ts[1];
    fleet_tensor *out = (fleet_tensor *)ts[2];
    fleet__dims dw = FLEET__DIMS(weight), di = FLEET__DIMS(indices), got = FLEET__DIMS(out), want;
    if ((st = fleet__shape_embedding(fn, &dw, &di, &want)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &want, "indices' shape, then weight's D")) !=
            FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = begin(&call, fn, weight, indices, out, "weight", 0)) != FLEET_OK)
        return st;
    return fleet__op_gather(&call, weight, indices, 0, false, out);
}

fleet_status fleet_gather(const fleet_tensor *x_h, const fleet_tensor *indices_h, int axis,
                          fleet_tensor *out_h)
{
    static const char fn[] = "fleet_gather";
    const fleet_tensor *ts[] = {x_h, indices_h, out_h};
    static const char *const names[] = {"x", "indices", "out"};
    fleet_status st = fleet__op_enter_all(fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *x = ts[0], *indices = ts[1];
    fleet_tensor *out = (fleet_tensor *)ts[2];
    int d;
    fleet__dims dx = FLEET__DIMS(x), di = FLEET__DIMS(indices), got = FLEET__DIMS(out), want;
    if ((st = fleet__shape_gather(fn, &dx, &di, axis, &want, &d)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &want,
                                  "x's shape with indices' in place of axis")) != FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = begin(&call, fn, x, indices, out, "x", FLEET__OP_ANY_DTYPE)) != FLEET_OK)
        return st;
    return fleet__op_gather(&call, x, indices, d, true, out);
}

fleet_status fleet__op_range(const fleet__op_call *call, double start, double delta,
                             fleet_tensor *out)
{
    fleet__range_args args = {.out = fleet_tensor_data(out), .dtype = (int)out->dtype,
                              .n = fleet_tensor_numel(out), .istart = (int64_t)start,
                              .idelta = (int64_t)delta, .fstart = start, .fdelta = delta};
    return fleet__backend_range(call->device, call->native, &args);
}

fleet_status fleet__op_gather(const fleet__op_call *call, const fleet_tensor *x,
                              const fleet_tensor *indices, int axis, bool wrap_negative,
                              fleet_tensor *out)
{
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= x->shape[k];
    for (int k = axis + 1; k < x->ndim; k++)
        inner *= x->shape[k];
    fleet__gather_args args = {
        .x = fleet_tensor_data(x), .indices = fleet_tensor_data(indices),
        .index_dtype = (int)indices->dtype, .wrap_negative = wrap_negative,
        .outer = outer, .v = x->shape[axis], .inner = inner, .n = fleet_tensor_numel(indices),
        .elem_size = (int64_t)fleet_dtype_size(x->dtype), .out = fleet_tensor_data(out),
    };
    return fleet__backend_gather(call->device, call->native, &args);
}
