/* onnx/fold.c — the host evaluator: nodes whose inputs are all known at
 * load are computed here, on the host, into constants. This is what makes
 * an exported transformer's shape subgraph (Shape, Gather, Unsqueeze,
 * Concat, Slice, Range, ConstantOfShape, Equal, Where, Cast, arithmetic on
 * int64) disappear once the named dimensions are bound.
 *
 * An int64 element may be the batch size (Shape of a batch dimension): it
 * moves with the data (gather, concat, slice, reshape, ...), survives
 * B * 1, B + 0, B / 1, max(B, 1), compares unequal to anything < 1, and
 * otherwise stops the fold (the node is then translated, or refused). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/prim.h"
#include "onnx/import.h"

/* ---- elements ----------------------------------------------------------------------- */

static bool integral(fleet_dtype dt)
{
    return dt == FLEET_DTYPE_I64 || dt == FLEET_DTYPE_I32 || dt == FLEET_DTYPE_BOOL;
}

static bool numeric(fleet_dtype dt)
{
    return integral(dt) || dt == FLEET_DTYPE_F32;
}

/* Element i of c (data may be the file's bytes, unaligned: read by copy). */
static int64_t get_i64(const fleet__ival *c, int64_t i)
{
    const unsigned char *p = (const unsigned char *)c->data + (size_t)i * fleet_dtype_size(c->dtype);
    int64_t v64;
    int32_t v32;
    float f;
    switch (c->dtype) {
    case FLEET_DTYPE_I64: memcpy(&v64, p, 8); return v64;
    case FLEET_DTYPE_I32: memcpy(&v32, p, 4); return v32;
    case FLEET_DTYPE_BOOL: return *p != 0;
    case FLEET_DTYPE_F32:
        memcpy(&f, p, 4);
        return f != f ? 0 : f >= 9.2e18f ? INT64_MAX : f <= -9.2e18f ? INT64_MIN : (int64_t)f;
    default: return 0;
    }
}

double fleet__imp_elem_f64(const fleet__ival *c, int64_t i)
{
    if (c->dtype != FLEET_DTYPE_F32)
        return (double)get_i64(c, i);
    float f;
    memcpy(&f, (const unsigned char *)c->data + (size_t)i * 4, 4);
    return (double)f;
}

static void set_elem(void *data, fleet_dtype dt, int64_t i, int64_t iv, double fv, bool is_f)
{
    switch (dt) {
    case FLEET_DTYPE_I64: ((int64_t *)data)[i] = is_f ? (int64_t)fv : iv; break;
    case FLEET_DTYPE_I32: ((int32_t *)data)[i] = (int32_t)(is_f ? (int64_t)fv : iv); break;
    case FLEET_DTYPE_BOOL: ((uint8_t *)data)[i] = is_f ? fv != 0.0 : iv != 0; break;
    case FLEET_DTYPE_F32: ((float *)data)[i] = is_f ? (float)fv : (float)iv; break;
    default: break;
    }
}

static bool is_sym(const fleet__ival *c, int64_t i)
{
    return c->sym != NULL && c->sym[i];
}

/* ---- a result under construction ---------------------------------------------------- */

typedef struct result {
    fleet_dtype dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    int64_t numel;
    void *data;
    uint8_t *sym;
} result;

static fleet_status result_new(result *r, fleet_dtype dt, int ndim, const int64_t *shape,
                               bool with_sym, bool *too_big)
{
    memset(r, 0, sizeof *r);
    r->dtype = dt;
    r->ndim = ndim;
    r->numel = 1;
    for (int d = 0; d < ndim; d++) {
        r->shape[d] = shape[d];
        if (shape[d] < 0 || shape[d] > FLEET__FOLD_MAX_ELEMS ||
            (shape[d] > 0 && r->numel > FLEET__FOLD_MAX_ELEMS / shape[d])) {
            *too_big = true;
            return FLEET_OK;
        }
        r->numel *= shape[d];
    }
    size_t n = (size_t)(r->numel > 0 ? r->numel : 1);
    if ((r->data = fleet__calloc(n, fleet_dtype_size(dt))) == NULL ||
        (with_sym && (r->sym = fleet__calloc(n, 1)) == NULL)) {
        free(r->data);
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "onnx: no host memory to fold a constant");
    }
    return FLEET_OK;
}

static void result_free(result *r)
{
    free(r->data);
    free(r->sym);
    r->data = NULL;
    r->sym = NULL;
}

/* Element si of c into element di of r (same dtype). */
static void move(result *r, int64_t di, const fleet__ival *c, int64_t si)
{
    size_t es = fleet_dtype_size(r->dtype);
    memcpy((char *)r->data + (size_t)di * es, (const char *)c->data + (size_t)si * es, es);
    if (r->sym != NULL)
        r->sym[di] = is_sym(c, si);
}

static fleet_status emit(fleet__importer *im, const fleet__onnx_node *n, int k, result *r)
{
    fleet_status st = fleet__imp_out_const(im, n, k, r->dtype, r->ndim, r->shape, r->data,
                                           r->sym);
    r->data = NULL;
    r->sym = NULL;
    return st;
}

/* Row-major strides of a shape, and of c broadcast to out's ndim (0 where
 * c's dimension is 1 or missing). */
