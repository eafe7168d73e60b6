// backend/cuda/elementwise.cu — strided elementwise kernels: arithmetic on
// f32/f16/bf16 (computed in f32, a comparison writing bool), with a fast path
// when every view is one contiguous run; the integer ops on i32 and i64
// (exact); COPY and WHERE on elements of any
// size; CAST between any two dtypes (through double).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backend/cuda/f32_access.cuh"
#include "backend/cuda/elementwise.h"

namespace {

using fleet_cuda::load;
using fleet_cuda::store;

constexpr int kThreads = 256;

int blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (int)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}


template <int OP> __device__ float apply(float x, float y, float alpha, float beta)
{
    switch (OP) {
    case FLEET__EW_COPY: return x;
    case FLEET__EW_RELU: return fmaxf(x, 0.0f);
    case FLEET__EW_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case FLEET__EW_SILU: return x / (1.0f + expf(-x));
    case FLEET__EW_TANH: return tanhf(x);
    case FLEET__EW_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case FLEET__EW_ERF: return erff(x);
    case FLEET__EW_EXP: return expf(x);
    case FLEET__EW_LOG: return logf(x);
    case FLEET__EW_SQRT: return sqrtf(x);
    case FLEET__EW_NEG: return -x;
    case FLEET__EW_ABS: return fabsf(x);
    case FLEET__EW_RECIPROCAL: return 1.0f / x;
    case FLEET__EW_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case FLEET__EW_LEAKY_RELU: return x >= 0.0f ? x : alpha * x;
    case FLEET__EW_CLIP: return fminf(fmaxf(x, alpha), beta);
    case FLEET__EW_ADD: return x + y;
    case FLEET__EW_SUB: return x - y;
    case FLEET__EW_MUL: return x * y;
    case FLEET__EW_DIV: return x / y;
    case FLEET__EW_POW: return powf(x, y);
    case FLEET__EW_MAX: return isnan(x) || isnan(y) ? x + y : fmaxf(x, y);
    case FLEET__EW_MIN: return isnan(x) || isnan(y) ? x + y : fminf(x, y);
    case FLEET__EW_EQUAL: return x == y;
    case FLEET__EW_LESS: return x < y;
    case FLEET__EW_LESS_EQUAL: return x <= y;
    case FLEET__EW_GREATER: return x > y;
    case FLEET__EW_GREATER_EQUAL: return x >= y;
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

// Arithmetic: T in and out (computed in f32); a comparison writes bool (U).
template <typename T, typename U, int OP, bool BINARY>
__global__ void strided_kernel(int64_t n, fleet__view out, fleet__view a, fleet__view b,
                               float alpha, float beta)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float x = load((const T *)a.data + offset_of(i, out, a));
        float y = BINARY ? load((const T *)b.data + offset_of(i, out, b)) : 0.0f;
        store((U *)out.data + offset_of(i, out, out), apply<OP>(x, y, alpha, beta));
    }
}

template <typename T, typename U, int OP, bool BINARY>
__global__ void contiguous_kernel(int64_t n, U *out, const T *a, const T *b, float alpha,
                                  float beta)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        store(out + i, apply<OP>(load(a + i), BINARY ? load(b + i) : 0.0f, alpha, beta));
}

bool unit_run(const fleet__view &v)
{
    return v.ndim == 1 && v.strides[0] == 1;
}

template <typename T, typename U, int OP>
int launch(cudaStream_t s, const fleet__elementwise_args &e, int64_t n)
{
    constexpr bool binary = OP >= FLEET__EW_ADD;
    if (unit_run(e.out) && unit_run(e.a) && (!binary || unit_run(e.b)))
        contiguous_kernel<T, U, OP, binary><<<blocks_for(n), kThreads, 0, s>>>(
            n, (U *)e.out.data, (const T *)e.a.data, (const T *)e.b.data, e.alpha, e.beta);
    else
        strided_kernel<T, U, OP, binary><<<blocks_for(n), kThreads, 0, s>>>(
            n, e.out, e.a, e.b, e.alpha, e.beta);
    return (int)cudaGetLastError();
}

#define CASE(OP) case OP: return launch<T, T, OP>(s, e, n)
#define CMP(OP) case OP: return launch<T, unsigned char, OP>(s, e, n)

