/* tensor/tensor.c — tensor handles over caching-allocator blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/handle.h"
#include "fleet/model.h"
#include "runtime/device.h"
#include "runtime/dispatch.h"
#include "tensor/tensor.h"
#include "core/prim.h"

size_t fleet_dtype_size(fleet_dtype dtype)
{
    switch (dtype) {
    case FLEET_DTYPE_F32: return 4;
    case FLEET_DTYPE_F16: return 2;
    case FLEET_DTYPE_BF16: return 2;
    case FLEET_DTYPE_I32: return 4;
    case FLEET_DTYPE_I64: return 8;
    case FLEET_DTYPE_BOOL: return 1;
    }
    return 0;
}

const char *fleet_dtype_name(fleet_dtype dtype)
{
    switch (dtype) {
    case FLEET_DTYPE_F32: return "f32";
    case FLEET_DTYPE_F16: return "f16";
    case FLEET_DTYPE_BF16: return "bf16";
    case FLEET_DTYPE_I32: return "i32";
    case FLEET_DTYPE_I64: return "i64";
    case FLEET_DTYPE_BOOL: return "bool";
    }
    return "unknown";
}

const char *fleet__dims_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (ndim == 0)
        snprintf(buf, size, "scalar");
    for (int i = 0; i < ndim && used < size; i++) {
        int w = shape[i] == FLEET_DIM_BATCH
                    ? snprintf(buf + used, size - used, i ? "xB" : "B")
                : shape[i] < 0 ? snprintf(buf + used, size - used, i ? "x%lldB" : "%lldB",
                                          (long long)-shape[i]) /* k times the batch */
                               : snprintf(buf + used, size - used, i ? "x%lld" : "%lld",
                                          (long long)shape[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

const char *fleet__shape_str(const fleet_tensor *t, char *buf, size_t size)
{
    return fleet__dims_str(t->ndim, t->shape, buf, size);
}

fleet_status fleet__check_shape(const char *fn, int ndim, const int64_t *shape, int64_t *numel)
{
    FLEET_CHECK_ARG(ndim >= 0 && ndim <= FLEET_MAX_DIMS, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: ndim %d outside [0, %d]", fn, ndim, FLEET_MAX_DIMS);
    FLEET_CHECK_ARG(ndim == 0 || shape != NULL, FLEET_ERR_NULL_POINTER, "%s: shape is NULL", fn);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        FLEET_CHECK_ARG(shape[i] >= 0, FLEET_ERR_INVALID_ARGUMENT,
                        "%s: dimension %d has negative size %lld", fn, i, (long long)shape[i]);
        FLEET_CHECK_ARG(shape[i] == 0 || n <= INT64_MAX / 8 / shape[i],
                        FLEET_ERR_INVALID_ARGUMENT, "%s: shape overflows 64-bit sizes", fn);
        n *= shape[i];
    }
    *numel = n;
    return FLEET_OK;
}

/* ---- handles -------------------------------------------------------------------
 * A fleet_tensor * the caller holds is a handle into `tensors` (core/handle.h):
 * a released tensor's handle resolves to nothing, FLEET_ERR_STALE_HANDLE.
 * fleet's own tensors (weights, arenas, scratch, views on the stack) are
 * plain structs whose addresses are not handles (their low bit is clear);
 * they resolve to themselves, and only fleet's code holds them. */

static fleet__handle_table tensors = FLEET__HANDLE_TABLE_INIT("tensor", fleet_tensor);

const fleet_tensor *fleet__tensor_get(const fleet_tensor *h)
{
    if (!fleet__handle_tagged(h))
        return h;
    return fleet__handle_get(&tensors, (uintptr_t)h);
}

fleet_status fleet__enter_tensor(const fleet_tensor **t, const char *fn, const char *arg)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    if (*t == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "%s: %s is NULL", fn, arg);
    const fleet_tensor *r = fleet__tensor_get(*t);
    if (r == NULL)
        return fleet__handle_stale(&tensors, fn, arg);
    if ((st = fleet__enter_device(r->device, fn)) != FLEET_OK)
        return st;
    *t = r;
    return FLEET_OK;
}

/* Fill t (zeroed) as a contiguous tensor with a fresh allocation on the
 * calling thread's current stream. */
static fleet_status tensor_init(fleet_tensor *t, fleet_device *device, fleet_dtype dtype,
                                int ndim, const int64_t *shape, const char *fn)
{
    int64_t numel;
    fleet_status st = fleet__check_shape(fn, ndim, shape, &numel);
    if (st != FLEET_OK)
        return st;
    fleet_stream *stream;
    if ((st = fleet__stream_current(device, &stream)) != FLEET_OK)
        return st;
    fleet__storage *storage = fleet__calloc(1, sizeof *storage);
    if (storage == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    size_t bytes = (size_t)numel * fleet_dtype_size(dtype);
    if (bytes > 0 && (st = fleet_memory_alloc(stream, bytes, &storage->alloc)) != FLEET_OK) {
        free(storage);
        return fleet__error_prefix(st, fn);
    }
    fleet_atomic_init(&storage->refcount, 1);
    storage->stream = stream;
    t->device = device;
    t->dtype = dtype;
    fleet__tensor_set_shape(t, ndim, shape);
    t->storage = storage;
    return FLEET_OK;
}

void fleet__tensor_set_shape(fleet_tensor *t, int ndim, const int64_t *shape)
{
    t->ndim = ndim;
    int64_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->strides[i] = stride;
        stride *= shape[i] > 0 ? shape[i] : 1;
    }
}

/* Drop one storage reference; the last frees its block (stream-ordered), or
 * only the host struct where the device can no longer be used (after
 * shutdown the allocator has returned every segment; in a fork child whose
 * device does not survive fork the memory is the parent's). */
static void storage_release(fleet__storage *s, struct fleet_device *device)
{
    if (fleet_atomic_sub_acq_rel(&s->refcount, 1) != 1)
        return;
    if (s->alloc.ptr != NULL && fleet__enter_device(device, "fleet_tensor_release") == FLEET_OK) {
        fleet_status st = fleet_memory_free(&s->alloc);
        FLEET_ASSERT(st == FLEET_OK); /* the storage owns its only handle */
    }
    free(s);
}

fleet_status fleet__tensor_publish(const fleet_tensor *t, fleet_tensor **out)
{
    void *p;
    uintptr_t h;
    fleet_status st = fleet__handle_new(&tensors, &p, &h);
    if (st != FLEET_OK)
        return st;
    memcpy(p, t, sizeof *t);
    *out = (fleet_tensor *)h;
    return FLEET_OK;
}

fleet_status fleet_tensor_create(fleet_device *device, fleet_dtype dtype, int ndim,
                                 const int64_t *shape, fleet_tensor **out)
{
    static const char fn[] = "fleet_tensor_create";
    fleet_status st = fleet__enter_device(device, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    FLEET_CHECK_ARG(fleet_dtype_size(dtype) != 0, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: unknown dtype %d", fn, (int)dtype);
    fleet_tensor t;
    memset(&t, 0, sizeof t);
    if ((st = tensor_init(&t, device, dtype, ndim, shape, fn)) != FLEET_OK)
        return st;
    if ((st = fleet__tensor_publish(&t, out)) != FLEET_OK) {
        storage_release(t.storage, device);
        return fleet__error_prefix(st, fn);
    }
    return FLEET_OK;
}

fleet_status fleet__tensor_new(fleet_device *device, fleet_dtype dtype, int ndim,
                               const int64_t *shape, const char *fn, fleet_tensor **out)
{
    fleet_tensor *t = fleet__calloc(1, sizeof *t);
    if (t == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    fleet_status st = tensor_init(t, device, dtype, ndim, shape, fn);
    if (st != FLEET_OK) {
        free(t);
        return st;
    }
    *out = t;
    return FLEET_OK;
}

void fleet__tensor_free(fleet_tensor *t)
{
    if (t == NULL)
        return;
    FLEET_ASSERT(!fleet__handle_tagged(t)); /* fleet's own, not a caller's handle */
    storage_release(t->storage, t->device);
    free(t);
}

fleet_status fleet_tensor_retain(fleet_tensor *tensor)
{
    static const char fn[] = "fleet_tensor_retain";
    const fleet_tensor *t = tensor;
    fleet_status st = fleet__enter_tensor(&t, fn, "tensor");
    if (st != FLEET_OK)
        return st;
    FLEET_ASSERT(fleet__handle_tagged(tensor)); /* only callers hold references */
    if (fleet__handle_acquire(&tensors, (uintptr_t)tensor) == NULL)
        return fleet__handle_stale(&tensors, fn, "tensor"); /* released meanwhile */
    return FLEET_OK;
}

/* Also after fleet_shutdown and in a fork child, where no other call on the
 * tensor works: the last reference then frees the handle and its host
 * memory (the device memory went with shutdown, or is the parent's). */
fleet_status fleet_tensor_release(fleet_tensor *tensor)
{
    static const char fn[] = "fleet_tensor_release";
    if (tensor == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "%s: tensor is NULL", fn);
    FLEET_ASSERT(fleet__handle_tagged(tensor)); /* fleet's own use fleet__tensor_free */
    void *p;
    bool last;
    if (!fleet__handle_drop(&tensors, (uintptr_t)tensor, &p, &last))
        return fleet__handle_stale(&tensors, fn, "tensor");
    if (last) {
        fleet_tensor *t = p;
        storage_release(t->storage, t->device);
        fleet__handle_recycle(&tensors, t);
    }
    return FLEET_OK;
}

uint64_t fleet__tensor_handles_live(void)
{
    return fleet__handle_live(&tensors);
}

static fleet_status check_copy(const fleet_tensor **t, const void *host, size_t bytes,
                               const char *fn)
{
    fleet_status st = fleet__enter_tensor(t, fn, "tensor");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(host != NULL || bytes == 0, FLEET_ERR_NULL_POINTER, "%s: host buffer is NULL", fn);
    FLEET_CHECK_ARG(bytes == fleet_tensor_nbytes(*t), FLEET_ERR_INVALID_ARGUMENT,
                    "%s: %zu bytes given, the tensor holds %zu", fn, bytes, fleet_tensor_nbytes(*t));
    FLEET_CHECK_ARG(fleet_tensor_is_contiguous(*t), FLEET_ERR_INVALID_ARGUMENT,
                    "%s: tensor is not contiguous", fn);
    return FLEET_OK;
}

/* Queue the copy on the caller's current stream and wait for it: the caller
 * may reuse (or read) the host buffer on return. */
static fleet_status copy_and_wait(const fleet_tensor *t, void *dst, const void *src, size_t bytes,
                                  bool to_host)
{
    struct fleet_device *dev = t->device;
    fleet_stream *stream;
    void *native;
    fleet_status st = fleet__stream_current(dev, &stream);
    if (st == FLEET_OK)
        st = fleet__stream_native(stream, &native);
    if (st != FLEET_OK || bytes == 0)
        return st;
    st = to_host ? fleet__backend_copy_device_to_host(dev, native, dst, src, bytes)
                 : fleet__backend_copy_host_to_device(dev, native, dst, src, bytes);
    if (st == FLEET_OK)
        st = fleet__backend_stream_synchronize(dev, native);
    return st;
}

fleet_status fleet_tensor_copy_from_host(fleet_tensor *tensor, const void *src, size_t bytes)
{
    const fleet_tensor *t = tensor;
    fleet_status st = check_copy(&t, src, bytes, "fleet_tensor_copy_from_host");
    if (st != FLEET_OK)
        return st;
    return copy_and_wait(t, fleet_tensor_data(t), src, bytes, false);
}

fleet_status fleet_tensor_copy_to_host(const fleet_tensor *tensor, void *dst, size_t bytes)
{
    const fleet_tensor *t = tensor;
    fleet_status st = check_copy(&t, dst, bytes, "fleet_tensor_copy_to_host");
    if (st != FLEET_OK)
        return st;
    return copy_and_wait(t, dst, fleet_tensor_data(t), bytes, true);
}

fleet_status fleet_tensor_record_stream(fleet_tensor *tensor, fleet_stream *stream)
{
    const fleet_tensor *t = tensor;
    fleet_status st = fleet__enter_tensor(&t, "fleet_tensor_record_stream", "tensor");
    if (st != FLEET_OK)
        return st;
    if ((st = fleet__enter_stream(stream, "fleet_tensor_record_stream")) != FLEET_OK)
        return st;
    if (stream->device != t->device)
        return fleet__error(FLEET_ERR_INVALID_DEVICE,
                            "fleet_tensor_record_stream: tensor on %s, stream on %s",
                            t->device->name, stream->device->name);
    if (t->storage->alloc.ptr == NULL)
        return FLEET_OK; /* empty tensor: no memory to protect */
    return fleet_memory_record_stream(&t->storage->alloc, stream);
}

/* Accessors: a stale handle reads as no tensor (NULL, 0, -1). */

fleet_device *fleet_tensor_device(const fleet_tensor *h)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    return t ? t->device : NULL;
}

fleet_dtype fleet_tensor_dtype(const fleet_tensor *h)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    return t ? t->dtype : FLEET_DTYPE_F32;
}

int fleet_tensor_ndim(const fleet_tensor *h)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    return t ? t->ndim : 0;
}

int64_t fleet_tensor_dim(const fleet_tensor *h, int dim)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    if (t == NULL)
        return -1;
    if (dim < 0)
        dim += t->ndim;
    return dim >= 0 && dim < t->ndim ? t->shape[dim] : -1;
}

