/* ops/attention.c — scaled dot-product attention, composed of the other
 * ops on the caller's stream: scores = scale * q @ k^T (+ mask), softmax over
 * the keys, out = scores @ v. The scores live in a tensor from the caching
 * allocator on the caller's stream, released (stream-ordered) before the
 * call returns. Every shape is checked before anything is submitted. */
#include <math.h>

#include "core/error.h"
#include "ops/ops_internal.h"

/* x's dimension d counted from the end (1 = last). */
static int64_t dim_from_end(const fleet_tensor *x, int d)
{
    return x->shape[x->ndim - d];
}

static bool broadcasts_to(const fleet_tensor *x, const int64_t *shape, int ndim)
{
    if (x->ndim > ndim)
        return false;
    for (int d = 0; d < x->ndim; d++) {
        int64_t s = x->shape[x->ndim - 1 - d];
        if (s != 1 && s != shape[ndim - 1 - d])
            return false;
    }
    return true;
}

fleet_status fleet_attention(const fleet_tensor *q_h, const fleet_tensor *k_h,
                             const fleet_tensor *v_h, const fleet_tensor *mask_h, float scale,
                             fleet_tensor *out_h)
{
    static const char fn[] = "fleet_attention";
    const fleet_tensor *ts[] = {q_h, k_h, v_h, out_h, mask_h};
    static const char *const names[] = {"q", "k", "v", "out", "mask"};
    int n = mask_h != NULL ? 5 : 4;
    fleet_status st = fleet__op_enter_all(fn, ts, names, n);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *q = ts[0], *k = ts[1], *v = ts[2], *mask = mask_h != NULL ? ts[4] : NULL;
    fleet_tensor *out = (fleet_tensor *)ts[3];
    if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2 || out->ndim != q->ndim)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: expected q[..., Lq, D], k[..., Lk, D], v[..., Lk, Dv], "
                            "out[..., Lq, Dv]: q %d-D, k %d-D, v %d-D, out %d-D",
                            fn, q->ndim, k->ndim, v->ndim, out->ndim);
    if (dim_from_end(k, 1) != dim_from_end(q, 1))
        return fleet__op_shape_error(fn, "q and k must share the last dimension", q, "q", k, "k");
    if (dim_from_end(v, 2) != dim_from_end(k, 2))
        return fleet__op_shape_error(fn, "k and v must have as many rows (keys)", k, "k", v, "v");
    for (int d = 0; d < q->ndim - 2; d++)
        if (out->shape[d] != q->shape[d])
            return fleet__op_shape_error(fn, "out must have q's batch dimensions", out, "out", q,
                                         "q");
    if (dim_from_end(out, 2) != dim_from_end(q, 2) || dim_from_end(out, 1) != dim_from_end(v, 1))
        return fleet__op_shape_error(fn, "out must be [..., Lq, Dv]", out, "out", v, "v");
    /* scores: q's batch dimensions, then Lq x Lk */
    int64_t shape[FLEET_MAX_DIMS];
    for (int d = 0; d < q->ndim - 2; d++)
        shape[d] = q->shape[d];
    shape[q->ndim - 2] = dim_from_end(q, 2);
    shape[q->ndim - 1] = dim_from_end(k, 2);
    if (mask != NULL && !broadcasts_to(mask, shape, q->ndim))
        return fleet__op_shape_error(fn, "mask must broadcast to [..., Lq, Lk]", mask, "mask", q,
                                     "q");
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, n, FLEET__OP_HALF_ON_CUDA)) != FLEET_OK)
        return st;
    if (fleet__overlaps(out, q) || fleet__overlaps(out, k) || fleet__overlaps(out, v))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps an input", fn);
    if (!(scale > 0.0f))
        scale = 1.0f / sqrtf((float)(dim_from_end(q, 1) > 0 ? dim_from_end(q, 1) : 1));

    /* k^T as a view header on the stack: its last two dimensions swapped. */
    fleet_tensor kt = *k;
    kt.shape[k->ndim - 2] = k->shape[k->ndim - 1];
    kt.shape[k->ndim - 1] = k->shape[k->ndim - 2];
    kt.strides[k->ndim - 2] = k->strides[k->ndim - 1];
    kt.strides[k->ndim - 1] = k->strides[k->ndim - 2];

    fleet_tensor *scores;
    if ((st = fleet__tensor_new(q->device, q->dtype, q->ndim, shape, fn, &scores)) != FLEET_OK)
        return st;
    st = fleet__matmul(fn, q, &kt, NULL, scale, false, scores);
    if (st == FLEET_OK && mask != NULL && (st = fleet_add(scores, mask, scores)) != FLEET_OK)
        fleet__error_prefix(st, fn);
    if (st == FLEET_OK && (st = fleet_softmax(scores, -1, scores)) != FLEET_OK)
        fleet__error_prefix(st, fn);
    if (st == FLEET_OK)
        st = fleet__matmul(fn, scores, v, NULL, 1.0f, false, out);
    fleet__tensor_free(scores); /* stream-ordered: reused only after this work */
    return st;
}
