/* backend/cuda/cuda_gemm_lt.h — GEMM with the bias fused into cuBLASLt's
 * epilogue: one launch for a Linear layer. */
#ifndef FLEET_BACKEND_CUDA_GEMM_LT_H
#define FLEET_BACKEND_CUDA_GEMM_LT_H

#include <stdbool.h>
#include <stddef.h>

#include <cuda_runtime_api.h>

#include "backend/backend.h"
#include "core/atomic.h"

/* A stream's cuBLASLt handle and its cache of GEMM plans (cuda_gemm_lt.c). */
typedef struct fleet__cuda_lt fleet__cuda_lt;

/* Run g (with a bias; f32, f16 or bf16) as one cublasLtMatmul on `stream`,
 * with the plan the stream's state in *lt_slot (created on first use) keeps
 * for g's shape. The caller holds the stream's library lock (cuda_backend.c).
 * *fused is false (and FLEET_OK returned) when cuBLASLt offers no algorithm
 * for the shape: the caller then applies the bias itself. */
fleet_status fleet__cuda_gemm_bias_lt(fleet_atomic_ptr *lt_slot, cudaStream_t stream,
                                      void *workspace, size_t workspace_bytes,
                                      const fleet__gemm_args *g, bool *fused);

/* Destroy a stream's state created above: its plans and handle (NULL is
 * ignored). */
void fleet__cuda_lt_destroy(void *lt);

#endif /* FLEET_BACKEND_CUDA_GEMM_LT_H */
