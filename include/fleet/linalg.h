/* fleet/linalg.h — dense linear algebra: LU solve, Cholesky, triangular
 * solve, QR and inverse (LAPACK on cpu, cuSOLVER/cuBLAS on cuda).
 *
 * Tensors are f32, contiguous, row-major. The last two dimensions are the
 * matrix; leading dimensions are a batch and must be equal in every tensor
 * of a call (no broadcasting): a[..., n, n] is a stack of n x n matrices.
 * Outputs are preallocated by the caller with the exact shapes below and
 * must not overlap any input. Work runs on the calling thread's current
 * stream of the tensors' device, like every op.
 *
 * Unlike the other ops these synchronize: a factorization can fail on the
 * values (a singular matrix, a matrix that is not positive definite), and
 * the call reads each matrix's status back before it returns, as
 * torch.linalg does. So each call waits for the caller's stream (all work
 * queued on it before, too). Other streams are not waited for.
 *
 * Errors, checked in this order; a call failing any of the first four
 * submits nothing and leaves its outputs unchanged:
 *   FLEET_ERR_NULL_POINTER      a tensor argument is NULL
 *   FLEET_ERR_SHAPE_MISMATCH    wrong ranks, non-square, m < n for QR, batch
 *                               dimensions differ; the text gives the shapes
 *   FLEET_ERR_INVALID_DEVICE    tensors on different devices
 *   FLEET_ERR_DTYPE_MISMATCH    tensors of different dtypes (and
 *                               FLEET_ERR_UNSUPPORTED for non-f32 ones;
 *                               FLEET_ERR_INVALID_ARGUMENT for a
 *                               non-contiguous tensor or an output that
 *                               overlaps an input)
 *   FLEET_ERR_INVALID_ARGUMENT  found while running: matrix `i` of the batch
 *                               is singular (solve, inv, solve_triangular) or
 *                               not positive definite (cholesky). The text
 *                               names the zero-based batch index and pivot,
 *                               e.g. "fleet_linalg_solve: matrix 1 of the
 *                               batch is singular: pivot 2 (U[2,2]) of its
 *                               LU factorization is zero". Every matrix was
 *                               processed; the outputs are then unspecified
 *                               (also those of the matrices that succeeded).
 *   FLEET_ERR_OUT_OF_MEMORY     no memory for the op's scratch (taken from
 *                               the caching allocator on the caller's stream;
 *                               nothing submitted)
 *   FLEET_ERR_BACKEND, ...      a library/driver failure while queueing or
 *                               running; outputs are then unspecified
 * "Singular" means an exactly zero pivot (LAPACK's test); an ill-conditioned
 * matrix gives inaccurate results, not an error. Empty matrices (n == 0) or
 * an empty batch are no-ops.
 *
 *     // x = A^-1 b for 8 systems of size 16 with 2 right-hand sides each
 *     int64_t sa[3] = {8, 16, 16}, sb[3] = {8, 16, 2};
 *     fleet_tensor_create(dev, FLEET_DTYPE_F32, 3, sa, &a);   ... b, x like sb
 *     fleet_status st = fleet_linalg_solve(a, b, x);
 *     if (st == FLEET_ERR_INVALID_ARGUMENT) puts(fleet_last_error()); // singular
 *
 * Thread-safety: like every op; threads on different streams run
 * concurrently (each stream has its own solver handle on cuda).
 */
#ifndef FLEET_LINALG_H
#define FLEET_LINALG_H

#include "fleet/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x[..., n, k] solves a[..., n, n] @ x = b[..., n, k] (LU with partial
 * pivoting). */
FLEET_API fleet_status fleet_linalg_solve(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *x);

/* l[..., n, n] lower triangular with a = l @ l^T, for a symmetric positive
 * definite a[..., n, n]. Only a's lower triangle is read (symmetry is not
 * checked); l's strict upper triangle is set to zero. */
FLEET_API fleet_status fleet_linalg_cholesky(const fleet_tensor *a, fleet_tensor *l);

/* x[..., n, k] solves a @ x = b[..., n, k] for a triangular a[..., n, n]:
 * upper triangular when `upper` is nonzero, else lower. The other triangle
 * of a is not read. A zero on the diagonal is singular. */
FLEET_API fleet_status fleet_linalg_solve_triangular(const fleet_tensor *a, const fleet_tensor *b, int upper,
                                           fleet_tensor *x);

/* Reduced QR of a[..., m, n], m >= n: a = q @ r with q[..., m, n] having
 * orthonormal columns and r[..., n, n] upper triangular (strict lower
 * triangle zero). Signs follow LAPACK (r's diagonal may be negative). */
FLEET_API fleet_status fleet_linalg_qr(const fleet_tensor *a, fleet_tensor *q, fleet_tensor *r);

/* out[..., n, n] = inverse of a[..., n, n] (LU with partial pivoting). */
FLEET_API fleet_status fleet_linalg_inv(const fleet_tensor *a, fleet_tensor *out);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_LINALG_H */
