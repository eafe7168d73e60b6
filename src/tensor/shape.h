/* tensor/shape.h — every op's shape rule, written once.
 *
 * A rule takes its operands' dims (and the op's attributes) and gives the
 * result's dims, or refuses with a fleet_status and text naming the operands
 * ("fleet_matmul: inner dimensions differ: a is 2x3, b is 4x5"). The model
 * builder runs a rule on a graph's symbolic shapes, an eager op on its
 * tensors' shapes, the tensor views on theirs, and later importers on
 * theirs: each op's rule exists once.
 *
 * Dims may be symbolic: a negative dim -k stands for k times the batch size,
 * known only when the model runs (FLEET_DIM_BATCH is -1, the batch itself;
 * -k comes from a reshape that folds the batch into rows, as [B, S, D] ->
 * [S·B, D]). A symbolic dim equals only itself: broadcasting it with 1 gives
 * it, with itself gives it, with anything else refuses (the sizes cannot be
 * proved to agree). A reshape counts -k as the factor k times one B. Rules
 * that need a number (a window's input size, a weight's rows) refuse a
 * symbolic dim there.
 *
 * Statuses: FLEET_ERR_SHAPE_MISMATCH for shapes that do not fit together,
 * FLEET_ERR_INVALID_ARGUMENT for attributes out of range (a dim index, a
 * stride). Rules set no other state.
 */
#ifndef FLEET_TENSOR_SHAPE_H
#define FLEET_TENSOR_SHAPE_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet/status.h"
#include "fleet/tensor.h"

typedef struct fleet__dims {
    int ndim;
    int64_t d[FLEET_MAX_DIMS];
} fleet__dims;

fleet__dims fleet__dims_of(int ndim, const int64_t *shape);
/* The dims of anything with `ndim` and `shape` fields (a tensor, a value). */
#define FLEET__DIMS(x) fleet__dims_of((x)->ndim, (x)->shape)

static inline bool fleet__dim_symbolic(int64_t d)
{
    return d < 0;
}

bool fleet__dims_equal(const fleet__dims *a, const fleet__dims *b);

/* A dim's size for a batch size: -k is k * batch (the caller bounds it). */
static inline int64_t fleet__dim_at(int64_t d, int64_t batch)
{
    return d < 0 ? -d * batch : d;
}

/* FLEET_ERR_SHAPE_MISMATCH with "fn: what: xn is 2x3, yn is 4" (y NULL: no
 * second operand). */
fleet_status fleet__shape_refuse(const char *fn, const char *what, const fleet__dims *x,
                                 const char *xn, const fleet__dims *y, const char *yn);

/* A given output against the rule's dims: FLEET_OK when equal, else
 * FLEET_ERR_SHAPE_MISMATCH "fn: name must be 2x5 (hint), got 3x5". The
 * _aligned form also accepts extra leading dims of size 1 in got (the
 * broadcasting ops' outputs: their kernels walk got's own dims). */
fleet_status fleet__shape_expect(const char *fn, const char *name, const fleet__dims *got,
                                 const fleet__dims *want, const char *hint);
fleet_status fleet__shape_expect_aligned(const char *fn, const char *name,
                                         const fleet__dims *got, const fleet__dims *want,
                                         const char *hint);

/* dim in [-ndim, ndim) to [0, ndim): FLEET_ERR_INVALID_ARGUMENT "fn: dim 2 of
 * a 2-D tensor" otherwise. */
fleet_status fleet__shape_dim(const char *fn, int ndim, int dim, int *out);

/* ---- the rules ---------------------------------------------------------------- */

/* NumPy broadcasting: aligned at the last dimension, a 1 (or a missing
 * dimension) stretches to the other's size. */
fleet_status fleet__shape_broadcast(const char *fn, const fleet__dims *a, const char *an,
                                    const fleet__dims *b, const char *bn, fleet__dims *out);

/* a[..., M, K] @ b[..., K, N] -> [broadcast(...), M, N]. */
fleet_status fleet__shape_matmul(const char *fn, const fleet__dims *a, const fleet__dims *b,
                                 fleet__dims *out);

/* x[..., in] @ weight[out, in]^T (+ bias[out], NULL: none) -> [..., out]. */
fleet_status fleet__shape_linear(const char *fn, const fleet__dims *x, const fleet__dims *weight,
                                 const fleet__dims *bias, fleet__dims *out);

/* Sum or mean along dim (normalised into *norm_dim when not NULL): x's
 * shape with dim set to 1 (keepdim) or removed. */
