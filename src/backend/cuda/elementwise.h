/* backend/cuda/elementwise.h — launchers of the elementwise kernels
 * (elementwise.cu), C types only. Each returns the launch's cudaError_t. */
#ifndef FLEET_BACKEND_CUDA_ELEMENTWISE_H
#define FLEET_BACKEND_CUDA_ELEMENTWISE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = a[i] + b[i % b_period], i < n (f32, contiguous). */
int fleet__cuda_add_f32(void *stream, int64_t n, int64_t b_period, const float *a,
                        const float *b, float *out);
/* out[i] = max(x[i], 0). */
int fleet__cuda_relu_f32(void *stream, int64_t n, const float *x, float *out);
/* c[i, j] = bias[j] + beta * c[i, j] for an m x n matrix with row stride ldc. */
int fleet__cuda_bias_rows_f32(void *stream, int64_t m, int64_t n, int64_t ldc, const float *bias,
                              float beta, float *c);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_BACKEND_CUDA_ELEMENTWISE_H */
