/* model/run.c — fleet_model_run: check the inputs, find the plan, take the
 * (plan, stream) instance, then copy the inputs in, run the steps and copy
 * the outputs out — on cuda as one CUDA graph launch that holds all three,
 * its copy nodes retargeted at each run's tensors. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "model/graph_cache.h"
#include "model/run.h"
#include "ops/ops_internal.h"

/* ---- one step ----------------------------------------------------------------------
 * Through the ops' internal entries (ops/ops_internal.h): the builder proved
 * each node's shapes and dtypes, the plan its devices, layouts and that no
 * step's output overlaps its inputs, so nothing is checked again here. */

/* A COPY step: the view its node makes of the source (any layout) into the
 * step's own memory. A reshape of a source that is not contiguous has no
 * view: its memory is then read as the source's shape. */
static fleet_status run_copy(const fleet__instance *in, const fleet__op_call *call,
                             const fleet__step *s)
{
    const fleet__node *n = &in->plan->model->nodes[s->node];
    const fleet_tensor *src = &in->t[s->src];
    fleet_tensor view, dst = in->t[s->out];
    if (!fleet__node_view(n, src, dst.ndim, dst.shape, &view)) {
        view = *src;
        fleet__tensor_set_shape(&dst, src->ndim, src->shape);
    }
    return fleet__op_elementwise(call, FLEET__EW_COPY, &view, NULL, &dst);
}

static fleet_status run_rowwise(const fleet__op_call *call, const fleet__node *n,
                                const fleet_tensor *x, fleet_tensor *out)
{
    switch (n->attr.row.op) {
    case FLEET__ROW_SOFTMAX:
        return fleet__op_softmax(call, x, n->attr.row.dim, out);
    case FLEET__ROW_LOG_SOFTMAX:
        return fleet__op_log_softmax(call, x, n->attr.row.dim, out);
    default:
        return fleet__op_reduce(call, n->attr.row.op, x, n->attr.row.dim, n->attr.row.keepdim,
                                out);
    }
}

static fleet_status run_node(const fleet__instance *in, const fleet__op_call *call,
                             const fleet__step *s)
{
    const fleet__node *n = &in->plan->model->nodes[s->node];
    const fleet_tensor *t[FLEET__NODE_MAX_IN] = {0};
    for (int k = 0; k < n->n_in; k++)
        t[k] = n->in[k] != FLEET_NO_VALUE ? &in->t[n->in[k]] : NULL;
    fleet_tensor *out = &in->t[s->out];
    switch (n->op) {
    case FLEET__NODE_LINEAR:
        return fleet__op_linear(call, t[0], t[1], t[2], s->relu, out);
    case FLEET__NODE_MATMUL:
        return fleet__op_matmul(call, t[0], t[1], NULL, n->attr.alpha, false, out);
    case FLEET__NODE_ELEMENTWISE:
        if (n->attr.ew.op == FLEET__EW_WHERE) /* in: cond, a, b */
            return fleet__op_elementwise_ex(call, FLEET__EW_WHERE, t[1], t[2], t[0], 0.0f, 0.0f,
                                            out);
        return fleet__op_elementwise_ex(call, n->attr.ew.op, t[0], t[1], NULL, n->attr.ew.alpha,
                                        n->attr.ew.beta, out);
    case FLEET__NODE_ROWWISE:
        return run_rowwise(call, n, t[0], out);
    case FLEET__NODE_LAYER_NORM:
        return fleet__op_layer_norm(call, t[0], t[1], t[2], n->attr.eps, out);
    case FLEET__NODE_CONV: {
        char *ws = (char *)fleet_tensor_data(in->arena) + s->ws_offset;
        return fleet__op_conv(call, &n->attr.conv, t[0], t[1], t[2], ws, s->ws_bytes, out);
    }
    case FLEET__NODE_POOL:
        return fleet__op_pool(call, n->attr.pool.op, &n->attr.pool.p, t[0], out);
    case FLEET__NODE_GATHER:
        return fleet__op_gather(call, t[0], t[1], n->attr.gather.axis,
                                n->attr.gather.wrap_negative, out);
    case FLEET__NODE_CONCAT:
        return fleet__op_concat(call, t, n->n_in, n->attr.dim, out);
    case FLEET__NODE_RANGE:
        return fleet__op_range(call, n->attr.range.start, n->attr.range.delta, out);
    default:
        break; /* views: no step (a materialised one is a COPY step) */
    }
    FLEET_ASSERT(!"a view node became a step");
    return FLEET_ERR_INTERNAL;
}

