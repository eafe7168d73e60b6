/* fleet/ops.h — operations on tensors.
 *
 * Every op writes into an output tensor the caller created with the right
 * shape and dtype (no allocation on the op's path), and runs asynchronously on
 * the calling thread's current stream of the tensors' device. All tensors of a
 * call must be on one device (FLEET_ERR_INVALID_DEVICE otherwise) and of one
 * dtype (FLEET_ERR_DTYPE_MISMATCH); wrong shapes give FLEET_ERR_SHAPE_MISMATCH
 * with the shapes in fleet_last_error(). A failed call submits nothing.
 *
 * Float32 only in this version; the full op set arrives with the cuda backend.
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

/* out[M,N] = a[M,K] @ b[K,N]. All three contiguous (views and batched
 * matmul arrive with the full op set); out must not alias a or b. */
fleet_status fleet_matmul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);

/* out = a + b, elementwise. b has a's shape, or is 1-D with a's last
 * dimension (added to every row: a bias). out has a's shape and may be a
 * (or b, when b has a's shape) itself, but must not partly overlap either. */
fleet_status fleet_add(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out);

/* out = max(x, 0). out has x's shape and may be x. */
fleet_status fleet_relu(const fleet_tensor *x, fleet_tensor *out);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_OPS_H */
