/* backend/cuda/linalg_kernels.h — small helper kernels of the cuda linalg
 * ops (linalg_kernels.cu), C types only. Each returns the launch's
 * cudaError_t. All matrices are f32 and densely packed; `batch` matrices
 * follow each other. */
#ifndef FLEET_BACKEND_CUDA_LINALG_KERNELS_H
#define FLEET_BACKEND_CUDA_LINALG_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dst[b][j][i] = src[b][i][j] for row-major src[batch][rows][cols] (so dst is
 * src in column-major order, and the other way round). */
int fleet__cuda_transpose_f32(void *stream, int64_t batch, int64_t rows, int64_t cols,
                              const float *src, float *dst);
/* out[b] = identity n x n. */
int fleet__cuda_eye_f32(void *stream, int64_t batch, int64_t n, float *out);
/* Zero the strict upper triangle of each row-major n x n matrix. */
int fleet__cuda_zero_upper_f32(void *stream, int64_t batch, int64_t n, float *x);
/* r[i][j] = i <= j ? w[j * m + i] : 0 for i, j < n: the R of a geqrf result w
 * (column-major m x n, ld m) as a row-major n x n matrix. One matrix. */
int fleet__cuda_qr_r_f32(void *stream, int64_t m, int64_t n, const float *w, float *r);
/* info[b] = 1 + the first i with a[b][i][i] == 0, or 0 (row-major n x n). */
int fleet__cuda_diag_zero_info_f32(void *stream, int64_t batch, int64_t n, const float *a,
                                   int *info);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_BACKEND_CUDA_LINALG_KERNELS_H */
