// backend/cuda/small_gemm.cu — a small GEMM and its epilogue in one launch:
// a warp per output element (small_gemm.h says when the backend uses it).
#include <cuda_runtime.h>

#include "backend/cuda/f32_access.cuh"
#include "backend/cuda/small_gemm.h"

namespace {

using fleet_cuda::load;
using fleet_cuda::store;

constexpr int kThreads = 256; // 8 warps
constexpr int kWarps = kThreads / 32;
constexpr int64_t kMaxBlocks = 65535;

struct small_gemm_args {
    int64_t m, n, k, lda, ldb, ldc, batch, stride_a, stride_b, stride_c;
    float alpha, beta;
    bool relu;
};

// C[i][j] = relu?(alpha * sum_k opA[i][k] opB[k][j] + beta C[i][j] + bias[j]):
// opA[i][k] is a[i*lda + k], or a[k*lda + i] transposed; opB[k][j] is
// b[k*ldb + j], or b[j*ldb + k] transposed (a Linear's weight [n, k]: each
// warp then reads one contiguous row of it).
template <typename T, bool TA, bool TB>
__global__ void small_gemm_kernel(small_gemm_args g, const T *__restrict__ a,
                                  const T *__restrict__ b, const T *__restrict__ bias,
                                  T *__restrict__ c)
{
    // 32-bit indices (the backend sends at most 2^31 outputs): 64-bit
    // division is a long instruction sequence on the GPU.
    const int lane = threadIdx.x & 31;
    const unsigned n = (unsigned)g.n, per = (unsigned)(g.m * g.n),
                   total = (unsigned)(g.m * g.n * g.batch);
    for (unsigned w = blockIdx.x * kWarps + threadIdx.x / 32; w < total;
         w += gridDim.x * kWarps) {
        const unsigned mat = w / per, ij = w - mat * per, i = ij / n, j = ij - i * n;
        const T *am = a + mat * g.stride_a, *bm = b + mat * g.stride_b;
        // The epilogue's operands are loaded first, their latency hidden
        // behind the dot product's.
        T *out = c + mat * g.stride_c + i * g.ldc + j;
        float add = bias != nullptr && lane == 0 ? load(bias + j) : 0.0f;
        if (g.beta != 0.0f && lane == 0)
            add = fmaf(g.beta, load(out), add);
        float acc = 0.0f;
#pragma unroll 4
        for (int64_t kk = lane; kk < g.k; kk += 32) {
            float x = load(TA ? am + kk * g.lda + i : am + i * g.lda + kk);
            float y = load(TB ? bm + j * g.ldb + kk : bm + kk * g.ldb + j);
            acc = fmaf(x, y, acc);
        }
        for (int o = 16; o > 0; o >>= 1)
            acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) {
            float v = fmaf(g.alpha, acc, add);
            if (g.relu)
                v = fmaxf(v, 0.0f);
            store(out, v);
        }
    }
}

template <typename T>
cudaError_t launch(cudaStream_t s, const fleet__gemm_args *g, const small_gemm_args &args)
{
    int64_t warps = g->m * g->n * g->batch; // <= 2^31 (small_gemm.h)
    int64_t blocks = (warps + kWarps - 1) / kWarps;
    unsigned grid = (unsigned)(blocks < kMaxBlocks ? blocks : kMaxBlocks);
    const T *a = (const T *)g->a, *b = (const T *)g->b, *bias = (const T *)g->bias;
    T *c = (T *)g->c;
    if (g->trans_a && g->trans_b)
        small_gemm_kernel<T, true, true><<<grid, kThreads, 0, s>>>(args, a, b, bias, c);
    else if (g->trans_a)
        small_gemm_kernel<T, true, false><<<grid, kThreads, 0, s>>>(args, a, b, bias, c);
    else if (g->trans_b)
        small_gemm_kernel<T, false, true><<<grid, kThreads, 0, s>>>(args, a, b, bias, c);
    else
        small_gemm_kernel<T, false, false><<<grid, kThreads, 0, s>>>(args, a, b, bias, c);
    return cudaGetLastError();
}

} // namespace

extern "C" int fleet__cuda_small_gemm(void *stream, const fleet__gemm_args *g)
{
    small_gemm_args args = {g->m,        g->n,        g->k,        g->lda,   g->ldb,
                            g->ldc,      g->batch,    g->stride_a, g->stride_b,
                            g->stride_c, g->alpha,    g->beta,     g->bias != nullptr && g->relu};
    cudaStream_t s = (cudaStream_t)stream;
    switch (g->dtype) {
    case FLEET_DTYPE_F16: return (int)launch<__half>(s, g, args);
    case FLEET_DTYPE_BF16: return (int)launch<__nv_bfloat16>(s, g, args);
    default: return (int)launch<float>(s, g, args);
    }
}
