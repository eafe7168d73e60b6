/* ops/embedding.c — fleet_embedding: gather rows of a weight table.
 *
 * Indices live on the device and the op is asynchronous, so their values
 * cannot be checked at the call without waiting for the stream. The kernels
 * instead treat an index outside [0, V) like a padding index: that output
 * row is written with zeros and nothing outside the table is read. */
#include "core/error.h"
#include "ops/ops_internal.h"

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
    if (indices->device != weight->device)
        return fleet__error(FLEET_ERR_INVALID_DEVICE, "%s: weight is on %s, indices on %s", fn,
                            weight->device->name, indices->device->name);
    if (indices->dtype != FLEET_DTYPE_I32 && indices->dtype != FLEET_DTYPE_I64)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: indices must be i32 or i64, got %s", fn,
                            fleet_dtype_name(indices->dtype));
    if (!fleet_tensor_is_contiguous(indices))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: indices is not contiguous (fleet_copy it first)", fn);
    const fleet_tensor *fs[] = {weight, out};
    static const char *const fnames[] = {"weight", "out"};
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, fs, fnames, 2, FLEET__OP_CONTIGUOUS)) != FLEET_OK)
        return st;
    if (fleet__overlaps(out, weight) || fleet__overlaps(out, indices))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps an input", fn);
    if ((st = fleet__backend_require(fn, call.device, FLEET__CAN_EMBEDDING)) != FLEET_OK)
        return st;
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;
    fleet__embedding_args args = {
        .weight = fleet_tensor_data(weight), .indices = fleet_tensor_data(indices),
        .index_dtype = (int)indices->dtype, .n = fleet_tensor_numel(indices),
        .v = weight->shape[0], .d = weight->shape[1], .out = fleet_tensor_data(out),
    };
    return fleet__backend_embedding(call.device, call.native, &args);
}
