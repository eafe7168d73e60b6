// backend/cuda/rowwise.cu — softmax, log-softmax, layer norm, sum, mean and max along one
// dimension: one block per row (grid-stride over rows), each thread striding
// over the row, block-wide reductions by warp shuffles and one shared slot
// per warp. f32/f16/bf16, computed in f32. Layer norm's variance is a second
// pass around the mean (no E[x^2] - E[x]^2 cancellation).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "backend/cuda/f32_access.cuh"
#include "backend/cuda/rowwise.h"

namespace {

using fleet_cuda::load;
using fleet_cuda::store;

constexpr int kThreads = 256; // a multiple of 32
constexpr int kWarps = kThreads / 32;
constexpr int64_t kMaxBlocks = 65535;


// Every thread of the block gets the reduction of v over the block. The
// first barrier keeps a previous call's readers of `sh` ahead of the writers.
template <bool MAX> __device__ float block_reduce(float v, float *sh)
{
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = MAX ? fmaxf(v, w) : v + w;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    v = lane < kWarps ? sh[lane] : (MAX ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = MAX ? fmaxf(v, w) : v + w;
    }
    return v;
}

// Element offset of row r's start in a view of the row starts.
__device__ int64_t row_offset(int64_t r, const fleet__view &v)
{
    int64_t off = 0;
    for (int d = v.ndim - 1; d >= 0; d--) {
        off += (r % v.shape[d]) * v.strides[d];
        r /= v.shape[d];
    }
    return off;
}

template <typename T>
__global__ void rowwise_kernel(int64_t rows, fleet__rowwise_args a)
{
    __shared__ float sh[kWarps];
    const int64_t n = a.n, sx = a.x_stride, so = a.out_stride;
    const T *gamma = (const T *)a.gamma, *beta = (const T *)a.beta;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *x = (const T *)a.x.data + row_offset(r, a.x);
        T *o = (T *)a.out.data + row_offset(r, a.out);
        if (a.op == FLEET__ROW_SOFTMAX) {
            float m = -INFINITY;
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
                m = fmaxf(m, load(x + i * sx));
            m = block_reduce<true>(m, sh);
            float s = 0.0f;
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
                s += expf(load(x + i * sx) - m);
            float inv = 1.0f / block_reduce<false>(s, sh);
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
                store(o + i * so, expf(load(x + i * sx) - m) * inv);
        } else if (a.op == FLEET__ROW_LAYER_NORM) {
            float s = 0.0f;
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
                s += load(x + i * sx);
            float mean = block_reduce<false>(s, sh) / (float)n;
            float q = 0.0f;
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
                float d = load(x + i * sx) - mean;
                q += d * d;
            }
            float rstd = rsqrtf(block_reduce<false>(q, sh) / (float)n + a.eps);
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
                float y = (load(x + i * sx) - mean) * rstd;
                if (gamma != nullptr)
                    y *= load(gamma + i * a.gamma_stride);
                if (beta != nullptr)
                    y += load(beta + i * a.beta_stride);
                store(o + i * so, y);
            }
        } else if (a.op == FLEET__ROW_LOG_SOFTMAX) {
            float m = -INFINITY;
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
                m = fmaxf(m, load(x + i * sx));
            m = block_reduce<true>(m, sh);
            float s = 0.0f;
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
                s += expf(load(x + i * sx) - m);
            float shift = m + logf(block_reduce<false>(s, sh));
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
                store(o + i * so, load(x + i * sx) - shift);
        } else if (a.op == FLEET__ROW_MAX) {
            float m = -INFINITY, nan = 0.0f;
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
                float v = load(x + i * sx);
                m = fmaxf(m, v);
                nan += isnan(v) ? 1.0f : 0.0f;
            }
            m = block_reduce<true>(m, sh);
            nan = block_reduce<false>(nan, sh);
            if (threadIdx.x == 0)
                store(o, nan > 0.0f ? NAN : m);
        } else { // SUM, MEAN
            float s = 0.0f;
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
                s += load(x + i * sx);
            s = block_reduce<false>(s, sh);
            if (threadIdx.x == 0)
                store(o, a.op == FLEET__ROW_MEAN ? s / (float)n : s);
        }
    }
}

template <typename T> int launch(cudaStream_t s, const fleet__rowwise_args &a, int64_t rows)
{
    int blocks = (int)(rows < kMaxBlocks ? rows : kMaxBlocks);
    rowwise_kernel<T><<<blocks, kThreads, 0, s>>>(rows, a);
    return (int)cudaGetLastError();
}

} // namespace

// dtype values are fleet_dtype's: 0 f32, 1 f16, 2 bf16 (include/fleet/dtype.h).
extern "C" int fleet__cuda_rowwise(void *stream, const fleet__rowwise_args *a)
{
    int64_t rows = 1;
    for (int d = 0; d < a->out.ndim; d++)
        rows *= a->out.shape[d];
    if (rows == 0)
        return (int)cudaSuccess;
    cudaStream_t s = (cudaStream_t)stream;
    switch (a->dtype) {
    case 0: return launch<float>(s, *a, rows);
    case 1: return launch<__half>(s, *a, rows);
    case 2: return launch<__nv_bfloat16>(s, *a, rows);
    }
    return (int)cudaErrorInvalidValue;
}