int64_t fleet_tensor_stride(const fleet_tensor *h, int dim)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    if (t == NULL)
        return -1;
    if (dim < 0)
        dim += t->ndim;
    return dim >= 0 && dim < t->ndim ? t->strides[dim] : -1;
}

int64_t fleet_tensor_numel(const fleet_tensor *h)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    if (t == NULL)
        return 0;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t fleet_tensor_nbytes(const fleet_tensor *h)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    return t ? (size_t)fleet_tensor_numel(t) * fleet_dtype_size(t->dtype) : 0;
}

int fleet_tensor_is_contiguous(const fleet_tensor *h)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    if (t == NULL)
        return 0;
    if (fleet_tensor_numel(t) == 0)
        return 1; /* no element to be out of place */
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect)
            return 0;
        expect *= t->shape[i];
    }
    return 1;
}

void *fleet_tensor_data(const fleet_tensor *h)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    if (t == NULL || t->storage->alloc.ptr == NULL)
        return NULL;
    return (char *)t->storage->alloc.ptr + t->offset * (int64_t)fleet_dtype_size(t->dtype);
}

fleet_stream *fleet_tensor_stream(const fleet_tensor *h)
{
    const fleet_tensor *t = fleet__tensor_get(h);
    return t ? t->storage->stream : NULL;
}
