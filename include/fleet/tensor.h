/* fleet/tensor.h — tensors: typed, shaped views of device memory.
 *
 * A tensor has a dtype, a shape (up to FLEET_MAX_DIMS dimensions, sizes >= 0),
 * strides in elements, and a storage: a caching-allocator block of its device,
 * allocated on the creating thread's current stream. Tensors are reference
 * counted: fleet_tensor_create returns one reference; fleet_tensor_retain adds
 * one; fleet_tensor_release drops one and frees the tensor and (stream-
 * ordered) its block when the last goes. The handle is checked: using a
 * tensor after its last release (a second release, an op, a copy, a view)
 * is FLEET_ERR_STALE_HANDLE, never undefined behaviour, and accessors read
 * it as no tensor (NULL, 0, -1). Releasing still works after
 * fleet_shutdown() and in a fork child: it frees the handle's host memory.
 *
 * If a stream other than the allocation stream uses the tensor, call
 * fleet_tensor_record_stream() so the memory is not reused before that
 * stream's work is done.
 *
 *     int64_t shape[2] = {4, 3};
 *     fleet_tensor *t;
 *     fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, shape, &t);
 *     fleet_tensor_copy_from_host(t, host, sizeof(float) * 12);
 *     ...
 *     fleet_tensor_release(t);
 *
 * Thread-safety: a tensor may be read by several threads at once; writing it
 * while another thread reads or writes it needs the caller's ordering
 * (streams and events), as with any memory.
 */
#ifndef FLEET_TENSOR_H
#define FLEET_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/dtype.h"
#include "fleet/memory.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fleet_tensor fleet_tensor;

/* A new contiguous (row-major) tensor, uninitialised. ndim 0..FLEET_MAX_DIMS,
 * shape[i] >= 0 (shape may be NULL when ndim is 0: a scalar). */
FLEET_API fleet_status fleet_tensor_create(fleet_device *device, fleet_dtype dtype, int ndim,
                                 const int64_t *shape, fleet_tensor **out);

FLEET_API fleet_status fleet_tensor_retain(fleet_tensor *tensor);
FLEET_API fleet_status fleet_tensor_release(fleet_tensor *tensor);

/* Copy `bytes` (must equal fleet_tensor_nbytes) from host memory into the
 * tensor, ordered on the calling thread's current stream. Returns when `src`
 * may be reused. The tensor must be contiguous. */
FLEET_API fleet_status fleet_tensor_copy_from_host(fleet_tensor *tensor, const void *src, size_t bytes);

/* Wait for the calling thread's current stream, then copy the tensor into
 * `dst` (bytes must equal fleet_tensor_nbytes). The tensor must be contiguous. */
FLEET_API fleet_status fleet_tensor_copy_to_host(const fleet_tensor *tensor, void *dst, size_t bytes);

/* Tell the allocator that `stream` uses the tensor's memory (see memory.h). */
FLEET_API fleet_status fleet_tensor_record_stream(fleet_tensor *tensor, fleet_stream *stream);

/* Views: new tensor handles over the same memory (no copy), each to be
 * released on its own; the memory lives while any of them does. Writing
 * through a view writes the original. On failure *out is untouched. */

/* Swap two dimensions (negative dims count from the end). */
FLEET_API fleet_status fleet_tensor_transpose(const fleet_tensor *t, int dim0, int dim1, fleet_tensor **out);
/* Reorder all dimensions: dimension i of the view is dimension dims[i] of t
 * (a permutation of 0..ndim-1). */
FLEET_API fleet_status fleet_tensor_permute(const fleet_tensor *t, const int *dims, fleet_tensor **out);
/* The same elements in another shape (same count). Only for layouts where no
 * copy is needed (any contiguous tensor); otherwise FLEET_ERR_INVALID_ARGUMENT
 * — make a contiguous copy with fleet_copy first. */
FLEET_API fleet_status fleet_tensor_reshape(const fleet_tensor *t, int ndim, const int64_t *shape,
                                  fleet_tensor **out);
/* Elements start..end-1 along dimension dim (0 <= start <= end <= size). */
FLEET_API fleet_status fleet_tensor_slice(const fleet_tensor *t, int dim, int64_t start, int64_t end,
                                fleet_tensor **out);

/* Accessors. NULL or 0 for a NULL tensor. */
FLEET_API fleet_device *fleet_tensor_device(const fleet_tensor *tensor);
FLEET_API fleet_dtype fleet_tensor_dtype(const fleet_tensor *tensor);
FLEET_API int fleet_tensor_ndim(const fleet_tensor *tensor);
/* Size of dimension `dim`; negative dims count from the end. -1 if out of range. */
FLEET_API int64_t fleet_tensor_dim(const fleet_tensor *tensor, int dim);
/* Stride of dimension `dim` in elements; -1 if out of range. */
FLEET_API int64_t fleet_tensor_stride(const fleet_tensor *tensor, int dim);
FLEET_API int64_t fleet_tensor_numel(const fleet_tensor *tensor);
FLEET_API size_t fleet_tensor_nbytes(const fleet_tensor *tensor);
FLEET_API int fleet_tensor_is_contiguous(const fleet_tensor *tensor);
/* Address of the first element in device memory (host memory on cpu). */
FLEET_API void *fleet_tensor_data(const fleet_tensor *tensor);
/* The stream the tensor's memory was allocated on. */
FLEET_API fleet_stream *fleet_tensor_stream(const fleet_tensor *tensor);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_TENSOR_H */
