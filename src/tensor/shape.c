/* tensor/shape.c — the shape rules of tensor/shape.h. */
#include "tensor/shape.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "tensor/tensor.h"

#define PARAM_MAX ((int64_t)INT32_MAX)

fleet__dims fleet__dims_of(int ndim, const int64_t *shape)
{
    fleet__dims r;
    r.ndim = ndim;
    if (ndim > 0)
        memcpy(r.d, shape, sizeof(int64_t) * (size_t)ndim);
    return r;
}

bool fleet__dims_equal(const fleet__dims *a, const fleet__dims *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i])
            return false;
    return true;
}

static const char *str(const fleet__dims *x, char *buf, size_t size)
{
    return fleet__dims_str(x->ndim, x->d, buf, size);
}

fleet_status fleet__shape_refuse(const char *fn, const char *what, const fleet__dims *x,
                                 const char *xn, const fleet__dims *y, const char *yn)
{
    char a[96], b[96];
    if (y == NULL)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: %s: %s is %s", fn, what, xn,
                            str(x, a, sizeof a));
    return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: %s: %s is %s, %s is %s", fn, what, xn,
                        str(x, a, sizeof a), yn, str(y, b, sizeof b));
}

static fleet_status expect(const char *fn, const char *name, const fleet__dims *got,
                           const fleet__dims *want, const char *hint, bool aligned)
{
    int extra = got->ndim - want->ndim;
    bool ok = extra == 0 || (aligned && extra > 0);
    for (int i = 0; ok && i < extra; i++)
        ok = got->d[i] == 1;
    for (int i = 0; ok && i < want->ndim; i++)
        ok = got->d[extra + i] == want->d[i];
    if (ok)
        return FLEET_OK;
    char g[96], w[96];
    return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: %s must be %s%s%s%s, got %s", fn, name,
                        str(want, w, sizeof w), hint ? " (" : "", hint ? hint : "",
                        hint ? ")" : "", str(got, g, sizeof g));
}

fleet_status fleet__shape_expect(const char *fn, const char *name, const fleet__dims *got,
                                 const fleet__dims *want, const char *hint)
{
    return expect(fn, name, got, want, hint, false);
}

fleet_status fleet__shape_expect_aligned(const char *fn, const char *name,
                                         const fleet__dims *got, const fleet__dims *want,
                                         const char *hint)
{
    return expect(fn, name, got, want, hint, true);
}

fleet_status fleet__shape_dim(const char *fn, int ndim, int dim, int *out)
{
    if (dim < -ndim || dim >= ndim)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: dim %d of a %d-D tensor", fn, dim,
                            ndim);
    *out = dim < 0 ? dim + ndim : dim;
    return FLEET_OK;
}

/* ---- broadcasting and products ---------------------------------------------- */

/* The broadcast of the first na dims of a with the first nb of b. */
static bool broadcast_prefix(const fleet__dims *a, int na, const fleet__dims *b, int nb,
                             fleet__dims *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t x = i < na ? a->d[na - 1 - i] : 1;
        int64_t y = i < nb ? b->d[nb - 1 - i] : 1;
        if (x != y && x != 1 && y != 1)
            return false;
        out->d[n - 1 - i] = x == 1 ? y : x;
    }
    out->ndim = n;
    return true;
}

fleet_status fleet__shape_broadcast(const char *fn, const fleet__dims *a, const char *an,
                                    const fleet__dims *b, const char *bn, fleet__dims *out)
{
    if (!broadcast_prefix(a, a->ndim, b, b->ndim, out))
        return fleet__shape_refuse(fn, "shapes do not broadcast", a, an, b, bn);
    return FLEET_OK;
}

fleet_status fleet__shape_matmul(const char *fn, const fleet__dims *a, const fleet__dims *b,
                                 fleet__dims *out)
{
    if (a->ndim < 2 || b->ndim < 2)
        return fleet__shape_refuse(fn, "matrices need 2 or more dimensions", a, "a", b, "b");
    if (a->d[a->ndim - 1] != b->d[b->ndim - 2])
        return fleet__shape_refuse(fn, "inner dimensions differ", a, "a", b, "b");
    if (!broadcast_prefix(a, a->ndim - 2, b, b->ndim - 2, out))
        return fleet__shape_refuse(fn, "batch dimensions do not broadcast", a, "a", b, "b");
    out->d[out->ndim] = a->d[a->ndim - 2];
    out->d[out->ndim + 1] = b->d[b->ndim - 1];
    out->ndim += 2;
    return FLEET_OK;
}

