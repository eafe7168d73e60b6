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

/* The checks every elementwise op shares, then its entry. in[] holds the
 * op's inputs: x; a, b; or cond, a, b (WHERE). */
static fleet_status run(fleet__ew_op op, const char *fn, const fleet_tensor *const *in_h,
                        float alpha, float beta, fleet_tensor *out_h)
{
    int arity = fleet__ew_arity(op);
    static const char *const names1[] = {"x", "out"}, *const names2[] = {"a", "b", "out"};
    static const char *const names3[] = {"cond", "a", "b", "out"};
    const char *const *names = arity == 1 ? names1 : arity == 2 ? names2 : names3;
    const fleet_tensor *ts[4];
    for (int i = 0; i < arity; i++)
        ts[i] = in_h[i];
    ts[arity] = out_h;
    fleet_status st = fleet__op_enter_all(fn, ts, names, arity + 1);
    if (st != FLEET_OK)
        return st;
    fleet_tensor *out = (fleet_tensor *)ts[arity];
    if ((st = fleet__out_distinct(fn, out)) != FLEET_OK)
        return st;

    /* shapes: NumPy broadcasting of the inputs, out that shape */
    fleet__dims want = FLEET__DIMS(ts[0]), got = FLEET__DIMS(out);
    for (int i = 1; i < arity && st == FLEET_OK; i++) {
        fleet__dims acc = want, di = FLEET__DIMS(ts[i]);
        st = fleet__shape_broadcast(fn, &acc, i == 1 ? names[0] : "the others", &di, names[i],
                                    &want);
    }
    if (st == FLEET_OK)
        st = arity == 1 ? fleet__shape_expect(fn, "out", &got, &want, "x's shape")
                        : fleet__shape_expect_aligned(fn, "out", &got, &want,
                                                      arity == 2 ? "the broadcast shape of a and b"
                                                                 : "the broadcast shape of "
                                                                   "cond, a and b");
    if (st != FLEET_OK)
        return st;

    /* dtypes: the values' (a's) throughout, but a comparison's bool out,
     * WHERE's bool cond and CAST's out of any dtype */
    const fleet_tensor *a = ts[arity == 3 ? 1 : 0];
    const fleet_tensor *b = arity >= 2 ? ts[arity - 1] : NULL;
    const fleet_tensor *cond = arity == 3 ? ts[0] : NULL;
    fleet_dtype vd = a->dtype;
    if (b != NULL && b->dtype != vd)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: a is %s, b is %s", fn,
                            fleet_dtype_name(vd), fleet_dtype_name(b->dtype));
    if (cond != NULL && cond->dtype != FLEET_DTYPE_BOOL)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: cond must be bool, got %s", fn,
                            fleet_dtype_name(cond->dtype));
    fleet_dtype od = op == FLEET__EW_CAST ? out->dtype
                     : fleet__ew_is_compare(op) ? FLEET_DTYPE_BOOL
                                                : vd;
    if (out->dtype != od)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: out must be %s, got %s", fn,
                            fleet_dtype_name(od), fleet_dtype_name(out->dtype));

    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, arity + 1, FLEET__OP_ANY_DTYPE)) != FLEET_OK)
        return st;
    if ((st = fleet__op_ew_dtype_supported(fn, call.device, op, vd)) != FLEET_OK ||
        (st = fleet__backend_require_elementwise(fn, call.device, op, vd, od)) != FLEET_OK)
        return st;
    for (int i = 0; i < arity; i++)
        if ((st = fleet__check_in_place(fn, out, ts[i], names[i])) != FLEET_OK)
            return st;
    return fleet__op_elementwise_ex(&call, op, a, b, cond, alpha, beta, out);
}

fleet_status fleet__op_elementwise_ex(const fleet__op_call *call, fleet__ew_op op,
                                      const fleet_tensor *a, const fleet_tensor *b,
                                      const fleet_tensor *c, float alpha, float beta,
                                      fleet_tensor *out)
{
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;
    int arity = fleet__ew_arity(op);
    fleet__elementwise_args args;
    memset(&args, 0, sizeof args);
    args.op = op;
    args.dtype = a->dtype;
    args.out_dtype = out->dtype;
    args.alpha = alpha;
    args.beta = beta;
    args.out = broadcast_view(out, out);
    args.a = broadcast_view(a, out);
    if (arity >= 2)
        args.b = broadcast_view(b, out);
    if (arity == 3)
        args.c = broadcast_view(c, out);
    fleet__view *vs[] = {&args.out, &args.a, &args.b, &args.c};
    fleet__view_coalesce(vs, arity + 1);
    return fleet__backend_elementwise(call->device, call->native, &args);
}

#define UNARY(name, op)                                                                  \
    fleet_status fleet_##name(const fleet_tensor *x, fleet_tensor *out)                  \
    {                                                                                    \
        const fleet_tensor *in[] = {x};                                                  \
        return run(op, "fleet_" #name, in, 0.0f, 0.0f, out);                             \
    }
#define BINARY(name, op)                                                                 \
    fleet_status fleet_##name(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out) \
    {                                                                                    \
        const fleet_tensor *in[] = {a, b};                                               \
        return run(op, "fleet_" #name, in, 0.0f, 0.0f, out);                             \
    }

FLEET__EW_UNARY_OPS(UNARY)
UNARY(copy, FLEET__EW_COPY)
UNARY(cast, FLEET__EW_CAST)
FLEET__EW_BINARY_OPS(BINARY)

#undef UNARY
#undef BINARY

fleet_status fleet_leaky_relu(const fleet_tensor *x, float alpha, fleet_tensor *out)
{
    const fleet_tensor *in[] = {x};
    return run(FLEET__EW_LEAKY_RELU, "fleet_leaky_relu", in, alpha, 0.0f, out);
}

fleet_status fleet_clip(const fleet_tensor *x, float lo, float hi, fleet_tensor *out)
{
    FLEET_CHECK_ARG(!(lo > hi), FLEET_ERR_INVALID_ARGUMENT, "fleet_clip: min %g > max %g",
                    (double)lo, (double)hi);
    const fleet_tensor *in[] = {x};
    return run(FLEET__EW_CLIP, "fleet_clip", in, lo, hi, out);
}

fleet_status fleet_where(const fleet_tensor *cond, const fleet_tensor *a, const fleet_tensor *b,
                         fleet_tensor *out)
{
    const fleet_tensor *in[] = {cond, a, b};
    return run(FLEET__EW_WHERE, "fleet_where", in, 0.0f, 0.0f, out);
}
