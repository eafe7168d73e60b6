/* ops/elementwise.c — unary and binary elementwise ops with broadcasting,
 * and copies between layouts.
 *
 * Broadcasting follows NumPy: shapes are aligned at their last dimension; a
 * dimension of size 1 (or a missing one) stretches to the other's size. The
 * output must already have the broadcast shape. Inputs may be any strided
 * views; the kernels see views of out's shape with zero strides where an
 * input repeats, after adjacent dimensions that every view walks in step
 * have been merged (a contiguous tensor becomes one run). */
#include <string.h>

#include "core/error.h"
#include "ops/ops_internal.h"

/* t seen with out's shape: right-aligned, zero stride where t has size 1 or
 * lacks the dimension. */
static fleet__view broadcast_view(const fleet_tensor *t, const fleet_tensor *out)
{
    fleet__view v;
    memset(&v, 0, sizeof v);
    v.data = fleet_tensor_data(t);
    v.ndim = out->ndim;
    int shift = out->ndim - t->ndim;
    for (int d = 0; d < out->ndim; d++) {
        v.shape[d] = out->shape[d];
        int td = d - shift;
        v.strides[d] = td < 0 || t->shape[td] == 1 ? 0 : t->strides[td];
    }
    return v;
}

static fleet_status run(fleet__ew_op op, const char *fn, const fleet_tensor *a_h,
                        const fleet_tensor *b_h, fleet_tensor *out_h)
{
    bool binary = fleet__ew_is_binary(op);
    const fleet_tensor *ts[] = {a_h, binary ? b_h : out_h, out_h};
    static const char *const bnames[] = {"a", "b", "out"};
    static const char *const unames[] = {"x", "out", "out"};
    const char *const *names = binary ? bnames : unames;
    int n = binary ? 3 : 2;
    fleet_status st = fleet__op_enter_all(fn, ts, names, n);
    if (st != FLEET_OK)
        return st;
    if (!binary)
        ts[2] = ts[1];
    const fleet_tensor *a = ts[0], *b = binary ? ts[1] : NULL;
    fleet_tensor *out = (fleet_tensor *)ts[2];
    if ((st = fleet__out_distinct(fn, out)) != FLEET_OK)
        return st;
    fleet__dims da = FLEET__DIMS(a), got = FLEET__DIMS(out), want = da;
    if (binary) {
        fleet__dims db = FLEET__DIMS(b);
        if ((st = fleet__shape_broadcast(fn, &da, "a", &db, "b", &want)) != FLEET_OK ||
            (st = fleet__shape_expect_aligned(fn, "out", &got, &want,
                                              "the broadcast shape of a and b")) != FLEET_OK)
            return st;
    } else if ((st = fleet__shape_expect(fn, "out", &got, &want, "x's shape")) != FLEET_OK) {
        return st;
    }
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, n, FLEET__OP_HALF_ON_CUDA)) != FLEET_OK)
        return st;
    if ((st = fleet__check_in_place(fn, out, a, names[0])) != FLEET_OK ||
        (binary && (st = fleet__check_in_place(fn, out, b, names[1])) != FLEET_OK))
        return st;
    return fleet__op_elementwise(&call, op, a, b, out);
}

fleet_status fleet__op_elementwise(const fleet__op_call *call, fleet__ew_op op,
                                   const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;
    bool binary = fleet__ew_is_binary(op);
    fleet__elementwise_args args;
    memset(&args, 0, sizeof args);
    args.op = op;
    args.dtype = out->dtype;
    args.out = broadcast_view(out, out);
    args.a = broadcast_view(a, out);
    if (binary)
        args.b = broadcast_view(b, out);
    fleet__view *vs[] = {&args.out, &args.a, &args.b};
    fleet__view_coalesce(vs, binary ? 3 : 2);
    return fleet__backend_elementwise(call->device, call->native, &args);
}

fleet_status fleet_add(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    return run(FLEET__EW_ADD, "fleet_add", a, b, out);
}

fleet_status fleet_sub(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    return run(FLEET__EW_SUB, "fleet_sub", a, b, out);
}

fleet_status fleet_mul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    return run(FLEET__EW_MUL, "fleet_mul", a, b, out);
}

fleet_status fleet_div(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    return run(FLEET__EW_DIV, "fleet_div", a, b, out);
}

fleet_status fleet_relu(const fleet_tensor *x, fleet_tensor *out)
{
    return run(FLEET__EW_RELU, "fleet_relu", x, NULL, out);
}

fleet_status fleet_gelu(const fleet_tensor *x, fleet_tensor *out)
{
    return run(FLEET__EW_GELU, "fleet_gelu", x, NULL, out);
}

fleet_status fleet_silu(const fleet_tensor *x, fleet_tensor *out)
{
    return run(FLEET__EW_SILU, "fleet_silu", x, NULL, out);
}

fleet_status fleet_tanh(const fleet_tensor *x, fleet_tensor *out)
{
    return run(FLEET__EW_TANH, "fleet_tanh", x, NULL, out);
}

fleet_status fleet_sigmoid(const fleet_tensor *x, fleet_tensor *out)
{
    return run(FLEET__EW_SIGMOID, "fleet_sigmoid", x, NULL, out);
}

fleet_status fleet_copy(const fleet_tensor *x, fleet_tensor *out)
{
    return run(FLEET__EW_COPY, "fleet_copy", x, NULL, out);
}