fleet_status fleet__shape_linear(const char *fn, const fleet__dims *x, const fleet__dims *weight,
                                 const fleet__dims *bias, fleet__dims *out)
{
    if (x->ndim < 1 || weight->ndim != 2)
        return fleet__shape_refuse(fn, "expected x[..., in] and weight[out, in]", x, "x", weight,
                                   "weight");
    if (weight->d[1] != x->d[x->ndim - 1])
        return fleet__shape_refuse(fn, "x's last dimension must equal weight's columns", x, "x",
                                   weight, "weight");
    if (fleet__dim_symbolic(weight->d[0]))
        return fleet__shape_refuse(fn, "weight's rows must be a fixed size", weight, "weight",
                                   NULL, NULL);
    if (bias != NULL && (bias->ndim != 1 || bias->d[0] != weight->d[0]))
        return fleet__shape_refuse(fn, "bias must be [out]", bias, "bias", weight, "weight");
    *out = *x;
    out->d[x->ndim - 1] = weight->d[0];
    return FLEET_OK;
}

/* ---- along one dimension ------------------------------------------------------ */

fleet_status fleet__shape_reduce(const char *fn, const fleet__dims *x, int dim, bool keepdim,
                                 fleet__dims *out, int *norm_dim)
{
    int d;
    fleet_status st = fleet__shape_dim(fn, x->ndim, dim, &d);
    if (st != FLEET_OK)
        return st;
    out->ndim = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != d)
            out->d[out->ndim++] = x->d[i];
        else if (keepdim)
            out->d[out->ndim++] = 1;
    }
    if (norm_dim != NULL)
        *norm_dim = d;
    return FLEET_OK;
}

fleet_status fleet__shape_layer_norm(const char *fn, const fleet__dims *x,
                                     const fleet__dims *gamma, const fleet__dims *beta,
                                     fleet__dims *out)
{
    if (x->ndim < 1) /* as a dim out of range */
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: x is 0-D (it needs a last dimension)",
                            fn);
    int64_t last = x->d[x->ndim - 1];
    const fleet__dims *affine[] = {gamma, beta};
    static const char *const names[] = {"gamma", "beta"};
    for (int i = 0; i < 2; i++)
        if (affine[i] != NULL && (affine[i]->ndim != 1 || affine[i]->d[0] != last))
            return fleet__shape_refuse(fn, i == 0 ? "gamma must be 1-D of x's last dimension"
                                                  : "beta must be 1-D of x's last dimension",
                                       affine[i], names[i], x, "x");
    *out = *x;
    return FLEET_OK;
}

/* ---- sliding windows ------------------------------------------------------------ */

fleet_status fleet__shape_window(const char *fn, int64_t in, const fleet__window *w,
                                 int64_t *out)
{
    if (w->stride < 1 || w->stride > PARAM_MAX || w->dilation < 1 || w->dilation > PARAM_MAX ||
        w->pad_begin < 0 || w->pad_begin > PARAM_MAX || w->pad_end < 0 || w->pad_end > PARAM_MAX)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: stride %lld, padding %lld/%lld, dilation %lld: need stride >= 1, "
                            "dilation >= 1, padding >= 0 (all below 2^31)", fn,
                            (long long)w->stride, (long long)w->pad_begin, (long long)w->pad_end,
                            (long long)w->dilation);
    if (w->kernel < 1)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: the kernel size must be >= 1, got %lld",
                            fn, (long long)w->kernel);
    if (fleet__dim_symbolic(in))
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: a window needs a fixed input size (only the batch N may vary)",
                            fn);
    /* in < 2^61 (a tensor's or a declared size), pads < 2^31 each: no overflow */
    int64_t span, padded = in + w->pad_begin + w->pad_end;
    bool huge = __builtin_mul_overflow(w->dilation, w->kernel - 1, &span);
    if (huge || span >= padded) {
        char kernel[32] = "beyond 2^63";
        if (!huge)
            snprintf(kernel, sizeof kernel, "%lld", (long long)span + 1);
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: output size would be <= 0: input %lld + padding %lld is shorter "
                            "than the dilated kernel %s", fn, (long long)in,
                            (long long)(w->pad_begin + w->pad_end), kernel);
    }
    int64_t room = padded - span - 1; /* >= 0 */
    int64_t n = room / w->stride + 1;
    if (w->ceil_mode && room % w->stride != 0) {
        n++;
        if ((n - 1) * w->stride >= in + w->pad_begin)
            n--; /* that window would start in the trailing padding */
    }
    *out = n;
    return FLEET_OK;
}

