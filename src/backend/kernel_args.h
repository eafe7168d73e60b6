/* backend/kernel_args.h — arguments of backend kernels, C types only, so the
 * .cu files can include them too. */
#ifndef FLEET_BACKEND_KERNEL_ARGS_H
#define FLEET_BACKEND_KERNEL_ARGS_H

#include <stdint.h>

#define FLEET__VIEW_MAX_DIMS 8

/* A strided view of device memory: element (i0, .., in) is at
 * data + sum(ik * strides[k]) elements. A stride of 0 repeats the element
 * along that dimension (broadcasting). */
typedef struct fleet__view {
    void *data;
    int ndim;
    int64_t shape[FLEET__VIEW_MAX_DIMS];
    int64_t strides[FLEET__VIEW_MAX_DIMS];
} fleet__view;

/* Elementwise operations: unary ones read `a`, binary ones `a` and `b`,
 * WHERE also `c`. COPY is the identity (contiguous copies, concatenation)
 * and works on every dtype; CAST converts a to out's dtype. */
typedef enum fleet__ew_op {
    FLEET__EW_COPY = 0,
    FLEET__EW_RELU,
    FLEET__EW_GELU,       /* exact: x/2 (1 + erf(x/sqrt 2))              */
    FLEET__EW_SILU,       /* x sigmoid(x)                                  */
    FLEET__EW_TANH,
    FLEET__EW_SIGMOID,
    FLEET__EW_ERF,
    FLEET__EW_EXP,
    FLEET__EW_LOG,
    FLEET__EW_SQRT,
    FLEET__EW_NEG,
    FLEET__EW_ABS,
    FLEET__EW_RECIPROCAL, /* 1 / x                                         */
    FLEET__EW_GELU_TANH,  /* x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    FLEET__EW_LEAKY_RELU, /* x >= 0 ? x : alpha x                          */
    FLEET__EW_CLIP,       /* min(max(x, alpha), beta)                      */
    FLEET__EW_CAST,       /* a in out's dtype (float to integer truncates, *
                           * NaN and out-of-range values saturate; to bool:
                           * x != 0)                                       */
    FLEET__EW_ADD,        /* first binary op */
    FLEET__EW_SUB,
    FLEET__EW_MUL,
    FLEET__EW_DIV,
    FLEET__EW_POW,
    FLEET__EW_MAX,
    FLEET__EW_MIN,
    FLEET__EW_EQUAL,      /* comparisons: out is bool */
    FLEET__EW_LESS,
    FLEET__EW_LESS_EQUAL,
    FLEET__EW_GREATER,
    FLEET__EW_GREATER_EQUAL,
    FLEET__EW_WHERE,      /* out = c ? a : b, c bool */
    FLEET__EW_COUNT_,
} fleet__ew_op;

/* How many inputs op reads: 1, 2 or 3. */
static inline int fleet__ew_arity(fleet__ew_op op)
{
    return op == FLEET__EW_WHERE ? 3 : op >= FLEET__EW_ADD ? 2 : 1;
}

static inline int fleet__ew_is_compare(fleet__ew_op op)
{
    return op >= FLEET__EW_EQUAL && op <= FLEET__EW_GREATER_EQUAL;
}

/* The ops that also take integers (i32, i64: exact, wrapping on overflow;
 * DIV truncates toward zero, and gives 0 for a divisor of 0, where C would
 * not be defined): what index arithmetic in exported graphs uses. */
static inline int fleet__ew_takes_integers(fleet__ew_op op)
{
    return op == FLEET__EW_NEG || op == FLEET__EW_ABS ||
           (op >= FLEET__EW_ADD && op <= FLEET__EW_DIV) || op == FLEET__EW_MAX ||
           op == FLEET__EW_MIN || fleet__ew_is_compare(op);
}

/* out[i] = op(a[i]), op(a[i], b[i]) or c[i] ? a[i] : b[i] over out's
 * shape; a, b and c have out's shape (ndim and sizes), broadcasting through
 * zero strides. dtype (a fleet_dtype) is a's and b's; out_dtype is out's:
 * dtype except for CAST (any) and comparisons (FLEET_DTYPE_BOOL); c is
 * bool. alpha and beta are LEAKY_RELU's and CLIP's parameters. Dimensions
 * have been coalesced where all views allow, so ndim is small for the
 * common cases. */
typedef struct fleet__elementwise_args {
    int op;        /* fleet__ew_op */
    int dtype;     /* fleet_dtype  */
    int out_dtype;
    float alpha, beta;
    fleet__view out, a, b, c;
} fleet__elementwise_args;

/* Several device-to-device copies in one launch (the batcher's gather and
 * scatter): segment i copies bytes[i] from src[i] to dst[i]. */
#define FLEET__SEGMENTS_MAX 64
typedef struct fleet__segments_args {
    int n;
    void *dst[FLEET__SEGMENTS_MAX];
    const void *src[FLEET__SEGMENTS_MAX];
    uint64_t bytes[FLEET__SEGMENTS_MAX];
} fleet__segments_args;

