/* ops/matmul.c — matrix products: (batched, broadcast) matmul and linear.
 *
 * A matrix operand may be any view whose last two dimensions are stored
 * row-major (unit column stride) or column-major (unit row stride): the
 * second is a transposed view and goes to BLAS as op(X) = X^T, with no copy.
 * Batch dimensions broadcast like NumPy's matmul; they are coalesced so that
 * the usual cases are one strided-batched GEMM, and otherwise the GEMM is
 * issued once per outer batch index. */
#include <string.h>

#include "core/error.h"
#include "ops/ops_internal.h"

/* How the last two dimensions (rows x cols) reach BLAS. */
typedef struct mat_layout {
    bool trans;  /* stored as the transpose (column-major)       */
    int64_t ld;  /* row stride of the stored matrix, >= its cols */
} mat_layout;

static bool gemm_layout(const fleet_tensor *t, mat_layout *l)
{
    int nd = t->ndim;
    int64_t rows = t->shape[nd - 2], cols = t->shape[nd - 1];
    int64_t rs = t->strides[nd - 2], cs = t->strides[nd - 1];
    int64_t min_row = cols > 0 ? cols : 1, min_col = rows > 0 ? rows : 1;
    if (cs == 1 || cols <= 1) {
        l->trans = false;
        l->ld = rows <= 1 ? min_row : rs;
        if (l->ld >= min_row)
            return true;
    }
    if (rs == 1 || rows <= 1) {
        l->trans = true;
        l->ld = cols <= 1 ? min_col : cs;
        if (l->ld >= min_col)
            return true;
    }
    return false;
}

bool fleet__gemm_operand_ok(const fleet_tensor *t)
{
    mat_layout l;
    return t->ndim >= 2 ? gemm_layout(t, &l) : fleet_tensor_is_contiguous(t);
}

/* t's batch dimensions (all but the last two) seen with out's batch shape. */
static fleet__view batch_view(const fleet_tensor *t, const fleet_tensor *out)
{
    fleet__view v;
    memset(&v, 0, sizeof v);
    int nb = out->ndim - 2, tb = t->ndim - 2, shift = nb - tb;
    v.ndim = nb;
    for (int d = 0; d < nb; d++) {
        int td = d - shift;
        v.shape[d] = out->shape[d];
        v.strides[d] = td < 0 || t->shape[td] == 1 ? 0 : t->strides[td];
    }
    return v;
}

/* fleet_matmul's checks past the handles: shapes, device, dtype, overlap. */
static fleet_status matmul_checks(fleet__op_call *call, const char *fn, const fleet_tensor *a,
                                  const fleet_tensor *b, fleet_tensor *out)
{
    const fleet_tensor *ts[] = {a, b, out};
    static const char *const names[] = {"a", "b", "out"};
    fleet__dims da = FLEET__DIMS(a), db = FLEET__DIMS(b), got = FLEET__DIMS(out), want;
    fleet_status st = fleet__shape_matmul(fn, &da, &db, &want);
    if (st == FLEET_OK)
        st = fleet__shape_expect_aligned(fn, "out", &got, &want, NULL);
    if (st == FLEET_OK)
        st = fleet__op_begin(call, fn, ts, names, 3, FLEET__OP_HALF_ON_CUDA);
    if (st != FLEET_OK)
        return st;
    if (fleet__overlaps(out, a) || fleet__overlaps(out, b))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps an input", fn);
    return FLEET_OK;
}

fleet_status fleet__op_matmul(const fleet__op_call *call, const fleet_tensor *a,
                              const fleet_tensor *b, const fleet_tensor *bias, float alpha,
                              bool relu, fleet_tensor *out)
{
    const char *fn = call->fn;
    mat_layout la, lb, lo;
    if (!gemm_layout(a, &la) || !gemm_layout(b, &lb))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: %s is neither row- nor column-contiguous in its last two "
                            "dimensions (fleet_copy it first)", fn, gemm_layout(a, &la) ? "b" : "a");
    if (!gemm_layout(out, &lo) || lo.trans)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: out must be row-contiguous in its last two dimensions", fn);
    if (bias != NULL && !fleet_tensor_is_contiguous(bias))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: bias must be contiguous", fn);
    for (int d = 0; d < out->ndim - 2; d++)
        if (out->shape[d] > 1 && out->strides[d] == 0)
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out repeats matrices (stride 0)", fn);
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;

    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1], nn = b->shape[b->ndim - 1];
    fleet__view vo = batch_view(out, out), va = batch_view(a, out), vb = batch_view(b, out);
    fleet__view *vs[] = {&vo, &va, &vb};
    if (vo.ndim == 0) {
        vo.ndim = va.ndim = vb.ndim = 1;
        vo.shape[0] = va.shape[0] = vb.shape[0] = 1;
    }
    fleet__view_coalesce(vs, 3);
    int last = vo.ndim - 1;
    fleet__gemm_args g = {
        .dtype = out->dtype, .m = m, .n = nn, .k = k,
        .lda = la.ld, .trans_a = la.trans, .ldb = lb.ld, .trans_b = lb.trans, .ldc = lo.ld,
        .bias = bias != NULL ? fleet_tensor_data(bias) : NULL, .relu = relu && bias != NULL,
        .alpha = alpha, .beta = 0.0f,
        .batch = vo.shape[last], .stride_a = va.strides[last], .stride_b = vb.strides[last],
        .stride_c = vo.strides[last],
    };
    /* Outer batch dimensions that did not coalesce: one call per index. */
    int64_t outer = 1, idx[FLEET__VIEW_MAX_DIMS] = {0};
    for (int d = 0; d < last; d++)
        outer *= vo.shape[d];
    int64_t es = (int64_t)fleet_dtype_size(out->dtype);
    for (int64_t i = 0; i < outer; i++) {
        int64_t oa = 0, ob = 0, oo = 0;
        for (int d = 0; d < last; d++) {
            oa += idx[d] * va.strides[d];
            ob += idx[d] * vb.strides[d];
            oo += idx[d] * vo.strides[d];
        }
        g.a = (const char *)fleet_tensor_data(a) + oa * es;
        g.b = (const char *)fleet_tensor_data(b) + ob * es;
        g.c = (char *)fleet_tensor_data(out) + oo * es;
        fleet_status st = fleet__backend_gemm(call->device, call->native, &g);
        if (st != FLEET_OK)
            return st; /* a backend failure mid-batch: out is then unspecified */
        for (int d = last - 1; d >= 0 && ++idx[d] == vo.shape[d]; d--)
            idx[d] = 0;
    }
    return FLEET_OK;
}

