/* ops/ops.c — shape rules and dispatch of the minimal op set to the backend
 * of the tensors' device, on the calling thread's current stream. Every check
 * happens before anything is submitted, so a failed call changes nothing. */
#include <stdint.h>

#include "core/error.h"
#include "fleet/ops.h"
#include "runtime/device.h"
#include "tensor/tensor.h"

typedef struct op_call {
    const char *fn;
    struct fleet_device *device;
    void *stream; /* native */
} op_call;

/* First check of every op: each tensor non-NULL, fleet and device usable. */
static fleet_status enter_all(const char *fn, const fleet_tensor *const *ts,
                              const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        fleet_status st = fleet__enter_tensor(ts[i], fn, names[i]);
        if (st != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

/* After an op's shape rules: one device, one dtype that the op supports,
 * contiguous; then the caller's stream. Submits nothing. */
static fleet_status op_begin(op_call *call, const char *fn, const fleet_tensor *const *ts,
                             const char *const *names, int n)
{
    call->fn = fn;
    for (int i = 1; i < n; i++)
        if (ts[i]->device != ts[0]->device)
            return fleet__error(FLEET_ERR_INVALID_DEVICE, "%s: %s is on %s, %s on %s", fn,
                                names[0], ts[0]->device->name, names[i], ts[i]->device->name);
    for (int i = 0; i < n; i++) {
        if (ts[i]->dtype != ts[0]->dtype)
            return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: %s is %s, %s is %s", fn, names[0],
                                fleet_dtype_name(ts[0]->dtype), names[i],
                                fleet_dtype_name(ts[i]->dtype));
        if (!fleet_tensor_is_contiguous(ts[i]))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: %s is not contiguous", fn, names[i]);
    }
    if (ts[0]->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "%s: %s tensors are not supported yet (f32 only)",
                            fn, fleet_dtype_name(ts[0]->dtype));
    call->device = ts[0]->device;
    fleet_stream *s;
    fleet_status st = fleet__stream_current(call->device, &s);
    if (st == FLEET_OK)
        st = fleet__stream_native(s, &call->stream);
    return st;
}

static fleet_status shape_error(const char *fn, const char *what, const fleet_tensor *x,
                                const char *xn, const fleet_tensor *y, const char *yn)
{
    char a[96], b[96];
    return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: %s: %s is %s, %s is %s", fn, what, xn,
                        fleet__shape_str(x, a, sizeof a), yn, fleet__shape_str(y, b, sizeof b));
}

static bool same_shape(const fleet_tensor *x, const fleet_tensor *y)
{
    if (x->ndim != y->ndim)
        return false;
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] != y->shape[i])
            return false;
    return true;
}

static bool overlaps(const fleet_tensor *x, const fleet_tensor *y)
{
    const char *xa = fleet_tensor_data(x), *ya = fleet_tensor_data(y);
    size_t xn = fleet_tensor_nbytes(x), yn = fleet_tensor_nbytes(y);
    if (xa == NULL || ya == NULL)
        return false;
    return (uintptr_t)xa < (uintptr_t)ya + yn && (uintptr_t)ya < (uintptr_t)xa + xn;
}

fleet_status fleet_matmul(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    static const char fn[] = "fleet_matmul";
    const fleet_tensor *ts[] = {a, b, out};
    static const char *const names[] = {"a", "b", "out"};
    op_call call;
    fleet_status st = enter_all(fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    if (a->ndim != 2 || b->ndim != 2 || out->ndim != 2)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: 2-D tensors expected, got a %d-D, b %d-D, out %d-D", fn, a->ndim,
                            b->ndim, out->ndim);
    if (a->shape[1] != b->shape[0])
        return shape_error(fn, "inner dimensions differ", a, "a", b, "b");
    if (out->shape[0] != a->shape[0] || out->shape[1] != b->shape[1])
        return shape_error(fn, "out must be a.rows x b.cols", out, "out", a, "a");
    st = op_begin(&call, fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    if (overlaps(out, a) || overlaps(out, b))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps an input", fn);
    fleet__gemm_args g = {
        .dtype = a->dtype,
        .m = a->shape[0], .n = b->shape[1], .k = a->shape[1],
        .a = fleet_tensor_data(a), .lda = a->shape[1] > 0 ? a->shape[1] : 1,
        .b = fleet_tensor_data(b), .ldb = b->shape[1] > 0 ? b->shape[1] : 1,
        .c = fleet_tensor_data(out), .ldc = out->shape[1] > 0 ? out->shape[1] : 1,
        .alpha = 1.0f, .beta = 0.0f,
    };
    return call.device->backend->gemm(call.stream, &g);
}

fleet_status fleet_add(const fleet_tensor *a, const fleet_tensor *b, fleet_tensor *out)
{
    static const char fn[] = "fleet_add";
    const fleet_tensor *ts[] = {a, b, out};
    static const char *const names[] = {"a", "b", "out"};
    op_call call;
    fleet_status st = enter_all(fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    int64_t n = fleet_tensor_numel(a);
    int64_t period;
    if (same_shape(a, b))
        period = n;
    else if (b->ndim == 1 && a->ndim >= 1 && b->shape[0] == a->shape[a->ndim - 1])
        period = b->shape[0];
    else
        return shape_error(fn, "b must have a's shape or be 1-D of a's last dimension", a, "a", b, "b");
    if (!same_shape(a, out))
        return shape_error(fn, "out must have a's shape", out, "out", a, "a");
    st = op_begin(&call, fn, ts, names, 3);
    if (st != FLEET_OK)
        return st;
    if ((out != a && overlaps(out, a)) || (out != b && overlaps(out, b)))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: out partly overlaps an input (out may be a or b itself)", fn);
    if (period == 0)
        return FLEET_OK; /* empty */
    fleet__binary_args args = {
        .op = FLEET__BINARY_ADD, .dtype = a->dtype, .n = n, .b_period = period,
        .a = fleet_tensor_data(a), .b = fleet_tensor_data(b), .out = fleet_tensor_data(out),
    };
    return call.device->backend->binary(call.stream, &args);
}

fleet_status fleet_relu(const fleet_tensor *x, fleet_tensor *out)
{
    static const char fn[] = "fleet_relu";
    const fleet_tensor *ts[] = {x, out};
    static const char *const names[] = {"x", "out"};
    op_call call;
    fleet_status st = enter_all(fn, ts, names, 2);
    if (st != FLEET_OK)
        return st;
    if (!same_shape(x, out))
        return shape_error(fn, "out must have x's shape", out, "out", x, "x");
    st = op_begin(&call, fn, ts, names, 2);
    if (st != FLEET_OK)
        return st;
    if (out != x && overlaps(out, x))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: out overlaps x (out may only be x itself)", fn);
    fleet__unary_args args = {
        .op = FLEET__UNARY_RELU, .dtype = x->dtype, .n = fleet_tensor_numel(x),
        .x = fleet_tensor_data(x), .out = fleet_tensor_data(out),
    };
    return call.device->backend->unary(call.stream, &args);
}
