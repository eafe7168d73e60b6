/* ops/rowwise.c — softmax, layer norm, sum and mean: ops that work along one
 * dimension of x, row by row.
 *
 * Each lowers to one fleet__rowwise_args: the reduced (or normalised)
 * dimension becomes the row, of length n with its own stride in x and out;
 * the other dimensions become views of the row starts in x and out, of one
 * shape, coalesced like the elementwise ops' views. So inputs and outputs may
 * be any strided views (transposed, sliced, permuted) and no copy is made.
 * Checks come in the order every op uses: handles, shape rules, then
 * device/dtype (fleet__op_begin), then overlap. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "ops/ops_internal.h"

/* dim in [-ndim, ndim) normalised to [0, ndim). */
/* Row starts of x (all dimensions but `dim`) and of out, whose dimension
 * `dim` is x's (out_dim_kept: softmax, layer norm, keepdim) or missing. */
static void row_views(fleet__rowwise_args *a, const fleet_tensor *x, int dim,
                      const fleet_tensor *out, bool out_dim_kept)
{
    a->n = x->shape[dim];
    a->x_stride = x->strides[dim];
    a->out_stride = out_dim_kept ? out->strides[dim] : 0;
    a->x.data = fleet_tensor_data(x);
    a->out.data = (void *)fleet_tensor_data(out);
    int k = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d == dim)
            continue;
        int od = out_dim_kept || d < dim ? d : d - 1;
        a->x.shape[k] = a->out.shape[k] = x->shape[d];
        a->x.strides[k] = x->strides[d];
        a->out.strides[k] = out->strides[od];
        k++;
    }
    a->x.ndim = a->out.ndim = k;
    fleet__view *vs[] = {&a->out, &a->x};
    fleet__view_coalesce(vs, 2);
}

static fleet_status submit(const fleet__op_call *call, const fleet__rowwise_args *a)
{
    fleet_status st = fleet__backend_require(call->fn, call->device, FLEET__CAN_ROWWISE);
    return st != FLEET_OK ? st : fleet__backend_rowwise(call->device, call->native, a);
}

/* softmax and log-softmax: out (x's shape) along dim; in place allowed. */
static fleet_status softmax(fleet__row_op op, const char *fn, const fleet_tensor *x_h, int dim,
                            fleet_tensor *out_h)
{
    const fleet_tensor *ts[] = {x_h, out_h};
    static const char *const names[] = {"x", "out"};
    fleet_status st = fleet__op_enter_all(fn, ts, names, 2);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *x = ts[0];
    fleet_tensor *out = (fleet_tensor *)ts[1];
    int d;
    fleet__dims dx = FLEET__DIMS(x), got = FLEET__DIMS(out);
    if ((st = fleet__shape_dim(fn, x->ndim, dim, &d)) != FLEET_OK ||
        (st = fleet__out_distinct(fn, out)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &dx, "x's shape")) != FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, 2, FLEET__OP_HALF_ON_CUDA)) != FLEET_OK)
        return st;
    if ((st = fleet__check_in_place(fn, out, x, "x")) != FLEET_OK)
        return st;
    return op == FLEET__ROW_SOFTMAX ? fleet__op_softmax(&call, x, d, out)
                                    : fleet__op_log_softmax(&call, x, d, out);
}

fleet_status fleet_softmax(const fleet_tensor *x, int dim, fleet_tensor *out)
{
    return softmax(FLEET__ROW_SOFTMAX, "fleet_softmax", x, dim, out);
}

fleet_status fleet_log_softmax(const fleet_tensor *x, int dim, fleet_tensor *out)
{
    return softmax(FLEET__ROW_LOG_SOFTMAX, "fleet_log_softmax", x, dim, out);
}

static fleet_status along(const fleet__op_call *call, fleet__row_op op, const fleet_tensor *x,
                          int dim, fleet_tensor *out)
{
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;
    fleet__rowwise_args a;
    memset(&a, 0, sizeof a);
    a.op = op;
    a.dtype = x->dtype;
    row_views(&a, x, dim, out, true);
    return submit(call, &a);
}

fleet_status fleet__op_softmax(const fleet__op_call *call, const fleet_tensor *x, int dim,
                               fleet_tensor *out)
{
    return along(call, FLEET__ROW_SOFTMAX, x, dim, out);
}

fleet_status fleet__op_log_softmax(const fleet__op_call *call, const fleet_tensor *x, int dim,
                                   fleet_tensor *out)
{
    return along(call, FLEET__ROW_LOG_SOFTMAX, x, dim, out);
}