static void broadcast_strides(const fleet__ival *c, int ndim, const int64_t *shape,
                              int64_t *strides)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        int k = d - (ndim - c->ndim);
        if (k < 0) {
            strides[d] = 0;
            continue;
        }
        strides[d] = c->shape[k] == 1 && shape[d] != 1 ? 0 : s;
        s *= c->shape[k];
    }
}

/* c's row-major strides (elements). */
static void row_major(const fleet__ival *c, int64_t *strides)
{
    int64_t s = 1;
    for (int d = c->ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= c->shape[d];
    }
}

/* Offset in c of out's linear element i. */
static int64_t offset_of(int64_t i, int ndim, const int64_t *shape, const int64_t *strides)
{
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t size = shape[d] > 0 ? shape[d] : 1;
        off += (i % size) * strides[d];
        i /= size;
    }
    return off;
}

static bool broadcast_shape(const fleet__ival *const *in, int n, int *ndim, int64_t *shape)
{
    *ndim = 0;
    for (int i = 0; i < n; i++)
        *ndim = in[i]->ndim > *ndim ? in[i]->ndim : *ndim;
    for (int d = 0; d < *ndim; d++) {
        shape[d] = 1;
        for (int i = 0; i < n; i++) {
            int k = d - (*ndim - in[i]->ndim);
            int64_t s = k >= 0 ? in[i]->shape[k] : 1;
            if (s != 1 && shape[d] != 1 && s != shape[d])
                return false;
            if (s != 1)
                shape[d] = s;
        }
    }
    return true;
}

/* ---- the ops --------------------------------------------------------------------------- */

typedef struct fctx {
    fleet__importer *im;
    const fleet__onnx_node *n;
    fleet__ival *in[8];
    int n_in;
    bool skip; /* not foldable after all: the translator takes it */
} fctx;

/* result_new for a fold: false when the caller returns *st at once (no
 * host memory, or a result too big to fold: the node is translated). */
static bool start(fctx *f, result *r, fleet_dtype dt, int ndim, const int64_t *shape,
                  bool with_sym, fleet_status *st)
{
    bool big = false;
    *st = result_new(r, dt, ndim, shape, with_sym, &big);
    f->skip |= big;
    return *st == FLEET_OK && !big;
}

#define OP_IS(c, s) fleet__onnx_str_is((c)->n->op_type, s)

static int norm_axis(int64_t axis, int ndim)
{
    return (int)(axis < 0 ? axis + ndim : axis);
}

/* Shape (opset 15: start, end), from any input: it needs only the shape. */
static fleet_status fold_shape(fctx *f)
{
    const fleet__ival *x = f->in[0];
    int64_t start = fleet__imp_attr_int(f->n, "start", 0), end = fleet__imp_attr_int(f->n, "end",
                                                                                     x->ndim);
    start = start < 0 ? start + x->ndim : start;
    end = end < 0 ? end + x->ndim : end;
    start = start < 0 ? 0 : start > x->ndim ? x->ndim : start;
    end = end < start ? start : end > x->ndim ? x->ndim : end;
    int64_t len = end - start;
    for (int64_t i = 0; i < len; i++)
        if (x->shape[start + i] < FLEET_DIM_BATCH)
            return fleet__imp_unsupported(f->n, "the Shape of a dimension that is k times the "
                                          "batch");
    result r;
    bool big = false;
    fleet_status st = result_new(&r, FLEET_DTYPE_I64, 1, &len, true, &big);
    if (st != FLEET_OK)
        return st;
    for (int64_t i = 0; i < len; i++) {
        int64_t s = x->shape[start + i];
        ((int64_t *)r.data)[i] = s < 0 ? 0 : s;
        r.sym[i] = s == FLEET_DIM_BATCH;
    }
    return emit(f->im, f->n, 0, &r);
}