fleet_status fleet__shape_reduce(const char *fn, const fleet__dims *x, int dim, bool keepdim,
                                 fleet__dims *out, int *norm_dim);

/* Layer norm over the last dimension; gamma and beta (each NULL: none) are
 * [last]. The result has x's shape. */
fleet_status fleet__shape_layer_norm(const char *fn, const fleet__dims *x,
                                     const fleet__dims *gamma, const fleet__dims *beta,
                                     fleet__dims *out);

/* One spatial dimension of a sliding window (convolution, pooling). */
typedef struct fleet__window {
    int64_t kernel, stride, pad_begin, pad_end, dilation;
    bool ceil_mode; /* pooling: count a last partial window */
} fleet__window;

/* Positions of the window over `in`: floor (or, ceil_mode, ceil) of
 * (in + pads - dilation*(kernel-1) - 1) / stride + 1, and with ceil_mode the
 * last window must start inside the input or its leading padding (as
 * PyTorch and onnxruntime count). Refuses stride, dilation < 1, padding
 * < 0 or any of them >= 2^31 (INVALID_ARGUMENT), a kernel < 1, a symbolic
 * input, and no position at all (SHAPE_MISMATCH). */
fleet_status fleet__shape_window(const char *fn, int64_t in, const fleet__window *w,
                                 int64_t *out);

/* Convolution with sp (1 or 2) spatial dimensions: x[N, Cin, (H,) W],
 * weight[Cout, Cin/groups, (KH,) KW], bias[Cout] or NULL -> [N, Cout, (OH,)
 * OW]; groups divide Cin and Cout. win has sp entries; their kernel fields
 * are taken from weight. Only N may be symbolic. */
fleet_status fleet__shape_conv(const char *fn, int sp, const fleet__dims *x,
                               const fleet__dims *weight, const fleet__dims *bias,
                               const fleet__window *win, int64_t groups, fleet__dims *out);

/* Pooling over the last sp dimensions of x[N, C, ...] with the windows
 * win[sp] (kernel included): the spatial sizes become the positions. */
fleet_status fleet__shape_pool(const char *fn, int sp, const fleet__dims *x,
                               const fleet__window *win, fleet__dims *out);

/* Reshape x to `to`: the same elements (for symbolic dims: the same
 * symbols, as many times, and the same product of the fixed ones). */
fleet_status fleet__shape_reshape(const char *fn, const fleet__dims *x, const fleet__dims *to);

/* out[i] = x[perm[i]]; perm is a permutation of x's dims (negative entries
 * count from the end) and comes back normalised. */
fleet_status fleet__shape_permute(const char *fn, const fleet__dims *x, int *perm,
                                  fleet__dims *out);

/* Scaled dot-product attention: q[..., Lq, D], k[..., Lk, D], v[..., Lk, Dv]
 * (batch dims broadcast), mask NULL or broadcasting to the scores
 * [..., Lq, Lk] -> out [..., Lq, Dv]; *scores (NULL: not wanted) gets the
 * scores' dims. */
fleet_status fleet__shape_attention(const char *fn, const fleet__dims *q, const fleet__dims *k,
                                    const fleet__dims *v, const fleet__dims *mask,
                                    fleet__dims *scores, fleet__dims *out);

/* x gathered along axis (normalised into *norm_axis when not NULL) by
 * indices: x's dims before axis, indices' dims, x's dims after axis. */
fleet_status fleet__shape_gather(const char *fn, const fleet__dims *x, const fleet__dims *indices,
                                 int axis, fleet__dims *out, int *norm_axis);

/* weight[V, D] gathered by indices[...] -> [..., D]. */
fleet_status fleet__shape_embedding(const char *fn, const fleet__dims *weight,
                                    const fleet__dims *indices, fleet__dims *out);

/* Elements [start, end) of dim at step (> 0), ONNX's Slice: a negative
 * start or end counts from the end, then both clamp to [0, size]. The dim
 * comes back normalised into *norm_dim, the first element taken into
 * *first. A symbolic dim can only be taken whole (start 0, end at or past
 * its end as INT64_MAX says, step 1). */
fleet_status fleet__shape_slice(const char *fn, const fleet__dims *x, int dim, int64_t start,
                                int64_t end, int64_t step, fleet__dims *out, int *norm_dim,
                                int64_t *first);

/* inputs[n] (n >= 1) of one rank, equal but along dim (normalised against
 * their rank into *norm_dim when not NULL), joined along dim. */
fleet_status fleet__shape_concat(const char *fn, const fleet__dims *inputs, int n, int dim,
                                 fleet__dims *out, int *norm_dim);

#endif /* FLEET_TENSOR_SHAPE_H */
