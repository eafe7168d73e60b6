/* backend/cuda/conv.h — launchers of the kernels in conv.cu (embedding
 * gather, im2col), C types only. Each returns the launch's cudaError_t as an
 * int. */
#ifndef FLEET_BACKEND_CUDA_CONV_H
#define FLEET_BACKEND_CUDA_CONV_H

#include "backend/kernel_args.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fleet__gather_args: elements of 1, 2, 4 or 8 bytes, i32 or i64 indices. */
int fleet__cuda_gather(void *stream, const fleet__gather_args *args);
/* fleet__range_args: f32, i32 or i64. */
int fleet__cuda_range(void *stream, const fleet__range_args *args);
/* fleet__im2col_args on f32. */
int fleet__cuda_im2col(void *stream, const fleet__im2col_args *args);
/* fleet__pool_args on f32. */
int fleet__cuda_pool2d(void *stream, const fleet__pool_args *args);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_BACKEND_CUDA_CONV_H */