/* The ops' names in a failed step's text: "step 3: linear: ...". */
static const char *node_name(const fleet__node *n)
{
    static const char *const names[FLEET__NODE_KINDS_] = {
        [FLEET__NODE_LINEAR] = "linear", [FLEET__NODE_MATMUL] = "matmul",
        [FLEET__NODE_ELEMENTWISE] = "elementwise op", [FLEET__NODE_ROWWISE] = "row op",
        [FLEET__NODE_LAYER_NORM] = "layer_norm", [FLEET__NODE_CONV] = "convolution",
        [FLEET__NODE_POOL] = "pooling", [FLEET__NODE_GATHER] = "gather",
        [FLEET__NODE_CONCAT] = "concat", [FLEET__NODE_RESHAPE] = "reshape",
        [FLEET__NODE_PERMUTE] = "permute", [FLEET__NODE_SLICE] = "slice",
        [FLEET__NODE_EXPAND] = "expand", [FLEET__NODE_RANGE] = "range"};
    if (n->op == FLEET__NODE_ELEMENTWISE)
        return fleet__ew_name(n->attr.ew.op);
    return names[n->op];
}

static fleet_status run_steps(const fleet__instance *in, const fleet__op_call *call)
{
    const fleet__plan *p = in->plan;
    fleet__op_call step = *call;
    for (int i = 0; i < p->n_steps; i++) {
        const fleet__step *s = &p->steps[i];
        step.fn = node_name(&in->plan->model->nodes[s->node]);
        fleet_status st = s->kind == FLEET__STEP_COPY ? run_copy(in, &step, s)
                                                      : run_node(in, &step, s);
        if (st != FLEET_OK) {
            char where[32];
            snprintf(where, sizeof where, "step %d", i);
            return fleet__error_prefix(st, where);
        }
    }
    return FLEET_OK;
}

/* ---- run ---------------------------------------------------------------------------- */

/* Check inputs and outputs against the declarations and resolve their
 * handles into in[] and out[]; the batch size. */
static fleet_status check_io(const fleet_model *m, const char *fn,
                             const fleet_tensor *const *inputs, int n_inputs,
                             fleet_tensor *const *outputs, int n_outputs,
                             const fleet_tensor **in, fleet_tensor **out, int64_t *batch)
{
    FLEET_CHECK_ARG(m->finalized, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: finalize the model before running it", fn);
    FLEET_CHECK_ARG(n_inputs == m->n_inputs && n_outputs == m->n_outputs,
                    FLEET_ERR_INVALID_ARGUMENT,
                    "%s: the model takes %d inputs and %d outputs, got %d and %d", fn,
                    m->n_inputs, m->n_outputs, n_inputs, n_outputs);
    FLEET_CHECK_ARG((inputs != NULL || n_inputs == 0) && outputs != NULL,
                    FLEET_ERR_NULL_POINTER, "%s: inputs or outputs is NULL", fn);
    *batch = -1;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && *batch < 0)
            *batch = 1; /* no input has a batch dimension */
        int n = pass == 0 ? n_inputs : n_outputs;
        for (int i = 0; i < n; i++) {
            const fleet__named *io = pass == 0 ? &m->inputs[i] : &m->outputs[i];
            const fleet_tensor *t = pass == 0 ? inputs[i] : outputs[i];
            const char *what = pass == 0 ? "input" : "output";
            fleet_status st = fleet__enter_tensor(&t, fn, io->name);
            if (st != FLEET_OK)
                return st;
            if (pass == 0)
                in[i] = t;
            else
                out[i] = (fleet_tensor *)t;
            const fleet__value *v = &m->values[io->value];
            if (t->device != m->device)
                return fleet__error(FLEET_ERR_INVALID_DEVICE, "%s: %s '%s' is on %s, the model "
                                    "on %s", fn, what, io->name, t->device->name, m->device->name);
            if (t->dtype != v->dtype)
                return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: %s '%s' is %s, expected %s",
                                    fn, what, io->name, fleet_dtype_name(t->dtype),
                                    fleet_dtype_name(v->dtype));
            bool ok = t->ndim == v->ndim;
            for (int d = 0; ok && d < v->ndim; d++) {
                if (v->shape[d] >= 0)
                    ok = t->shape[d] == v->shape[d];
                else if (pass == 0 && *batch < 0) /* inputs hold FLEET_DIM_BATCH only */
                    *batch = t->shape[d];
                else
                    ok = t->shape[d] == fleet__dim_at(v->shape[d], *batch);
            }
            if (ok && pass == 0 && *batch == 0)
                return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                                    "%s: %s '%s' has batch 0: batch 0 is refused (a run needs at "
                                    "least one row)", fn, what, io->name);
            if (!ok) {
                char got[96];
                return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                                    "%s: %s '%s' is %s: it does not match its declared shape%s",
                                    fn, what, io->name, fleet__shape_str(t, got, sizeof got),
                                    *batch > 0 ? " (with the batch size of the inputs)" : "");
            }
        }
    }
    FLEET_CHECK_ARG(*batch <= FLEET_MODEL_MAX_BATCH, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: batch %lld is over the limit %lld", fn, (long long)*batch,
                    (long long)FLEET_MODEL_MAX_BATCH);
    return FLEET_OK;
}

