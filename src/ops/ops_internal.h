/* ops/ops_internal.h — what every op shares: argument checks in a fixed
 * order (handles, shapes, then device/dtype/layout), error texts, and the
 * caller's native stream. */
#ifndef FLEET_OPS_INTERNAL_H
#define FLEET_OPS_INTERNAL_H

#include <stdbool.h>

#include "backend/kernel_args.h"
#include "fleet/ops.h"
#include "runtime/device.h"
#include "runtime/dispatch.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"

typedef struct fleet__op_call {
    const char *fn;
    struct fleet_device *device;
    void *stream; /* native stream of the caller's current stream */
} fleet__op_call;

/* What fleet__op_begin requires of the tensors. */
enum {
    FLEET__OP_CONTIGUOUS = 1u << 0, /* every tensor contiguous            */
    FLEET__OP_HALF_ON_CUDA = 1u << 1, /* f16/bf16 allowed on cuda devices */
};

/* First check of every op: each tensor non-NULL, not stale, fleet and
 * device usable; resolves ts[] in place (fleet__enter_tensor). A public op
 * works on the resolved pointers from then on. */
fleet_status fleet__op_enter_all(const char *fn, const fleet_tensor **ts,
                                 const char *const *names, int n);

/* After an op's shape rules: one device, one dtype the op supports (f32;
 * f16/bf16 on cuda with FLEET__OP_HALF_ON_CUDA), layout per `flags`; then
 * the caller's stream. Submits nothing. */
fleet_status fleet__op_begin(fleet__op_call *call, const char *fn, const fleet_tensor *const *ts,
                             const char *const *names, int n, unsigned flags);

/* FLEET_ERR_SHAPE_MISMATCH: "fn: what: x is 4x3, y is 5x2" (fleet__shape_refuse
 * over two tensors; the shape rules themselves are in tensor/shape.h). */
fleet_status fleet__op_shape_error(const char *fn, const char *what, const fleet_tensor *x,
                                   const char *xn, const fleet_tensor *y, const char *yn);

bool fleet__same_shape(const fleet_tensor *x, const fleet_tensor *y);

/* Whether the memory spans of two tensors intersect (bounds of their
 * strided extents; conservative for interleaved views). */
bool fleet__overlaps(const fleet_tensor *x, const fleet_tensor *y);

/* The same element layout: an op that reads each element (or row) before
 * writing it may run in place on such a view; any other overlap is unsafe. */
bool fleet__same_view(const fleet_tensor *x, const fleet_tensor *y);

/* The in-place rule of ops that read each element (or row) before writing
 * it: out may be x itself (the same view) or apart from it; anything else
 * (a partial overlap, or x's memory in another layout, like a transpose of
 * x) is FLEET_ERR_INVALID_ARGUMENT, with text naming which. */
fleet_status fleet__check_in_place(const char *fn, const fleet_tensor *out, const fleet_tensor *x,
                                   const char *xn);

/* FLEET_ERR_INVALID_ARGUMENT if out's strides make two elements share
 * memory (a zero stride on a dimension longer than 1). */
fleet_status fleet__out_distinct(const char *fn, const fleet_tensor *out);

/* Views of one shape (vs[0]'s): drop size-1 dimensions and merge adjacent
 * dimensions that every view steps through as one run, in place. At least
 * one dimension remains (a single element is shape {1}). */
void fleet__view_coalesce(fleet__view *const *vs, int nv);

/* out[..., M, N] = alpha * a[..., M, K] @ b[..., K, N] (+ bias[N]) with the
 * rules of fleet_matmul (ops/matmul.c); handles already checked non-NULL
 * and usable. `fn` names the public function for errors. */
fleet_status fleet__matmul(const char *fn, const fleet_tensor *a, const fleet_tensor *b,
                           const fleet_tensor *bias, float alpha, bool relu, fleet_tensor *out);
/* y = relu(x @ weight^T + bias), bias required: the ReLU fused into the GEMM
 * where the backend can (cuBLASLt's RELU_BIAS epilogue, the cpu GEMM task),
 * else applied by a second op. For the model runtime's compiler. */
fleet_status fleet__linear_relu(const fleet_tensor *x, const fleet_tensor *weight,
                                const fleet_tensor *bias, fleet_tensor *y);

/* fleet_conv1d with caller-provided scratch for its columns (the model
 * runtime plans it in the arena: nothing is allocated while a CUDA graph is
 * captured), and the scratch it needs for these shapes. */
fleet_status fleet__conv1d_ws(const fleet_tensor *x, const fleet_tensor *weight,
                              const fleet_tensor *bias, int64_t stride, int64_t padding,
                              int64_t dilation, void *ws, size_t ws_bytes, fleet_tensor *out);
size_t fleet__conv1d_workspace_bytes(const fleet_tensor *x, const fleet_tensor *w,
                                     const fleet_tensor *out);

#endif /* FLEET_OPS_INTERNAL_H */