/* Elementwise: the unary, binary and Where ops over numeric constants. */
static fleet_status fold_elementwise(fctx *f, int arity)
{
    const fleet__ival *const *in = (const fleet__ival *const *)f->in;
    for (int i = 0; i < arity; i++)
        if (!numeric(in[i]->dtype)) {
            f->skip = true;
            return FLEET_OK;
        }
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    if (!broadcast_shape(in, arity, &ndim, shape))
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: the inputs do not broadcast");
    bool cmp = OP_IS(f, "Equal") || OP_IS(f, "Less") || OP_IS(f, "Greater") ||
               OP_IS(f, "LessOrEqual") || OP_IS(f, "GreaterOrEqual") || OP_IS(f, "Not") ||
               OP_IS(f, "And") || OP_IS(f, "Or");
    bool where = OP_IS(f, "Where");
    const fleet__ival *a = in[where ? 1 : 0], *b = arity >= 2 ? in[where ? 2 : 1] : NULL;
    fleet_dtype dt = cmp ? FLEET_DTYPE_BOOL : a->dtype;
    bool any_sym = false;
    for (int i = 0; i < arity; i++)
        any_sym |= in[i]->sym != NULL;
    result r;
    fleet_status st;
    if (!start(f, &r, dt, ndim, shape, any_sym && !cmp, &st))
        return st;
    int64_t stride[3][FLEET_MAX_DIMS];
    for (int i = 0; i < arity; i++)
        broadcast_strides(in[i], ndim, shape, stride[i]);
    bool fl = a->dtype == FLEET_DTYPE_F32;
    for (int64_t i = 0; i < r.numel; i++) {
        int64_t o[3];
        for (int k = 0; k < arity; k++)
            o[k] = offset_of(i, ndim, shape, stride[k]);
        int64_t ia = where ? 1 : 0, ib = where ? 2 : 1;
        bool sa = is_sym(in[ia], o[ia]), sb = b != NULL && is_sym(in[ib], o[ib]);
        int64_t x = get_i64(a, o[ia]), y = b != NULL ? get_i64(b, o[ib]) : 0;
        double fx = fleet__imp_elem_f64(a, o[ia]), fy = b != NULL ? fleet__imp_elem_f64(b, o[ib]) : 0;
        int64_t ri = 0;
        double rf = 0;
        bool rs = false, ok = true;
        if (where) {
            bool c = get_i64(in[0], o[0]) != 0;
            ri = c ? x : y, rf = c ? fx : fy, rs = c ? sa : sb;
        } else if (sa || sb) {
            /* the batch size B >= 1 */
            int64_t other = sa ? y : x;
            bool both = sa && sb;
            if (OP_IS(f, "Mul") && !both && other == 1)
                ri = 0, rs = true;
            else if ((OP_IS(f, "Add") || (OP_IS(f, "Sub") && sa)) && !both && other == 0)
                ri = 0, rs = true;
            else if (OP_IS(f, "Div") && sa && !sb && y == 1)
                ri = 0, rs = true;
            else if (OP_IS(f, "Max") && !both && other <= 1)
                ri = 0, rs = true;
            else if (OP_IS(f, "Equal") && (both || other < 1))
                ri = both;
            else if ((OP_IS(f, "Greater") || OP_IS(f, "GreaterOrEqual")) && !both && other < 1)
                ri = sa;
            else if ((OP_IS(f, "Less") || OP_IS(f, "LessOrEqual")) && !both && other < 1)
                ri = sb;
            else
                ok = false;
        } else if (OP_IS(f, "Add")) {
            ri = (int64_t)((uint64_t)x + (uint64_t)y), rf = fx + fy;
        } else if (OP_IS(f, "Sub")) {
            ri = (int64_t)((uint64_t)x - (uint64_t)y), rf = fx - fy;
        } else if (OP_IS(f, "Mul")) {
            ri = (int64_t)((uint64_t)x * (uint64_t)y), rf = fx * fy;
        } else if (OP_IS(f, "Div")) {
            if (!fl && (y == 0 || (x == INT64_MIN && y == -1)))
                ok = false;
            else
                ri = fl ? 0 : x / y, rf = fx / fy;
        } else if (OP_IS(f, "Mod") && !fl) {
            if (y == 0 || (x == INT64_MIN && y == -1)) {
                ok = false;
            } else {
                ri = x % y;
                if (ri != 0 && (ri < 0) != (y < 0) && !fleet__imp_attr_int(f->n, "fmod", 0))
                    ri += y;
            }
        } else if (OP_IS(f, "Pow")) {
            rf = pow(fx, fy), ri = (int64_t)pow((double)x, (double)y);
        } else if (OP_IS(f, "Max")) {
            ri = x > y ? x : y, rf = fx > fy || fx != fx ? fx : fy;
        } else if (OP_IS(f, "Min")) {
            ri = x < y ? x : y, rf = fx < fy || fx != fx ? fx : fy;
        } else if (OP_IS(f, "Equal")) {
            ri = fl ? fx == fy : x == y;
        } else if (OP_IS(f, "Less")) {
            ri = fl ? fx < fy : x < y;
        } else if (OP_IS(f, "Greater")) {
            ri = fl ? fx > fy : x > y;
        } else if (OP_IS(f, "LessOrEqual")) {
            ri = fl ? fx <= fy : x <= y;
        } else if (OP_IS(f, "GreaterOrEqual")) {
            ri = fl ? fx >= fy : x >= y;
        } else if (OP_IS(f, "And")) {
            ri = x && y;
        } else if (OP_IS(f, "Or")) {
            ri = x || y;
        } else if (OP_IS(f, "Not")) {
            ri = !x;
        } else if (OP_IS(f, "Neg")) {
            ri = (int64_t)(0 - (uint64_t)x), rf = -fx;
        } else if (OP_IS(f, "Abs")) {
            ri = x < 0 ? (int64_t)(0 - (uint64_t)x) : x, rf = fabs(fx);
        } else if (fl && OP_IS(f, "Sqrt")) {
            rf = sqrt(fx);
        } else if (fl && OP_IS(f, "Reciprocal")) {
            rf = 1.0 / fx;
        } else if (fl && OP_IS(f, "Exp")) {
            rf = exp(fx);
        } else if (fl && OP_IS(f, "Log")) {
            rf = log(fx);
        } else if (fl && OP_IS(f, "Floor")) {
            rf = floor(fx);
        } else if (fl && OP_IS(f, "Ceil")) {
            rf = ceil(fx);
        } else {
            ok = false;
        }
        if (!ok) {
            result_free(&r);
            f->skip = true;
            return FLEET_OK;
        }
        set_elem(r.data, dt, i, ri, rf, fl && !cmp);
        if (r.sym != NULL)
            r.sym[i] = rs;
    }
    return emit(f->im, f->n, 0, &r);
}