/* ---- copies in and out, and the graph that holds them ----------------------------- */

static fleet_status copy_in(fleet__instance *in, const fleet__op_call *call,
                            const fleet_tensor *const *inputs)
{
    const fleet_model *m = in->plan->model;
    fleet_status st = FLEET_OK;
    for (int i = 0; i < m->n_inputs && st == FLEET_OK; i++)
        if (in->plan->needed[m->inputs[i].value])
            st = fleet__op_elementwise(call, FLEET__EW_COPY, inputs[i],
                                       NULL, &in->t[m->inputs[i].value]);
    return st;
}

static fleet_status copy_out(fleet__instance *in, const fleet__op_call *call,
                             fleet_tensor *const *outputs)
{
    const fleet_model *m = in->plan->model;
    fleet_status st = FLEET_OK;
    for (int i = 0; i < m->n_outputs && st == FLEET_OK; i++)
        st = fleet__op_elementwise(call, FLEET__EW_COPY, &in->t[m->outputs[i].value], NULL,
                                   outputs[i]);
    return st;
}

/* The run's copies can live in a graph: each is one plain copy of a whole
 * contiguous block (needed inputs and outputs contiguous, and so every
 * output value in the arena), none empty. */
static bool io_graphable(const fleet__instance *in, const fleet_tensor *const *inputs,
                         fleet_tensor *const *outputs)
{
    const fleet_model *m = in->plan->model;
    for (int i = 0; i < m->n_inputs; i++)
        if (in->plan->needed[m->inputs[i].value] &&
            (!fleet_tensor_is_contiguous(inputs[i]) || fleet_tensor_nbytes(inputs[i]) == 0))
            return false;
    for (int i = 0; i < m->n_outputs; i++)
        if (!fleet_tensor_is_contiguous(outputs[i]) || fleet_tensor_nbytes(outputs[i]) == 0 ||
            !fleet_tensor_is_contiguous(&in->t[m->outputs[i].value]))
            return false;
    return true;
}

/* Record copy-in, the steps and copy-out into a graph on this stream
 * (nothing runs), keeping each copy's node. */
