/* ops/op_common.c — the checks and error texts every op shares. */
#include <stdint.h>

#include "core/error.h"
#include "ops/ops_internal.h"

fleet_status fleet__op_enter_all(const char *fn, const fleet_tensor **ts,
                                 const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        fleet_status st = fleet__enter_tensor(&ts[i], fn, names[i]);
        if (st != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

fleet_status fleet__op_call_on(fleet__op_call *call, const char *fn, struct fleet_stream *stream)
{
    call->fn = fn;
    call->device = stream->device;
    call->stream = stream;
    return fleet__stream_native(stream, &call->native);
}

fleet_status fleet__op_dtype_supported(const char *fn, const struct fleet_device *dev,
                                       fleet_dtype dtype, unsigned flags)
{
    bool half = dtype == FLEET_DTYPE_F16 || dtype == FLEET_DTYPE_BF16;
    bool half_ok = (flags & FLEET__OP_HALF_ON_CUDA) && dev->kind == FLEET_BACKEND_CUDA;
    if (dtype != FLEET_DTYPE_F32 && !(half && half_ok))
        return fleet__error(FLEET_ERR_UNSUPPORTED, "%s: %s tensors are not supported here (%s)",
                            fn, fleet_dtype_name(dtype),
                            half ? "f16/bf16 run on cuda devices only" : "f32 only");
    return FLEET_OK;
}

fleet_status fleet__op_ew_dtype_supported(const char *fn, const struct fleet_device *dev,
                                          fleet__ew_op op, fleet_dtype dtype)
{
    if (op == FLEET__EW_COPY || op == FLEET__EW_CAST || op == FLEET__EW_WHERE ||
        ((dtype == FLEET_DTYPE_I32 || dtype == FLEET_DTYPE_I64) && fleet__ew_takes_integers(op)))
        return FLEET_OK;
    return fleet__op_dtype_supported(fn, dev, dtype, FLEET__OP_HALF_ON_CUDA);
}

fleet_status fleet__op_begin(fleet__op_call *call, const char *fn, const fleet_tensor *const *ts,
                             const char *const *names, int n, unsigned flags)
{
    call->fn = fn;
    for (int i = 1; i < n; i++)
        if (ts[i]->device != ts[0]->device)
            return fleet__error(FLEET_ERR_INVALID_DEVICE, "%s: %s is on %s, %s on %s", fn,
                                names[0], ts[0]->device->name, names[i], ts[i]->device->name);
    for (int i = 0; i < n; i++) {
        if (!(flags & FLEET__OP_ANY_DTYPE) && ts[i]->dtype != ts[0]->dtype)
            return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: %s is %s, %s is %s", fn, names[0],
                                fleet_dtype_name(ts[0]->dtype), names[i],
                                fleet_dtype_name(ts[i]->dtype));
        if ((flags & FLEET__OP_CONTIGUOUS) && !fleet_tensor_is_contiguous(ts[i]))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                "%s: %s is not contiguous (fleet_copy it into a new tensor first)",
                                fn, names[i]);
    }
    fleet_status st = (flags & FLEET__OP_ANY_DTYPE)
                          ? FLEET_OK
                          : fleet__op_dtype_supported(fn, ts[0]->device, ts[0]->dtype, flags);
    if (st != FLEET_OK)
        return st;
    call->device = ts[0]->device;
    st = fleet__stream_current(call->device, &call->stream);
    if (st == FLEET_OK)
        st = fleet__stream_native(call->stream, &call->native);
    return st;
}

fleet_status fleet__op_shape_error(const char *fn, const char *what, const fleet_tensor *x,
                                const char *xn, const fleet_tensor *y, const char *yn)
{
    fleet__dims dx = FLEET__DIMS(x), dy = FLEET__DIMS(y);
    return fleet__shape_refuse(fn, what, &dx, xn, &dy, yn);
}

bool fleet__same_shape(const fleet_tensor *x, const fleet_tensor *y)
{
    if (x->ndim != y->ndim)
        return false;
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] != y->shape[i])
            return false;
    return true;
}

/* [first, last] byte addresses a tensor's elements occupy. */
static bool span(const fleet_tensor *t, uintptr_t *lo, uintptr_t *hi)
{
    const char *base = fleet_tensor_data(t);
    if (base == NULL || fleet_tensor_numel(t) == 0)
        return false;
    int64_t first = 0, last = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t reach = (t->shape[i] - 1) * t->strides[i];
        if (reach < 0)
            first += reach;
        else
            last += reach;
    }
    int64_t es = (int64_t)fleet_dtype_size(t->dtype);
    *lo = (uintptr_t)(base + first * es);
    *hi = (uintptr_t)(base + last * es + es - 1);
    return true;
}

bool fleet__overlaps(const fleet_tensor *x, const fleet_tensor *y)
{
    uintptr_t xl, xh, yl, yh;
    if (!span(x, &xl, &xh) || !span(y, &yl, &yh))
        return false;
    return xl <= yh && yl <= xh;
}

/* Drop size-1 dimensions and merge dimension d into d-1 when every view
 * steps over d exactly as a continuation of d-1. */
void fleet__view_coalesce(fleet__view *const *vs, int nv)
{
    fleet__view *o = vs[0];
    int nd = 0;
    for (int d = 0; d < o->ndim; d++) {
        if (o->shape[d] == 1)
            continue;
        bool merge = nd > 0;
        for (int k = 0; k < nv && merge; k++)
            merge = vs[k]->strides[nd - 1] == vs[k]->strides[d] * o->shape[d];
        if (merge) {
            for (int k = 0; k < nv; k++) {
                vs[k]->strides[nd - 1] = vs[k]->strides[d];
                vs[k]->shape[nd - 1] *= o->shape[d];
            }
            continue;
        }
        for (int k = 0; k < nv; k++) {
            vs[k]->shape[nd] = o->shape[d];
            vs[k]->strides[nd] = vs[k]->strides[d];
        }
        nd++;
    }
    if (nd == 0) { /* a single element */
        for (int k = 0; k < nv; k++) {
            vs[k]->shape[0] = 1;
            vs[k]->strides[0] = 1;
        }
        nd = 1;
    }
    for (int k = 0; k < nv; k++)
        vs[k]->ndim = nd;
}

fleet_status fleet__check_in_place(const char *fn, const fleet_tensor *out, const fleet_tensor *x,
                                   const char *xn)
{
    if (fleet__same_view(out, x) || !fleet__overlaps(out, x))
        return FLEET_OK;
    uintptr_t ol, oh, xl, xh;
    bool same_span = span(out, &ol, &oh) && span(x, &xl, &xh) && ol == xl && oh == xh;
    if (same_span)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: out is %s's memory in another layout (in place, out must be %s "
                            "itself, the same view; copy to a separate tensor instead)", fn, xn,
                            xn);
    return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                        "%s: out partly overlaps %s (in place, out must be %s itself)", fn, xn, xn);
}

bool fleet__same_view(const fleet_tensor *x, const fleet_tensor *y)
{
    if (fleet_tensor_data(x) != fleet_tensor_data(y) || !fleet__same_shape(x, y))
        return false;
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] > 1 && x->strides[d] != y->strides[d])
            return false;
    return true;
}

fleet_status fleet__out_distinct(const char *fn, const fleet_tensor *out)
{
    for (int d = 0; d < out->ndim; d++)
        if (out->shape[d] > 1 && out->strides[d] == 0)
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out repeats elements (stride 0)",
                                fn);
    return FLEET_OK;
}
