/* ops/attention.c — scaled dot-product attention, composed of the other
 * ops on the caller's stream: scores = scale * q @ k^T (+ mask), softmax over
 * the keys, out = scores @ v. The scores live in a tensor from the caching
 * allocator on the caller's stream, released (stream-ordered) before the
 * call returns. Every shape is checked before anything is submitted. */
#include <math.h>

#include "core/error.h"
#include "ops/ops_internal.h"

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
    fleet__dims dq = FLEET__DIMS(q), dk = FLEET__DIMS(k), dv = FLEET__DIMS(v);
    fleet__dims dm = mask != NULL ? FLEET__DIMS(mask) : dq, got = FLEET__DIMS(out), sd, want;
    if ((st = fleet__shape_attention(fn, &dq, &dk, &dv, mask != NULL ? &dm : NULL, &sd, &want)) !=
            FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &want, "[..., Lq, Dv]")) != FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, n, FLEET__OP_HALF_ON_CUDA)) != FLEET_OK)
        return st;
    if (fleet__overlaps(out, q) || fleet__overlaps(out, k) || fleet__overlaps(out, v))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps an input", fn);
    if (!(scale > 0.0f)) {
        int64_t d = q->shape[q->ndim - 1];
        scale = 1.0f / sqrtf((float)(d > 0 ? d : 1));
    }

    /* k^T as a view header on the stack: its last two dimensions swapped. */
    fleet_tensor kt = *k;
    kt.shape[k->ndim - 2] = k->shape[k->ndim - 1];
    kt.shape[k->ndim - 1] = k->shape[k->ndim - 2];
    kt.strides[k->ndim - 2] = k->strides[k->ndim - 1];
    kt.strides[k->ndim - 1] = k->strides[k->ndim - 2];

    fleet_tensor *scores;
    if ((st = fleet__tensor_new(q->device, q->dtype, sd.ndim, sd.d, fn, &scores)) != FLEET_OK)
        return st;
    st = fleet__op_matmul(&call, q, &kt, NULL, scale, false, scores);
    if (st == FLEET_OK && mask != NULL)
        st = fleet__op_elementwise(&call, FLEET__EW_ADD, scores, mask, scores);
    if (st == FLEET_OK)
        st = fleet__op_softmax(&call, scores, scores->ndim - 1, scores);
    if (st == FLEET_OK)
        st = fleet__op_matmul(&call, scores, v, NULL, 1.0f, false, out);
    fleet__tensor_free(scores); /* stream-ordered: reused only after this work */
    return st;
}