/* Row ops: each "row" is the n elements along one dimension of x. SOFTMAX,
 * LOG_SOFTMAX and LAYER_NORM write n elements per row into out; SUM, MEAN
 * and MAX one. */
typedef enum fleet__row_op {
    FLEET__ROW_SOFTMAX = 0, /* exp(x - max) / sum exp(x - max)              */
    FLEET__ROW_LAYER_NORM,  /* (x - mean) / sqrt(var + eps) * gamma + beta  */
    FLEET__ROW_SUM,
    FLEET__ROW_MEAN,        /* n == 0 gives NaN (0/0), as torch             */
    FLEET__ROW_MAX,         /* NaN if any element is; n == 0 gives -inf     */
    FLEET__ROW_LOG_SOFTMAX, /* x - max - log(sum exp(x - max)): n per row   */
} fleet__row_op;

/* x and out are views of the row starts: one element per row, shape of the
 * other dimensions (the same in both, coalesced). Along a row, element i of
 * x is at i * x_stride from its start, of out at i * out_stride (unused by
 * SUM/MEAN). gamma/beta (LAYER_NORM only) hold n elements at gamma_stride /
 * beta_stride, or are NULL for 1 / 0. Every tensor has `dtype`. */
typedef struct fleet__rowwise_args {
    int op;    /* fleet__row_op */
    int dtype; /* fleet_dtype   */
    int64_t n;
    int64_t x_stride, out_stride;
    fleet__view x, out;
    const void *gamma, *beta;
    int64_t gamma_stride, beta_stride;
    float eps;
} fleet__rowwise_args;

/* A range: out[i] = start + i * delta for i < n, out contiguous, dtype
 * FLEET_DTYPE_F32 (from fstart, fdelta) or _I32/_I64 (from istart,
 * idelta: exact, wrapping). ONNX's Range over a batch-sized length. */
typedef struct fleet__range_args {
    void *out;
    int dtype; /* fleet_dtype */
    int64_t n;
    int64_t istart, idelta;
    double fstart, fdelta;
} fleet__range_args;

/* Gather along one dimension: x seen as [outer, v, inner], out as [outer,
 * n, inner], both contiguous: out[o, r, :] = x[o, indices[r], :], elements
 * of elem_size bytes (any dtype). An index outside [0, v) — after adding v
 * to a negative one when wrap_negative (ONNX's Gather) — writes zeros and
 * reads nothing (the embedding's padding rows). index_dtype is
 * FLEET_DTYPE_I32 or _I64. */
typedef struct fleet__gather_args {
    const void *x;
    const void *indices;
    int index_dtype;    /* fleet_dtype */
    int wrap_negative;
    int64_t outer, v, inner, n;
    int64_t elem_size;
    void *out;
} fleet__gather_args;

/* Geometry of a 2-D convolution (a 1-D one has h = kh = 1, sh = dh = 1,
 * ph = 0): x [n, c, h, w] -> out [n, cout, oh, ow], weight [cout, c, kh, kw],
 * oh = (h + 2 ph - dh (kh - 1) - 1) / sh + 1, likewise ow. */
typedef struct fleet__conv_geom {
    int64_t n, c, h, w, cout, kh, kw;
    int64_t sh, sw, ph, pw, dh, dw;
    int64_t oh, ow;
} fleet__conv_geom;

/* im2col of geom.n images (contiguous x) into cols [n, c*kh*kw, oh*ow]:
 * cols[b][(ci*kh + i)*kw + j][oy*ow + ox] = x[b, ci, oy*sh - ph + i*dh,
 * ox*sw - pw + j*dw], 0 where that falls in the padding. dtype f32. */
typedef struct fleet__im2col_args {
    int dtype; /* fleet_dtype */
    fleet__conv_geom g;
    const void *x;
    int64_t x_image_stride; /* elements from one image of x to the next (a
                             * group's channels of a wider tensor); 0: c*h*w */
    void *cols;
} fleet__im2col_args;

/* 2-D max or average pooling of contiguous x [n, c, h, w] into contiguous
 * out [n, c, oh, ow]: window (oy, ox) covers rows oy*sh - ph + i*dh (i <
 * kh) and likewise columns; positions outside x are skipped (max: -inf;
 * avg: not counted, or, with count_include_pad, counted up to the padded
 * extent ph_end/pw_end, as PyTorch). A window with no position inside x
 * gives -inf (max) or 0 (avg). f32. */
typedef enum fleet__pool_op { FLEET__POOL_MAX = 0, FLEET__POOL_AVG } fleet__pool_op;

typedef struct fleet__pool_args {
    int op;    /* fleet__pool_op */
    int dtype; /* fleet_dtype   */
    int64_t n, c, h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw, ph_end, pw_end, dh, dw;
    int count_include_pad;
    const void *x;
    void *out;
} fleet__pool_args;

#endif /* FLEET_BACKEND_KERNEL_ARGS_H */