/* Cast (to), over numeric constants; the batch flag stays on integers. */
static fleet_status fold_cast(fctx *f, fleet_dtype to)
{
    const fleet__ival *x = f->in[0];
    if (!numeric(x->dtype) || !numeric(to)) {
        f->skip = true;
        return FLEET_OK;
    }
    result r;
    fleet_status st;
    if (!start(f, &r, to, x->ndim, x->shape, x->sym != NULL && integral(to), &st))
        return st;
    bool fl = x->dtype == FLEET_DTYPE_F32;
    for (int64_t i = 0; i < x->numel; i++) {
        if (is_sym(x, i) && r.sym == NULL) {
            result_free(&r);
            f->skip = true;
            return FLEET_OK;
        }
        set_elem(r.data, to, i, get_i64(x, i), fleet__imp_elem_f64(x, i), fl);
        if (r.sym != NULL)
            r.sym[i] = is_sym(x, i);
    }
    return emit(f->im, f->n, 0, &r);
}

/* The same elements in another shape (Reshape, Flatten, Squeeze,
 * Unsqueeze, Identity, Dropout): shape computed by the caller. */
static fleet_status fold_reshape(fctx *f, int ndim, const int64_t *shape)
{
    const fleet__ival *x = f->in[0];
    result r;
    fleet_status st;
    if (!start(f, &r, x->dtype, ndim, shape, x->sym != NULL, &st))
        return st;
    if (r.numel != x->numel) {
        result_free(&r);
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: a reshape of %lld elements into %lld",
                            (long long)x->numel, (long long)r.numel);
    }
    for (int64_t i = 0; i < r.numel; i++)
        move(&r, i, x, i);
    return emit(f->im, f->n, 0, &r);
}

static fleet_status fold_concat(fctx *f)
{
    const fleet__ival *x0 = f->in[0];
    int axis = norm_axis(fleet__imp_attr_int(f->n, "axis", 0), x0->ndim);
    if (axis < 0 || axis >= x0->ndim)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Concat axis out of range");
    int64_t shape[FLEET_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[axis] = 0;
    bool any_sym = false;
    for (int i = 0; i < f->n_in; i++) {
        const fleet__ival *x = f->in[i];
        if (x == NULL)
            continue;
        if (x->ndim != x0->ndim || x->dtype != x0->dtype)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Concat of different ranks or "
                                "dtypes");
        for (int d = 0; d < x->ndim; d++)
            if (d != axis && x->shape[d] != x0->shape[d])
                return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Concat of shapes that differ "
                                    "off the axis");
        shape[axis] += x->shape[axis];
        any_sym |= x->sym != NULL;
    }
    result r;
    fleet_status st;
    if (!start(f, &r, x0->dtype, x0->ndim, shape, any_sym, &st))
        return st;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= shape[d];
    for (int d = axis + 1; d < x0->ndim; d++)
        inner *= shape[d];
    int64_t at = 0;
    for (int i = 0; i < f->n_in; i++) {
        const fleet__ival *x = f->in[i];
        if (x == NULL)
            continue;
        int64_t rows = x->shape[axis] * inner;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < rows; j++)
                move(&r, o * shape[axis] * inner + at + j, x, o * rows + j);
        at += rows;
    }
    return emit(f->im, f->n, 0, &r);
}

static fleet_status fold_gather(fctx *f)
{
    const fleet__ival *x = f->in[0], *idx = f->in[1];
    int axis = norm_axis(fleet__imp_attr_int(f->n, "axis", 0), x->ndim);
    if (axis < 0 || axis >= x->ndim || !integral(idx->dtype) || idx->sym != NULL ||
        x->ndim - 1 + idx->ndim > FLEET_MAX_DIMS)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Gather of axis or indices out of range");
    int64_t shape[FLEET_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < axis; d++)
        shape[nd++] = x->shape[d];
    for (int d = 0; d < idx->ndim; d++)
        shape[nd++] = idx->shape[d];
    for (int d = axis + 1; d < x->ndim; d++)
        shape[nd++] = x->shape[d];
    result r;
    fleet_status st;
    if (!start(f, &r, x->dtype, nd, shape, x->sym != NULL, &st))
        return st;
    int64_t outer = 1, inner = 1, size = x->shape[axis];
    for (int d = 0; d < axis; d++)
        outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= x->shape[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < idx->numel; j++) {
            int64_t k = get_i64(idx, j);
            k = k < 0 ? k + size : k;
            if (k < 0 || k >= size) {
                result_free(&r);
                return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Gather index %lld outside "
                                    "a dimension of %lld", (long long)get_i64(idx, j),
                                    (long long)size);
            }
            for (int64_t i = 0; i < inner; i++)
                move(&r, (o * idx->numel + j) * inner + i, x, (o * size + k) * inner + i);
        }
    return emit(f->im, f->n, 0, &r);
}

