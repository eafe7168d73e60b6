/* ops/linalg.c — shape rules and dispatch of fleet/linalg.h. Checks run in
 * the order of the header's contract before anything is submitted; then the
 * op's scratch comes from the caching allocator on the caller's stream (and
 * goes back to it right after the submission: stream-ordered reuse keeps it
 * alive until the op ran), the backend queues the op, and the call waits for
 * the stream to read each matrix's factorization status. */
#include <stdlib.h>

#include "core/error.h"
#include "fleet/linalg.h"
#include "ops/ops_internal.h"
#include "core/prim.h"

/* Leading (batch) dimensions of x and y equal, given each has `mat` trailing
 * matrix dimensions. */
static bool same_batch(const fleet_tensor *x, const fleet_tensor *y)
{
    if (x->ndim != y->ndim)
        return false;
    for (int i = 0; i < x->ndim - 2; i++)
        if (x->shape[i] != y->shape[i])
            return false;
    return true;
}

static int64_t batch_of(const fleet_tensor *t)
{
    int64_t b = 1;
    for (int i = 0; i < t->ndim - 2; i++)
        b *= t->shape[i];
    return b;
}

static int64_t rows(const fleet_tensor *t) { return t->shape[t->ndim - 2]; }
static int64_t cols(const fleet_tensor *t) { return t->shape[t->ndim - 1]; }

/* a is [..., n, n]. */
static fleet_status need_square(const char *fn, const fleet_tensor *a, const char *name)
{
    char s[96];
    if (a->ndim < 2)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: %s must be a matrix or a batch of them ([..., n, n]), got %s", fn,
                            name, fleet__shape_str(a, s, sizeof s));
    if (rows(a) != cols(a))
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: %s must be square ([..., n, n]), got %s",
                            fn, name, fleet__shape_str(a, s, sizeof s));
    return FLEET_OK;
}

/* No output overlaps an input (outputs come after inputs in ts). */
static fleet_status check_overlaps(const char *fn, const fleet_tensor *const *ts,
                                   const char *const *names, int n_in, int n)
{
    for (int o = n_in; o < n; o++)
        for (int i = 0; i < n; i++)
            if (i != o && fleet__overlaps(ts[o], ts[i]))
                return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                    "%s: %s overlaps %s (linalg outputs must not overlap "
                                    "inputs or each other)", fn, names[o], names[i]);
    return FLEET_OK;
}

static fleet_status report_info(const char *fn, fleet__linalg_op op, int64_t index, int info)
{
    int p = info - 1; /* zero-based pivot */
    switch (op) {
    case FLEET__LINALG_CHOLESKY:
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: matrix %lld of the batch is not positive definite: its leading "
                            "minor of order %d is not positive (pivot %d); outputs are unspecified",
                            fn, (long long)index, p + 1, p);
    case FLEET__LINALG_SOLVE_TRIANGULAR:
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: matrix %lld of the batch is singular: diagonal element "
                            "(pivot) a[%d,%d] is zero; outputs are unspecified",
                            fn, (long long)index, p, p);
    case FLEET__LINALG_SOLVE:
    case FLEET__LINALG_INV:
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: matrix %lld of the batch is singular: pivot %d (U[%d,%d]) of its "
                            "LU factorization is zero; outputs are unspecified",
                            fn, (long long)index, p, p, p);
    case FLEET__LINALG_QR:
        break;
    }
    return fleet__error(FLEET_ERR_INTERNAL, "%s: matrix %lld: the backend reported status %d", fn,
                        (long long)index, info);
}

/* Scratch, submit, wait, read the status of every matrix. */
static fleet_status run(const fleet__op_call *call, fleet__linalg_args *args)
{
    fleet_status st = fleet__backend_require(call->fn, call->device, FLEET__CAN_LINALG);
    if (st != FLEET_OK)
        return st;
    bool has_rhs = args->op == FLEET__LINALG_SOLVE || args->op == FLEET__LINALG_SOLVE_TRIANGULAR;
    if (args->batch == 0 || args->n == 0 || (has_rhs && args->k == 0))
        return FLEET_OK;
    size_t bytes = 0;
    st = fleet__backend_linalg_workspace_size(call->device, call->native, args, &bytes);
    if (st != FLEET_OK)
        return fleet__error_prefix(st, call->fn);
    int *info = fleet__calloc((size_t)args->batch, sizeof *info);
    if (info == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory for %lld status words",
                            call->fn, (long long)args->batch);
    fleet_allocation ws = {0};
    if (bytes > 0) {
        st = fleet_memory_alloc(call->stream, bytes, &ws);
        if (st != FLEET_OK) {
            free(info);
            return fleet__error_prefix(st, call->fn);
        }
    }
    args->workspace = ws.ptr;
    args->workspace_bytes = bytes;
    args->info = info;
    st = fleet__backend_linalg(call->device, call->native, args);
    if (ws.ptr != NULL) {
        fleet_status fst = fleet_memory_free(&ws); /* stream-ordered: safe at once */
        FLEET_ASSERT(fst == FLEET_OK);
    }
    if (st != FLEET_OK) {
        free(info); /* nothing that writes it was queued */
        return st;
    }
    st = fleet_stream_synchronize(call->stream);
    if (st != FLEET_OK)
        return st; /* `info` leaks: the stream might still write it */
    for (int64_t i = 0; i < args->batch; i++)
        if (info[i] != 0) {
            int v = info[i];
            free(info);
            return report_info(call->fn, args->op, i, v);
        }
    free(info);
    return FLEET_OK;
}

