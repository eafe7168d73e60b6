/* model/graph.h — the graph IR shared by the builder, the compiler and the
 * executor.
 *
 * A model is a list of values and a list of nodes in definition order (a node
 * only reads values defined before it, so the order is topological). A value
 * is an input, a weight, or the output of one node. Shapes may hold
 * FLEET_DIM_BATCH; the compiler substitutes the batch size of a run. */
#ifndef FLEET_MODEL_GRAPH_H
#define FLEET_MODEL_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/atomic.h"
#include "core/lock.h"
#include "fleet/model.h"
#include "fleet/ops.h"
#include "model/run.h"
#include "ops/ops_internal.h"

typedef enum fleet__node_op {
    FLEET__NODE_LINEAR,      /* in: x, weight, bias (FLEET_NO_VALUE: none)      */
    FLEET__NODE_MATMUL,      /* in: a, b; attr.alpha                             */
    FLEET__NODE_ELEMENTWISE, /* in: x; a, b; or cond, a, b (WHERE); attr.ew      */
    FLEET__NODE_ROWWISE,     /* in: x; attr.row: softmax and log-softmax keep x's
                              * shape, sum, mean and max reduce dim           */
    FLEET__NODE_LAYER_NORM,  /* in: x, gamma, beta; attr.eps                     */
    FLEET__NODE_CONV,        /* in: x, weight, bias; attr.conv                   */
    FLEET__NODE_POOL,        /* in: x; attr.pool                                 */
    FLEET__NODE_GATHER,      /* in: x, indices; attr.gather                      */
    FLEET__NODE_CONCAT,      /* in: the parts; attr.dim                          */
    FLEET__NODE_RESHAPE,     /* in: x; a view, or a copy where it must be        */
    FLEET__NODE_PERMUTE,     /* in: x; attr.perm                                 */
    FLEET__NODE_SLICE,       /* in: x; attr.slice                                */
    FLEET__NODE_EXPAND,      /* in: x, broadcast to the value's shape            */
    FLEET__NODE_RANGE,       /* no inputs: attr.range                            */
    FLEET__NODE_KINDS_,
} fleet__node_op;
/* PERMUTE, SLICE and EXPAND are views of their input (strides moved, an
 * offset, zero strides), RESHAPE one when its input is contiguous; the
 * compiler copies one into its own memory where a reader needs another
 * layout (model/plan.c). */
static inline bool fleet__node_is_view(fleet__node_op op)
{
    return op == FLEET__NODE_RESHAPE || op == FLEET__NODE_PERMUTE || op == FLEET__NODE_SLICE ||
           op == FLEET__NODE_EXPAND;
}

typedef enum fleet__value_kind {
    FLEET__VALUE_INPUT,
    FLEET__VALUE_WEIGHT,
    FLEET__VALUE_NODE,
} fleet__value_kind;

typedef struct fleet__value {
    fleet__value_kind kind;
    int index;                       /* into inputs, weights or nodes      */
    fleet_dtype dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];   /* FLEET_DIM_BATCH allowed            */
} fleet__value;

/* Inputs a node holds; a longer concatenation is a tree of them. */
#define FLEET__NODE_MAX_IN 8

typedef struct fleet__node {
    fleet__node_op op;
    int n_in;
    fleet_value in[FLEET__NODE_MAX_IN];
    fleet_value out;
    union {
        float alpha;                  /* MATMUL                                  */
        struct {
            fleet__ew_op op;          /* out's dtype is the value's              */
            float alpha, beta;
        } ew;                         /* ELEMENTWISE                             */
        struct {
            fleet__row_op op;
            int dim;                  /* normalised, >= 0                        */
            bool keepdim;
        } row;                        /* ROWWISE                                 */
        float eps;                    /* LAYER_NORM                              */
        fleet__conv_params conv;      /* CONV                                    */
        struct {
            fleet__pool_op op;
            fleet_pool2d_params p;
        } pool;                       /* POOL                                    */
        struct {
            int axis;                 /* normalised                              */
            bool wrap_negative;
        } gather;                     /* GATHER                                  */
        int dim;                      /* CONCAT (normalised)                     */
        int perm[FLEET_MAX_DIMS];     /* PERMUTE                                 */
        struct {
            int64_t start[FLEET_MAX_DIMS], step[FLEET_MAX_DIMS]; /* per dim of x */
        } slice;                      /* SLICE                                   */
        struct {
            double start, delta;      /* exact integers for an integer dtype     */
        } range;                      /* RANGE                                   */
    } attr;
} fleet__node;

typedef struct fleet__named {
    char *name;
    fleet_value value;
} fleet__named;

typedef struct fleet__weight {
    char *name;
    fleet_value value;
    void *host;                      /* data given before finalize, or NULL */
    bool borrowed;                   /* host is the caller's (a file mapping) */
    size_t bytes;
    fleet_tensor *tensor;            /* device copy, after finalize        */
} fleet__weight;

struct fleet__plan;

struct fleet_model {
    fleet_device *device;
    uint64_t fork_generation;        /* the process it was created in       */
    bool finalized;

    fleet__value *values;
    int n_values, cap_values;
    fleet__node *nodes;
    int n_nodes, cap_nodes;
    fleet__weight *weights;
    int n_weights, cap_weights;
    fleet__named inputs[FLEET_MODEL_MAX_IO];
    int n_inputs;
    fleet__named outputs[FLEET_MODEL_MAX_IO];
    int n_outputs;
    size_t weight_bytes;

    /* Plans, one per batch size: a list published with release stores and
     * read without a lock; compiling appends under `lock` (rank 2). */
    fleet_atomic_ptr plans;
    fleet__mutex lock;

    fleet_atomic_u64 runs, compiles, n_plans, instances_created, graph_captures,
        graph_replays, eager_runs, evictions, fusions;
    fleet_atomic_u64 arena_bytes_max;
    uint64_t load_folded, load_fused;   /* set by the ONNX importer          */
};

/* The start every op builder shares: the model still building, out
 * non-NULL, each operand known (FLEET_NO_VALUE allowed where optional_mask
 * has its bit); vs[i] points at operand i's value (NULL where absent) until
 * the next node is added. */
fleet_status fleet__model_op_begin(fleet_model *m, const char *fn, fleet_value *out,
                                   const fleet_value *ids, int n, unsigned optional_mask,
                                   const fleet__value **vs);

/* Grow-and-append helpers of the builder, also used to lower composite ops. */
fleet_status fleet__model_add_node(fleet_model *m, const char *fn, const fleet__node *node,
                                   fleet_dtype dtype, int ndim, const int64_t *shape,
                                   fleet_value *out);
/* The value `v`, or NULL (with the error set, naming `fn`) when unknown. */
const fleet__value *fleet__model_value(const fleet_model *m, const char *fn, fleet_value v);

/* Bytes of a value with the batch dimension set to `batch` (no overflow
 * check: the caller bounds the shape first). */
size_t fleet__model_value_bytes(const fleet__value *v, int64_t batch);
/* Weight value v's data from the caller's memory, not copied: it must stay
 * valid until finalize returns (the ONNX importer's file mapping). */
fleet_status fleet__model_weight_borrow(fleet_model *m, fleet_value v, const void *data,
                                        size_t bytes);
/* Index of the weight called `name`, or -1. */
int fleet__model_find_weight(const fleet_model *m, const char *name);

/* fleet__model_enter, and the model not finalized yet (its graph and
 * weights can still change). */
fleet_status fleet__model_enter_building(fleet_model *m, const char *fn);

#endif /* FLEET_MODEL_GRAPH_H */
