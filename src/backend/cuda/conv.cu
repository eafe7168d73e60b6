// backend/cuda/conv.cu — the gather (embedding), the range, convolution's im2col and 2-D
// pooling (f32):
// one thread per output element, grid-stride loops. The GEMM after im2col is
// cuBLAS (cuda_backend.c).
#include <cuda_runtime.h>
#include <math.h>

#include "backend/cuda/conv.h"

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (int)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

template <typename I, typename W>
__global__ void gather_kernel(fleet__gather_args a)
{
    int64_t total = a.outer * a.n * a.inner;
    const W *x = (const W *)a.x;
    W *out = (W *)a.out;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t k = t % a.inner, r = (t / a.inner) % a.n, o = t / (a.inner * a.n);
        int64_t idx = (int64_t)((const I *)a.indices)[r];
        if (idx < 0 && a.wrap_negative)
            idx += a.v;
        // out of range: zeros, nothing read
        out[t] = idx >= 0 && idx < a.v ? x[(o * a.v + idx) * a.inner + k] : W(0);
    }
}

// dtype values are fleet_dtype's: 0 f32, 3 i32, 4 i64.
__global__ void range_kernel(fleet__range_args a)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < a.n;
         i += (int64_t)gridDim.x * blockDim.x) {
        unsigned long long v = (unsigned long long)a.istart +
                               (unsigned long long)i * (unsigned long long)a.idelta;
        if (a.dtype == 4)
            ((long long *)a.out)[i] = (long long)v;
        else if (a.dtype == 3)
            ((int *)a.out)[i] = (int)(unsigned int)v;
        else
            ((float *)a.out)[i] = (float)(a.fstart + (double)i * a.fdelta);
    }
}

template <typename I>
int launch_gather(cudaStream_t s, const fleet__gather_args &a, int64_t total)
{
    switch (a.elem_size) {
    case 1: gather_kernel<I, unsigned char><<<blocks_for(total), kThreads, 0, s>>>(a); break;
    case 2: gather_kernel<I, unsigned short><<<blocks_for(total), kThreads, 0, s>>>(a); break;
    case 4: gather_kernel<I, unsigned int><<<blocks_for(total), kThreads, 0, s>>>(a); break;
    case 8: gather_kernel<I, unsigned long long><<<blocks_for(total), kThreads, 0, s>>>(a); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

__global__ void im2col_kernel(fleet__conv_geom g, const float *__restrict__ x, int64_t xs,
                              float *__restrict__ cols)
{
    int64_t ohw = g.oh * g.ow, kk = g.kh * g.kw;
    int64_t total = g.n * g.c * kk * ohw;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = t % ohw, row = t / ohw; // row = (b*c + ci)*kk + i*kw + j
        int64_t k = row % kk, bc = row / kk, b = bc / g.c, ci = bc % g.c;
        int64_t i = k / g.kw, j = k % g.kw, oy = p / g.ow, ox = p % g.ow;
        int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
        bool in = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
        cols[t] = in ? x[b * xs + (ci * g.h + iy) * g.w + ix] : 0.0f;
    }
}

// One thread per output element of the pool (fleet__pool_args says how).
__global__ void pool_kernel(fleet__pool_args a)
{
    const float *x = (const float *)a.x;
    float *out = (float *)a.out;
    int64_t total = a.n * a.c * a.oh * a.ow;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = t % a.ow, oy = (t / a.ow) % a.oh, nc = t / (a.ow * a.oh);
        const float *img = x + nc * a.h * a.w;
        int64_t y0 = oy * a.sh - a.ph, x0 = ox * a.sw - a.pw;
        float best = -INFINITY, sum = 0.0f;
        int64_t count = 0;
        for (int64_t i = 0; i < a.kh; i++) {
            int64_t iy = y0 + i * a.dh;
            if (iy < 0 || iy >= a.h)
                continue;
            for (int64_t j = 0; j < a.kw; j++) {
                int64_t ix = x0 + j * a.dw;
                if (ix < 0 || ix >= a.w)
                    continue;
                float v = img[iy * a.w + ix];
                best = v > best || isnan(v) ? v : best;
                sum += v;
                count++;
            }
        }
        if (a.op == FLEET__POOL_MAX) {
            out[t] = best;
            continue;
        }
        if (a.count_include_pad) {
            int64_t y1 = y0 + a.kh < a.h + a.ph_end ? y0 + a.kh : a.h + a.ph_end;
            int64_t x1 = x0 + a.kw < a.w + a.pw_end ? x0 + a.kw : a.w + a.pw_end;
            count = (y1 - y0) * (x1 - x0);
        }
        out[t] = count > 0 ? sum / (float)count : 0.0f;
    }
}

} // namespace

// index_dtype values are fleet_dtype's: 3 i32, 4 i64 (include/fleet/dtype.h).
extern "C" int fleet__cuda_gather(void *stream, const fleet__gather_args *a)
{
    int64_t total = a->outer * a->n * a->inner;
    if (total == 0)
        return (int)cudaSuccess;
    cudaStream_t s = (cudaStream_t)stream;
    if (a->index_dtype == 3)
        return launch_gather<int32_t>(s, *a, total);
    if (a->index_dtype == 4)
        return launch_gather<int64_t>(s, *a, total);
    return (int)cudaErrorInvalidValue;
}

extern "C" int fleet__cuda_range(void *stream, const fleet__range_args *a)
{
    if (a->n == 0)
        return (int)cudaSuccess;
    range_kernel<<<blocks_for(a->n), kThreads, 0, (cudaStream_t)stream>>>(*a);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_im2col(void *stream, const fleet__im2col_args *a)
{
    const fleet__conv_geom &g = a->g;
    int64_t total = g.n * g.c * g.kh * g.kw * g.oh * g.ow;
    if (total == 0)
        return (int)cudaSuccess;
    int64_t xs = a->x_image_stride != 0 ? a->x_image_stride : g.c * g.h * g.w;
    im2col_kernel<<<blocks_for(total), kThreads, 0, (cudaStream_t)stream>>>(
        g, (const float *)a->x, xs, (float *)a->cols);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_pool2d(void *stream, const fleet__pool_args *a)
{
    int64_t total = a->n * a->c * a->oh * a->ow;
    if (total == 0)
        return (int)cudaSuccess;
    pool_kernel<<<blocks_for(total), kThreads, 0, (cudaStream_t)stream>>>(*a);
    return (int)cudaGetLastError();
}