/* Ops that solve a[..., n, n] x = b[..., n, k] (LU, triangular). */
static fleet_status solve_like(const char *fn, fleet__linalg_op op, const fleet_tensor *a_h,
                               const fleet_tensor *b_h, bool upper, fleet_tensor *x_h)
{
    const fleet_tensor *ts[] = {a_h, b_h, x_h};
    static const char *const names[] = {"a", "b", "x"};
    fleet__op_call call;
    fleet_status st = fleet__op_enter_all(fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *a = ts[0], *b = ts[1], *x = ts[2];
    if ((st = need_square(fn, a, "a")) != FLEET_OK)
        return st;
    if (!same_batch(a, b) || rows(b) != rows(a))
        return fleet__op_shape_error(fn, "b must be [..., n, k] for a [..., n, n]", a, "a", b, "b");
    if (!fleet__same_shape(x, b))
        return fleet__op_shape_error(fn, "x must have b's shape", x, "x", b, "b");
    st = fleet__op_begin(&call, fn, ts, names, 3, FLEET__OP_CONTIGUOUS);
    if (st == FLEET_OK)
        st = check_overlaps(fn, ts, names, 2, 3);
    if (st != FLEET_OK)
        return st;
    fleet__linalg_args args = {
        .op = op, .dtype = a->dtype, .batch = batch_of(a),
        .m = rows(a), .n = rows(a), .k = cols(b), .upper = upper,
        .a = fleet_tensor_data(a), .b = fleet_tensor_data(b), .x = fleet_tensor_data(x),
    };
    return run(&call, &args);
}

fleet_status fleet_linalg_solve(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *x)
{
    return solve_like("fleet_linalg_solve", FLEET__LINALG_SOLVE, a, b, false, x);
}

/* Ops from one square matrix to one of the same shape (Cholesky, inverse). */
static fleet_status square_to_square(const char *fn, fleet__linalg_op op,
                                     const fleet_tensor *a_h, fleet_tensor *out_h,
                                     const char *out_name)
{
    const fleet_tensor *ts[] = {a_h, out_h};
    const char *const names[] = {"a", out_name};
    fleet__op_call call;
    fleet_status st = fleet__op_enter_all(fn, ts, names, 2);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *a = ts[0], *out = ts[1];
    if ((st = need_square(fn, a, "a")) != FLEET_OK)
        return st;
    if (!fleet__same_shape(out, a))
        return fleet__op_shape_error(fn, "the output must have a's shape", out, out_name, a, "a");
    st = fleet__op_begin(&call, fn, ts, names, 2, FLEET__OP_CONTIGUOUS);
    if (st == FLEET_OK)
        st = check_overlaps(fn, ts, names, 1, 2);
    if (st != FLEET_OK)
        return st;
    fleet__linalg_args args = {
        .op = op, .dtype = a->dtype, .batch = batch_of(a),
        .m = rows(a), .n = rows(a), .a = fleet_tensor_data(a), .x = fleet_tensor_data(out),
    };
    return run(&call, &args);
}

fleet_status fleet_linalg_cholesky(const fleet_tensor *a, fleet_tensor *l)
{
    return square_to_square("fleet_linalg_cholesky", FLEET__LINALG_CHOLESKY, a, l, "l");
}

fleet_status fleet_linalg_solve_triangular(const fleet_tensor *a, const fleet_tensor *b, int upper,
                                           fleet_tensor *x)
{
    return solve_like("fleet_linalg_solve_triangular", FLEET__LINALG_SOLVE_TRIANGULAR, a, b,
                      upper != 0, x);
}

fleet_status fleet_linalg_qr(const fleet_tensor *a_h, fleet_tensor *q_h, fleet_tensor *r_h)
{
    static const char fn[] = "fleet_linalg_qr";
    const fleet_tensor *ts[] = {a_h, q_h, r_h};
    static const char *const names[] = {"a", "q", "r"};
    fleet__op_call call;
    char s[96];
    fleet_status st = fleet__op_enter_all(fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *a = ts[0], *q = ts[1], *r = ts[2];
    if (a->ndim < 2)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: a must be a matrix or a batch of them ([..., m, n]), got %s", fn,
                            fleet__shape_str(a, s, sizeof s));
    if (rows(a) < cols(a))
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: a must have at least as many rows as columns (m >= n), got %s",
                            fn, fleet__shape_str(a, s, sizeof s));
    if (!fleet__same_shape(q, a))
        return fleet__op_shape_error(fn, "q must have a's shape [..., m, n]", q, "q", a, "a");
    if (!same_batch(r, a) || rows(r) != cols(a) || cols(r) != cols(a))
        return fleet__op_shape_error(fn, "r must be [..., n, n] for a [..., m, n]", r, "r", a, "a");
    st = fleet__op_begin(&call, fn, ts, names, 3, FLEET__OP_CONTIGUOUS);
    if (st == FLEET_OK)
        st = check_overlaps(fn, ts, names, 1, 3);
    if (st != FLEET_OK)
        return st;
    fleet__linalg_args args = {
        .op = FLEET__LINALG_QR, .dtype = a->dtype, .batch = batch_of(a),
        .m = rows(a), .n = cols(a), .a = fleet_tensor_data(a),
        .x = fleet_tensor_data(q), .r = fleet_tensor_data(r),
    };
    return run(&call, &args);
}

fleet_status fleet_linalg_inv(const fleet_tensor *a, fleet_tensor *out)
{
    return square_to_square("fleet_linalg_inv", FLEET__LINALG_INV, a, out, "out");
}
