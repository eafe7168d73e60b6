/* tensor/tensor.h — the tensor struct, shared by tensor/ and ops/.
 *
 * Two kinds of fleet_tensor *: the handles callers get (fleet_tensor_create,
 * the views), which encode a slot of a handle table (core/handle.h) and are
 * never dereferenced directly; and fleet's own tensors — weights, arenas,
 * scratch (fleet__tensor_new), views on the stack — which are plain
 * structs. Every public function resolves its tensor arguments first
 * (fleet__enter_tensor, fleet__tensor_get), which maps a handle to its
 * struct and leaves a plain struct as it is; after that, code works on
 * structs only. A released handle resolves to nothing:
 * FLEET_ERR_STALE_HANDLE. */
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
    struct fleet_device *device;
    fleet_dtype dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    int64_t strides[FLEET_MAX_DIMS]; /* in elements                        */
    int64_t offset;                  /* in elements, into the storage      */
    fleet__storage *storage;
};

/* t's ndim and shape, its strides made those of a contiguous row-major
 * layout. */
void fleet__tensor_set_shape(fleet_tensor *t, int ndim, const int64_t *shape);

/* Validate a tensor argument of public function `fn` (`arg` names it in the
 * error): non-NULL, not stale, fleet and its device usable; on success *t
 * is the tensor's struct. */
fleet_status fleet__enter_tensor(const fleet_tensor **t, const char *fn, const char *arg);
/* The struct of a handle (NULL: stale), or t itself if it is one of fleet's
 * own. No error text: for accessors. */
const fleet_tensor *fleet__tensor_get(const fleet_tensor *t);

/* Validate ndim/shape of public function `fn` (range, NULL, negative sizes,
 * overflow) and give the element count. */
fleet_status fleet__check_shape(const char *fn, int ndim, const int64_t *shape, int64_t *numel);

/* A caller's handle for the tensor struct t (copied into the handle's slot;
 * t's storage reference moves with it). */
fleet_status fleet__tensor_publish(const fleet_tensor *t, fleet_tensor **out);

/* One of fleet's own tensors (a plain struct, no handle, one owner): like
 * fleet_tensor_create, freed with fleet__tensor_free, which also works
 * after shutdown and in a fork child (it then frees only host memory). */
fleet_status fleet__tensor_new(fleet_device *device, fleet_dtype dtype, int ndim,
                               const int64_t *shape, const char *fn, fleet_tensor **out);
void fleet__tensor_free(fleet_tensor *t);

/* Handles of live tensors (for tests: leaks). */
uint64_t fleet__tensor_handles_live(void);

/* "4x3" into buf (for error messages); a symbolic dimension prints as B
 * (the model's batch, FLEET_DIM_BATCH: "Bx4") or ? (any other). */
const char *fleet__dims_str(int ndim, const int64_t *shape, char *buf, size_t size);
const char *fleet__shape_str(const fleet_tensor *t, char *buf, size_t size);

#endif /* FLEET_TENSOR_INTERNAL_H */