/* Slice with any steps (negative too): starts, ends, axes, steps per axis. */
static fleet_status fold_slice(fctx *f, const int64_t *starts, const int64_t *ends,
                               const int64_t *axes, const int64_t *steps, int n)
{
    const fleet__ival *x = f->in[0];
    int64_t first[FLEET_MAX_DIMS], step[FLEET_MAX_DIMS], shape[FLEET_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        first[d] = 0, step[d] = 1, shape[d] = x->shape[d];
    for (int i = 0; i < n; i++) {
        int d = norm_axis(axes != NULL ? axes[i] : i, x->ndim);
        int64_t s = steps != NULL ? steps[i] : 1, size = x->shape[d];
        if (d < 0 || d >= x->ndim || s == 0)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Slice axis or step out of range");
        int64_t b = starts[i], e = ends[i];
        b = b < 0 ? b + size : b;
        e = e < 0 ? e + size : e;
        if (s > 0) {
            b = b < 0 ? 0 : b > size ? size : b;
            e = e < 0 ? 0 : e > size ? size : e;
            shape[d] = e > b ? 1 + (e - b - 1) / s : 0;
        } else {
            b = b < 0 ? -1 : b > size - 1 ? size - 1 : b;
            e = e < -1 ? -1 : e > size - 1 ? size - 1 : e;
            shape[d] = b > e ? 1 + (b - e - 1) / -s : 0;
        }
        first[d] = b;
        step[d] = s;
    }
    result r;
    fleet_status st;
    if (!start(f, &r, x->dtype, x->ndim, shape, x->sym != NULL, &st))
        return st;
    int64_t xs[FLEET_MAX_DIMS];
    row_major(x, xs);
    for (int64_t i = 0; i < r.numel; i++) {
        int64_t rem = i, off = 0;
        for (int d = x->ndim - 1; d >= 0; d--) {
            int64_t c = rem % shape[d];
            rem /= shape[d];
            off += (first[d] + c * step[d]) * xs[d];
        }
        move(&r, i, x, off);
    }
    return emit(f->im, f->n, 0, &r);
}

static fleet_status fold_transpose(fctx *f)
{
    const fleet__ival *x = f->in[0];
    const int64_t *perm;
    int np = fleet__imp_attr_ints(f->n, "perm", &perm);
    int p[FLEET_MAX_DIMS];
    int64_t shape[FLEET_MAX_DIMS];
    if (np != 0 && np != x->ndim)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Transpose perm of the wrong length");
    for (int d = 0; d < x->ndim; d++) {
        p[d] = np ? (int)perm[d] : x->ndim - 1 - d;
        if (p[d] < 0 || p[d] >= x->ndim)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Transpose perm out of range");
        shape[d] = x->shape[p[d]];
    }
    result r;
    fleet_status st;
    if (!start(f, &r, x->dtype, x->ndim, shape, x->sym != NULL, &st))
        return st;
    int64_t xs[FLEET_MAX_DIMS];
    row_major(x, xs);
    for (int64_t i = 0; i < r.numel; i++) {
        int64_t rem = i, off = 0;
        for (int d = x->ndim - 1; d >= 0; d--) {
            off += (rem % shape[d]) * xs[p[d]];
            rem /= shape[d];
        }
        move(&r, i, x, off);
    }
    return emit(f->im, f->n, 0, &r);
}

/* Expand to a shape: the broadcast of x's shape and the given one. */
static fleet_status fold_expand(fctx *f, int ndim, const int64_t *to)
{
    const fleet__ival *x = f->in[0];
    fleet__ival target = {.ndim = ndim};
    memcpy(target.shape, to, sizeof(int64_t) * (size_t)ndim);
    const fleet__ival *both[] = {x, &target};
    int nd;
    int64_t shape[FLEET_MAX_DIMS];
    if (!broadcast_shape(both, 2, &nd, shape))
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Expand to a shape x does not "
                            "broadcast to");
    result r;
    fleet_status st;
    if (!start(f, &r, x->dtype, nd, shape, x->sym != NULL, &st))
        return st;
    int64_t strides[FLEET_MAX_DIMS];
    broadcast_strides(x, nd, shape, strides);
    for (int64_t i = 0; i < r.numel; i++)
        move(&r, i, x, offset_of(i, nd, shape, strides));
    return emit(f->im, f->n, 0, &r);
}

static fleet_status fold_range(fctx *f)
{
    const fleet__ival *s = f->in[0], *l = f->in[1], *d = f->in[2];
    if (s->numel != 1 || l->numel != 1 || d->numel != 1 || is_sym(s, 0) || is_sym(l, 0) ||
        is_sym(d, 0) || !numeric(s->dtype)) {
        f->skip = true;
        return FLEET_OK;
    }
    bool fl = s->dtype == FLEET_DTYPE_F32;
    double fs = fleet__imp_elem_f64(s, 0), fl_ = fleet__imp_elem_f64(l, 0),
           fd = fleet__imp_elem_f64(d, 0);
    if (fd == 0)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Range with delta 0");
    double count = ceil((fl_ - fs) / fd);
    int64_t len = count > 0 ? (int64_t)count : 0;
    result r;
    fleet_status st;
    if (!start(f, &r, s->dtype, 1, &len, false, &st))
        return st;
    int64_t is = get_i64(s, 0), id = get_i64(d, 0);
    for (int64_t i = 0; i < len; i++)
        set_elem(r.data, s->dtype, i, (int64_t)((uint64_t)is + (uint64_t)i * (uint64_t)id),
                 fs + (double)i * fd, fl);
    return emit(f->im, f->n, 0, &r);
}