fleet_status fleet_matmul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    static const char fn[] = "fleet_matmul";
    const fleet_tensor *ts[] = {a, b, out};
    static const char *const names[] = {"a", "b", "out"};
    fleet_status st = fleet__op_enter_all(fn, ts, names, 3);
    fleet__op_call call;
    if (st == FLEET_OK)
        st = matmul_checks(&call, fn, ts[0], ts[1], (fleet_tensor *)ts[2]);
    if (st != FLEET_OK)
        return st;
    return fleet__op_matmul(&call, ts[0], ts[1], NULL, 1.0f, false, (fleet_tensor *)ts[2]);
}

fleet_status fleet__op_linear(const fleet__op_call *call, const fleet_tensor *x,
                              const fleet_tensor *weight, const fleet_tensor *bias, bool relu,
                              fleet_tensor *y)
{
    /* weight^T as a view header on the stack: [in, out], column-major. */
    fleet_tensor wt = *weight;
    wt.shape[0] = weight->shape[1];
    wt.shape[1] = weight->shape[0];
    wt.strides[0] = weight->strides[1];
    wt.strides[1] = weight->strides[0];
    /* Contiguous leading dimensions fold into the rows of one GEMM. */
    fleet_tensor x2 = *x, y2 = *y;
    if (fleet_tensor_is_contiguous(x) && fleet_tensor_is_contiguous(y)) {
        int64_t rows = fleet_tensor_numel(x) / (x->shape[x->ndim - 1] ? x->shape[x->ndim - 1] : 1);
        x2.ndim = y2.ndim = 2;
        x2.shape[0] = y2.shape[0] = x->ndim == 1 ? 1 : rows;
        x2.shape[1] = x->shape[x->ndim - 1];
        y2.shape[1] = y->shape[y->ndim - 1];
        x2.strides[1] = y2.strides[1] = 1;
        x2.strides[0] = x2.shape[1];
        y2.strides[0] = y2.shape[1];
    } else if (x->ndim == 1) {
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: a 1-D x must be contiguous",
                            call->fn);
    }
    relu = relu && bias != NULL;
    fleet_status st = fleet__op_matmul(call, &x2, &wt, bias, 1.0f, relu, &y2);
    if (!relu || st != FLEET_ERR_UNSUPPORTED)
        return st;
    /* The backend cannot fuse the ReLU for this shape (it launched nothing). */
    if ((st = fleet__op_matmul(call, &x2, &wt, bias, 1.0f, false, &y2)) != FLEET_OK)
        return st;
    return fleet__op_elementwise(call, FLEET__EW_RELU, y, NULL, y);
}

fleet_status fleet_linear(const fleet_tensor *x_h, const fleet_tensor *weight_h,
                          const fleet_tensor *bias_h, fleet_tensor *y_h)
{
    static const char fn[] = "fleet_linear";
    const fleet_tensor *ts[] = {x_h, weight_h, y_h, bias_h};
    static const char *const names[] = {"x", "weight", "y", "bias"};
    int n = bias_h != NULL ? 4 : 3;
    fleet_status st = fleet__op_enter_all(fn, ts, names, n);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *x = ts[0], *weight = ts[1], *bias = bias_h != NULL ? ts[3] : NULL;
    fleet_tensor *y = (fleet_tensor *)ts[2];
    fleet__dims dx = FLEET__DIMS(x), dw = FLEET__DIMS(weight), got = FLEET__DIMS(y), want;
    fleet__dims dbias = bias != NULL ? FLEET__DIMS(bias) : dx;
    if ((st = fleet__shape_linear(fn, &dx, &dw, bias != NULL ? &dbias : NULL, &want)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "y", &got, &want, NULL)) != FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, n, FLEET__OP_HALF_ON_CUDA)) != FLEET_OK)
        return st;
    if (fleet__overlaps(y, x) || fleet__overlaps(y, weight) ||
        (bias != NULL && fleet__overlaps(y, bias)))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: y overlaps an input", fn);
    return fleet__op_linear(&call, x, weight, bias, false, y);
}
