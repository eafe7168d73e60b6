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
 * in f32) on cuda.
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
fleet_status fleet_matmul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);

/* y[..., out] = x[..., in] @ weight[out, in]^T + bias[out] (bias may be
 * NULL), as torch.nn.Linear. The bias is applied in the same GEMM task on
 * cpu; on cuda by a kernel right before the GEMM (f32 bias only). */
fleet_status fleet_linear(const fleet_tensor *x, const fleet_tensor *weight,
                          const fleet_tensor *bias, fleet_tensor *y);

/* Binary elementwise ops with broadcasting: out = a op b. */
fleet_status fleet_add(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
fleet_status fleet_sub(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
fleet_status fleet_mul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);
fleet_status fleet_div(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);

/* Unary elementwise ops: out (x's shape) = f(x). */
fleet_status fleet_relu(const fleet_tensor *x, fleet_tensor *out);    /* max(x, 0)              */
fleet_status fleet_gelu(const fleet_tensor *x, fleet_tensor *out);    /* x/2 (1 + erf(x/sqrt 2)) */
fleet_status fleet_silu(const fleet_tensor *x, fleet_tensor *out);    /* x sigmoid(x)           */
fleet_status fleet_tanh(const fleet_tensor *x, fleet_tensor *out);
fleet_status fleet_sigmoid(const fleet_tensor *x, fleet_tensor *out); /* 1 / (1 + exp(-x))      */

/* Copy x's values into out (same shape, any layouts): with a contiguous out
 * this makes a contiguous copy of a view. */
fleet_status fleet_copy(const fleet_tensor *x, fleet_tensor *out);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_OPS_H */
