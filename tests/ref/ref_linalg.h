/* tests/ref/ref_linalg.h — plain-C reference kernels of the linalg ops: simple
 * loops in double precision, one row-major f32 matrix per call, for tests
 * to compare the backends against. Each returns 0, or 1 + the zero-based
 * index of the pivot / diagonal element / leading minor that failed. */
#ifndef FLEET_TEST_REF_LINALG_H
#define FLEET_TEST_REF_LINALG_H

#include <stdint.h>

/* x[n,k] = a[n,n]^-1 b[n,k]: Gaussian elimination with partial pivoting. */
int ref_linalg_solve(int64_t n, int64_t k, const float *a, const float *b, float *x);
/* l[n,n] lower with a = l l^T (Cholesky–Banachiewicz, reads a's lower
 * triangle); strict upper triangle of l zeroed. */
int ref_linalg_cholesky(int64_t n, const float *a, float *l);
/* x[n,k] solving a x = b for a triangular (upper != 0: upper), by forward
 * or back substitution. */
int ref_linalg_solve_triangular(int64_t n, int64_t k, const float *a, const float *b,
                                int upper, float *x);
/* Reduced QR of a[m,n], m >= n, by modified Gram–Schmidt: q[m,n], r[n,n]
 * with r's diagonal >= 0. Returns 1 + j when column j is (numerically)
 * dependent on the earlier ones (then q's column j is zero). */
int ref_linalg_qr(int64_t m, int64_t n, const float *a, float *q, float *r);
/* out[n,n] = a^-1, by solving a out = I. */
int ref_linalg_inv(int64_t n, const float *a, float *out);

#endif /* FLEET_TEST_REF_LINALG_H */
