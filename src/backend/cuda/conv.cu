// backend/cuda/conv.cu — the embedding gather and convolution's im2col (f32):
// one thread per output element, grid-stride loops. The GEMM after im2col is
// cuBLAS (cuda_backend.c).
#include <cuda_runtime.h>

#include "backend/cuda/conv.h"

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (int)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

template <typename I>
__global__ void embedding_kernel(int64_t n, int64_t v, int64_t d, const float *__restrict__ w,
                                 const I *__restrict__ indices, float *__restrict__ out)
{
    int64_t total = n * d;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / d, col = t % d;
        int64_t idx = (int64_t)indices[r];
        // out of range: a zero row, nothing read
        out[t] = idx >= 0 && idx < v ? w[idx * d + col] : 0.0f;
    }
}

__global__ void im2col_kernel(fleet__conv_geom g, const float *__restrict__ x,
                              float *__restrict__ cols)
{
    int64_t ohw = g.oh * g.ow, kk = g.kh * g.kw;
    int64_t total = g.n * g.c * kk * ohw;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = t % ohw, row = t / ohw; // row = (b*c + ci)*kk + i*kw + j
        int64_t k = row % kk, bc = row / kk;
        int64_t i = k / g.kw, j = k % g.kw, oy = p / g.ow, ox = p % g.ow;
        int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
        bool in = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
        cols[t] = in ? x[(bc * g.h + iy) * g.w + ix] : 0.0f;
    }
}

} // namespace

// index_dtype values are fleet_dtype's: 3 i32, 4 i64 (include/fleet/dtype.h).
extern "C" int fleet__cuda_embedding(void *stream, const fleet__embedding_args *e)
{
    int64_t total = e->n * e->d;
    if (total == 0)
        return (int)cudaSuccess;
    cudaStream_t s = (cudaStream_t)stream;
    const float *w = (const float *)e->weight;
    float *out = (float *)e->out;
    if (e->index_dtype == 3)
        embedding_kernel<int32_t><<<blocks_for(total), kThreads, 0, s>>>(
            e->n, e->v, e->d, w, (const int32_t *)e->indices, out);
    else if (e->index_dtype == 4)
        embedding_kernel<int64_t><<<blocks_for(total), kThreads, 0, s>>>(
            e->n, e->v, e->d, w, (const int64_t *)e->indices, out);
    else
        return (int)cudaErrorInvalidValue;
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_im2col(void *stream, const fleet__im2col_args *a)
{
    const fleet__conv_geom &g = a->g;
    int64_t total = g.n * g.c * g.kh * g.kw * g.oh * g.ow;
    if (total == 0)
        return (int)cudaSuccess;
    im2col_kernel<<<blocks_for(total), kThreads, 0, (cudaStream_t)stream>>>(
        g, (const float *)a->x, (float *)a->cols);
    return (int)cudaGetLastError();
}
