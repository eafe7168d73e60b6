/* fleet/ops.h — operations on tensors.
 *
 * Every op writes into an output tensor the caller created with the right
 * shape and dtype (no allocation on the op's path), and runs asynchronously on
 * the calling thread's current stream of the tensors' device. All tensors of a
 * call must be on one device (FLEET_ERR_INVALID_DEVICE otherwise) and of one
 * dtype (FLEET_ERR_DTYPE_MISMATCH); wrong shapes give FLEET_ERR_SHAPE_MISMATCH
 * with the shapes in fleet_last_error(). A failed call submits nothing.
 *
 * Elementwise ops take any strided views (see the view functions in
 * tensor.h) and broadcast like NumPy: shapes align at the last dimension and
 * a dimension of size 1, or a missing one, stretches. out must have the
 * broadcast shape; it may be one of the inputs itself (in place) but must not
 * partly overlap one. They run in f32 everywhere, and in f16/bf16 (computed
 * in f32) on cuda; add, sub, mul, div, maximum, minimum, neg, abs and the
 * comparisons also on i32 and i64 (exact, wrapping on overflow; a division
 * truncates, and by zero gives 0).
 *
 *     // out[M,N] = relu(a[M,K] @ b[K,N] + bias[N])
 *     fleet_matmul(a, b, out);
 *     fleet_add(out, bias, out);
 *     fleet_relu(out, out);
 */
#ifndef FLEET_OPS_H
#define FLEET_OPS_H

#include "fleet/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[..., M, N] = a[..., M, K] @ b[..., K, N]. Batch dimensions broadcast
 * like NumPy's matmul (out has the broadcast batch shape). a and b may be
 * views stored row- or column-major in their last two dimensions (so a
 * transposed view costs no copy); out must be row-contiguous there and must
 * not overlap a or b. f32; f16/bf16 on cuda (accumulated in f32). */
FLEET_API fleet_status fleet_matmul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);

/* y[..., out] = x[..., in] @ weight[out, in]^T + bias[out] (bias may be
 * NULL), as torch.nn.Linear. The bias is applied in the same GEMM task on
 * cpu and in the GEMM's epilogue on cuda (one cublasLtMatmul; a separate
 * bias kernel only where cuBLASLt has no algorithm for the shape). The bias
 * has x's dtype: f32, or f16/bf16 on cuda. */
FLEET_API fleet_status fleet_linear(const fleet_tensor *x, const fleet_tensor *weight,
                          const fleet_tensor *bias, fleet_tensor *y);

/* Binary elementwise ops with broadcasting: out = a op b. pow is a^b;
 * maximum and minimum propagate NaN (as numpy's). */
