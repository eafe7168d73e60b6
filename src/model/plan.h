/* model/plan.h — a model compiled for one batch size.
 *
 * The compiler fixes every value's shape, decides which values are views
 * (permute, slice, expand, reshape of a contiguous value: where their
 * readers take the layout) and which own memory, fuses a
 * ReLU into the biased linear that is its only producer and reader (one
 * GEMM launch with cuBLASLt's RELU_BIAS epilogue), orders the
 * steps, and packs the values that own memory into one arena: each gets a
 * byte offset, and two values share bytes only when their lifetimes (from the
 * step that writes them to the last step that reads them) do not overlap.
 * A plan is immutable once published and shared by every thread. */
#ifndef FLEET_MODEL_PLAN_H
#define FLEET_MODEL_PLAN_H

#include "core/env.h"
#include "model/graph.h"
#include "tensor/tensor.h"

#define FLEET__ARENA_ALIGN 256

typedef enum fleet__step_kind {
    FLEET__STEP_NODE, /* run node `node` into value `out`                  */
    FLEET__STEP_COPY, /* a view node's value into its own memory           */
} fleet__step_kind;

typedef struct fleet__step {
    fleet__step_kind kind;
    int node;
    fleet_value out, src;
    bool relu;                  /* LINEAR: the ReLU that reads it, fused   */
    size_t ws_offset, ws_bytes; /* scratch in the arena (conv1d's columns) */
} fleet__step;

typedef struct fleet__plan {
    struct fleet__plan *next;     /* the model's list                      */
    fleet_model *model;
    int64_t batch;
    int n_values;
    /* Per value: a tensor header with dtype, shape, strides and the offset
     * (elements) from its base; storage filled in per instance. */
    fleet_tensor *tmpl;
    int *base;                    /* -1: the arena; else a weight index    */
    bool *needed;                 /* read by a step or an output           */
    fleet__step *steps;
    int n_steps;
    size_t arena_bytes;
    /* Instances by stream id; guarded by the graph cache's lock. */
    struct fleet__instance *instances[FLEET__MAX_STREAMS];
} fleet__plan;

/* The view of src that a PERMUTE, SLICE, EXPAND or RESHAPE node makes,
 * into *view: src's storage, dtype and base, the node's value's ndim and
 * shape, strides and offset moved as the node says. False (no view) for a
 * RESHAPE of a src that is not contiguous, or another kind of node. The
 * plan makes its views with it, the COPY steps of a view their readers
 * cannot take read their source through it (model/run.c). */
bool fleet__node_view(const fleet__node *n, const fleet_tensor *src, int ndim,
                      const int64_t *shape, fleet_tensor *view);

/* The plan of `m` for `batch`: found without a lock, or compiled once under
 * the model's lock however many threads ask at once. */
fleet_status fleet__plan_get(fleet_model *m, int64_t batch, const fleet__plan **out);
/* Free every plan of a model (at destroy: no run may be in flight). */
void fleet__plans_free(fleet_model *m);

#endif /* FLEET_MODEL_PLAN_H */