fleet_status fleet__shape_conv(const char *fn, int sp, const fleet__dims *x,
                               const fleet__dims *weight, const fleet__dims *bias,
                               const fleet__window *win, int64_t groups, fleet__dims *out)
{
    if (groups < 1)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: groups %lld must be >= 1", fn,
                            (long long)groups);
    if (x->ndim != 2 + sp || weight->ndim != 2 + sp)
        return fleet__shape_refuse(fn, sp == 1 ? "expected x[N, Cin, L] and weight[Cout, Cin, K]"
                                               : "expected x[N, Cin, H, W] and "
                                                 "weight[Cout, Cin, KH, KW]",
                                   x, "x", weight, "weight");
    for (int i = 0; i < weight->ndim; i++)
        if (fleet__dim_symbolic(weight->d[i]))
            return fleet__shape_refuse(fn, "weight's dimensions must be fixed sizes", weight,
                                       "weight", NULL, NULL);
    if (fleet__dim_symbolic(x->d[1]) || x->d[1] != weight->d[1] * groups)
        return fleet__shape_refuse(fn, groups == 1 ? "x's channels differ from weight's input "
                                                     "channels"
                                                   : "x's channels must be groups times "
                                                     "weight's input channels",
                                   x, "x", weight, "weight");
    if (weight->d[0] % groups != 0)
        return fleet__shape_refuse(fn, "groups must divide weight's output channels", weight,
                                   "weight", NULL, NULL);
    if (bias != NULL && (bias->ndim != 1 || bias->d[0] != weight->d[0]))
        return fleet__shape_refuse(fn, "bias must be [Cout]", bias, "bias", weight, "weight");
    out->ndim = 2 + sp;
    out->d[0] = x->d[0];
    out->d[1] = weight->d[0];
    for (int k = 0; k < sp; k++) {
        fleet__window w = win[k];
        w.kernel = weight->d[2 + k];
        fleet_status st = fleet__shape_window(fn, x->d[2 + k], &w, &out->d[2 + k]);
        if (st != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

fleet_status fleet__shape_pool(const char *fn, int sp, const fleet__dims *x,
                               const fleet__window *win, fleet__dims *out)
{
    if (sp < 1 || x->ndim != 2 + sp)
        return fleet__shape_refuse(fn, "expected x[N, C, spatial...] with one window per "
                                   "spatial dimension", x, "x", NULL, NULL);
    *out = *x;
    for (int k = 0; k < sp; k++) {
        fleet_status st = fleet__shape_window(fn, x->d[2 + k], &win[k], &out->d[2 + k]);
        if (st != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

/* ---- views ---------------------------------------------------------------------- */

/* The fixed product of x's dims, or false on overflow; symbolic dims are
 * counted apart: symbols[j] appears counts[j] times (n distinct). */
static bool factors(const fleet__dims *x, int64_t *fixed, int64_t *symbols, int *counts, int *n)
{
    *fixed = 1;
    *n = 0;
    for (int i = 0; i < x->ndim; i++) {
        int64_t v = x->d[i];
        if (!fleet__dim_symbolic(v) || v != -1) { /* -k: the factor k and one batch (-1) */
            if (__builtin_mul_overflow(*fixed, v < 0 ? -v : v, fixed))
                return false;
            if (!fleet__dim_symbolic(v))
                continue;
            v = -1;
        }
        int j = 0;
        while (j < *n && symbols[j] != v)
            j++;
        if (j == *n) {
            symbols[j] = v;
            counts[j] = 0;
            (*n)++;
        }
        counts[j]++;
    }
    return true;
}

fleet_status fleet__shape_reshape(const char *fn, const fleet__dims *x, const fleet__dims *to)
{
    int64_t fx, ft, sx[FLEET_MAX_DIMS], st[FLEET_MAX_DIMS];
    int cx[FLEET_MAX_DIMS], ct[FLEET_MAX_DIMS], nx, nt;
    bool same = factors(x, &fx, sx, cx, &nx) && factors(to, &ft, st, ct, &nt) && fx == ft &&
                nx == nt;
    for (int i = 0; same && i < nx; i++) {
        int j = 0;
        while (j < nt && st[j] != sx[i])
            j++;
        same = j < nt && ct[j] == cx[i];
    }
    if (!same)
        return fleet__shape_refuse(fn, "the element counts differ", x, "x", to, "shape");
    return FLEET_OK;
}

fleet_status fleet__shape_permute(const char *fn, const fleet__dims *x, int *perm,
                                  fleet__dims *out)
{
    unsigned seen = 0;
    for (int i = 0; i < x->ndim; i++) {
        int k = perm[i] < 0 ? perm[i] + x->ndim : perm[i];
        if (k < 0 || k >= x->ndim || (seen & (1u << k)))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                "%s: dims is not a permutation of 0..%d (dims[%d] = %d)", fn,
                                x->ndim - 1, i, perm[i]);
        seen |= 1u << k;
        perm[i] = k;
    }
    out->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        out->d[i] = x->d[perm[i]];
    return FLEET_OK;
}

/* ---- composite ops ---------------------------------------------------------------- */

fleet_status fleet__shape_attention(const char *fn, const fleet__dims *q, const fleet__dims *k,
                                    const fleet__dims *v, const fleet__dims *mask,
                                    fleet__dims *scores, fleet__dims *out)
{
    if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2)
        return fleet__shape_refuse(fn, "expected q[..., Lq, D], k[..., Lk, D], v[..., Lk, Dv]",
                                   q, "q", k, "k");
    if (k->d[k->ndim - 1] != q->d[q->ndim - 1])
        return fleet__shape_refuse(fn, "q and k must share the last dimension", q, "q", k, "k");
    if (v->d[v->ndim - 2] != k->d[k->ndim - 2])
        return fleet__shape_refuse(fn, "k and v must have as many rows (keys)", k, "k", v, "v");
    fleet__dims s, o;
    if (!broadcast_prefix(q, q->ndim - 2, k, k->ndim - 2, &s))
        return fleet__shape_refuse(fn, "batch dimensions do not broadcast", q, "q", k, "k");
    if (!broadcast_prefix(&s, s.ndim, v, v->ndim - 2, &o))
        return fleet__shape_refuse(fn, "batch dimensions do not broadcast", k, "k", v, "v");
    s.d[s.ndim] = q->d[q->ndim - 2];
    s.d[s.ndim + 1] = k->d[k->ndim - 2];
    s.ndim += 2;
    o.d[o.ndim] = q->d[q->ndim - 2];
    o.d[o.ndim + 1] = v->d[v->ndim - 1];
    o.ndim += 2;
    if (mask != NULL) {
        fleet__dims m;
        if (!broadcast_prefix(mask, mask->ndim, &s, s.ndim, &m) || !fleet__dims_equal(&m, &s))
            return fleet__shape_refuse(fn, "mask must broadcast to the scores [..., Lq, Lk]", mask,
                                       "mask", &s, "scores");
    }
    if (scores != NULL)
        *scores = s;
    *out = o;
    return FLEET_OK;
}

fleet_status fleet__shape_embedding(const char *fn, const fleet__dims *weight,
                                    const fleet__dims *indices, fleet__dims *out)
{
    if (weight->ndim != 2 || fleet__dim_symbolic(weight->d[0]) ||
        fleet__dim_symbolic(weight->d[1]))
        return fleet__shape_refuse(fn, "weight must be [V, D] of fixed sizes", weight, "weight",
                                   NULL, NULL);
    if (indices->ndim + 1 > FLEET_MAX_DIMS)
        return fleet__shape_refuse(fn, "the result would have too many dimensions", indices,
                                   "indices", NULL, NULL);
    *out = *indices;
    out->d[out->ndim++] = weight->d[1];
    return FLEET_OK;
}

fleet_status fleet__shape_gather(const char *fn, const fleet__dims *x, const fleet__dims *indices,
                                 int axis, fleet__dims *out, int *norm_axis)
{
    int d;
    fleet_status st = fleet__shape_dim(fn, x->ndim, axis, &d);
    if (st != FLEET_OK)
        return st;
    if (x->ndim - 1 + indices->ndim > FLEET_MAX_DIMS)
        return fleet__shape_refuse(fn, "the result would have more than 8 dimensions", x, "x",
                                   indices, "indices");
    out->ndim = 0;
    for (int k = 0; k < d; k++)
        out->d[out->ndim++] = x->d[k];
    for (int k = 0; k < indices->ndim; k++)
        out->d[out->ndim++] = indices->d[k];
    for (int k = d + 1; k < x->ndim; k++)
        out->d[out->ndim++] = x->d[k];
    if (norm_axis != NULL)
        *norm_axis = d;
    return FLEET_OK;
}

static int64_t clamp_index(int64_t i, int64_t size)
{
    if (i < 0)
        i = i < -size ? 0 : i + size;
    return i > size ? size : i;
}

fleet_status fleet__shape_slice(const char *fn, const fleet__dims *x, int dim, int64_t start,
                                int64_t end, int64_t step, fleet__dims *out, int *norm_dim,
                                int64_t *first)
{
    int d;
    fleet_status st = fleet__shape_dim(fn, x->ndim, dim, &d);
    if (st != FLEET_OK)
        return st;
    if (step <= 0)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: step %lld (only steps > 0)", fn,
                            (long long)step);
    int64_t size = x->d[d];
    *out = *x;
    *norm_dim = d;
    if (fleet__dim_symbolic(size)) {
        if (start != 0 || end < INT64_MAX / 2 || step != 1) {
            char what[96];
            snprintf(what, sizeof what, "dimension %d is known only at run time: it can only be "
                     "taken whole", d);
            return fleet__shape_refuse(fn, what, x, "x", NULL, NULL);
        }
        *first = 0;
        return FLEET_OK;
    }
    int64_t b = clamp_index(start, size), e = clamp_index(end, size);
    *first = b;
    out->d[d] = e > b ? 1 + (e - b - 1) / step : 0;
    return FLEET_OK;
}

fleet_status fleet__shape_concat(const char *fn, const fleet__dims *inputs, int n, int dim,
                                 fleet__dims *out, int *norm_dim)
{
    const fleet__dims *first = &inputs[0];
    int d;
    fleet_status st = fleet__shape_dim(fn, first->ndim, dim, &d);
    if (st != FLEET_OK)
        return st;
    *out = *first;
    for (int i = 1; i < n; i++) {
        const fleet__dims *x = &inputs[i];
        bool ok = x->ndim == first->ndim;
        for (int k = 0; ok && k < x->ndim; k++)
            ok = k == d || x->d[k] == first->d[k];
        if (!ok) {
            char name[32];
            snprintf(name, sizeof name, "inputs[%d]", i);
            return fleet__shape_refuse(fn, "inputs must have one shape except along dim", x, name,
                                       first, "inputs[0]");
        }
        if (fleet__dim_symbolic(x->d[d]) || fleet__dim_symbolic(out->d[d]))
            return fleet__shape_refuse(fn, "cannot join along a symbolic dimension", x, "inputs",
                                       NULL, NULL);
        if (__builtin_add_overflow(out->d[d], x->d[d], &out->d[d]))
            return fleet__shape_refuse(fn, "the joined size overflows", x, "inputs", NULL, NULL);
    }
    if (norm_dim != NULL)
        *norm_dim = d;
    return FLEET_OK;
}
