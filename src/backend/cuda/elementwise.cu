// backend/cuda/elementwise.cu — strided elementwise kernels, f32/f16/bf16
// (computed in f32), with a fast path when every view is one contiguous run.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backend/cuda/elementwise.h"

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (int)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

template <typename T> __device__ float load(const T *p) { return (float)*p; }
template <> __device__ float load<__half>(const __half *p) { return __half2float(*p); }
template <> __device__ float load<__nv_bfloat16>(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
template <typename T> __device__ void store(T *p, float v) { *p = (T)v; }
template <> __device__ void store<__half>(__half *p, float v) { *p = __float2half_rn(v); }
template <> __device__ void store<__nv_bfloat16>(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

template <int OP> __device__ float apply(float x, float y)
{
    switch (OP) {
    case FLEET__EW_COPY: return x;
    case FLEET__EW_RELU: return fmaxf(x, 0.0f);
    case FLEET__EW_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case FLEET__EW_SILU: return x / (1.0f + expf(-x));
    case FLEET__EW_TANH: return tanhf(x);
    case FLEET__EW_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case FLEET__EW_ADD: return x + y;
    case FLEET__EW_SUB: return x - y;
    case FLEET__EW_MUL: return x * y;
    case FLEET__EW_DIV: return x / y;
    }
    return 0.0f;
}

// Element offset of linear index i of `shape` in a view with `strides`.
__device__ int64_t offset_of(int64_t i, const fleet__view &shape_of, const fleet__view &v)
{
    int64_t off = 0;
    for (int d = shape_of.ndim - 1; d >= 0; d--) {
        int64_t k = i % shape_of.shape[d];
        i /= shape_of.shape[d];
        off += k * v.strides[d];
    }
    return off;
}

template <typename T, int OP, bool BINARY>
__global__ void strided_kernel(int64_t n, fleet__view out, fleet__view a, fleet__view b)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float x = load((const T *)a.data + offset_of(i, out, a));
        float y = BINARY ? load((const T *)b.data + offset_of(i, out, b)) : 0.0f;
        store((T *)out.data + offset_of(i, out, out), apply<OP>(x, y));
    }
}

template <typename T, int OP, bool BINARY>
__global__ void contiguous_kernel(int64_t n, T *out, const T *a, const T *b)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        store(out + i, apply<OP>(load(a + i), BINARY ? load(b + i) : 0.0f));
}

bool unit_run(const fleet__view &v)
{
    return v.ndim == 1 && v.strides[0] == 1;
}

template <typename T, int OP>
int launch(cudaStream_t s, const fleet__elementwise_args &e, int64_t n)
{
    constexpr bool binary = OP >= FLEET__EW_ADD;
    if (unit_run(e.out) && unit_run(e.a) && (!binary || unit_run(e.b)))
        contiguous_kernel<T, OP, binary><<<blocks_for(n), kThreads, 0, s>>>(
            n, (T *)e.out.data, (const T *)e.a.data, (const T *)e.b.data);
    else
        strided_kernel<T, OP, binary><<<blocks_for(n), kThreads, 0, s>>>(n, e.out, e.a, e.b);
    return (int)cudaGetLastError();
}

template <typename T>
int dispatch(cudaStream_t s, const fleet__elementwise_args &e, int64_t n)
{
    switch (e.op) {
    case FLEET__EW_COPY: return launch<T, FLEET__EW_COPY>(s, e, n);
    case FLEET__EW_RELU: return launch<T, FLEET__EW_RELU>(s, e, n);
    case FLEET__EW_GELU: return launch<T, FLEET__EW_GELU>(s, e, n);
    case FLEET__EW_SILU: return launch<T, FLEET__EW_SILU>(s, e, n);
    case FLEET__EW_TANH: return launch<T, FLEET__EW_TANH>(s, e, n);
    case FLEET__EW_SIGMOID: return launch<T, FLEET__EW_SIGMOID>(s, e, n);
    case FLEET__EW_ADD: return launch<T, FLEET__EW_ADD>(s, e, n);
    case FLEET__EW_SUB: return launch<T, FLEET__EW_SUB>(s, e, n);
    case FLEET__EW_MUL: return launch<T, FLEET__EW_MUL>(s, e, n);
    case FLEET__EW_DIV: return launch<T, FLEET__EW_DIV>(s, e, n);
    }
    return (int)cudaErrorInvalidValue;
}

__global__ void bias_rows_kernel(int64_t batch, int64_t stride_c, int64_t m, int64_t n,
                                 int64_t ldc, const float *__restrict__ bias, float beta, float *c)
{
    int64_t per = m * n, total = batch * per;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = t / per, r = t % per, i = r / n, j = r % n;
        float *p = c + b * stride_c + i * ldc + j;
        *p = bias[j] + (beta != 0.0f ? beta * *p : 0.0f);
    }
}

} // namespace

// dtype values are fleet_dtype's: 0 f32, 1 f16, 2 bf16 (include/fleet/dtype.h).
extern "C" int fleet__cuda_elementwise(void *stream, const fleet__elementwise_args *e)
{
    int64_t n = 1;
    for (int d = 0; d < e->out.ndim; d++)
        n *= e->out.shape[d];
    if (n == 0)
        return (int)cudaSuccess;
    cudaStream_t s = (cudaStream_t)stream;
    switch (e->dtype) {
    case 0: return dispatch<float>(s, *e, n);
    case 1: return dispatch<__half>(s, *e, n);
    case 2: return dispatch<__nv_bfloat16>(s, *e, n);
    }
    return (int)cudaErrorInvalidValue;
}

extern "C" int fleet__cuda_bias_rows_f32(void *stream, int64_t batch, int64_t stride_c, int64_t m,
                                         int64_t n, int64_t ldc, const float *bias, float beta,
                                         float *c)
{
    bias_rows_kernel<<<blocks_for(batch * m * n), kThreads, 0, (cudaStream_t)stream>>>(
        batch, stride_c, m, n, ldc, bias, beta, c);
    return (int)cudaGetLastError();
}
