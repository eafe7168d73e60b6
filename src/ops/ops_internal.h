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

/* Where an op runs: the public function it serves (for error texts), the
 * device, the stream (the caller's current one, or a model instance's) and
 * its native handle. */
typedef struct fleet__op_call {
    const char *fn;
    struct fleet_device *device;
    struct fleet_stream *stream;
    void *native;
} fleet__op_call;

/* A call on `stream` (for fleet's own work: the model runtime, the
 * batcher): its device and native handle. */
fleet_status fleet__op_call_on(fleet__op_call *call, const char *fn, struct fleet_stream *stream);

/* What fleet__op_begin requires of the tensors. */
enum {
    FLEET__OP_CONTIGUOUS = 1u << 0, /* every tensor contiguous            */
    FLEET__OP_HALF_ON_CUDA = 1u << 1, /* f16/bf16 allowed on cuda devices */
    FLEET__OP_ANY_DTYPE = 1u << 2, /* dtypes differ and are the op's to check */
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

/* FLEET_OK, or FLEET_ERR_UNSUPPORTED when the op cannot take `dtype` on
 * `dev` (f32 everywhere; f16/bf16 on cuda with FLEET__OP_HALF_ON_CUDA). */
fleet_status fleet__op_dtype_supported(const char *fn, const struct fleet_device *dev,
                                       fleet_dtype dtype, unsigned flags);
/* The same for elementwise op `op` on values of `dtype`: the moves (COPY,
 * CAST, WHERE) take any dtype, the integer ops i32 and i64 too, the rest
 * as above (f16/bf16 on cuda). The one rule of the eager ops and the
 * builder. */
fleet_status fleet__op_ew_dtype_supported(const char *fn, const struct fleet_device *dev,
                                          fleet__ew_op op, fleet_dtype dtype);

/* ---- internal entries ---------------------------------------------------------
 * What a public op does once its arguments are proved — handles resolved to
 * structs, shapes by the op's rule, one device and dtype the op supports,
 * no output overlapping an input: lowering to kernel arguments, submission
 * on call->stream. They still refuse what only the layout decides (a GEMM
 * operand neither row- nor column-contiguous, a backend without the
 * kernel), naming call->fn. A public op checks, then calls its entry; a
 * model's compiled steps call the entries directly, since the builder
 * proved the shapes and dtypes and the plan the rest (model/plan.c). */

/* The elementwise ops that are one public function each, eager (fleet_<name>,
 * ops/elementwise.c) and in the builder (fleet_model_<name>,
 * model/graph_ops.c): X(name, op). */
#define FLEET__EW_UNARY_OPS(X) \
    X(relu, FLEET__EW_RELU) \
    X(gelu, FLEET__EW_GELU) \
    X(gelu_tanh, FLEET__EW_GELU_TANH) \
    X(silu, FLEET__EW_SILU) \
    X(tanh, FLEET__EW_TANH) \
    X(sigmoid, FLEET__EW_SIGMOID) \
    X(erf, FLEET__EW_ERF) \
    X(exp, FLEET__EW_EXP) \
    X(log, FLEET__EW_LOG) \
    X(sqrt, FLEET__EW_SQRT) \
    X(neg, FLEET__EW_NEG) \
    X(abs, FLEET__EW_ABS) \
    X(reciprocal, FLEET__EW_RECIPROCAL)
#define FLEET__EW_BINARY_OPS(X) \
    X(add, FLEET__EW_ADD) \
    X(sub, FLEET__EW_SUB) \
    X(mul, FLEET__EW_MUL) \
    X(div, FLEET__EW_DIV) \
    X(pow, FLEET__EW_POW) \
    X(maximum, FLEET__EW_MAX) \
    X(minimum, FLEET__EW_MIN) \
    X(equal, FLEET__EW_EQUAL) \
    X(less, FLEET__EW_LESS) \
    X(less_equal, FLEET__EW_LESS_EQUAL) \
    X(greater, FLEET__EW_GREATER) \
    X(greater_equal, FLEET__EW_GREATER_EQUAL)

/* out = op(a), op(a, b) or c ? a : b (WHERE), with LEAKY_RELU's or CLIP's
 * alpha and beta; a's dtype is the values', out's is the result's. */
fleet_status fleet__op_elementwise_ex(const fleet__op_call *call, fleet__ew_op op,
                                      const fleet_tensor *a, const fleet_tensor *b,
                                      const fleet_tensor *c, float alpha, float beta,
                                      fleet_tensor *out);
static inline fleet_status fleet__op_elementwise(const fleet__op_call *call, fleet__ew_op op,
                                                 const fleet_tensor *a, const fleet_tensor *b,
                                                 fleet_tensor *out)
{
    return fleet__op_elementwise_ex(call, op, a, b, NULL, 0.0f, 0.0f, out);
}
/* out[..., M, N] = alpha * a[..., M, K] @ b[..., K, N] (+ bias[N]; relu:
 * then max(0, .), or FLEET_ERR_UNSUPPORTED with nothing launched where the
 * backend cannot fuse it). */
/* Whether t can be a GEMM operand as it is: its last two dimensions rows
 * or columns of unit stride (a 1-D t: contiguous). */
bool fleet__gemm_operand_ok(const fleet_tensor *t);
fleet_status fleet__op_matmul(const fleet__op_call *call, const fleet_tensor *a,
                              const fleet_tensor *b, const fleet_tensor *bias, float alpha,
                              bool relu, fleet_tensor *out);
/* y = x @ weight^T (+ bias), relu (with a bias) fused where the backend can,
 * else applied by a second kernel. */
fleet_status fleet__op_linear(const fleet__op_call *call, const fleet_tensor *x,
                              const fleet_tensor *weight, const fleet_tensor *bias, bool relu,
                              fleet_tensor *y);
/* dim normalised (>= 0). */
fleet_status fleet__op_softmax(const fleet__op_call *call, const fleet_tensor *x, int dim,
                               fleet_tensor *out);
fleet_status fleet__op_log_softmax(const fleet__op_call *call, const fleet_tensor *x, int dim,
                                   fleet_tensor *out);
fleet_status fleet__op_layer_norm(const fleet__op_call *call, const fleet_tensor *x,
                                  const fleet_tensor *gamma, const fleet_tensor *beta, float eps,
                                  fleet_tensor *out);
fleet_status fleet__op_reduce(const fleet__op_call *call, fleet__row_op op, const fleet_tensor *x,
                              int dim, bool keepdim, fleet_tensor *out);
/* A convolution's geometry: sp (1 or 2) spatial dimensions, stride,
 * padding before (the padding after shows in out's size) and dilation with
 * sp entries; groups divide the channels (weight is [Cout, Cin/groups, ...]). */
typedef struct fleet__conv_params {
    int sp;
    int64_t stride[2], pad[2], dil[2];
    int64_t groups;
} fleet__conv_params;

/* Every tensor contiguous. ws: NULL to take the columns from the caching
 * allocator on call->stream, or caller scratch of ws_bytes >= what
 * fleet__conv_workspace_bytes asks (the model runtime plans it in the arena:
 * nothing is allocated while a CUDA graph is captured). */
fleet_status fleet__op_conv(const fleet__op_call *call, const fleet__conv_params *p,
                            const fleet_tensor *x, const fleet_tensor *w, const fleet_tensor *bias,
                            void *ws, size_t ws_bytes, fleet_tensor *out);
size_t fleet__conv_workspace_bytes(const fleet__conv_params *p, const fleet_tensor *x,
                                   const fleet_tensor *w, const fleet_tensor *out);

/* Along `axis` of x (contiguous), i32 or i64 indices; negative ones count
 * from the end with wrap_negative (ONNX), else fall outside (embedding). */
fleet_status fleet__op_gather(const fleet__op_call *call, const fleet_tensor *x,
                              const fleet_tensor *indices, int axis, bool wrap_negative,
                              fleet_tensor *out);
/* out (1-D, contiguous; f32, i32 or i64) = start + i * delta. */
fleet_status fleet__op_range(const fleet__op_call *call, double start, double delta,
                             fleet_tensor *out);
/* inputs joined along d (normalised) into out, one copy each into its
 * slice of out; any layouts. */
fleet_status fleet__op_concat(const fleet__op_call *call, const fleet_tensor *const *inputs, int n,
                              int d, fleet_tensor *out);
fleet_status fleet__op_pool(const fleet__op_call *call, fleet__pool_op op,
                            const fleet_pool2d_params *p, const fleet_tensor *x,
                            fleet_tensor *out);

/* ---- many copies, batched (ops/copies.c) ------------------------------------------
 * src and dst of one shape and dtype on call's device (checked by the
 * caller); add queues or copies, flush sends what is queued. The queued
 * copies read their tensors when they run, as any op's. */
typedef struct fleet__copy_list {
    fleet__op_call call;
    fleet__segments_args segments;
} fleet__copy_list;

void fleet__copy_list_begin(fleet__copy_list *l, const fleet__op_call *call);
fleet_status fleet__copy_list_add(fleet__copy_list *l, const fleet_tensor *src, fleet_tensor *dst);
fleet_status fleet__copy_list_flush(fleet__copy_list *l);

#endif /* FLEET_OPS_INTERNAL_H */