template <typename T>
int dispatch(cudaStream_t s, const fleet__elementwise_args &e, int64_t n)
{
    switch (e.op) {
    CASE(FLEET__EW_RELU); CASE(FLEET__EW_GELU); CASE(FLEET__EW_SILU); CASE(FLEET__EW_TANH);
    CASE(FLEET__EW_SIGMOID); CASE(FLEET__EW_ERF); CASE(FLEET__EW_EXP); CASE(FLEET__EW_LOG);
    CASE(FLEET__EW_SQRT); CASE(FLEET__EW_NEG); CASE(FLEET__EW_ABS); CASE(FLEET__EW_RECIPROCAL);
    CASE(FLEET__EW_GELU_TANH); CASE(FLEET__EW_LEAKY_RELU); CASE(FLEET__EW_CLIP);
    CASE(FLEET__EW_ADD); CASE(FLEET__EW_SUB); CASE(FLEET__EW_MUL); CASE(FLEET__EW_DIV);
    CASE(FLEET__EW_POW); CASE(FLEET__EW_MAX); CASE(FLEET__EW_MIN);
    CMP(FLEET__EW_EQUAL); CMP(FLEET__EW_LESS); CMP(FLEET__EW_LESS_EQUAL); CMP(FLEET__EW_GREATER);
    CMP(FLEET__EW_GREATER_EQUAL);
    }
    return (int)cudaErrorInvalidValue;
}

#undef CASE
#undef CMP

// ---- integers: the ops of fleet__ew_takes_integers on i32 and i64 ----------
// Arithmetic through the unsigned type (overflow wraps), DIV truncating with
// 0 for a divisor of 0, as the cpu kernel.

template <typename T, typename U, int OP> __device__ T apply_int(T x, T y)
{
    switch (OP) {
    case FLEET__EW_NEG: return (T)((U)0 - (U)x);
    case FLEET__EW_ABS: return x < 0 ? (T)((U)0 - (U)x) : x;
    case FLEET__EW_ADD: return (T)((U)x + (U)y);
    case FLEET__EW_SUB: return (T)((U)x - (U)y);
    case FLEET__EW_MUL: return (T)((U)x * (U)y);
    case FLEET__EW_DIV: return y == 0 ? (T)0 : (y == -1 ? (T)((U)0 - (U)x) : x / y);
    case FLEET__EW_MAX: return x > y ? x : y;
    case FLEET__EW_MIN: return x < y ? x : y;
    case FLEET__EW_EQUAL: return x == y;
    case FLEET__EW_LESS: return x < y;
    case FLEET__EW_LESS_EQUAL: return x <= y;
    case FLEET__EW_GREATER: return x > y;
    case FLEET__EW_GREATER_EQUAL: return x >= y;
    }
    return 0;
}

// O is T, or unsigned char for a comparison.
template <typename T, typename U, typename O, int OP, bool BINARY>
__global__ void int_kernel(int64_t n, fleet__view out, fleet__view a, fleet__view b)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        T x = ((const T *)a.data)[offset_of(i, out, a)];
        T y = BINARY ? ((const T *)b.data)[offset_of(i, out, b)] : (T)0;
        ((O *)out.data)[offset_of(i, out, out)] = (O)apply_int<T, U, OP>(x, y);
    }
}

template <typename T, typename U, typename O, int OP>
int launch_int(cudaStream_t s, const fleet__elementwise_args &e, int64_t n)
{
    int_kernel<T, U, O, OP, (OP >= FLEET__EW_ADD)><<<blocks_for(n), kThreads, 0, s>>>(
        n, e.out, e.a, e.b);
    return (int)cudaGetLastError();
}

#define ICASE(OP) case OP: return launch_int<T, U, T, OP>(s, e, n)
#define ICMP(OP) case OP: return launch_int<T, U, unsigned char, OP>(s, e, n)

template <typename T, typename U>
int dispatch_int(cudaStream_t s, const fleet__elementwise_args &e, int64_t n)
{
    switch (e.op) {
    ICASE(FLEET__EW_NEG); ICASE(FLEET__EW_ABS); ICASE(FLEET__EW_ADD); ICASE(FLEET__EW_SUB);
    ICASE(FLEET__EW_MUL); ICASE(FLEET__EW_DIV); ICASE(FLEET__EW_MAX); ICASE(FLEET__EW_MIN);
    ICMP(FLEET__EW_EQUAL); ICMP(FLEET__EW_LESS); ICMP(FLEET__EW_LESS_EQUAL);
    ICMP(FLEET__EW_GREATER); ICMP(FLEET__EW_GREATER_EQUAL);
    }
    return (int)cudaErrorInvalidValue;
}

#undef ICASE
#undef ICMP

// ---- moves: COPY and WHERE on elements of any size, CAST between dtypes ----

template <typename W>
__global__ void copy_kernel(int64_t n, fleet__view out, fleet__view a)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        ((W *)out.data)[offset_of(i, out, out)] = ((const W *)a.data)[offset_of(i, out, a)];
}

template <typename W>
__global__ void where_kernel(int64_t n, fleet__view out, fleet__view a, fleet__view b,
                             fleet__view c)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        bool take_a = ((const unsigned char *)c.data)[offset_of(i, out, c)] != 0;
        ((W *)out.data)[offset_of(i, out, out)] =
            take_a ? ((const W *)a.data)[offset_of(i, out, a)]
                   : ((const W *)b.data)[offset_of(i, out, b)];
    }
}

