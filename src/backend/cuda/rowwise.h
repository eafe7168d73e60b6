/* backend/cuda/rowwise.h — launcher of the row kernels in rowwise.cu, C
 * types only. Returns the launch's cudaError_t as an int. */
#ifndef FLEET_BACKEND_CUDA_ROWWISE_H
#define FLEET_BACKEND_CUDA_ROWWISE_H

#include "backend/kernel_args.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fleet__rowwise_args on f32, f16 or bf16 (computed in f32). */
int fleet__cuda_rowwise(void *stream, const fleet__rowwise_args *args);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_BACKEND_CUDA_ROWWISE_H */
