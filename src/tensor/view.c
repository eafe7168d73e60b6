/* tensor/view.c — views: tensors that share another tensor's storage with
 * their own shape, strides and offset. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "runtime/device.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"

/* A handle for v, a header sharing t's storage (one more storage
 * reference). */
static fleet_status publish_view(const fleet_tensor *t, fleet_tensor *v, const char *fn,
                                 fleet_tensor **out)
{
    fleet_atomic_add_relaxed(&t->storage->refcount, 1);
    fleet_status st = fleet__tensor_publish(v, out);
    if (st != FLEET_OK) {
        fleet_atomic_sub_relaxed(&t->storage->refcount, 1);
        return fleet__error_prefix(st, fn);
    }
    return FLEET_OK;
}

static fleet_status enter(const fleet_tensor **t, fleet_tensor **out, const char *fn)
{
    fleet_status st = fleet__enter_tensor(t, fn, "tensor");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    return FLEET_OK;
}

fleet_status fleet_tensor_transpose(const fleet_tensor *h, int dim0, int dim1, fleet_tensor **out)
{
    static const char fn[] = "fleet_tensor_transpose";
    const fleet_tensor *t = h;
    fleet_status st = enter(&t, out, fn);
    if (st != FLEET_OK)
        return st;
    int d0, d1;
    if ((st = fleet__shape_dim(fn, t->ndim, dim0, &d0)) != FLEET_OK ||
        (st = fleet__shape_dim(fn, t->ndim, dim1, &d1)) != FLEET_OK)
        return st;
    fleet_tensor v = *t;
    v.shape[d0] = t->shape[d1];
    v.shape[d1] = t->shape[d0];
    v.strides[d0] = t->strides[d1];
    v.strides[d1] = t->strides[d0];
    return publish_view(t, &v, fn, out);
}

fleet_status fleet_tensor_permute(const fleet_tensor *h, const int *dims, fleet_tensor **out)
{
    static const char fn[] = "fleet_tensor_permute";
    const fleet_tensor *t = h;
    fleet_status st = enter(&t, out, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(dims != NULL || t->ndim == 0, FLEET_ERR_NULL_POINTER, "%s: dims is NULL", fn);
    int perm[FLEET_MAX_DIMS];
    if (t->ndim > 0)
        memcpy(perm, dims, sizeof(int) * (size_t)t->ndim);
    fleet__dims dt = FLEET__DIMS(t), want;
    if ((st = fleet__shape_permute(fn, &dt, perm, &want)) != FLEET_OK)
        return st;
    fleet_tensor v = *t;
    for (int i = 0; i < t->ndim; i++) {
        v.shape[i] = want.d[i];
        v.strides[i] = t->strides[perm[i]];
    }
    return publish_view(t, &v, fn, out);
}

fleet_status fleet_tensor_reshape(const fleet_tensor *h, int ndim, const int64_t *shape,
                                  fleet_tensor **out)
{
    static const char fn[] = "fleet_tensor_reshape";
    const fleet_tensor *t = h;
    fleet_status st = enter(&t, out, fn);
    if (st != FLEET_OK)
        return st;
    int64_t numel;
    if ((st = fleet__check_shape(fn, ndim, shape, &numel)) != FLEET_OK)
        return st;
    fleet__dims dt = FLEET__DIMS(t), to = fleet__dims_of(ndim, shape);
    if ((st = fleet__shape_reshape(fn, &dt, &to)) != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(fleet_tensor_is_contiguous(t), FLEET_ERR_INVALID_ARGUMENT,
                    "%s: the tensor is not contiguous; copy it with fleet_copy first", fn);
    fleet_tensor v = *t;
    fleet__tensor_set_shape(&v, ndim, shape);
    return publish_view(t, &v, fn, out);
}

fleet_status fleet_tensor_slice(const fleet_tensor *h, int dim, int64_t start, int64_t end,
                                fleet_tensor **out)
{
    static const char fn[] = "fleet_tensor_slice";
    const fleet_tensor *t = h;
    fleet_status st = enter(&t, out, fn);
    if (st != FLEET_OK)
        return st;
    int d;
    if ((st = fleet__shape_dim(fn, t->ndim, dim, &d)) != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(0 <= start && start <= end && end <= t->shape[d], FLEET_ERR_INVALID_ARGUMENT,
                    "%s: [%lld, %lld) outside dimension %d of size %lld", fn, (long long)start,
                    (long long)end, d, (long long)t->shape[d]);
    fleet_tensor v = *t;
    v.shape[d] = end - start;
    v.offset += start * t->strides[d];
    return publish_view(t, &v, fn, out);
}
