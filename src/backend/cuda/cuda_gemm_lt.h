/* backend/cuda/cuda_gemm_lt.h — GEMM with the bias fused into cuBLASLt's
 * epilogue: one launch for a Linear layer. */
#ifndef FLEET_BACKEND_CUDA_GEMM_LT_H
#define FLEET_BACKEND_CUDA_GEMM_LT_H

#include <stdbool.h>
#include <stddef.h>

#include <cuda_runtime_api.h>

#include "backend/backend.h"
#include "core/atomic.h"

/* Run g (with a bias; f32, f16 or bf16) as one cublasLtMatmul on `stream`, creating the
 * cublasLt handle in *lt_slot on first use. The caller holds the stream's
 * library lock (cuda_backend.c). *fused is false (and FLEET_OK
 * returned) when cuBLASLt offers no algorithm for the shape: the caller then
 * applies the bias itself. */
fleet_status fleet__cuda_gemm_bias_lt(fleet_atomic_ptr *lt_slot, cudaStream_t stream,
                                      void *workspace, size_t workspace_bytes,
                                      const fleet__gemm_args *g, bool *fused);

/* Destroy a handle created above (NULL is ignored). */
void fleet__cuda_lt_destroy(void *lt);

#endif /* FLEET_BACKEND_CUDA_GEMM_LT_H */
