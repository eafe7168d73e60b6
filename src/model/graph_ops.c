/* model/graph_ops.c — the op builders: each takes its operands' values,
 * runs the op's shape rule (tensor/shape.h) over their symbolic shapes,
 * checks the dtypes — refused here, at build time, when the model's device
 * cannot run them — and adds one node (a composite op, several).
 *
 * Every check that the compiled plan relies on is made here: a step then
 * calls its op's internal entry without re-checking (model/run.c). */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "model/graph.h"
#include "ops/ops_internal.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"

#define B FLEET_DIM_BATCH

/* ---- shared checks --------------------------------------------------------------- */

/* v's dims, or NULL for an absent optional operand (into *store). */
static const fleet__dims *dims_or_null(const fleet__value *v, fleet__dims *store)
{
    if (v == NULL)
        return NULL;
    *store = FLEET__DIMS(v);
    return store;
}

/* The present operands all of vs[0]'s dtype. */
static fleet_status same_dtype(const char *fn, const fleet__value *const *vs, int n)
{
    for (int i = 1; i < n; i++)
        if (vs[i] != NULL && vs[i]->dtype != vs[0]->dtype)
            return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: operands are %s and %s", fn,
                                fleet_dtype_name(vs[0]->dtype), fleet_dtype_name(vs[i]->dtype));
    return FLEET_OK;
}

/* What the arithmetic ops run in: f32, and f16/bf16 on cuda (half_ok). */
static fleet_status arithmetic(const fleet_model *m, const char *fn, fleet_dtype dtype,
                               bool half_ok)
{
    return fleet__op_dtype_supported(fn, m->device, dtype, half_ok ? FLEET__OP_HALF_ON_CUDA : 0u);
}

static fleet_status add(fleet_model *m, const char *fn, const fleet__node *n, fleet_dtype dtype,
                        const fleet__dims *r, fleet_value *out)
{
    return fleet__model_add_node(m, fn, n, dtype, r->ndim, r->d, out);
}

/* ---- matrix products ---------------------------------------------------------------- */