fleet_status fleet_layer_norm(const fleet_tensor *x_h, const fleet_tensor *gamma_h,
                              const fleet_tensor *beta_h, float eps, fleet_tensor *out_h)
{
    static const char fn[] = "fleet_layer_norm";
    const fleet_tensor *ts[4] = {x_h, out_h};
    const char *names[4] = {"x", "out"};
    int n = 2, gi = -1, bi = -1;
    if (gamma_h != NULL) {
        gi = n;
        ts[n] = gamma_h;
        names[n++] = "gamma";
    }
    if (beta_h != NULL) {
        bi = n;
        ts[n] = beta_h;
        names[n++] = "beta";
    }
    fleet_status st = fleet__op_enter_all(fn, ts, names, n);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *x = ts[0], *gamma = gi >= 0 ? ts[gi] : NULL, *beta = bi >= 0 ? ts[bi] : NULL;
    fleet_tensor *out = (fleet_tensor *)ts[1];
    fleet__dims dx = FLEET__DIMS(x), got = FLEET__DIMS(out), want;
    fleet__dims dg = gamma != NULL ? FLEET__DIMS(gamma) : dx;
    fleet__dims db = beta != NULL ? FLEET__DIMS(beta) : dx;
    if ((st = fleet__shape_layer_norm(fn, &dx, gamma != NULL ? &dg : NULL,
                                      beta != NULL ? &db : NULL, &want)) != FLEET_OK)
        return st;
    if (!(eps >= 0.0f))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: eps %g must be >= 0", fn,
                            (double)eps);
    if ((st = fleet__out_distinct(fn, out)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &want, "x's shape")) != FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, n, FLEET__OP_HALF_ON_CUDA)) != FLEET_OK)
        return st;
    if ((st = fleet__check_in_place(fn, out, x, "x")) != FLEET_OK)
        return st;
    for (int i = 2; i < n; i++)
        if (fleet__overlaps(out, ts[i]))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps %s", fn, names[i]);
    return fleet__op_layer_norm(&call, x, gamma, beta, eps, out);
}

fleet_status fleet__op_layer_norm(const fleet__op_call *call, const fleet_tensor *x,
                                  const fleet_tensor *gamma, const fleet_tensor *beta, float eps,
                                  fleet_tensor *out)
{
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;
    fleet__rowwise_args a;
    memset(&a, 0, sizeof a);
    a.op = FLEET__ROW_LAYER_NORM;
    a.dtype = x->dtype;
    a.eps = eps;
    if (gamma != NULL) {
        a.gamma = fleet_tensor_data(gamma);
        a.gamma_stride = gamma->strides[0];
    }
    if (beta != NULL) {
        a.beta = fleet_tensor_data(beta);
        a.beta_stride = beta->strides[0];
    }
    row_views(&a, x, x->ndim - 1, out, true);
    return submit(call, &a);
}

static fleet_status reduce(fleet__row_op op, const char *fn, const fleet_tensor *x_h, int dim,
                           int keepdim, fleet_tensor *out_h)
{
    const fleet_tensor *ts[] = {x_h, out_h};
    static const char *const names[] = {"x", "out"};
    fleet_status st = fleet__op_enter_all(fn, ts, names, 2);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *x = ts[0];
    fleet_tensor *out = (fleet_tensor *)ts[1];
    int d;
    fleet__dims dx = FLEET__DIMS(x), got = FLEET__DIMS(out), want;
    if ((st = fleet__shape_reduce(fn, &dx, dim, keepdim != 0, &want, &d)) != FLEET_OK ||
        (st = fleet__out_distinct(fn, out)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &want,
                                  keepdim ? "x's shape with dim set to 1"
                                          : "x's shape without dim")) != FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, 2, FLEET__OP_HALF_ON_CUDA)) != FLEET_OK)
        return st;
    if (fleet__overlaps(out, x))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps x", fn);
    return fleet__op_reduce(&call, op, x, d, keepdim != 0, out);
}

fleet_status fleet__op_reduce(const fleet__op_call *call, fleet__row_op op, const fleet_tensor *x,
                              int dim, bool keepdim, fleet_tensor *out)
{
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;
    fleet__rowwise_args a;
    memset(&a, 0, sizeof a);
    a.op = op;
    a.dtype = x->dtype;
    row_views(&a, x, dim, out, keepdim);
    return submit(call, &a);
}

fleet_status fleet_sum(const fleet_tensor *x, int dim, int keepdim, fleet_tensor *out)
{
    return reduce(FLEET__ROW_SUM, "fleet_sum", x, dim, keepdim, out);
}

fleet_status fleet_mean(const fleet_tensor *x, int dim, int keepdim, fleet_tensor *out)
{
    return reduce(FLEET__ROW_MEAN, "fleet_mean", x, dim, keepdim, out);
}

fleet_status fleet_max(const fleet_tensor *x, int dim, int keepdim, fleet_tensor *out)
{
    return reduce(FLEET__ROW_MAX, "fleet_max", x, dim, keepdim, out);
}