static fleet_status capture(fleet__instance *in, const fleet__op_call *call,
                            const fleet_tensor *const *inputs, fleet_tensor *const *outputs)
    FLEET_REQUIRES(in->lock)
{
    void *native = call->native;
    const fleet_model *m = in->plan->model;
    fleet_status st = fleet__backend_capture_begin(m->device, native);
    if (st != FLEET_OK)
        return st;
    for (int i = 0; i < m->n_inputs && st == FLEET_OK; i++) {
        fleet_value v = m->inputs[i].value;
        if (!in->plan->needed[v])
            continue;
        in->in_src[i] = fleet_tensor_data(inputs[i]);
        st = fleet__backend_graph_copy(m->device, native, fleet_tensor_data(&in->t[v]),
                                       in->in_src[i], fleet_tensor_nbytes(inputs[i]));
        if (st == FLEET_OK)
            st = fleet__backend_capture_last_node(m->device, native, &in->in_node[i]);
    }
    if (st == FLEET_OK)
        st = run_steps(in, call);
    for (int i = 0; i < m->n_outputs && st == FLEET_OK; i++) {
        in->out_dst[i] = fleet_tensor_data(outputs[i]);
        st = fleet__backend_graph_copy(m->device, native, in->out_dst[i],
                                       fleet_tensor_data(&in->t[m->outputs[i].value]),
                                       fleet_tensor_nbytes(outputs[i]));
        if (st == FLEET_OK)
            st = fleet__backend_capture_last_node(m->device, native, &in->out_node[i]);
    }
    fleet_status end =
        fleet__backend_capture_end(m->device, native, st == FLEET_OK, &in->graph_exec);
    return st != FLEET_OK ? st : end;
}

/* Point the graph's copies at this run's tensors (where they moved), launch. */
static fleet_status replay(fleet__instance *in, void *native, const fleet_tensor *const *inputs,
                           fleet_tensor *const *outputs) FLEET_REQUIRES(in->lock)
{
    const fleet_model *m = in->plan->model;
    fleet_status st = FLEET_OK;
    for (int i = 0; i < m->n_inputs && st == FLEET_OK; i++) {
        fleet_value v = m->inputs[i].value;
        const void *src = fleet_tensor_data(inputs[i]);
        if (!in->plan->needed[v] || src == in->in_src[i])
            continue;
        st = fleet__backend_graph_set_copy(m->device, in->graph_exec, in->in_node[i],
                                           fleet_tensor_data(&in->t[v]), src,
                                           fleet_tensor_nbytes(inputs[i]));
        in->in_src[i] = st == FLEET_OK ? src : NULL;
    }
    for (int i = 0; i < m->n_outputs && st == FLEET_OK; i++) {
        void *dst = fleet_tensor_data(outputs[i]);
        if (dst == in->out_dst[i])
            continue;
        st = fleet__backend_graph_set_copy(m->device, in->graph_exec, in->out_node[i], dst,
                                           fleet_tensor_data(&in->t[m->outputs[i].value]),
                                           fleet_tensor_nbytes(outputs[i]));
        in->out_dst[i] = st == FLEET_OK ? dst : NULL;
    }
    return st == FLEET_OK ? fleet__backend_graph_launch(m->device, native, in->graph_exec) : st;
}

/* One run: replay the instance's graph; or capture it (from the second run
 * on: the first, eager run has created the stream's library handles, which
 * capturing could not) and launch it; or copy in, launch the steps one by
 * one, copy out. */
static fleet_status execute(fleet__instance *in, const fleet__op_call *call,
                            const fleet_tensor *const *inputs, fleet_tensor *const *outputs)
    FLEET_REQUIRES(in->lock)
{
    fleet_model *m = in->plan->model;
    bool graphable = fleet__backend_can(m->device, FLEET__CAN_CAPTURE) &&
                     io_graphable(in, inputs, outputs);
    if (in->captured && graphable) {
        fleet_atomic_add_relaxed(&m->graph_replays, 1);
        return replay(in, call->native, inputs, outputs);
    }
    if (graphable && !in->captured && fleet__config_get()->model_graphs && in->runs > 0 &&
        !in->capture_refused && fleet__stream_capture_begin(in->stream)) {
        fleet_status st = capture(in, call, inputs, outputs);
        fleet__stream_capture_end(in->stream);
        if (st == FLEET_OK && in->graph_exec != NULL) {
            in->captured = true;
            fleet_atomic_add_relaxed(&m->graph_captures, 1);
            fleet_atomic_add_relaxed(&m->graph_replays, 1);
            return fleet__backend_graph_launch(m->device, call->native, in->graph_exec);
        }
        /* Nothing ran: launch the steps one by one, from now on. */
        FLEET_LOG_WARNF("model %p: capturing a CUDA graph failed (%s); its runs on stream %d "
                        "launch kernels one by one", (void *)m, fleet_last_error(),
                        in->stream->id);
        in->capture_refused = true;
    }
    fleet_atomic_add_relaxed(&m->eager_runs, 1);
    fleet_status st = copy_in(in, call, inputs);
    if (st == FLEET_OK)
        st = run_steps(in, call);
    return st == FLEET_OK ? copy_out(in, call, outputs) : st;
}

