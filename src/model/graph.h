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
#include "model/run.h"

typedef enum fleet__node_op {
    FLEET__NODE_LINEAR,     /* in: x, weight, bias (FLEET_NO_VALUE: none)   */
    FLEET__NODE_MATMUL,     /* in: a, b; attr alpha                          */
    FLEET__NODE_BINARY,     /* in: a, b; attr kind (fleet__binary_kind)      */
    FLEET__NODE_UNARY,      /* in: x; attr kind (fleet__unary_kind)          */
    FLEET__NODE_SOFTMAX,    /* in: x; attr dim (normalised, >= 0)            */
    FLEET__NODE_LAYER_NORM, /* in: x, gamma, beta; attr eps                  */
    FLEET__NODE_CONV1D,     /* in: x, weight, bias; attr stride/pad/dil      */
    FLEET__NODE_RESHAPE,    /* in: x; a view, or a copy where it must be     */
    FLEET__NODE_PERMUTE,    /* in: x; attr perm; always a view               */
} fleet__node_op;

typedef enum fleet__binary_kind { FLEET__ADD, FLEET__SUB, FLEET__MUL, FLEET__DIV } fleet__binary_kind;
typedef enum fleet__unary_kind {
    FLEET__RELU, FLEET__GELU, FLEET__SILU, FLEET__TANH, FLEET__SIGMOID
} fleet__unary_kind;

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

#define FLEET__NODE_MAX_IN 3

typedef struct fleet__node {
    fleet__node_op op;
    int n_in;
    fleet_value in[FLEET__NODE_MAX_IN];
    fleet_value out;
    union {
        float alpha;                  /* MATMUL                             */
        int kind;                     /* BINARY, UNARY                      */
        int dim;                      /* SOFTMAX                            */
        float eps;                    /* LAYER_NORM                         */
        struct {
            int64_t stride, pad, dil;
        } conv;                       /* CONV1D                             */
        int perm[FLEET_MAX_DIMS];     /* PERMUTE                            */
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
};

/* Grow-and-append helpers of the builder, also used to lower composite ops. */
fleet_status fleet__model_add_node(fleet_model *m, const char *fn, const fleet__node *node,
                                   fleet_dtype dtype, int ndim, const int64_t *shape,
                                   fleet_value *out);
/* The value `v`, or NULL (with the error set, naming `fn`) when unknown. */
const fleet__value *fleet__model_value(const fleet_model *m, const char *fn, fleet_value v);

/* Bytes of a value with the batch dimension set to `batch` (no overflow
 * check: the caller bounds the shape first). */
size_t fleet__model_value_bytes(const fleet__value *v, int64_t batch);
/* Index of the weight called `name`, or -1. */
int fleet__model_find_weight(const fleet_model *m, const char *name);

/* fleet__model_enter, and the model not finalized yet (its graph and
 * weights can still change). */
fleet_status fleet__model_enter_building(fleet_model *m, const char *fn);

#endif /* FLEET_MODEL_GRAPH_H */
