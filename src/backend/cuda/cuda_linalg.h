/* backend/cuda/cuda_linalg.h — dense linear algebra on a cuda stream
 * through cuSOLVER (getrf/getrs, potrf, geqrf/orgqr) and cuBLAS (strsm).
 * cuda_backend.c owns the per-stream handles and calls these under its exit
 * guard with the stream's device current. */
#ifndef FLEET_BACKEND_CUDA_LINALG_H
#define FLEET_BACKEND_CUDA_LINALG_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include "backend/backend.h"

/* A cuSOLVER dense handle whose work goes to `stream`. */
fleet_status fleet__cuda_solver_create(cudaStream_t stream, cusolverDnHandle_t *out);
void fleet__cuda_solver_destroy(cusolverDnHandle_t handle);

/* Scratch bytes (device memory) `fleet__cuda_linalg` needs for args. */
fleet_status fleet__cuda_linalg_workspace_size(cusolverDnHandle_t solver,
                                               const fleet__linalg_args *args, size_t *bytes);
/* Queue the op on `stream`; `blas` (bound to the same stream) is used for
 * SOLVE_TRIANGULAR only and may be NULL otherwise. The last thing queued is
 * the copy of the per-matrix status into args->info. */
fleet_status fleet__cuda_linalg(cudaStream_t stream, cublasHandle_t blas, cusolverDnHandle_t solver,
                                const fleet__linalg_args *args);

#endif /* FLEET_BACKEND_CUDA_LINALG_H */