FLEET_API fleet_status fleet_add(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_sub(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_mul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_div(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_pow(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_maximum(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_minimum(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);

/* Comparisons with broadcasting: out (FLEET_DTYPE_BOOL, 1 or 0) = a op b. */
FLEET_API fleet_status fleet_equal(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_less(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_less_equal(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_greater(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
FLEET_API fleet_status fleet_greater_equal(const fleet_tensor *a, const fleet_tensor *b,
                                           fleet_tensor *out);

/* out = cond ? a : b with broadcasting of all three: cond is
 * FLEET_DTYPE_BOOL, a, b and out of one dtype, any (a select, no
 * arithmetic). */
FLEET_API fleet_status fleet_where(const fleet_tensor *cond, const fleet_tensor *a,
                                   const fleet_tensor *b, fleet_tensor *out);

/* Unary elementwise ops: out (x's shape) = f(x). */
FLEET_API fleet_status fleet_relu(const fleet_tensor *x, fleet_tensor *out);    /* max(x, 0)              */
FLEET_API fleet_status fleet_gelu(const fleet_tensor *x, fleet_tensor *out);    /* x/2 (1 + erf(x/sqrt 2)) */
FLEET_API fleet_status fleet_silu(const fleet_tensor *x, fleet_tensor *out);    /* x sigmoid(x)           */
FLEET_API fleet_status fleet_tanh(const fleet_tensor *x, fleet_tensor *out);
FLEET_API fleet_status fleet_sigmoid(const fleet_tensor *x, fleet_tensor *out); /* 1 / (1 + exp(-x))      */
FLEET_API fleet_status fleet_gelu_tanh(const fleet_tensor *x, fleet_tensor *out); /* GELU, tanh form */
FLEET_API fleet_status fleet_erf(const fleet_tensor *x, fleet_tensor *out);
FLEET_API fleet_status fleet_exp(const fleet_tensor *x, fleet_tensor *out);
FLEET_API fleet_status fleet_log(const fleet_tensor *x, fleet_tensor *out);
FLEET_API fleet_status fleet_sqrt(const fleet_tensor *x, fleet_tensor *out);
FLEET_API fleet_status fleet_neg(const fleet_tensor *x, fleet_tensor *out);
FLEET_API fleet_status fleet_abs(const fleet_tensor *x, fleet_tensor *out);
FLEET_API fleet_status fleet_reciprocal(const fleet_tensor *x, fleet_tensor *out); /* 1 / x */
/* x >= 0 ? x : alpha x */
FLEET_API fleet_status fleet_leaky_relu(const fleet_tensor *x, float alpha, fleet_tensor *out);
/* min(max(x, lo), hi); lo > hi is refused */
FLEET_API fleet_status fleet_clip(const fleet_tensor *x, float lo, float hi, fleet_tensor *out);

/* Copy x's values into out (same shape and dtype, any layouts, every
 * dtype): with a contiguous out this makes a contiguous copy of a view. */
FLEET_API fleet_status fleet_copy(const fleet_tensor *x, fleet_tensor *out);
/* x's values converted to out's dtype (same shape): between any two dtypes,
 * on every backend. Narrowing to f16/bf16 rounds to nearest, ties to even
 * (overflow gives infinity); float to integer truncates toward zero and
 * saturates (NaN gives 0); to bool is x != 0. */
FLEET_API fleet_status fleet_cast(const fleet_tensor *x, fleet_tensor *out);

/* Row ops: softmax, layer norm, sum and mean work along one dimension of x.
 * x and out may be any strided views (no copy is made); f32 everywhere, and
 * f16/bf16 on cuda (computed in f32; gamma and beta then have x's dtype). dim
 * counts from the end when negative and must lie in [-ndim, ndim)
 * (FLEET_ERR_INVALID_ARGUMENT otherwise; a 0-D x has no dim). out must not
 * repeat elements (a zero stride) and must not partly overlap an input; only
 * softmax and layer norm may run in place (out == x, the same view).
 *
 *     // attention weights over the last dimension, in place
 *     fleet_softmax(scores, -1, scores);
 *     // per-row means of a [B, T, C] tensor into a [B, T] one
 *     fleet_mean(x, -1, 0, row_means);
 */

/* out (x's shape) = exp(x - max) / sum(exp(x - max)) along dim; the max is
 * subtracted first, so large inputs do not overflow. */
FLEET_API fleet_status fleet_softmax(const fleet_tensor *x, int dim, fleet_tensor *out);
/* out (x's shape) = x - max - log(sum(exp(x - max))) along dim. */
FLEET_API fleet_status fleet_log_softmax(const fleet_tensor *x, int dim, fleet_tensor *out);

/* out (x's shape) = (x - mean) / sqrt(var + eps) * gamma + beta over x's last
 * dimension, with the biased variance, as torch.nn.LayerNorm. gamma and beta
 * are 1-D of that dimension's size (FLEET_ERR_SHAPE_MISMATCH otherwise), or
 * NULL for all ones / all zeros; out must not overlap them. eps >= 0. */
FLEET_API fleet_status fleet_layer_norm(const fleet_tensor *x, const fleet_tensor *gamma,
                              const fleet_tensor *beta, float eps, fleet_tensor *out);

/* out = the sum (or mean) of x along dim. out has x's shape with dim removed
 * (keepdim 0; a 1-D x gives a 0-D out) or set to 1 (keepdim != 0); another
 * shape is FLEET_ERR_SHAPE_MISMATCH. out must not overlap x. Summing an empty
 * dimension gives 0, its mean NaN. */
FLEET_API fleet_status fleet_sum(const fleet_tensor *x, int dim, int keepdim, fleet_tensor *out);
FLEET_API fleet_status fleet_mean(const fleet_tensor *x, int dim, int keepdim, fleet_tensor *out);
/* The largest element along dim (NaN if one is NaN; -inf for an empty dim),
 * shaped as fleet_sum's out. */
FLEET_API fleet_status fleet_max(const fleet_tensor *x, int dim, int keepdim, fleet_tensor *out);

/* Gather, concatenation and convolution (f32).
 *
 *     // tokens [B, T] (i32 or i64) -> vectors [B, T, D]
 *     fleet_embedding(table, tokens, vectors);
 *     // [N, 1, 1024] -> [N, 64, 1024]: K = 3, padding 1
 *     fleet_conv1d(x, w, b, 1, 1, 1, y);
 *     // [B, T, D1] ++ [B, T, D2] -> [B, T, D1 + D2]
 *     const fleet_tensor *parts[] = {p1, p2};
 *     fleet_concat(parts, 2, -1, joined);
 */

/* out[..., :] = weight[indices[...], :]: weight [V, D] f32, indices of any
 * shape, i32 or i64 (FLEET_ERR_DTYPE_MISMATCH otherwise), out [indices'
 * shape..., D] f32; all three contiguous, on one device. The indices are
 * read when the op runs, so they are not checked at the call: an index
 * outside [0, V), negative ones included, yields a row of zeros (like a
 * padding index) and reads nothing out of bounds. */
FLEET_API fleet_status fleet_embedding(const fleet_tensor *weight, const fleet_tensor *indices,
                             fleet_tensor *out);

/* out = x taken along axis at indices (i32 or i64, contiguous), as
 * numpy.take and ONNX's Gather: out has x's dims before axis, then indices'
 * dims, then x's after it. x (contiguous, any dtype) and out of one dtype.
 * A negative index counts from the end; one outside the dimension gives
 * zeros (indices are not read at the call). */
FLEET_API fleet_status fleet_gather(const fleet_tensor *x, const fleet_tensor *indices, int axis,
                                    fleet_tensor *out);

/* out = inputs[0] ++ ... ++ inputs[n-1] along dim (negative counts from the
 * end): n >= 1 inputs with out's number of dimensions and out's sizes except
 * along dim, where theirs add up to out's (FLEET_ERR_SHAPE_MISMATCH
 * otherwise). Inputs may be any strided views; out any view that does not
 * repeat elements or overlap an input. One fleet_copy per input into its
 * slice of out, so the dtypes are fleet_copy's (every dtype). */
FLEET_API fleet_status fleet_concat(const fleet_tensor *const *inputs, int n, int dim, fleet_tensor *out);

/* Cross-correlation as torch.nn.Conv1d (groups 1): x [N, Cin, L], weight
 * [Cout, Cin, K], bias [Cout] or NULL, out [N, Cout, Lout] with
 * Lout = (L + 2 padding - dilation (K - 1) - 1) / stride + 1; zero padding.
 * stride >= 1, dilation >= 1, padding >= 0 (FLEET_ERR_INVALID_ARGUMENT
 * otherwise); Lout <= 0 or other shapes are FLEET_ERR_SHAPE_MISMATCH. Every
 * tensor must be contiguous and out must not overlap an input. Runs as
 * im2col + GEMM with a scratch buffer from the caching allocator on the
 * caller's stream (up to 256 MiB; bigger batches go in chunks). */
FLEET_API fleet_status fleet_conv1d(const fleet_tensor *x, const fleet_tensor *weight,
                          const fleet_tensor *bias, int64_t stride, int64_t padding,
                          int64_t dilation, fleet_tensor *out);

/* The same in two dimensions, as torch.nn.Conv2d (groups 1): x [N, Cin, H, W],
 * weight [Cout, Cin, KH, KW], bias [Cout] or NULL, out [N, Cout, OH, OW], each
 * output size by fleet_conv1d's formula with its own stride/padding/dilation. */
FLEET_API fleet_status fleet_conv2d(const fleet_tensor *x, const fleet_tensor *weight,
                          const fleet_tensor *bias, int64_t stride_h, int64_t stride_w,
                          int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w,
                          fleet_tensor *out);

/* fleet_conv2d with padding that may differ before and after each spatial
 * dimension and grouped channels (as ONNX's Conv): weight [Cout,
 * Cin/groups, KH, KW], groups dividing Cin and Cout; OH = (H + pad_begin[0]
 * + pad_end[0] - dilation[0] (KH - 1) - 1) / stride[0] + 1, likewise OW.
 * Index 0 of each pair is the height's, 1 the width's. */
typedef struct fleet_conv2d_params {
    int64_t stride[2], pad_begin[2], pad_end[2], dilation[2];
    int64_t groups;
} fleet_conv2d_params;
FLEET_API fleet_status fleet_conv2d_ex(const fleet_tensor *x, const fleet_tensor *weight,
                                       const fleet_tensor *bias,
                                       const fleet_conv2d_params *params, fleet_tensor *out);

/* 2-D pooling of x [N, C, H, W] into out [N, C, OH, OW] (f32, contiguous):
 * windows of kernel[0] x kernel[1] at stride, dilated, over x padded by
 * pad_begin/pad_end; OH as for a convolution, or, with ceil_mode, rounded
 * up so that a last partial window counts (unless it would start in the
 * trailing padding), as PyTorch and ONNX. Max pooling skips padding (a
 * window of padding only gives -inf); average pooling divides by the
 * window's positions inside x, or with count_include_pad by its size
 * clipped to the padded extent (dilation must then be 1). */
typedef struct fleet_pool2d_params {
    int64_t kernel[2], stride[2], pad_begin[2], pad_end[2], dilation[2];
    int ceil_mode, count_include_pad;
} fleet_pool2d_params;
FLEET_API fleet_status fleet_max_pool2d(const fleet_tensor *x, const fleet_pool2d_params *params,
                                        fleet_tensor *out);
FLEET_API fleet_status fleet_avg_pool2d(const fleet_tensor *x, const fleet_pool2d_params *params,
                                        fleet_tensor *out);

/* Scaled dot-product attention, as torch's scaled_dot_product_attention:
 * out[..., Lq, Dv] = softmax(scale * q[..., Lq, D] @ k[..., Lk, D]^T + mask)
 * @ v[..., Lk, Dv]. Batch dimensions (heads among them) of k and v broadcast
 * to q's; mask is NULL or an additive tensor (q's dtype) that broadcasts to
 * [..., Lq, Lk] (use -inf or a large negative value to mask; a causal mask
 * is the upper triangle). scale <= 0 means 1/sqrt(D). The scores take a
 * temporary [..., Lq, Lk] tensor from the caching allocator on the caller's
 * stream. */
FLEET_API fleet_status fleet_attention(const fleet_tensor *q, const fleet_tensor *k, const fleet_tensor *v,
                             const fleet_tensor *mask, float scale, fleet_tensor *out);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_OPS_H */
