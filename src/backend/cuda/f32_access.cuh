// backend/cuda/f32_access.cuh — load and store of f32, f16 and bf16 elements
// as float, for the kernels that compute every float type in f32
// (elementwise.cu, rowwise.cu, small_gemm.cu). Device code only.
#ifndef FLEET_BACKEND_CUDA_F32_ACCESS_CUH
#define FLEET_BACKEND_CUDA_F32_ACCESS_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace fleet_cuda {

template <typename T> __device__ inline float load(const T *p) { return (float)*p; }
template <> __device__ inline float load<__half>(const __half *p) { return __half2float(*p); }
template <> __device__ inline float load<__nv_bfloat16>(const __nv_bfloat16 *p)
{
    return __bfloat162float(*p);
}
template <typename T> __device__ inline void store(T *p, float v) { *p = (T)v; }
template <> __device__ inline void store<__half>(__half *p, float v) { *p = __float2half_rn(v); }
template <> __device__ inline void store<__nv_bfloat16>(__nv_bfloat16 *p, float v)
{
    *p = __float2bfloat16_rn(v);
}

} // namespace fleet_cuda

#endif // FLEET_BACKEND_CUDA_F32_ACCESS_CUH
