/* backend/cuda/cuda_check.h — every CUDA/cuBLAS status becomes a fleet_status
 * with the call's name and the driver's words. */
#ifndef FLEET_BACKEND_CUDA_CHECK_H
#define FLEET_BACKEND_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include "core/error.h"

fleet_status fleet__cuda_status(cudaError_t err, const char *call, const char *file, int line);
fleet_status fleet__cublas_status(cublasStatus_t st, const char *call, const char *file, int line);

/* `FLEET_CUDA_TRY(cudaMalloc(&p, n));` returns from the enclosing function on
 * failure with the status set. */
#define FLEET_CUDA_TRY(call)                                                            \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (FLEET_UNLIKELY(e_ != cudaSuccess))                                          \
            return fleet__cuda_status(e_, #call, __FILE__, __LINE__);                   \
    } while (0)

#define FLEET_CUBLAS_TRY(call)                                                          \
    do {                                                                                \
        cublasStatus_t s_ = (call);                                                     \
        if (FLEET_UNLIKELY(s_ != CUBLAS_STATUS_SUCCESS))                                \
            return fleet__cublas_status(s_, #call, __FILE__, __LINE__);                 \
    } while (0)

/* cuSOLVER (defined in cuda_linalg.c). */
fleet_status fleet__cusolver_status(cusolverStatus_t st, const char *call, const char *file, int line);

#define FLEET_CUSOLVER_TRY(call)                                                        \
    do {                                                                                \
        cusolverStatus_t v_ = (call);                                                   \
        if (FLEET_UNLIKELY(v_ != CUSOLVER_STATUS_SUCCESS))                              \
            return fleet__cusolver_status(v_, #call, __FILE__, __LINE__);               \
    } while (0)

#endif /* FLEET_BACKEND_CUDA_CHECK_H */