fleet_status fleet_model_linear(fleet_model *model, fleet_value x, fleet_value weight,
                                fleet_value bias, fleet_value *out)
{
    static const char fn[] = "fleet_model_linear";
    const fleet_value ids[] = {x, weight, bias};
    const fleet__value *v[3];
    fleet_status st = fleet__model_op_begin(model, fn, out, ids, 3, 4u, v);
    if (st != FLEET_OK || (st = same_dtype(fn, v, 3)) != FLEET_OK)
        return st;
    fleet__dims dx = FLEET__DIMS(v[0]), dw = FLEET__DIMS(v[1]), db, r;
    fleet_dtype dt = v[0]->dtype;
    if ((st = fleet__shape_linear(fn, &dx, &dw, dims_or_null(v[2], &db), &r)) != FLEET_OK ||
        (st = arithmetic(model, fn, dt, true)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_LINEAR, .n_in = 3, .in = {x, weight, bias}};
    return add(model, fn, &n, dt, &r, out);
}

fleet_status fleet_model_matmul(fleet_model *model, fleet_value a, fleet_value b, float alpha,
                                fleet_value *out)
{
    static const char fn[] = "fleet_model_matmul";
    const fleet_value ids[] = {a, b};
    const fleet__value *v[2];
    fleet_status st = fleet__model_op_begin(model, fn, out, ids, 2, 0u, v);
    if (st != FLEET_OK || (st = same_dtype(fn, v, 2)) != FLEET_OK)
        return st;
    fleet__dims da = FLEET__DIMS(v[0]), db = FLEET__DIMS(v[1]), r;
    fleet_dtype dt = v[0]->dtype;
    if ((st = fleet__shape_matmul(fn, &da, &db, &r)) != FLEET_OK ||
        (st = arithmetic(model, fn, dt, true)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_MATMUL, .n_in = 2, .in = {a, b}, .attr.alpha = alpha};
    return add(model, fn, &n, dt, &r, out);
}

/* ---- elementwise ---------------------------------------------------------------------- */

/* Any elementwise op: in[] holds x; a, b; or cond, a, b (WHERE); to is
 * CAST's target dtype. The eager op's rules (ops/elementwise.c). */
static fleet_status ew(fleet_model *m, const char *fn, fleet__ew_op op, const fleet_value *in,
                       float alpha, float beta, fleet_dtype to, fleet_value *out)
{
    int arity = fleet__ew_arity(op);
    const fleet__value *v[3];
    fleet_status st = fleet__model_op_begin(m, fn, out, in, arity, 0u, v);
    if (st != FLEET_OK)
        return st;
    static const char *const names1[] = {"x"}, *const names2[] = {"a", "b"};
    static const char *const names3[] = {"cond", "a", "b"};
    const char *const *names = arity == 1 ? names1 : arity == 2 ? names2 : names3;
    fleet__dims r = FLEET__DIMS(v[0]);
    for (int i = 1; i < arity && st == FLEET_OK; i++) {
        fleet__dims acc = r, di = FLEET__DIMS(v[i]);
        st = fleet__shape_broadcast(fn, &acc, i == 1 ? names[0] : "the others", &di, names[i],
                                    &r);
    }
    if (st != FLEET_OK)
        return st;
    const fleet__value *a = v[arity == 3 ? 1 : 0], *b = arity >= 2 ? v[arity - 1] : NULL;
    fleet_dtype vd = a->dtype;
    if (b != NULL && b->dtype != vd)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: a is %s, b is %s", fn,
                            fleet_dtype_name(vd), fleet_dtype_name(b->dtype));
    if (arity == 3 && v[0]->dtype != FLEET_DTYPE_BOOL)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: cond must be bool, got %s", fn,
                            fleet_dtype_name(v[0]->dtype));
    fleet_dtype od = op == FLEET__EW_CAST ? to
                     : fleet__ew_is_compare(op) ? FLEET_DTYPE_BOOL
                                                : vd;
    if ((st = fleet__op_ew_dtype_supported(fn, m->device, op, vd)) != FLEET_OK ||
        (st = fleet__backend_require_elementwise(fn, m->device, op, vd, od)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_ELEMENTWISE, .n_in = arity,
                     .attr.ew = {.op = op, .alpha = alpha, .beta = beta}};
    memcpy(n.in, in, sizeof(fleet_value) * (size_t)arity);
    return add(m, fn, &n, od, &r, out);
}

#define UNARY(name, op)                                                                  \
    fleet_status fleet_model_##name(fleet_model *model, fleet_value x, fleet_value *out)   \
    {                                                                                    \
        const fleet_value in[] = {x};                                                    \
        return ew(model, "fleet_model_" #name, op, in, 0.0f, 0.0f, 0, out);              \
    }
#define BINARY(name, op)                                                                 \
    fleet_status fleet_model_##name(fleet_model *model, fleet_value a, fleet_value b,     \
                                    fleet_value *out)                                    \
    {                                                                                    \
        const fleet_value in[] = {a, b};                                                 \
        return ew(model, "fleet_model_" #name, op, in, 0.0f, 0.0f, 0, out);              \
    }

FLEET__EW_UNARY_OPS(UNARY)
FLEET__EW_BINARY_OPS(BINARY)

#undef UNARY
#undef BINARY

fleet_status fleet_model_leaky_relu(fleet_model *model, fleet_value x, float alpha,
                                    fleet_value *out)
{
    const fleet_value in[] = {x};
    return ew(model, "fleet_model_leaky_relu", FLEET__EW_LEAKY_RELU, in, alpha, 0.0f, 0, out);
}

fleet_status fleet_model_clip(fleet_model *model, fleet_value x, float lo, float hi,
                              fleet_value *out)
{
    FLEET_CHECK_ARG(!(lo > hi), FLEET_ERR_INVALID_ARGUMENT, "fleet_model_clip: min %g > max %g",
                    (double)lo, (double)hi);
    const fleet_value in[] = {x};
    return ew(model, "fleet_model_clip", FLEET__EW_CLIP, in, lo, hi, 0, out);
}

fleet_status fleet_model_where(fleet_model *model, fleet_value cond, fleet_value a, fleet_value b,
                               fleet_value *out)
{
    const fleet_value in[] = {cond, a, b};
    return ew(model, "fleet_model_where", FLEET__EW_WHERE, in, 0.0f, 0.0f, 0, out);
}

fleet_status fleet_model_cast(fleet_model *model, fleet_value x, fleet_dtype dtype,
                              fleet_value *out)
{
    FLEET_CHECK_ARG(fleet_dtype_size(dtype) != 0, FLEET_ERR_INVALID_ARGUMENT,
                    "fleet_model_cast: unknown dtype %d", (int)dtype);
    const fleet_value in[] = {x};
    return ew(model, "fleet_model_cast", FLEET__EW_CAST, in, 0.0f, 0.0f, dtype, out);
}

/* ---- along one dimension ----------------------------------------------------------- */

static fleet_status rowwise(fleet_model *m, const char *fn, fleet__row_op op, fleet_value x,
                            int dim, int keepdim, fleet_value *out)
{
    const fleet__value *v;
    fleet_status st = fleet__model_op_begin(m, fn, out, &x, 1, 0u, &v);
    if (st != FLEET_OK)
        return st;
    fleet__dims dx = FLEET__DIMS(v), r = dx;
    fleet_dtype dt = v->dtype;
    int d;
    bool keeps = op == FLEET__ROW_SOFTMAX || op == FLEET__ROW_LOG_SOFTMAX;
    st = keeps ? fleet__shape_dim(fn, v->ndim, dim, &d)
               : fleet__shape_reduce(fn, &dx, dim, keepdim != 0, &r, &d);
    if (st != FLEET_OK || (st = arithmetic(m, fn, dt, true)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_ROWWISE, .n_in = 1, .in = {x},
                     .attr.row = {.op = op, .dim = d, .keepdim = keepdim != 0}};
    return add(m, fn, &n, dt, &r, out);
}

fleet_status fleet_model_softmax(fleet_model *model, fleet_value x, int dim, fleet_value *out)
{
    return rowwise(model, "fleet_model_softmax", FLEET__ROW_SOFTMAX, x, dim, 1, out);
}

fleet_status fleet_model_log_softmax(fleet_model *model, fleet_value x, int dim,
                                     fleet_value *out)
{
    return rowwise(model, "fleet_model_log_softmax", FLEET__ROW_LOG_SOFTMAX, x, dim, 1, out);
}

fleet_status fleet_model_sum(fleet_model *model, fleet_value x, int dim, int keepdim,
                             fleet_value *out)
{
    return rowwise(model, "fleet_model_sum", FLEET__ROW_SUM, x, dim, keepdim, out);
}

fleet_status fleet_model_mean(fleet_model *model, fleet_value x, int dim, int keepdim,
                              fleet_value *out)
{
    return rowwise(model, "fleet_model_mean", FLEET__ROW_MEAN, x, dim, keepdim, out);
}

fleet_status fleet_model_max(fleet_model *model, fleet_value x, int dim, int keepdim,
                             fleet_value *out)
{
    return rowwise(model, "fleet_model_max", FLEET__ROW_MAX, x, dim, keepdim, out);
}

fleet_status fleet_model_layer_norm(fleet_model *model, fleet_value x, fleet_value gamma,
                                    fleet_value beta, float eps, fleet_value *out)
{
    static const char fn[] = "fleet_model_layer_norm";
    const fleet_value ids[] = {x, gamma, beta};
    const fleet__value *v[3];
    fleet_status st = fleet__model_op_begin(model, fn, out, ids, 3, 6u, v); /* gamma, beta optional */
    if (st != FLEET_OK || (st = same_dtype(fn, v, 3)) != FLEET_OK)
        return st;
    fleet__dims dx = FLEET__DIMS(v[0]), dg, db, r;
    fleet_dtype dt = v[0]->dtype;
    if ((st = fleet__shape_layer_norm(fn, &dx, dims_or_null(v[1], &dg), dims_or_null(v[2], &db),
                                      &r)) != FLEET_OK ||
        (st = arithmetic(model, fn, dt, true)) != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(eps >= 0.0f, FLEET_ERR_INVALID_ARGUMENT, "%s: eps must be >= 0", fn);
    fleet__node n = {.op = FLEET__NODE_LAYER_NORM, .n_in = 3, .in = {x, gamma, beta},
                     .attr.eps = eps};
    return add(model, fn, &n, dt, &r, out);
}

/* ---- convolution and pooling ------------------------------------------------------- */

static fleet_status conv(fleet_model *m, const char *fn, int sp, fleet_value x, fleet_value weight,
                         fleet_value bias, const fleet__window *win, int64_t groups,
                         fleet_value *out)
{
    const fleet_value ids[] = {x, weight, bias};
    const fleet__value *v[3];
    fleet_status st = fleet__model_op_begin(m, fn, out, ids, 3, 4u, v);
    if (st != FLEET_OK || (st = same_dtype(fn, v, 3)) != FLEET_OK)
        return st;
    fleet__dims dx = FLEET__DIMS(v[0]), dw = FLEET__DIMS(v[1]), db, r;
    fleet_dtype dt = v[0]->dtype;
    if ((st = fleet__shape_conv(fn, sp, &dx, &dw, dims_or_null(v[2], &db), win, groups, &r)) !=
            FLEET_OK ||
        (st = arithmetic(m, fn, dt, false)) != FLEET_OK ||
        (st = fleet__backend_require(fn, m->device, FLEET__CAN_IM2COL)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_CONV, .n_in = 3, .in = {x, weight, bias},
                     .attr.conv = {.sp = sp, .groups = groups}};
    for (int k = 0; k < sp; k++) {
        n.attr.conv.stride[k] = win[k].stride;
        n.attr.conv.pad[k] = win[k].pad_begin;
        n.attr.conv.dil[k] = win[k].dilation;
    }
    return add(m, fn, &n, dt, &r, out);
}

fleet_status fleet_model_conv1d(fleet_model *model, fleet_value x, fleet_value weight,
                                fleet_value bias, int64_t stride, int64_t padding,
                                int64_t dilation, fleet_value *out)
{
    fleet__window win = {.stride = stride, .pad_begin = padding, .pad_end = padding,
                         .dilation = dilation};
    return conv(model, "fleet_model_conv1d", 1, x, weight, bias, &win, 1, out);
}

fleet_status fleet_model_conv2d(fleet_model *model, fleet_value x, fleet_value weight,
                                fleet_value bias, const fleet_conv2d_params *p, fleet_value *out)
{
    static const char fn[] = "fleet_model_conv2d";
    FLEET_CHECK_ARG(p != NULL, FLEET_ERR_NULL_POINTER, "%s: params is NULL", fn);
    fleet__window win[2];
    for (int k = 0; k < 2; k++)
        win[k] = (fleet__window){.stride = p->stride[k], .pad_begin = p->pad_begin[k],
                                 .pad_end = p->pad_end[k], .dilation = p->dilation[k]};
    return conv(model, fn, 2, x, weight, bias, win, p->groups, out);
}

static fleet_status pool(fleet_model *m, const char *fn, fleet__pool_op op, fleet_value x,
                         const fleet_pool2d_params *p, fleet_value *out)
{
    const fleet__value *v;
    fleet_status st = fleet__model_op_begin(m, fn, out, &x, 1, 0u, &v);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(p != NULL, FLEET_ERR_NULL_POINTER, "%s: params is NULL", fn);
    FLEET_CHECK_ARG(op == FLEET__POOL_MAX || !p->count_include_pad ||
                        (p->dilation[0] == 1 && p->dilation[1] == 1),
                    FLEET_ERR_INVALID_ARGUMENT, "%s: count_include_pad takes no dilation", fn);
    fleet__window win[2];
    for (int k = 0; k < 2; k++)
        win[k] = (fleet__window){.kernel = p->kernel[k], .stride = p->stride[k],
                                 .pad_begin = p->pad_begin[k], .pad_end = p->pad_end[k],
                                 .dilation = p->dilation[k], .ceil_mode = p->ceil_mode != 0};
    fleet__dims dx = FLEET__DIMS(v), r;
    fleet_dtype dt = v->dtype;
    if ((st = fleet__shape_pool(fn, 2, &dx, win, &r)) != FLEET_OK ||
        (st = arithmetic(m, fn, dt, false)) != FLEET_OK ||
        (st = fleet__backend_require(fn, m->device, FLEET__CAN_POOL)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_POOL, .n_in = 1, .in = {x},
                     .attr.pool = {.op = op, .p = *p}};
    return add(m, fn, &n, dt, &r, out);
}

fleet_status fleet_model_max_pool2d(fleet_model *model, fleet_value x,
                                    const fleet_pool2d_params *params, fleet_value *out)
{
    return pool(model, "fleet_model_max_pool2d", FLEET__POOL_MAX, x, params, out);
}

fleet_status fleet_model_avg_pool2d(fleet_model *model, fleet_value x,
                                    const fleet_pool2d_params *params, fleet_value *out)
{
    return pool(model, "fleet_model_avg_pool2d", FLEET__POOL_AVG, x, params, out);
}

/* ---- gathers and joins --------------------------------------------------------------- */

static fleet_status gather(fleet_model *m, const char *fn, bool embedding, fleet_value x,
                           fleet_value indices, int axis, fleet_value *out)
{
    const fleet_value ids[] = {x, indices};
    const fleet__value *v[2];
    fleet_status st = fleet__model_op_begin(m, fn, out, ids, 2, 0u, v);
    if (st != FLEET_OK)
        return st;
    if (v[1]->dtype != FLEET_DTYPE_I32 && v[1]->dtype != FLEET_DTYPE_I64)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: indices must be i32 or i64, got %s", fn,
                            fleet_dtype_name(v[1]->dtype));
    fleet__dims dx = FLEET__DIMS(v[0]), di = FLEET__DIMS(v[1]), r;
    fleet_dtype dt = v[0]->dtype;
    int d = 0;
    st = embedding ? fleet__shape_embedding(fn, &dx, &di, &r)
                   : fleet__shape_gather(fn, &dx, &di, axis, &r, &d);
    if (st != FLEET_OK || (st = fleet__backend_require(fn, m->device, FLEET__CAN_GATHER)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_GATHER, .n_in = 2, .in = {x, indices},
                     .attr.gather = {.axis = d, .wrap_negative = !embedding}};
    return add(m, fn, &n, dt, &r, out);
}

fleet_status fleet_model_embedding(fleet_model *model, fleet_value weight, fleet_value indices,
                                   fleet_value *out)
{
    return gather(model, "fleet_model_embedding", true, weight, indices, 0, out);
}

fleet_status fleet_model_gather(fleet_model *model, fleet_value x, fleet_value indices, int axis,
                                fleet_value *out)
{
    return gather(model, "fleet_model_gather", false, x, indices, axis, out);
}

/* At most FLEET__NODE_MAX_IN parts per node: more become a tree. */
fleet_status fleet_model_concat(fleet_model *model, const fleet_value *inputs, int n, int dim,
                                fleet_value *out)
{
    static const char fn[] = "fleet_model_concat";
    fleet_status st = fleet__model_enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(inputs != NULL && out != NULL, FLEET_ERR_NULL_POINTER, "%s: NULL argument",
                    fn);
    FLEET_CHECK_ARG(n >= 1, FLEET_ERR_INVALID_ARGUMENT, "%s: n is %d, need at least 1 part", fn,
                    n);
    fleet_value acc = inputs[0];
    for (int at = 1 - (n == 1); at < n;) { /* one node per up to 8 parts */
        fleet_value parts[FLEET__NODE_MAX_IN];
        int k = 0;
        parts[k++] = acc;
        while (k < FLEET__NODE_MAX_IN && at < n)
            parts[k++] = inputs[at++];
        if (n == 1)
            at = 1;
        const fleet__value *v[FLEET__NODE_MAX_IN];
        fleet__dims dims[FLEET__NODE_MAX_IN], r;
        if ((st = fleet__model_op_begin(model, fn, out, parts, k, 0u, v)) != FLEET_OK ||
            (st = same_dtype(fn, v, k)) != FLEET_OK)
            return st;
        for (int i = 0; i < k; i++)
            dims[i] = FLEET__DIMS(v[i]);
        int d;
        fleet_dtype dt = v[0]->dtype;
        if ((st = fleet__shape_concat(fn, dims, k, dim, &r, &d)) != FLEET_OK)
            return st;
        fleet__node node = {.op = FLEET__NODE_CONCAT, .n_in = k, .attr.dim = d};
        memcpy(node.in, parts, sizeof(fleet_value) * (size_t)k);
        if ((st = add(model, fn, &node, dt, &r, &acc)) != FLEET_OK)
            return st;
    }
    *out = acc;
    return FLEET_OK;
}

/* ---- views ------------------------------------------------------------------------------ */

/* A target shape given by the caller (reshape, expand): ndim in range, dims
 * >= 0 or -k (k times the batch, k up to 2^30). */
static fleet_status shape_arg(const char *fn, int ndim, const int64_t *shape)
{
    FLEET_CHECK_ARG(ndim >= 0 && ndim <= FLEET_MAX_DIMS, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: ndim %d is outside 0..%d", fn, ndim, FLEET_MAX_DIMS);
    FLEET_CHECK_ARG(ndim == 0 || shape != NULL, FLEET_ERR_NULL_POINTER, "%s: shape is NULL", fn);
    for (int d = 0; d < ndim; d++)
        FLEET_CHECK_ARG(shape[d] >= -((int64_t)1 << 30), FLEET_ERR_INVALID_ARGUMENT,
                        "%s: dimension %d is %lld (sizes are >= 0, or -k: k times the batch)", fn,
                        d, (long long)shape[d]);
    return FLEET_OK;
}

fleet_status fleet_model_reshape(fleet_model *model, fleet_value x, int ndim, const int64_t *shape,
                                 fleet_value *out)
{
    static const char fn[] = "fleet_model_reshape";
    const fleet__value *v;
    fleet_status st = fleet__model_op_begin(model, fn, out, &x, 1, 0u, &v);
    if (st != FLEET_OK)
        return st;
    if ((st = shape_arg(fn, ndim, shape)) != FLEET_OK)
        return st;
    fleet__dims dx = FLEET__DIMS(v), to = fleet__dims_of(ndim, shape);
    fleet_dtype dt = v->dtype;
    if ((st = fleet__shape_reshape(fn, &dx, &to)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_RESHAPE, .n_in = 1, .in = {x}};
    return add(model, fn, &n, dt, &to, out);
}

fleet_status fleet_model_permute(fleet_model *model, fleet_value x, const int *dims,
                                 fleet_value *out)
{
    static const char fn[] = "fleet_model_permute";
    const fleet__value *v;
    fleet_status st = fleet__model_op_begin(model, fn, out, &x, 1, 0u, &v);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(dims != NULL || v->ndim == 0, FLEET_ERR_NULL_POINTER, "%s: dims is NULL", fn);
    fleet__node n = {.op = FLEET__NODE_PERMUTE, .n_in = 1, .in = {x}};
    if (v->ndim > 0)
        memcpy(n.attr.perm, dims, sizeof(int) * (size_t)v->ndim);
    fleet__dims dx = FLEET__DIMS(v), r;
    fleet_dtype dt = v->dtype;
    if ((st = fleet__shape_permute(fn, &dx, n.attr.perm, &r)) != FLEET_OK)
        return st;
    return add(model, fn, &n, dt, &r, out);
}

fleet_status fleet_model_transpose(fleet_model *model, fleet_value x, int dim0, int dim1,
                                   fleet_value *out)
{
    static const char fn[] = "fleet_model_transpose";
    const fleet__value *v;
    fleet_status st = fleet__model_op_begin(model, fn, out, &x, 1, 0u, &v);
    if (st != FLEET_OK)
        return st;
    if ((st = fleet__shape_dim(fn, v->ndim, dim0, &dim0)) != FLEET_OK ||
        (st = fleet__shape_dim(fn, v->ndim, dim1, &dim1)) != FLEET_OK)
        return st;
    int dims[FLEET_MAX_DIMS];
    for (int d = 0; d < v->ndim; d++)
        dims[d] = d;
    dims[dim0] = dim1;
    dims[dim1] = dim0;
    return fleet_model_permute(model, x, dims, out);
}

fleet_status fleet_model_slice(fleet_model *model, fleet_value x, int dim, int64_t start,
                               int64_t end, int64_t step, fleet_value *out)
{
    static const char fn[] = "fleet_model_slice";
    const fleet__value *v;
    fleet_status st = fleet__model_op_begin(model, fn, out, &x, 1, 0u, &v);
    if (st != FLEET_OK)
        return st;
    fleet__dims dx = FLEET__DIMS(v), r;
    fleet_dtype dt = v->dtype;
    int d;
    int64_t first;
    if ((st = fleet__shape_slice(fn, &dx, dim, start, end, step, &r, &d, &first)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_SLICE, .n_in = 1, .in = {x}};
    for (int k = 0; k < dx.ndim; k++)
        n.attr.slice.step[k] = 1;
    n.attr.slice.start[d] = first;
    n.attr.slice.step[d] = step;
    return add(model, fn, &n, dt, &r, out);
}

fleet_status fleet_model_expand(fleet_model *model, fleet_value x, int ndim, const int64_t *shape,
                                fleet_value *out)
{
    static const char fn[] = "fleet_model_expand";
    const fleet__value *v;
    fleet_status st = fleet__model_op_begin(model, fn, out, &x, 1, 0u, &v);
    if (st != FLEET_OK)
        return st;
    if ((st = shape_arg(fn, ndim, shape)) != FLEET_OK)
        return st;
    fleet__dims dx = FLEET__DIMS(v), to = fleet__dims_of(ndim, shape), r;
    fleet_dtype dt = v->dtype;
    if ((st = fleet__shape_broadcast(fn, &dx, "x", &to, "shape", &r)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_EXPAND, .n_in = 1, .in = {x}};
    return add(model, fn, &n, dt, &r, out);
}

fleet_status fleet_model_range(fleet_model *model, fleet_dtype dtype, double start,
                               double delta, int64_t length, fleet_value *out)
{
    static const char fn[] = "fleet_model_range";
    fleet_status st = fleet__model_op_begin(model, fn, out, NULL, 0, 0u, NULL);
    if (st != FLEET_OK)
        return st;
    bool integer = dtype == FLEET_DTYPE_I32 || dtype == FLEET_DTYPE_I64;
    FLEET_CHECK_ARG(integer || dtype == FLEET_DTYPE_F32, FLEET_ERR_UNSUPPORTED,
                    "%s: a range of %s (f32, i32 or i64)", fn, fleet_dtype_name(dtype));
    const double exact = 9007199254740992.0; /* 2^53 */
    FLEET_CHECK_ARG(isfinite(start) && isfinite(delta) &&
                        (!integer || (start == floor(start) && delta == floor(delta) &&
                                      fabs(start) < exact && fabs(delta) < exact)),
                    FLEET_ERR_INVALID_ARGUMENT, "%s: start %g and delta %g must be finite%s", fn,
                    start, delta, integer ? " integers below 2^53" : "");
    if ((st = shape_arg(fn, 1, &length)) != FLEET_OK ||
        (st = fleet__backend_require(fn, model->device, FLEET__CAN_GATHER)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_RANGE, .attr.range = {.start = start, .delta = delta}};
    return fleet__model_add_node(model, fn, &n, dtype, 1, &length, out);
}

/* ---- composites ---------------------------------------------------------------------------- */

fleet_status fleet_model_attention_masked(fleet_model *model, fleet_value q, fleet_value k,
                                          fleet_value v, fleet_value mask, float scale,
                                          fleet_value *out)
{
    static const char fn[] = "fleet_model_attention";
    const fleet_value ids[] = {q, k, v, mask};
    const fleet__value *vs[4];
    fleet_status st = fleet__model_op_begin(model, fn, out, ids, 4, 8u, vs);
    if (st != FLEET_OK || (st = same_dtype(fn, vs, 4)) != FLEET_OK)
        return st;
    fleet__dims dq = FLEET__DIMS(vs[0]), dk = FLEET__DIMS(vs[1]), dv = FLEET__DIMS(vs[2]), dm, r;
    if ((st = fleet__shape_attention(fn, &dq, &dk, &dv, dims_or_null(vs[3], &dm), NULL, &r)) !=
        FLEET_OK)
        return st;
    int64_t d = dq.d[dq.ndim - 1];
    if (!(scale > 0.0f)) {
        if (fleet__dim_symbolic(d))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                "%s: give a scale when D is the batch dimension", fn);
        scale = 1.0f / sqrtf((float)(d > 0 ? d : 1));
    }
    fleet_value kt, scores, probs;
    if ((st = fleet_model_transpose(model, k, -2, -1, &kt)) != FLEET_OK ||
        (st = fleet_model_matmul(model, q, kt, scale, &scores)) != FLEET_OK ||
        (mask != FLEET_NO_VALUE &&
         (st = fleet_model_add(model, scores, mask, &scores)) != FLEET_OK) ||
        (st = fleet_model_softmax(model, scores, -1, &probs)) != FLEET_OK ||
        (st = fleet_model_matmul(model, probs, v, 1.0f, out)) != FLEET_OK)
        return fleet__error_prefix(st, fn);
    return FLEET_OK;
}

/* A scalar constant of an integer dtype. */
static fleet_status int_constant(fleet_model *m, fleet_dtype dt, int64_t v, fleet_value *out)
{
    int32_t v32 = (int32_t)v;
    return fleet_model_constant(m, dt, 0, NULL, dt == FLEET_DTYPE_I64 ? (const void *)&v
                                                                      : (const void *)&v32, out);
}

/* Component j of indices [..., k] as [...], counted from the front of a
 * dimension of `size` (a number) when negative. */
static fleet_status nd_component(fleet_model *m, fleet_value indices, const fleet__value *vi,
                                 int j, int64_t size, fleet_value *out)
{
    fleet_value c, zero, n, neg, wrapped;
    fleet_status st;
    if ((st = fleet_model_slice(m, indices, -1, j, j + 1, 1, &c)) != FLEET_OK ||
        (st = fleet_model_reshape(m, c, vi->ndim - 1, vi->shape, &c)) != FLEET_OK ||
        (st = int_constant(m, vi->dtype, 0, &zero)) != FLEET_OK ||
        (st = int_constant(m, vi->dtype, size, &n)) != FLEET_OK ||
        (st = fleet_model_less(m, c, zero, &neg)) != FLEET_OK ||
        (st = fleet_model_add(m, c, n, &wrapped)) != FLEET_OK)
        return st;
    return fleet_model_where(m, neg, wrapped, c, out);
}

fleet_status fleet_model_gather_nd(fleet_model *model, fleet_value x, fleet_value indices,
                                   fleet_value *out)
{
    static const char fn[] = "fleet_model_gather_nd";
    const fleet_value ids[] = {x, indices};
    const fleet__value *vs[2];
    fleet_status st = fleet__model_op_begin(model, fn, out, ids, 2, 0u, vs);
    if (st != FLEET_OK)
        return st;
    fleet__value vx = *vs[0], vi = *vs[1]; /* copies: adding nodes moves the values */
    if (vi.dtype != FLEET_DTYPE_I32 && vi.dtype != FLEET_DTYPE_I64)
        return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: indices must be i32 or i64, got %s", fn,
                            fleet_dtype_name(vi.dtype));
    int64_t k = vi.ndim > 0 ? vi.shape[vi.ndim - 1] : -1;
    FLEET_CHECK_ARG(vi.ndim >= 1 && k >= 1 && k <= vx.ndim, FLEET_ERR_SHAPE_MISMATCH,
                    "%s: indices' last dimension (%lld) must be 1..%d, x's rank", fn,
                    (long long)k, vx.ndim);
    FLEET_CHECK_ARG(vi.ndim - 1 + vx.ndim - k <= FLEET_MAX_DIMS, FLEET_ERR_SHAPE_MISMATCH,
                    "%s: the result would have more than %d dimensions", fn, FLEET_MAX_DIMS);
    for (int d = 1; d < k; d++)
        FLEET_CHECK_ARG(vx.shape[d] >= 0, FLEET_ERR_UNSUPPORTED,
                        "%s: x's dimension %d is the batch's; only the first may be", fn, d);
    /* lin = sum_j i_j * stride_j (dimension 0 wraps in the gather: its size
     * may be the batch's) */
    fleet_value lin = FLEET_NO_VALUE;
    int64_t stride = 1;
    for (int j = (int)k - 1; j >= 0; j--) {
        fleet_value c, s;
        if (j > 0)
            st = nd_component(model, indices, &vi, j, vx.shape[j], &c);
        else if ((st = fleet_model_slice(model, indices, -1, 0, 1, 1, &c)) == FLEET_OK)
            st = fleet_model_reshape(model, c, vi.ndim - 1, vi.shape, &c);
        if (st == FLEET_OK && stride != 1 &&
            (st = int_constant(model, vi.dtype, stride, &s)) == FLEET_OK)
            st = fleet_model_mul(model, c, s, &c);
        if (st == FLEET_OK && lin != FLEET_NO_VALUE)
            st = fleet_model_add(model, lin, c, &c);
        if (st != FLEET_OK)
            return fleet__error_prefix(st, fn);
        lin = c;
        if (j > 0 && __builtin_mul_overflow(stride, vx.shape[j], &stride))
            return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: x is past 2^63 elements", fn);
    }
    /* x as [d0 * .. * dk-1, rest] */
    int64_t flat[FLEET_MAX_DIMS];
    int nf = 0;
    int64_t d0 = vx.shape[0], lead;
    bool sym0 = d0 < 0;
    if (__builtin_mul_overflow(sym0 ? -d0 : d0, stride, &lead))
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: x is too large", fn);
    flat[nf++] = sym0 ? -lead : lead;
    for (int d = (int)k; d < vx.ndim; d++)
        flat[nf++] = vx.shape[d];
    fleet_value fx;
    if ((st = fleet_model_reshape(model, x, nf, flat, &fx)) != FLEET_OK ||
        (st = fleet_model_gather(model, fx, lin, 0, out)) != FLEET_OK)
        return fleet__error_prefix(st, fn);
    return FLEET_OK;
}

/* acc shifted by `by` along d (length n), zeros coming in at the front. */
static fleet_status shifted(fleet_model *m, fleet_value acc, const fleet__value *v, int d,
                            int64_t n, int64_t by, fleet_value *out)
{
    int64_t zshape[FLEET_MAX_DIMS];
    memcpy(zshape, v->shape, sizeof zshape);
    zshape[d] = by;
    const unsigned char zero[8] = {0};
    fleet_value z, head;
    fleet_status st;
    if ((st = fleet_model_constant(m, v->dtype, 0, NULL, zero, &z)) != FLEET_OK ||
        (st = fleet_model_expand(m, z, v->ndim, zshape, &z)) != FLEET_OK ||
        (st = fleet_model_slice(m, acc, d, 0, n - by, 1, &head)) != FLEET_OK)
        return st;
    const fleet_value parts[] = {z, head};
    return fleet_model_concat(m, parts, 2, d, out);
}

fleet_status fleet_model_cumsum(fleet_model *model, fleet_value x, int dim, int exclusive,
                                fleet_value *out)
{
    static const char fn[] = "fleet_model_cumsum";
    const fleet__value *vp;
    fleet_status st = fleet__model_op_begin(model, fn, out, &x, 1, 0u, &vp);
    if (st != FLEET_OK)
        return st;
    fleet__value v = *vp; /* a copy: adding nodes moves the values */
    int d;
    if ((st = fleet__shape_dim(fn, v.ndim, dim, &d)) != FLEET_OK)
        return st;
    int64_t n = v.shape[d];
    FLEET_CHECK_ARG(n >= 0, FLEET_ERR_UNSUPPORTED, "%s: along the batch's dimension", fn);
    FLEET_CHECK_ARG(v.dtype == FLEET_DTYPE_F32 || v.dtype == FLEET_DTYPE_I32 ||
                        v.dtype == FLEET_DTYPE_I64,
                    FLEET_ERR_UNSUPPORTED, "%s: %s (f32, i32 or i64)", fn,
                    fleet_dtype_name(v.dtype));
    fleet_value acc = x;
    for (int64_t by = 1; by < n && st == FLEET_OK; by *= 2) { /* Hillis-Steele */
        fleet_value s;
        if ((st = shifted(model, acc, &v, d, n, by, &s)) == FLEET_OK)
            st = fleet_model_add(model, acc, s, &acc);
    }
    if (st == FLEET_OK && exclusive && n > 0)
        st = shifted(model, acc, &v, d, n, 1, &acc);
    if (st == FLEET_OK && acc == x) /* n <= 1 and inclusive: the identity */
        st = fleet_model_reshape(model, x, v.ndim, v.shape, &acc);
    if (st != FLEET_OK)
        return fleet__error_prefix(st, fn);
    *out = acc;
    return FLEET_OK;
}

fleet_status fleet_model_attention(fleet_model *model, fleet_value q, fleet_value k, fleet_value v,
                                   float scale, fleet_value *out)
{
    return fleet_model_attention_masked(model, q, k, v, FLEET_NO_VALUE, scale, out);
}
