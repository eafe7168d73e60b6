/* backend/cuda/elementwise.h — launchers of the kernels in elementwise.cu,
 * C types only. Each returns the launch's cudaError_t as an int. */
#ifndef FLEET_BACKEND_CUDA_ELEMENTWISE_H
#define FLEET_BACKEND_CUDA_ELEMENTWISE_H

#include <stdint.h>

#include "backend/kernel_args.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fleet__elementwise_args: arithmetic on f32, f16 or bf16 (computed in
 * f32), moves and casts on every dtype; supports says which (nonzero). */
int fleet__cuda_elementwise(void *stream, const fleet__elementwise_args *args);
int fleet__cuda_elementwise_supports(int op, int dtype, int out_dtype);

/* c[b][i, j] = bias[j] + beta * c[b][i, j] for `batch` m x n f32 matrices at
 * c + b*stride_c, row stride ldc. */
int fleet__cuda_bias_rows_f32(void *stream, int64_t batch, int64_t stride_c, int64_t m, int64_t n,
                              int64_t ldc, const float *bias, float beta, float *c);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_BACKEND_CUDA_ELEMENTWISE_H */