/* ConstantOfShape: value (a one-element tensor attribute; f32 0 without). */
static fleet_status fold_constant_of_shape(fctx *f)
{
    int64_t shape[FLEET_MAX_DIMS];
    int nd;
    uint8_t sym[FLEET_MAX_DIMS];
    fleet_status st = fleet__imp_ints(f->n, f->in[0], shape, sym, FLEET_MAX_DIMS, &nd);
    if (st != FLEET_OK)
        return st;
    for (int d = 0; d < nd; d++)
        if (sym[d]) {
            f->skip = true; /* of the batch's size: an expand, in the graph */
            return FLEET_OK;
        }
    const fleet__onnx_attr *a = fleet__imp_attr(f->n, "value");
    fleet_dtype dt = FLEET_DTYPE_F32;
    unsigned char value[8] = {0};
    if (a != NULL && a->type == FLEET__ONNX_ATTR_TENSOR && a->t != NULL) {
        size_t es = fleet__onnx_elem_size(a->t->data_type);
        bool known = false;
        switch (a->t->data_type) {
        case FLEET__ONNX_FLOAT: dt = FLEET_DTYPE_F32, known = true; break;
        case FLEET__ONNX_INT64: dt = FLEET_DTYPE_I64, known = true; break;
        case FLEET__ONNX_INT32: dt = FLEET_DTYPE_I32, known = true; break;
        case FLEET__ONNX_BOOL: dt = FLEET_DTYPE_BOOL, known = true; break;
        default: break;
        }
        if (!known || fleet__onnx_tensor_numel(a->t) != 1)
            return fleet__imp_unsupported(f->n, "a value of dtype %d", (int)a->t->data_type);
        if ((st = fleet__onnx_tensor_read(f->im->om, a->t, value, es)) != FLEET_OK)
            return st;
    }
    result r;
    bool big = false;
    if ((st = result_new(&r, dt, nd, shape, false, &big)) != FLEET_OK || big) {
        f->skip = big;
        return st;
    }
    size_t es = fleet_dtype_size(dt);
    for (int64_t i = 0; i < r.numel; i++)
        memcpy((char *)r.data + (size_t)i * es, value, es);
    return emit(f->im, f->n, 0, &r);
}

/* Constant: value (a tensor), value_float(s), value_int(s). */
static fleet_status fold_constant(fctx *f)
{
    const fleet__onnx_node *n = f->n;
    const fleet__onnx_attr *a = n->n_attrs == 1 ? &n->attrs[0] : NULL;
    result r;
    bool big = false;
    fleet_status st;
    if (a == NULL)
        return fleet__imp_unsupported(n, "a Constant without exactly one value attribute");
    if (fleet__onnx_str_is(a->name, "value") && a->type == FLEET__ONNX_ATTR_TENSOR && a->t) {
        fleet_dtype dt;
        switch (a->t->data_type) {
        case FLEET__ONNX_FLOAT: dt = FLEET_DTYPE_F32; break;
        case FLEET__ONNX_FLOAT16: dt = FLEET_DTYPE_F16; break;
        case FLEET__ONNX_BFLOAT16: dt = FLEET_DTYPE_BF16; break;
        case FLEET__ONNX_INT64: dt = FLEET_DTYPE_I64; break;
        case FLEET__ONNX_INT32: dt = FLEET_DTYPE_I32; break;
        case FLEET__ONNX_BOOL: dt = FLEET_DTYPE_BOOL; break;
        default: return fleet__imp_unsupported(n, "a value of ONNX dtype %d", (int)a->t->data_type);
        }
        if (a->t->external)
            return fleet__imp_unsupported(n, "a Constant with external data");
        if ((st = result_new(&r, dt, a->t->ndim, a->t->dims, false, &big)) != FLEET_OK)
            return st;
        if (big)
            return fleet__imp_unsupported(n, "a Constant of more than 2^22 elements");
        st = fleet__onnx_tensor_read(f->im->om, a->t, r.data,
                                     (size_t)r.numel * fleet_dtype_size(dt));
    } else if (a->type == FLEET__ONNX_ATTR_FLOAT || a->type == FLEET__ONNX_ATTR_INT ||
               a->type == FLEET__ONNX_ATTR_FLOATS || a->type == FLEET__ONNX_ATTR_INTS) {
        bool list = a->type == FLEET__ONNX_ATTR_FLOATS || a->type == FLEET__ONNX_ATTR_INTS;
        bool fl = a->type == FLEET__ONNX_ATTR_FLOAT || a->type == FLEET__ONNX_ATTR_FLOATS;
        int64_t len = list ? (fl ? a->n_floats : a->n_ints) : 1;
        if ((st = result_new(&r, fl ? FLEET_DTYPE_F32 : FLEET_DTYPE_I64, list ? 1 : 0, &len,
                             false, &big)) != FLEET_OK)
            return st;
        for (int64_t i = 0; i < len; i++)
            set_elem(r.data, r.dtype, i, list ? (fl ? 0 : a->ints[i]) : a->i,
                     list ? (fl ? a->floats[i] : 0) : a->f, fl);
    } else {
        return fleet__imp_unsupported(n, "a Constant of attribute '%.*s'", (int)a->name.n,
                                      (const char *)a->name.p);
    }
    if (st != FLEET_OK) {
        result_free(&r);
        return st;
    }
    return emit(f->im, n, 0, &r);
}

/* ---- shapes of the shape-only ops ------------------------------------------------------ */

/* Reshape's target: 0 copies the input's dim (unless allowzero), -1 is
 * inferred; elements of the batch size stay symbolic. */
