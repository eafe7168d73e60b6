/* tensor/tensor.h — the tensor struct, shared by tensor/ and ops/. */
#ifndef FLEET_TENSOR_INTERNAL_H
#define FLEET_TENSOR_INTERNAL_H

#include "core/atomic.h"
#include "fleet/tensor.h"

/* Device memory shared by a tensor and its views; freed (stream-ordered)
 * when the last reference goes. numel 0 tensors have no allocation
 * (alloc.ptr == NULL). */
typedef struct fleet__storage {
    fleet_atomic_int refcount;
    fleet_allocation alloc;
    struct fleet_stream *stream; /* the allocation stream */
} fleet__storage;

struct fleet_tensor {
    fleet_atomic_int refcount;
    struct fleet_device *device;
    fleet_dtype dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    int64_t strides[FLEET_MAX_DIMS]; /* in elements                        */
    int64_t offset;                  /* in elements, into the storage      */
    fleet__storage *storage;
};

/* Validate a tensor argument of public function `fn` (name used in the
 * error): non-NULL and fleet usable with its device. */
fleet_status fleet__enter_tensor(const fleet_tensor *t, const char *fn, const char *arg);

/* Validate ndim/shape of public function `fn` (range, NULL, negative sizes,
 * overflow) and give the element count. */
fleet_status fleet__check_shape(const char *fn, int ndim, const int64_t *shape, int64_t *numel);

/* Release a tensor fleet holds internally, also after shutdown or in a fork
 * child, where fleet_tensor_release refuses: then only the handle is freed
 * (the device memory went with shutdown, or belongs to the parent). */
void fleet__tensor_drop(fleet_tensor *tensor);

/* "4x3" into buf (for error messages); a negative dimension (a model's
 * symbolic batch, FLEET_DIM_BATCH) prints as B: "Bx4". */
const char *fleet__dims_str(int ndim, const int64_t *shape, char *buf, size_t size);
const char *fleet__shape_str(const fleet_tensor *t, char *buf, size_t size);

#endif /* FLEET_TENSOR_INTERNAL_H */
