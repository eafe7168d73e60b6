/* backend/cuda/graph_copy.cu — the retargetable copy of graph_copy.h. One
 * kernel for any alignment: 16-byte words when dst, src and bytes allow,
 * single bytes otherwise (the choice is made per launch, in the kernel, so
 * an update may change the pointers' alignment). */
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/graph_copy.h"

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;

__global__ void copy_kernel(char *dst, const char *src, size_t bytes)
{
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t step = (size_t)gridDim.x * blockDim.x;
    if ((((uintptr_t)dst | (uintptr_t)src | bytes) & 15u) == 0) {
        uint4 *d = reinterpret_cast<uint4 *>(dst);
        const uint4 *s = reinterpret_cast<const uint4 *>(src);
        for (size_t i = tid; i < bytes / 16; i += step)
            d[i] = s[i];
    } else {
        for (size_t i = tid; i < bytes; i += step)
            dst[i] = src[i];
    }
}

/* Segment blockIdx.y, its bytes strided over the blocks of gridDim.x. */
__global__ void segments_kernel(fleet__segments_args a)
{
    int i = blockIdx.y;
    char *dst = (char *)a.dst[i];
    const char *src = (const char *)a.src[i];
    size_t bytes = a.bytes[i];
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t step = (size_t)gridDim.x * blockDim.x;
    if ((((uintptr_t)dst | (uintptr_t)src | bytes) & 15u) == 0) {
        for (size_t k = tid; k < bytes / 16; k += step)
            reinterpret_cast<uint4 *>(dst)[k] = reinterpret_cast<const uint4 *>(src)[k];
    } else {
        for (size_t k = tid; k < bytes; k += step)
            dst[k] = src[k];
    }
}

dim3 grid_for(size_t bytes)
{
    size_t words = (bytes + 15) / 16;
    size_t blocks = (words + kThreads - 1) / kThreads;
    return dim3((unsigned)(blocks < 1 ? 1 : blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

} // namespace

extern "C" int fleet__cuda_graph_copy_launch(void *stream, void *dst, const void *src,
                                             size_t bytes)
{
    copy_kernel<<<grid_for(bytes), kThreads, 0, (cudaStream_t)stream>>>(
        (char *)dst, (const char *)src, bytes);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_copy_segments(void *stream, const fleet__segments_args *args)
{
    if (args->n <= 0)
        return (int)cudaSuccess;
    size_t most = 0;
    for (int i = 0; i < args->n; i++)
        most = args->bytes[i] > most ? args->bytes[i] : most;
    dim3 grid = grid_for(most);
    grid.y = (unsigned)args->n;
    segments_kernel<<<grid, kThreads, 0, (cudaStream_t)stream>>>(*args);
    return (int)cudaGetLastError();
}

extern "C" int fleet__cuda_graph_copy_update(void *exec, void *node, void *dst, const void *src,
                                             size_t bytes)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    void *args[] = {&d, &s, &bytes};
    cudaKernelNodeParams p = {};
    p.func = (void *)copy_kernel;
    p.gridDim = grid_for(bytes);
    p.blockDim = dim3(kThreads);
    p.sharedMemBytes = 0;
    p.kernelParams = args;
    p.extra = nullptr;
    return (int)cudaGraphExecKernelNodeSetParams((cudaGraphExec_t)exec, (cudaGraphNode_t)node, &p);
}