static fleet_status reshape_target(fctx *f, int64_t *shape, int *ndim)
{
    const fleet__ival *x = f->in[0];
    uint8_t sym[FLEET_MAX_DIMS];
    fleet_status st = fleet__imp_ints(f->n, f->in[1], shape, sym, FLEET_MAX_DIMS, ndim);
    if (st != FLEET_OK)
        return st;
    bool allowzero = fleet__imp_attr_int(f->n, "allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < *ndim; d++) {
        if (sym[d]) {
            f->skip = true; /* a constant has no batch */
            return FLEET_OK;
        }
        if (shape[d] == 0 && !allowzero) {
            if (d >= x->ndim)
                return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Reshape copies dim %d of a "
                                    "%d-D input", d, x->ndim);
            shape[d] = x->shape[d];
        }
        if (shape[d] == -1) {
            if (infer >= 0)
                return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Reshape with two -1");
            infer = d;
        } else if (shape[d] < 0) {
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Reshape to dim %lld",
                                (long long)shape[d]);
        } else if (__builtin_mul_overflow(known, shape[d], &known)) {
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: a Reshape target past 2^63");
        }
    }
    if (infer >= 0)
        shape[infer] = known > 0 ? x->numel / known : 0;
    return FLEET_OK;
}

/* Squeeze/Unsqueeze axes: the attribute (before opset 13) or input 1. */
static fleet_status axes_of(fctx *f, int64_t *axes, int *n)
{
    if (f->im->opset < 13 || f->n_in < 2 || f->in[1] == NULL) {
        const int64_t *a;
        *n = fleet__imp_attr_ints(f->n, "axes", &a);
        if (*n > FLEET_MAX_DIMS)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: more than 8 axes");
        for (int i = 0; i < *n; i++)
            axes[i] = a[i];
        return FLEET_OK;
    }
    return fleet__imp_ints(f->n, f->in[1], axes, NULL, FLEET_MAX_DIMS, n);
}

static fleet_status fold_squeeze(fctx *f, bool unsqueeze)
{
    int64_t axes[FLEET_MAX_DIMS], shape[FLEET_MAX_DIMS];
    int na, nd;
    fleet_status st = axes_of(f, axes, &na);
    if (st == FLEET_OK)
        st = fleet__imp_squeeze_shape(f->n, f->in[0]->ndim, f->in[0]->shape, axes, na, unsqueeze,
                                      &nd, shape);
    return st != FLEET_OK ? st : fold_reshape(f, nd, shape);
}

/* ---- the table ------------------------------------------------------------------------- */

fleet_status fleet__imp_ints(const fleet__onnx_node *n, const fleet__ival *iv, int64_t *out,
                             uint8_t *sym_out, int max, int *count)
{
    if (iv == NULL || iv->kind != FLEET__IV_CONST)
        return fleet__imp_unsupported(n, "an input that must be known at load (a shape, axes, "
                                      "pads) is computed by the graph");
    if (!integral(iv->dtype) || iv->numel > max)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: node '%.*s': an integer list input "
                            "of %lld elements of %s", (int)n->name.n, (const char *)n->name.p,
                            (long long)iv->numel, fleet_dtype_name(iv->dtype));
    for (int64_t i = 0; i < iv->numel; i++) {
        out[i] = get_i64(iv, i);
        if (sym_out != NULL)
            sym_out[i] = is_sym(iv, i);
        else if (is_sym(iv, i))
            return fleet__imp_unsupported(n, "the batch size where a fixed number must be");
    }
    *count = (int)iv->numel;
    return FLEET_OK;
}

static fleet_status fold_slice_node(fctx *f)
{
    int64_t st_[FLEET_MAX_DIMS], en[FLEET_MAX_DIMS], ax[FLEET_MAX_DIMS], sp[FLEET_MAX_DIMS];
    int n = 0, ne = 0, na = 0, ns = 0;
    fleet_status st = FLEET_OK;
    if (f->im->opset < 10) {
        const int64_t *a;
        n = fleet__imp_attr_ints(f->n, "starts", &a);
        if (n > FLEET_MAX_DIMS)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: more than 8 slice axes");
        memcpy(st_, a, sizeof(int64_t) * (size_t)n);
        ne = fleet__imp_attr_ints(f->n, "ends", &a);
        if (ne != n)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: starts and ends differ in length");
        memcpy(en, a, sizeof(int64_t) * (size_t)n);
        na = fleet__imp_attr_ints(f->n, "axes", &a);
        if (na != 0 && na != n)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: axes of another length");
        memcpy(ax, a, sizeof(int64_t) * (size_t)na);
    } else {
        if ((st = fleet__imp_ints(f->n, f->in[1], st_, NULL, FLEET_MAX_DIMS, &n)) != FLEET_OK ||
            (st = fleet__imp_ints(f->n, f->in[2], en, NULL, FLEET_MAX_DIMS, &ne)) != FLEET_OK ||
            (f->n_in > 3 && f->in[3] != NULL &&
             (st = fleet__imp_ints(f->n, f->in[3], ax, NULL, FLEET_MAX_DIMS, &na)) != FLEET_OK) ||
            (f->n_in > 4 && f->in[4] != NULL &&
             (st = fleet__imp_ints(f->n, f->in[4], sp, NULL, FLEET_MAX_DIMS, &ns)) != FLEET_OK))
            return st;
        if (ne != n || (na != 0 && na != n) || (ns != 0 && ns != n))
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Slice inputs of different lengths");
    }
    return fold_slice(f, st_, en, na ? ax : NULL, ns ? sp : NULL, n);
}

