/* backend/cuda/graph_copy.h — a device-to-device copy as a kernel whose node
 * in a CUDA graph can be pointed at other memory after instantiation
 * (cudaGraphExecKernelNodeSetParams): one plain kernel node, whatever the
 * alignment, with parameters we know. C types only; each returns a
 * cudaError_t as an int. */
#ifndef FLEET_BACKEND_CUDA_GRAPH_COPY_H
#define FLEET_BACKEND_CUDA_GRAPH_COPY_H

#include <stddef.h>

#include "backend/kernel_args.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Copy `bytes` from src to dst on stream (a cudaStream_t). */
int fleet__cuda_graph_copy_launch(void *stream, void *dst, const void *src, size_t bytes);
/* Point the copy kernel node `node` of `exec` (a cudaGraphExec_t and
 * cudaGraphNode_t from a capture of fleet__cuda_graph_copy_launch with the
 * same `bytes`) at dst and src. */
int fleet__cuda_graph_copy_update(void *exec, void *node, void *dst, const void *src,
                                  size_t bytes);

/* All of args's copies in one launch (a block row per segment). */
int fleet__cuda_copy_segments(void *stream, const fleet__segments_args *args);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_BACKEND_CUDA_GRAPH_COPY_H */
