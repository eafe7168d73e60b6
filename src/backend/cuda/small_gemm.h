/* backend/cuda/small_gemm.h — one kernel for a small GEMM with its whole
 * epilogue (small_gemm.cu), C types only.
 *
 * cuBLAS(Lt)'s kernels for a tiny product (Linear 64->64 at batch 4) take a
 * few microseconds more than an empty launch: they are built for large
 * tiles. This one gives each output element a warp (a dot product of a row
 * of op(A) and a column of op(B), lanes striding over k, a shuffle
 * reduction), so it runs in about the time of the launch. The cuda backend
 * takes it for GEMMs of at most FLEET_CUDA_SMALL_GEMM multiply-adds per
 * matrix and fewer than 2^31 outputs in all (cuda_backend.c). */
#ifndef FLEET_BACKEND_CUDA_SMALL_GEMM_H
#define FLEET_BACKEND_CUDA_SMALL_GEMM_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* g's row-major C = relu?(alpha op(A) op(B) + beta C + bias) for every
 * matrix of the batch; f32, f16 or bf16 (computed in f32; C is not read when
 * beta is 0). Returns the launch's cudaError_t. */
int fleet__cuda_small_gemm(void *stream, const fleet__gemm_args *g);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_BACKEND_CUDA_SMALL_GEMM_H */
