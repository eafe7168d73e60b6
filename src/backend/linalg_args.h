/* backend/linalg_args.h — arguments of the backend's dense linear-algebra
 * slot (fleet__backend.linalg, fleet/linalg.h for the public ops).
 *
 * A batch of contiguous row-major f32 matrices; matrix i of a tensor starts
 * at i * (its rows x cols) elements. Per op:
 *   SOLVE             a[n,n] x[n,k] = b[n,k], LU with partial pivoting
 *   CHOLESKY          x[n,n] = L with a = L L^T (only a's lower triangle is
 *                     read), strict upper triangle of x zeroed
 *   SOLVE_TRIANGULAR  a[n,n] x[n,k] = b[n,k], a upper (`upper`) or lower
 *                     triangular (the other triangle is not read)
 *   QR                a[m,n] = x[m,n] (Q) @ r[n,n] (R, upper), m >= n
 *   INV               x[n,n] = inverse of a[n,n]
 * Outputs never overlap inputs (ops/ checks that).
 *
 * `info` is host memory of `batch` ints that the backend writes by the time
 * the stream has reached the end of the op: 0, or 1 + the zero-based index
 * of the pivot / diagonal element / leading minor that failed (singular,
 * not positive definite). The caller reads it after synchronizing the
 * stream. `workspace` is scratch of `workspace_bytes` (what the backend's
 * linalg_workspace_size asked for; NULL when 0) in the device's memory,
 * from the caching allocator on the same stream, usable until the op ran. */
#ifndef FLEET_BACKEND_LINALG_ARGS_H
#define FLEET_BACKEND_LINALG_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/dtype.h"

typedef enum fleet__linalg_op {
    FLEET__LINALG_SOLVE = 0,
    FLEET__LINALG_CHOLESKY,
    FLEET__LINALG_SOLVE_TRIANGULAR,
    FLEET__LINALG_QR,
    FLEET__LINALG_INV,
} fleet__linalg_op;

typedef struct fleet__linalg_args {
    fleet__linalg_op op;
    fleet_dtype dtype;
    int64_t batch;
    int64_t m, n, k; /* a is m x n (m == n but for QR); SOLVE* b and x are n x k */
    bool upper;      /* SOLVE_TRIANGULAR                                           */
    const void *a;
    const void *b;   /* SOLVE, SOLVE_TRIANGULAR; else NULL                         */
    void *x;         /* SOLVE*: x; CHOLESKY: L; QR: Q; INV: the inverse            */
    void *r;         /* QR: R; else NULL                                           */
    void *workspace;
    size_t workspace_bytes;
    int *info;       /* host, `batch` entries                                      */
} fleet__linalg_args;

#endif /* FLEET_BACKEND_LINALG_ARGS_H */