fleet_status fleet__model_run(fleet_model *model, struct fleet_stream *stream, int64_t batch,
                              const fleet_tensor *const *inputs, fleet_tensor *const *outputs)
{
    const fleet__plan *plan;
    fleet__op_call call;
    fleet_status st = fleet__plan_get(model, batch, &plan);
    if (st == FLEET_OK)
        st = fleet__op_call_on(&call, "fleet_model_run", stream);
    if (st != FLEET_OK)
        return st;
    fleet__instance *in;
    if ((st = fleet__instance_acquire(plan, stream, &in)) != FLEET_OK)
        return st;
    fleet__mutex_lock(&in->lock);
    if (!in->built)
        st = fleet__instance_build(in);
    if (st == FLEET_OK)
        st = execute(in, &call, inputs, outputs);
    if (st == FLEET_OK)
        in->runs++;
    fleet__mutex_unlock(&in->lock);
    fleet__instance_release(in);
    if (st != FLEET_OK)
        return fleet__error_prefix(st, call.fn);
    fleet_atomic_add_relaxed(&model->runs, 1);
    return FLEET_OK;
}

fleet_status fleet_model_run(fleet_model *model, const fleet_tensor *const *inputs, int n_inputs,
                             fleet_tensor *const *outputs, int n_outputs)
{
    static const char fn[] = "fleet_model_run";
    fleet_status st = fleet__model_enter(model, fn);
    if (st != FLEET_OK)
        return st;
    int64_t batch;
    /* Zeroed: gcc's analyzer cannot see that check_io fills as many as run
     * reads (both are the model's counts). */
    const fleet_tensor *in_t[FLEET_MODEL_MAX_IO] = {0};
    fleet_tensor *out_t[FLEET_MODEL_MAX_IO] = {0};
    fleet_stream *stream;
    if ((st = check_io(model, fn, inputs, n_inputs, outputs, n_outputs, in_t, out_t, &batch)) !=
            FLEET_OK ||
        (st = fleet__stream_current(model->device, &stream)) != FLEET_OK)
        return st;
    return fleet__model_run(model, stream, batch, in_t, out_t);
}

fleet_status fleet_model_get_stats(const fleet_model *model, fleet_model_stats *out)
{
    static const char fn[] = "fleet_model_get_stats";
    fleet_status st = fleet__model_enter(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    fleet_model *m = (fleet_model *)model;
    *out = (fleet_model_stats){
        .runs = fleet_atomic_load_relaxed(&m->runs),
        .compiles = fleet_atomic_load_relaxed(&m->compiles),
        .plans = fleet_atomic_load_relaxed(&m->n_plans),
        .instances_created = fleet_atomic_load_relaxed(&m->instances_created),
        .graph_captures = fleet_atomic_load_relaxed(&m->graph_captures),
        .graph_replays = fleet_atomic_load_relaxed(&m->graph_replays),
        .eager_runs = fleet_atomic_load_relaxed(&m->eager_runs),
        .evictions = fleet_atomic_load_relaxed(&m->evictions),
        .fusions = fleet_atomic_load_relaxed(&m->fusions),
        .arena_bytes_max = (size_t)fleet_atomic_load_relaxed(&m->arena_bytes_max),
        .weight_bytes = m->weight_bytes,
        .load_folded = m->load_folded,
        .load_fused = m->load_fused,
    };
    return FLEET_OK;
}
