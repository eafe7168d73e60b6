// backend/cuda/linalg_kernels.cu — layout helpers for the cuSOLVER/cuBLAS
// linalg path (transposes, identity, triangle masks, status from the
// diagonal). Grid-stride loops, like elementwise.cu.
#include <cuda_runtime.h>

#include "backend/cuda/linalg_kernels.h"

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (int)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

#define GRID_STRIDE(t, total)                                                            \
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < (total);       \
         t += (int64_t)gridDim.x * blockDim.x)

__global__ void transpose_kernel(int64_t batch, int64_t rows, int64_t cols,
                                 const float *__restrict__ src, float *__restrict__ dst)
{
    int64_t per = rows * cols;
    GRID_STRIDE(t, batch * per)
    {
        int64_t b = t / per, rem = t % per, i = rem / cols, j = rem % cols;
        dst[b * per + j * rows + i] = src[t];
    }
}

__global__ void eye_kernel(int64_t batch, int64_t n, float *out)
{
    int64_t per = n * n;
    GRID_STRIDE(t, batch * per)
    {
        int64_t rem = t % per;
        out[t] = rem / n == rem % n ? 1.0f : 0.0f;
    }
}

__global__ void zero_upper_kernel(int64_t batch, int64_t n, float *x)
{
    int64_t per = n * n;
    GRID_STRIDE(t, batch * per)
    {
        int64_t rem = t % per;
        if (rem % n > rem / n)
            x[t] = 0.0f;
    }
}

__global__ void qr_r_kernel(int64_t m, int64_t n, const float *__restrict__ w,
                            float *__restrict__ r)
{
    GRID_STRIDE(t, n * n)
    {
        int64_t i = t / n, j = t % n;
        r[t] = i <= j ? w[j * m + i] : 0.0f;
    }
}

__global__ void diag_zero_info_kernel(int64_t batch, int64_t n, const float *__restrict__ a,
                                      int *info)
{
    GRID_STRIDE(b, batch)
    {
        int v = 0;
        for (int64_t i = 0; i < n; i++)
            if (a[b * n * n + i * n + i] == 0.0f) {
                v = (int)i + 1;
                break;
            }
        info[b] = v;
    }
}

} // namespace

extern "C" int fleet__cuda_transpose_f32(void *stream, int64_t batch, int64_t rows, int64_t cols,
                                         const float *src, float *dst)
{
    int64_t n = batch * rows * cols;
    if (n == 0)
        return (int)cudaSuccess;
    transpose_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(batch, rows, cols, src,
                                                                           dst);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_eye_f32(void *stream, int64_t batch, int64_t n, float *out)
{
    if (batch * n == 0)
        return (int)cudaSuccess;
    eye_kernel<<<blocks_for(batch * n * n), kThreads, 0, (cudaStream_t)stream>>>(batch, n, out);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_zero_upper_f32(void *stream, int64_t batch, int64_t n, float *x)
{
    if (batch * n == 0)
        return (int)cudaSuccess;
    zero_upper_kernel<<<blocks_for(batch * n * n), kThreads, 0, (cudaStream_t)stream>>>(batch, n,
                                                                                        x);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_qr_r_f32(void *stream, int64_t m, int64_t n, const float *w, float *r)
{
    if (n == 0)
        return (int)cudaSuccess;
    qr_r_kernel<<<blocks_for(n * n), kThreads, 0, (cudaStream_t)stream>>>(m, n, w, r);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_diag_zero_info_f32(void *stream, int64_t batch, int64_t n,
                                              const float *a, int *info)
{
    if (batch == 0)
        return (int)cudaSuccess;
    diag_zero_info_kernel<<<blocks_for(batch), kThreads, 0, (cudaStream_t)stream>>>(batch, n, a,
                                                                                   info);
    return (int)cudaGetLastError();
}