static fleet_status fold_op(fctx *f)
{
    if (OP_IS(f, "Shape"))
        return fold_shape(f);
    if (OP_IS(f, "Constant"))
        return fold_constant(f);
    for (int i = 0; i < f->n_in; i++)
        if (f->in[i] != NULL && f->in[i]->kind != FLEET__IV_CONST) {
            f->skip = true;
            return FLEET_OK;
        }
    static const char *const unary[] = {"Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log",
                                        "Floor", "Ceil", "Not"};
    static const char *const binary[] = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal",
                                         "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                                         "And", "Or"};
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++)
        if (OP_IS(f, unary[i]))
            return fold_elementwise(f, 1);
    for (size_t i = 0; i < sizeof binary / sizeof binary[0]; i++)
        if (OP_IS(f, binary[i]))
            return f->n_in == 2 ? fold_elementwise(f, 2) : FLEET_OK;
    if ((OP_IS(f, "Max") || OP_IS(f, "Min")) && f->n_in == 2)
        return fold_elementwise(f, 2);
    if (OP_IS(f, "Where") && f->n_in == 3)
        return fold_elementwise(f, 3);
    if (OP_IS(f, "Cast")) {
        int64_t to = fleet__imp_attr_int(f->n, "to", 0);
        fleet_dtype dt = to == FLEET__ONNX_FLOAT ? FLEET_DTYPE_F32
                         : to == FLEET__ONNX_INT64 ? FLEET_DTYPE_I64
                         : to == FLEET__ONNX_INT32 ? FLEET_DTYPE_I32
                         : to == FLEET__ONNX_BOOL ? FLEET_DTYPE_BOOL
                                                  : FLEET_DTYPE_F16;
        if (dt == FLEET_DTYPE_F16) {
            f->skip = true;
            return FLEET_OK;
        }
        return fold_cast(f, dt);
    }
    if (OP_IS(f, "Identity") || OP_IS(f, "Dropout"))
        return f->n->n_outputs > 1 && f->n->outputs[1].n ? (f->skip = true, FLEET_OK)
                                                         : fold_reshape(f, f->in[0]->ndim,
                                                                        f->in[0]->shape);
    if (OP_IS(f, "Reshape")) {
        int64_t shape[FLEET_MAX_DIMS];
        int nd;
        fleet_status st = reshape_target(f, shape, &nd);
        return st != FLEET_OK || f->skip ? st : fold_reshape(f, nd, shape);
    }
    if (OP_IS(f, "Flatten")) {
        const fleet__ival *x = f->in[0];
        int axis = norm_axis(fleet__imp_attr_int(f->n, "axis", 1), x->ndim);
        if (axis < 0 || axis > x->ndim)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Flatten axis out of range");
        int64_t shape[2] = {1, 1};
        for (int d = 0; d < x->ndim; d++)
            shape[d >= axis] *= x->shape[d];
        return fold_reshape(f, 2, shape);
    }
    if (OP_IS(f, "Squeeze") || OP_IS(f, "Unsqueeze"))
        return fold_squeeze(f, OP_IS(f, "Unsqueeze"));
    if (OP_IS(f, "Concat"))
        return fold_concat(f);
    if (OP_IS(f, "Gather"))
        return fold_gather(f);
    if (OP_IS(f, "Slice"))
        return fold_slice_node(f);
    if (OP_IS(f, "Transpose"))
        return fold_transpose(f);
    if (OP_IS(f, "Range"))
        return fold_range(f);
    if (OP_IS(f, "ConstantOfShape"))
        return fold_constant_of_shape(f);
    if (OP_IS(f, "Expand")) {
        int64_t to[FLEET_MAX_DIMS];
        uint8_t sym[FLEET_MAX_DIMS];
        int nd;
        fleet_status st = fleet__imp_ints(f->n, f->in[1], to, sym, FLEET_MAX_DIMS, &nd);
        for (int d = 0; st == FLEET_OK && d < nd; d++)
            if (sym[d]) {
                f->skip = true; /* to the batch's size: an expand, in the graph */
                return FLEET_OK;
            }
        return st != FLEET_OK ? st : fold_expand(f, nd, to);
    }
    f->skip = true;
    return FLEET_OK;
}

fleet_status fleet__imp_fold(fleet__importer *im, const fleet__onnx_node *n, bool *done)
{
    *done = false;
    fctx f = {.im = im, .n = n, .n_in = n->n_inputs};
    if (n->n_inputs > 8)
        return FLEET_OK;
    for (int k = 0; k < n->n_inputs; k++) {
        fleet_status st = fleet__imp_input(im, n, k, &f.in[k]);
        if (st != FLEET_OK)
            return st;
        /* a constant with a dimension past what folds (beside a 0, its
         * element count can be small): its arithmetic would overflow */
        for (int d = 0; f.in[k] != NULL && f.in[k]->kind == FLEET__IV_CONST && d < f.in[k]->ndim;
             d++)
            if (f.in[k]->shape[d] > FLEET__FOLD_MAX_ELEMS)
                return FLEET_OK;
    }
    if (n->n_inputs == 0 && !fleet__onnx_str_is(n->op_type, "Constant"))
        return FLEET_OK;
    if (n->n_inputs > 0 && f.in[0] == NULL)
        return FLEET_OK;
    fleet_status st = fold_op(&f);
    *done = st == FLEET_OK && !f.skip;
    return st;
}
