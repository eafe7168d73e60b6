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

/* Elementwise operations: unary ones read `a`, binary ones `a` and `b`.
 * COPY is the identity (contiguous copies, concatenation). */
typedef enum fleet__ew_op {
    FLEET__EW_COPY = 0,
    FLEET__EW_RELU,
    FLEET__EW_GELU,     /* exact: x/2 (1 + erf(x/sqrt 2))  */
    FLEET__EW_SILU,     /* x sigmoid(x)                      */
    FLEET__EW_TANH,
    FLEET__EW_SIGMOID,
    FLEET__EW_ADD,      /* first binary op */
    FLEET__EW_SUB,
    FLEET__EW_MUL,
    FLEET__EW_DIV,
    FLEET__EW_COUNT_,
} fleet__ew_op;

static inline int fleet__ew_is_binary(fleet__ew_op op)
{
    return op >= FLEET__EW_ADD;
}

/* out[i] = op(a[i]) or op(a[i], b[i]) over out's shape; a and b have out's
 * shape (ndim and sizes), broadcasting through zero strides. dtype is a
 * fleet_dtype; every view has it. Dimensions have been coalesced where all
 * views allow, so ndim is small for the common cases. */
typedef struct fleet__elementwise_args {
    int op;    /* fleet__ew_op */
    int dtype; /* fleet_dtype  */
    fleet__view out, a, b;
} fleet__elementwise_args;

#endif /* FLEET_BACKEND_KERNEL_ARGS_H */
