// backend/cuda/elementwise.cu — grid-stride elementwise kernels for f32.
#include <cuda_runtime.h>

#include "backend/cuda/elementwise.h"

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (int)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

__global__ void add_kernel(int64_t n, int64_t period, const float *__restrict__ a,
                           const float *__restrict__ b, float *out)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[period == n ? i : i % period];
}

__global__ void relu_kernel(int64_t n, const float *x, float *out)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = fmaxf(x[i], 0.0f);
}

__global__ void bias_rows_kernel(int64_t m, int64_t n, int64_t ldc, const float *__restrict__ bias,
                                 float beta, float *c)
{
    int64_t total = m * n;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t / n, j = t % n;
        float *p = c + i * ldc + j;
        *p = bias[j] + (beta != 0.0f ? beta * *p : 0.0f);
    }
}

} // namespace

extern "C" int fleet__cuda_add_f32(void *stream, int64_t n, int64_t b_period, const float *a,
                                   const float *b, float *out)
{
    add_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, b_period, a, b, out);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_relu_f32(void *stream, int64_t n, const float *x, float *out)
{
    relu_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, x, out);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_bias_rows_f32(void *stream, int64_t m, int64_t n, int64_t ldc,
                                         const float *bias, float beta, float *c)
{
    bias_rows_kernel<<<blocks_for(m * n), kThreads, 0, (cudaStream_t)stream>>>(m, n, ldc, bias,
                                                                                beta, c);
    return (int)cudaGetLastError();
}