template <typename W>
int launch_move(cudaStream_t s, const fleet__elementwise_args &e, int64_t n)
{
    if (e.op == FLEET__EW_WHERE)
        where_kernel<W><<<blocks_for(n), kThreads, 0, s>>>(n, e.out, e.a, e.b, e.c);
    else
        copy_kernel<W><<<blocks_for(n), kThreads, 0, s>>>(n, e.out, e.a);
    return (int)cudaGetLastError();
}

__device__ double load_any(const char *p, int dtype)
{
    switch (dtype) {
    case 0: return *(const float *)p;
    case 1: return __half2float(*(const __half *)p);
    case 2: return __bfloat162float(*(const __nv_bfloat16 *)p);
    case 3: return *(const int *)p;
    case 4: return (double)*(const long long *)p;
    case 5: return *(const unsigned char *)p != 0;
    }
    return 0.0;
}

// Truncation toward zero, saturating; NaN gives 0 (as the cpu kernel).
__device__ long long to_int(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    return v <= lo ? (long long)lo : v >= hi ? (long long)hi : (long long)v;
}

__device__ void store_any(char *p, int dtype, double v)
{
    switch (dtype) {
    case 0: *(float *)p = (float)v; break;
    case 1: *(__half *)p = __float2half_rn((float)v); break;
    case 2: *(__nv_bfloat16 *)p = __float2bfloat16_rn((float)v); break;
    case 3: *(int *)p = (int)to_int(v, -2147483648.0, 2147483647.0); break;
    case 4: *(long long *)p = to_int(v, -9223372036854775808.0, 9223372036854774784.0); break;
    case 5: *(unsigned char *)p = v != 0.0; break;
    }
}

__device__ int size_of(int dtype)
{
    return dtype == 0 || dtype == 3 ? 4 : dtype == 4 ? 8 : dtype == 5 ? 1 : 2;
}

__global__ void cast_kernel(int64_t n, fleet__view out, fleet__view a, int from, int to)
{
    int si = size_of(from), so = size_of(to);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        store_any((char *)out.data + offset_of(i, out, out) * so, to,
                  load_any((const char *)a.data + offset_of(i, out, a) * si, from));
}

int element_size(int dtype)
{
    return dtype == 0 || dtype == 3 ? 4 : dtype == 4 ? 8 : dtype == 5 ? 1 : 2;
}

int move(cudaStream_t s, const fleet__elementwise_args &e, int64_t n)
{
    if (e.op == FLEET__EW_CAST) {
        cast_kernel<<<blocks_for(n), kThreads, 0, s>>>(n, e.out, e.a, e.dtype, e.out_dtype);
        return (int)cudaGetLastError();
    }
    switch (element_size(e.dtype)) {
    case 1: return launch_move<unsigned char>(s, e, n);
    case 2: return launch_move<unsigned short>(s, e, n);
    case 4: return launch_move<unsigned int>(s, e, n);
    case 8: return launch_move<unsigned long long>(s, e, n);
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

// dtype values are fleet_dtype's: 0 f32, 1 f16, 2 bf16, 3 i32, 4 i64, 5 bool
// (include/fleet/dtype.h).
extern "C" int fleet__cuda_elementwise_supports(int op, int dtype, int out_dtype)
{
    bool any = dtype >= 0 && dtype <= 5, any_out = out_dtype >= 0 && out_dtype <= 5;
    switch (op) {
    case FLEET__EW_COPY: case FLEET__EW_WHERE: return any && dtype == out_dtype;
    case FLEET__EW_CAST: return any && any_out;
    }
    bool integer = (dtype == 3 || dtype == 4) && fleet__ew_takes_integers((fleet__ew_op)op);
    if (op < 0 || op >= FLEET__EW_COUNT_ || (dtype > 2 && !integer))
        return 0;
    bool compare = op >= FLEET__EW_EQUAL && op <= FLEET__EW_GREATER_EQUAL;
    return compare ? out_dtype == 5 : out_dtype == dtype;
}

extern "C" int fleet__cuda_elementwise(void *stream, const fleet__elementwise_args *e)
{
    int64_t n = 1;
    for (int d = 0; d < e->out.ndim; d++)
        n *= e->out.shape[d];
    if (n == 0)
        return (int)cudaSuccess;
    cudaStream_t s = (cudaStream_t)stream;
    if (e->op == FLEET__EW_COPY || e->op == FLEET__EW_WHERE || e->op == FLEET__EW_CAST)
        return move(s, *e, n);
    switch (e->dtype) {
    case 0: return dispatch<float>(s, *e, n);
    case 1: return dispatch<__half>(s, *e, n);
    case 2: return dispatch<__nv_bfloat16>(s, *e, n);
    case 3: return dispatch_int<int, unsigned int>(s, *e, n);
    case 4: return dispatch_int<long long, unsigned long long>(s, *e, n);
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
