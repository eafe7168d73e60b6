/* model/builder.c — building a model's graph: inputs, weights, ops with
 * shape inference over the symbolic batch dimension, outputs, finalize. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/graph.h"
#include "model/graph_cache.h"
#include "model/plan.h"
#include "runtime/device.h"
#include "tensor/tensor.h"
#include "core/prim.h"

#define NAME_MAX_LEN 255
#define B FLEET_DIM_BATCH

/* ---- entry checks ----------------------------------------------------------- */

fleet_status fleet__model_enter(const fleet_model *m, const char *fn)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    if (m == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "%s: model is NULL", fn);
    if (m->fork_generation != fleet__graph_cache_fork_generation())
        return fleet__error(FLEET_ERR_FORKED, "%s: a model does not survive fork(); build it in "
                            "the child, or start workers with posix_spawn", fn);
    return fleet__enter_device(m->device, fn);
}

static fleet_status enter_building(fleet_model *m, const char *fn)
{
    fleet_status st = fleet__model_enter(m, fn);
    if (st != FLEET_OK)
        return st;
    if (m->finalized)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: the model is finalized; its graph can no longer change", fn);
    return FLEET_OK;
}

const fleet__value *fleet__model_value(const fleet_model *m, const char *fn, fleet_value v)
{
    if (v < 0 || v >= m->n_values) {
        fleet__error_set("%s: unknown value %d (the model has %d values; an operand must be "
                         "defined before it is used)", fn, (int)v, m->n_values);
        return NULL;
    }
    return &m->values[v];
}

/* ---- storage ------------------------------------------------------------------- */

static bool grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return true;
    int n = *cap > 0 ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *q = fleet__realloc(*p, (size_t)n * elem);
    if (q == NULL)
        return false;
    *p = q;
    *cap = n;
    return true;
}

static fleet_status add_value(fleet_model *m, const char *fn, fleet__value_kind kind, int index,
                              fleet_dtype dtype, int ndim, const int64_t *shape, fleet_value *out)
{
    if (m->n_values >= FLEET_MODEL_MAX_VALUES)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: the model has the maximum of %d values",
                            fn, FLEET_MODEL_MAX_VALUES);
    if (!grow((void **)&m->values, &m->cap_values, m->n_values + 1, sizeof *m->values))
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory for the graph", fn);
    fleet__value *v = &m->values[m->n_values];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->index = index;
    v->dtype = dtype;
    v->ndim = ndim;
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)ndim);
    *out = m->n_values++;
    return FLEET_OK;
}

fleet_status fleet__model_add_node(fleet_model *m, const char *fn, const fleet__node *node,
                                   fleet_dtype dtype, int ndim, const int64_t *shape,
                                   fleet_value *out)
{
    if (!grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes + 1, sizeof *m->nodes))
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory for the graph", fn);
    fleet_value v;
    fleet_status st = add_value(m, fn, FLEET__VALUE_NODE, m->n_nodes, dtype, ndim, shape, &v);
    if (st != FLEET_OK)
        return st;
    m->nodes[m->n_nodes] = *node;
    m->nodes[m->n_nodes].out = v;
    m->n_nodes++;
    *out = v;
    return FLEET_OK;
}

/* ---- create / destroy -------------------------------------------------------- */

fleet_status fleet_model_create(fleet_device *device, fleet_model **out)
{
    static const char fn[] = "fleet_model_create";
    fleet_status st = fleet__enter_device(device, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    if ((st = fleet__graph_cache_init()) != FLEET_OK)
        return st;
    fleet_model *m = fleet__calloc(1, sizeof *m);
    if (m == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory", fn);
    m->device = device;
    m->fork_generation = fleet__graph_cache_fork_generation();
    fleet__mutex_init(&m->lock);
    *out = m;
    return FLEET_OK;
}

fleet_status fleet_model_destroy(fleet_model *model)
{
    if (model == NULL)
        return FLEET_OK;
    /* Without a usable fleet (shut down, or a fork child) the host memory is
     * still freed and the status says why nothing else was done. */
    fleet_status st = fleet__model_enter(model, "fleet_model_destroy");
    if (st == FLEET_OK)
        st = fleet__device_synchronize(model->device); /* runs may still read weights */
    fleet__graph_cache_drop_model(model);
    fleet__plans_free(model);
    for (int i = 0; i < model->n_weights; i++) {
        fleet__weight *w = &model->weights[i];
        if (w->tensor != NULL)
            fleet__tensor_free(w->tensor);
        free(w->host);
        free(w->name);
    }
    for (int i = 0; i < model->n_inputs; i++)
        free(model->inputs[i].name);
    for (int i = 0; i < model->n_outputs; i++)
        free(model->outputs[i].name);
    free(model->weights);
    free(model->values);
    free(model->nodes);
    fleet__mutex_destroy(&model->lock);
    free(model);
    return st;
}

/* ---- inputs, weights, outputs ------------------------------------------------ */

static fleet_status check_name(const fleet_model *m, const char *fn, const char *name,
                               const fleet__named *list, int n, const char *what)
{
    FLEET_CHECK_ARG(name != NULL, FLEET_ERR_NULL_POINTER, "%s: name is NULL", fn);
    size_t len = strnlen(name, NAME_MAX_LEN + 1);
    FLEET_CHECK_ARG(len >= 1 && len <= NAME_MAX_LEN, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: a name must have 1 to %d bytes", fn, NAME_MAX_LEN);
    for (int i = 0; i < n; i++)
        FLEET_CHECK_ARG(strcmp(list[i].name, name) != 0, FLEET_ERR_INVALID_ARGUMENT,
                        "%s: there is already %s named '%s'", fn, what, name);
    return FLEET_OK;
}

static int find_weight(const fleet_model *m, const char *name)
{
    for (int i = 0; i < m->n_weights; i++)
        if (strcmp(m->weights[i].name, name) == 0)
            return i;
    return -1;
}

static fleet_status check_decl(const char *fn, fleet_dtype dtype, int ndim, const int64_t *shape,
                               bool batch_ok)
{
    FLEET_CHECK_ARG(fleet_dtype_size(dtype) != 0, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: unknown dtype %d", fn, (int)dtype);
    FLEET_CHECK_ARG(ndim >= 0 && ndim <= FLEET_MAX_DIMS, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: ndim %d is outside 0..%d", fn, ndim, FLEET_MAX_DIMS);
    FLEET_CHECK_ARG(ndim == 0 || shape != NULL, FLEET_ERR_NULL_POINTER, "%s: shape is NULL", fn);
    int64_t fixed[FLEET_MAX_DIMS], numel;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == B && !batch_ok)
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                "%s: a weight's shape cannot hold FLEET_DIM_BATCH", fn);
        fixed[d] = shape[d] == B ? 1 : shape[d];
    }
    return fleet__check_shape(fn, ndim, fixed, &numel);
}

/* A named input or weight: names unique among both, the shape valid (the
 * batch dimension only in an input's), then the value. */
static fleet_status declare(fleet_model *m, const char *fn, fleet__value_kind kind,
                            const char *name, fleet_dtype dtype, int ndim, const int64_t *shape,
                            fleet_value *out)
{
    fleet_status st = enter_building(m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    if ((st = check_name(m, fn, name, m->inputs, m->n_inputs, "an input")) != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(find_weight(m, name) < 0, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: there is already a weight named '%s'", fn, name);
    bool input = kind == FLEET__VALUE_INPUT;
    FLEET_CHECK_ARG(!input || m->n_inputs < FLEET_MODEL_MAX_IO, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: at most %d inputs", fn, FLEET_MODEL_MAX_IO);
    if ((st = check_decl(fn, dtype, ndim, shape, input)) != FLEET_OK)
        return st;
    if (!input && !grow((void **)&m->weights, &m->cap_weights, m->n_weights + 1,
                        sizeof *m->weights))
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory", fn);
    char *copy = strdup(name);
    if (copy == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory", fn);
    fleet_value v;
    if ((st = add_value(m, fn, kind, input ? m->n_inputs : m->n_weights, dtype, ndim, shape,
                        &v)) != FLEET_OK) {
        free(copy);
        return st;
    }
    if (input)
        m->inputs[m->n_inputs++] = (fleet__named){.name = copy, .value = v};
    else
        m->weights[m->n_weights++] = (fleet__weight){.name = copy, .value = v};
    *out = v;
    return FLEET_OK;
}

fleet_status fleet_model_input(fleet_model *model, const char *name, fleet_dtype dtype, int ndim,
                               const int64_t *shape, fleet_value *out)
{
    return declare(model, "fleet_model_input", FLEET__VALUE_INPUT, name, dtype, ndim, shape, out);
}

fleet_status fleet_model_weight(fleet_model *model, const char *name, fleet_dtype dtype, int ndim,
                                const int64_t *shape, fleet_value *out)
{
    return declare(model, "fleet_model_weight", FLEET__VALUE_WEIGHT, name, dtype, ndim, shape,
                   out);
}

fleet_status fleet_model_output(fleet_model *model, const char *name, fleet_value value)
{
    static const char fn[] = "fleet_model_output";
    fleet_status st = enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    if (fleet__model_value(model, fn, value) == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    if ((st = check_name(model, fn, name, model->outputs, model->n_outputs, "an output")) !=
        FLEET_OK)
        return st;
    FLEET_CHECK_ARG(model->n_outputs < FLEET_MODEL_MAX_IO, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: at most %d outputs", fn, FLEET_MODEL_MAX_IO);
    char *copy = strdup(name);
    if (copy == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory", fn);
    model->outputs[model->n_outputs++] = (fleet__named){.name = copy, .value = value};
    return FLEET_OK;
}

/* ---- shape inference helpers ------------------------------------------------- */

static const char *shape_str(const fleet__value *v, char *buf, size_t size)
{
    return fleet__dims_str(v->ndim, v->shape, buf, size);
}

static fleet_status shape_error(const char *fn, const char *what, const fleet__value *x,
                                const char *xn, const fleet__value *y, const char *yn)
{
    char a[96], b[96];
    return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: %s: %s is %s, %s is %s", fn, what, xn,
                        shape_str(x, a, sizeof a), yn, shape_str(y, b, sizeof b));
}

/* Fetch operands (FLEET_NO_VALUE allowed where `optional`), all of one dtype. */
static fleet_status operands(fleet_model *m, const char *fn, const fleet_value *ids, int n,
                             unsigned optional_mask, const fleet__value **vs)
{
    for (int i = 0; i < n; i++) {
        vs[i] = NULL;
        if (ids[i] == FLEET_NO_VALUE && (optional_mask & (1u << i)))
            continue;
        if ((vs[i] = fleet__model_value(m, fn, ids[i])) == NULL)
            return FLEET_ERR_INVALID_ARGUMENT;
    }
    for (int i = 1; i < n; i++)
        if (vs[i] != NULL && vs[i]->dtype != vs[0]->dtype)
            return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: operands are %s and %s", fn,
                                fleet_dtype_name(vs[0]->dtype), fleet_dtype_name(vs[i]->dtype));
    return FLEET_OK;
}

static bool norm_dim(int ndim, int *dim)
{
    if (*dim < 0)
        *dim += ndim;
    return *dim >= 0 && *dim < ndim;
}

/* NumPy broadcasting of two symbolic shapes; false if they do not. */
static bool broadcast(const fleet__value *a, const fleet__value *b, int *ndim, int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int64_t x = i < a->ndim ? a->shape[a->ndim - 1 - i] : 1;
        int64_t y = i < b->ndim ? b->shape[b->ndim - 1 - i] : 1;
        if (x != y && x != 1 && y != 1)
            return false;
        shape[n - 1 - i] = x == 1 ? y : x;
    }
    *ndim = n;
    return true;
}

/* The start every op with operands shares: building, out given, the
 * operands known and of one dtype (FLEET_NO_VALUE allowed where optional). */
static fleet_status op_begin(fleet_model *m, const char *fn, fleet_value *out,
                             const fleet_value *ids, int n, unsigned optional_mask,
                             const fleet__value **vs)
{
    fleet_status st = enter_building(m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    return operands(m, fn, ids, n, optional_mask, vs);
}

/* ---- ops ---------------------------------------------------------------------- */

fleet_status fleet_model_linear(fleet_model *model, fleet_value x, fleet_value weight,
                                fleet_value bias, fleet_value *out)
{
    static const char fn[] = "fleet_model_linear";
    const fleet_value ids[] = {x, weight, bias};
    const fleet__value *v[3];
    fleet_status st = op_begin(model, fn, out, ids, 3, 4u, v);
    if (st != FLEET_OK)
        return st;
    if (v[0]->ndim < 1 || v[1]->ndim != 2)
        return shape_error(fn, "expected x[..., in] and weight[out, in]", v[0], "x", v[1],
                           "weight");
    if (v[1]->shape[1] != v[0]->shape[v[0]->ndim - 1] || v[1]->shape[0] == B)
        return shape_error(fn, "x's last dimension must equal weight's columns", v[0], "x", v[1],
                           "weight");
    if (v[2] != NULL && (v[2]->ndim != 1 || v[2]->shape[0] != v[1]->shape[0]))
        return shape_error(fn, "bias must be [out]", v[2], "bias", v[1], "weight");
    int64_t shape[FLEET_MAX_DIMS];
    memcpy(shape, v[0]->shape, sizeof shape);
    shape[v[0]->ndim - 1] = v[1]->shape[0];
    fleet__node n = {.op = FLEET__NODE_LINEAR, .n_in = 3, .in = {x, weight, bias}};
    return fleet__model_add_node(model, fn, &n, v[0]->dtype, v[0]->ndim, shape, out);
}

fleet_status fleet_model_matmul(fleet_model *model, fleet_value a, fleet_value b, float alpha,
                                fleet_value *out)
{
    static const char fn[] = "fleet_model_matmul";
    const fleet_value ids[] = {a, b};
    const fleet__value *v[2];
    fleet_status st = op_begin(model, fn, out, ids, 2, 0u, v);
    if (st != FLEET_OK)
        return st;
    if (v[0]->ndim < 2 || v[1]->ndim < 2)
        return shape_error(fn, "expected a[..., M, K] and b[..., K, N]", v[0], "a", v[1], "b");
    if (v[0]->shape[v[0]->ndim - 1] != v[1]->shape[v[1]->ndim - 2])
        return shape_error(fn, "inner dimensions differ", v[0], "a", v[1], "b");
    fleet__value ba = *v[0], bb = *v[1];
    ba.ndim -= 2;
    bb.ndim -= 2;
    int64_t shape[FLEET_MAX_DIMS];
    int nd;
    if (!broadcast(&ba, &bb, &nd, shape))
        return shape_error(fn, "batch dimensions do not broadcast", v[0], "a", v[1], "b");
    shape[nd] = v[0]->shape[v[0]->ndim - 2];
    shape[nd + 1] = v[1]->shape[v[1]->ndim - 1];
    fleet__node n = {.op = FLEET__NODE_MATMUL, .n_in = 2, .in = {a, b}, .attr.alpha = alpha};
    return fleet__model_add_node(model, fn, &n, v[0]->dtype, nd + 2, shape, out);
}

static fleet_status binary(fleet_model *m, const char *fn, fleet__binary_kind kind, fleet_value a,
                           fleet_value b, fleet_value *out)
{
    const fleet_value ids[] = {a, b};
    const fleet__value *v[2];
    fleet_status st = op_begin(m, fn, out, ids, 2, 0u, v);
    if (st != FLEET_OK)
        return st;
    int64_t shape[FLEET_MAX_DIMS];
    int nd;
    if (!broadcast(v[0], v[1], &nd, shape))
        return shape_error(fn, "shapes do not broadcast", v[0], "a", v[1], "b");
    fleet__node n = {.op = FLEET__NODE_BINARY, .n_in = 2, .in = {a, b}, .attr.kind = (int)kind};
    return fleet__model_add_node(m, fn, &n, v[0]->dtype, nd, shape, out);
}

fleet_status fleet_model_add(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out)
{
    return binary(model, "fleet_model_add", FLEET__ADD, a, b, out);
}
fleet_status fleet_model_sub(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out)
{
    return binary(model, "fleet_model_sub", FLEET__SUB, a, b, out);
}
fleet_status fleet_model_mul(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out)
{
    return binary(model, "fleet_model_mul", FLEET__MUL, a, b, out);
}
fleet_status fleet_model_div(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out)
{
    return binary(model, "fleet_model_div", FLEET__DIV, a, b, out);
}

/* An op whose output has x's shape (unary, softmax). */
static fleet_status same_shape_op(fleet_model *m, const char *fn, fleet__node *n, fleet_value x,
                                  fleet_value *out)
{
    fleet_status st = enter_building(m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    const fleet__value *v = fleet__model_value(m, fn, x);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    if (n->op == FLEET__NODE_SOFTMAX && !norm_dim(v->ndim, &n->attr.dim))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: dim out of range for a %d-D value",
                            fn, v->ndim);
    n->n_in = 1;
    n->in[0] = x;
    fleet__value copy = *v; /* add_node may move m->values */
    return fleet__model_add_node(m, fn, n, copy.dtype, copy.ndim, copy.shape, out);
}

#define UNARY(name, k)                                                                     \
    fleet_status fleet_model_##name(fleet_model *model, fleet_value x, fleet_value *out)   \
    {                                                                                      \
        fleet__node n = {.op = FLEET__NODE_UNARY, .attr.kind = (k)};                       \
        return same_shape_op(model, "fleet_model_" #name, &n, x, out);                     \
    }
UNARY(relu, FLEET__RELU)
UNARY(gelu, FLEET__GELU)
UNARY(silu, FLEET__SILU)
UNARY(tanh, FLEET__TANH)
UNARY(sigmoid, FLEET__SIGMOID)
#undef UNARY

fleet_status fleet_model_softmax(fleet_model *model, fleet_value x, int dim, fleet_value *out)
{
    fleet__node n = {.op = FLEET__NODE_SOFTMAX, .attr.dim = dim};
    return same_shape_op(model, "fleet_model_softmax", &n, x, out);
}

fleet_status fleet_model_layer_norm(fleet_model *model, fleet_value x, fleet_value gamma,
                                    fleet_value beta, float eps, fleet_value *out)
{
    static const char fn[] = "fleet_model_layer_norm";
    const fleet_value ids[] = {x, gamma, beta};
    const fleet__value *v[3];
    fleet_status st = op_begin(model, fn, out, ids, 3, 6u, v); /* gamma, beta optional */
    if (st != FLEET_OK)
        return st;
    if (v[0]->ndim < 1)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: x must have a dimension", fn);
    int64_t last = v[0]->shape[v[0]->ndim - 1];
    for (int i = 1; i < 3; i++)
        if (v[i] != NULL && (v[i]->ndim != 1 || v[i]->shape[0] != last))
            return shape_error(fn, "gamma and beta must be [x's last dimension]", v[i],
                               i == 1 ? "gamma" : "beta", v[0], "x");
    FLEET_CHECK_ARG(eps >= 0.0f, FLEET_ERR_INVALID_ARGUMENT, "%s: eps must be >= 0", fn);
    fleet__node n = {.op = FLEET__NODE_LAYER_NORM, .n_in = 3, .in = {x, gamma, beta},
                     .attr.eps = eps};
    fleet__value copy = *v[0];
    return fleet__model_add_node(model, fn, &n, copy.dtype, copy.ndim, copy.shape, out);
}

fleet_status fleet_model_conv1d(fleet_model *model, fleet_value x, fleet_value weight,
                                fleet_value bias, int64_t stride, int64_t padding,
                                int64_t dilation, fleet_value *out)
{
    static const char fn[] = "fleet_model_conv1d";
    const fleet_value ids[] = {x, weight, bias};
    const fleet__value *v[3];
    fleet_status st = op_begin(model, fn, out, ids, 3, 4u, v);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(stride >= 1 && dilation >= 1 && padding >= 0 && stride <= INT32_MAX &&
                        dilation <= INT32_MAX && padding <= INT32_MAX,
                    FLEET_ERR_INVALID_ARGUMENT,
                    "%s: need stride >= 1, dilation >= 1, padding >= 0 (below 2^31)", fn);
    if (v[0]->ndim != 3 || v[1]->ndim != 3)
        return shape_error(fn, "expected x[N, Cin, L] and weight[Cout, Cin, K]", v[0], "x", v[1],
                           "weight");
    if (v[0]->shape[1] != v[1]->shape[1] || v[0]->shape[1] == B || v[0]->shape[2] == B)
        return shape_error(fn, "x's channels must equal weight's input channels (and only N "
                           "may be the batch)", v[0], "x", v[1], "weight");
    if (v[2] != NULL && (v[2]->ndim != 1 || v[2]->shape[0] != v[1]->shape[0]))
        return shape_error(fn, "bias must be [Cout]", v[2], "bias", v[1], "weight");
    int64_t len = v[0]->shape[2], k = v[1]->shape[2];
    FLEET_CHECK_ARG(k >= 1, FLEET_ERR_SHAPE_MISMATCH, "%s: the kernel size must be >= 1", fn);
    int64_t span = dilation * (k - 1) + 1;
    if (len + 2 * padding < span)
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH, "%s: length %lld + 2*padding %lld is "
                            "shorter than the dilated kernel %lld", fn, (long long)len,
                            (long long)padding, (long long)span);
    int64_t shape[3] = {v[0]->shape[0], v[1]->shape[0], (len + 2 * padding - span) / stride + 1};
    fleet__node n = {.op = FLEET__NODE_CONV1D, .n_in = 3, .in = {x, weight, bias},
                     .attr.conv = {stride, padding, dilation}};
    return fleet__model_add_node(model, fn, &n, v[0]->dtype, 3, shape, out);
}

fleet_status fleet_model_reshape(fleet_model *model, fleet_value x, int ndim, const int64_t *shape,
                                 fleet_value *out)
{
    static const char fn[] = "fleet_model_reshape";
    fleet_status st = enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    const fleet__value *v = fleet__model_value(model, fn, x);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    if ((st = check_decl(fn, v->dtype, ndim, shape, true)) != FLEET_OK)
        return st;
    /* Element counts as (number of batch factors, fixed product). */
    int nb_in = 0, nb_out = 0;
    int64_t p_in = 1, p_out = 1;
    for (int d = 0; d < v->ndim; d++) {
        if (v->shape[d] == B)
            nb_in++;
        else
            p_in *= v->shape[d];
    }
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == B)
            nb_out++;
        else
            p_out *= shape[d];
    }
    if (nb_in != nb_out || p_in != p_out) {
        fleet__value want = {.ndim = ndim};
        memcpy(want.shape, shape, sizeof(int64_t) * (size_t)ndim);
        return shape_error(fn, "the element counts differ", v, "x", &want, "shape");
    }
    fleet__node n = {.op = FLEET__NODE_RESHAPE, .n_in = 1, .in = {x}};
    return fleet__model_add_node(model, fn, &n, v->dtype, ndim, shape, out);
}

fleet_status fleet_model_permute(fleet_model *model, fleet_value x, const int *dims,
                                 fleet_value *out)
{
    static const char fn[] = "fleet_model_permute";
    fleet_status st = enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL && dims != NULL, FLEET_ERR_NULL_POINTER, "%s: NULL argument", fn);
    const fleet__value *v = fleet__model_value(model, fn, x);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    fleet__node n = {.op = FLEET__NODE_PERMUTE, .n_in = 1, .in = {x}};
    int64_t shape[FLEET_MAX_DIMS];
    unsigned seen = 0;
    for (int d = 0; d < v->ndim; d++) {
        int k = dims[d];
        if (!norm_dim(v->ndim, &k) || (seen & (1u << k)))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                "%s: dims must be a permutation of the %d dimensions", fn, v->ndim);
        seen |= 1u << k;
        n.attr.perm[d] = k;
        shape[d] = v->shape[k];
    }
    fleet__value copy = *v;
    return fleet__model_add_node(model, fn, &n, copy.dtype, copy.ndim, shape, out);
}

fleet_status fleet_model_transpose(fleet_model *model, fleet_value x, int dim0, int dim1,
                                   fleet_value *out)
{
    static const char fn[] = "fleet_model_transpose";
    fleet_status st = enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    const fleet__value *v = fleet__model_value(model, fn, x);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    if (!norm_dim(v->ndim, &dim0) || !norm_dim(v->ndim, &dim1))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: dims out of range for a %d-D value",
                            fn, v->ndim);
    int dims[FLEET_MAX_DIMS];
    for (int d = 0; d < v->ndim; d++)
        dims[d] = d;
    dims[dim0] = dim1;
    dims[dim1] = dim0;
    return fleet_model_permute(model, x, dims, out);
}

fleet_status fleet_model_attention(fleet_model *model, fleet_value q, fleet_value k, fleet_value v,
                                   float scale, fleet_value *out)
{
    static const char fn[] = "fleet_model_attention";
    const fleet_value ids[] = {q, k, v};
    const fleet__value *vs[3];
    fleet_status st = op_begin(model, fn, out, ids, 3, 0u, vs);
    if (st != FLEET_OK)
        return st;
    if (vs[0]->ndim < 2 || vs[1]->ndim < 2 || vs[2]->ndim < 2)
        return shape_error(fn, "expected q[..., Lq, D], k[..., Lk, D], v[..., Lk, Dv]", vs[0],
                           "q", vs[1], "k");
    int64_t d = vs[0]->shape[vs[0]->ndim - 1];
    if (vs[1]->shape[vs[1]->ndim - 1] != d)
        return shape_error(fn, "q and k must share the last dimension", vs[0], "q", vs[1], "k");
    if (vs[2]->shape[vs[2]->ndim - 2] != vs[1]->shape[vs[1]->ndim - 2])
        return shape_error(fn, "k and v must have as many rows", vs[1], "k", vs[2], "v");
    if (!(scale > 0.0f)) {
        if (d == B)
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                "%s: give a scale when D is the batch dimension", fn);
        scale = 1.0f / sqrtf((float)(d > 0 ? d : 1));
    }
    fleet_value kt, scores, probs;
    if ((st = fleet_model_transpose(model, k, -2, -1, &kt)) != FLEET_OK ||
        (st = fleet_model_matmul(model, q, kt, scale, &scores)) != FLEET_OK ||
        (st = fleet_model_softmax(model, scores, -1, &probs)) != FLEET_OK)
        return fleet__error_prefix(st, fn);
    if ((st = fleet_model_matmul(model, probs, v, 1.0f, out)) != FLEET_OK)
        return fleet__error_prefix(st, fn);
    return FLEET_OK;
}

/* ---- weights and finalize ---------------------------------------------------- */

fleet_status fleet_model_set_weight(fleet_model *model, const char *name, const void *data,
                                    size_t bytes)
{
    static const char fn[] = "fleet_model_set_weight";
    fleet_status st = enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(name != NULL && data != NULL, FLEET_ERR_NULL_POINTER, "%s: NULL argument", fn);
    int i = find_weight(model, name);
    FLEET_CHECK_ARG(i >= 0, FLEET_ERR_INVALID_ARGUMENT, "%s: the model has no weight '%s'", fn,
                    name);
    size_t want = fleet__model_value_bytes(&model->values[model->weights[i].value], 1);
    FLEET_CHECK_ARG(bytes == want, FLEET_ERR_SHAPE_MISMATCH,
                    "%s: weight '%s' takes %zu bytes, got %zu", fn, name, want, bytes);
    void *copy = fleet__malloc(bytes > 0 ? bytes : 1);
    if (copy == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory for %zu bytes", fn, bytes);
    memcpy(copy, data, bytes);
    free(model->weights[i].host);
    model->weights[i].host = copy;
    model->weights[i].bytes = bytes;
    return FLEET_OK;
}

int fleet__model_find_weight(const fleet_model *m, const char *name)
{
    return find_weight(m, name);
}

fleet_status fleet_model_finalize(fleet_model *model)
{
    static const char fn[] = "fleet_model_finalize";
    fleet_status st = enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(model->n_outputs > 0, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: the model has no output", fn);
    for (int i = 0; i < model->n_weights; i++)
        FLEET_CHECK_ARG(model->weights[i].host != NULL, FLEET_ERR_INVALID_ARGUMENT,
                        "%s: weight '%s' has no data (set it or load it from a file)", fn,
                        model->weights[i].name);
    /* Upload on the caller's stream, then wait: the weights are then ready
     * for every stream. */
    size_t total = 0;
    for (int i = 0; i < model->n_weights && st == FLEET_OK; i++) {
        fleet__weight *w = &model->weights[i];
        const fleet__value *v = &model->values[w->value];
        if ((st = fleet__tensor_new(model->device, v->dtype, v->ndim, v->shape, fn, &w->tensor)) ==
            FLEET_OK)
            st = fleet_tensor_copy_from_host(w->tensor, w->host, w->bytes);
        total += w->bytes;
    }
    fleet_stream *s;
    if (st == FLEET_OK && (st = fleet__stream_current(model->device, &s)) == FLEET_OK)
        st = fleet_stream_synchronize(s);
    if (st != FLEET_OK) {
        for (int i = 0; i < model->n_weights; i++) {
            if (model->weights[i].tensor != NULL)
                fleet__tensor_free(model->weights[i].tensor);
            model->weights[i].tensor = NULL;
        }
        return fleet__error_prefix(st, fn);
    }
    for (int i = 0; i < model->n_weights; i++) {
        free(model->weights[i].host);
        model->weights[i].host = NULL;
    }
    model->weight_bytes = total;
    model->finalized = true;
    return FLEET_OK;
}

/* ---- accessors ------------------------------------------------------------------ */

int fleet_model_input_count(const fleet_model *model)
{
    return model != NULL ? model->n_inputs : 0;
}

int fleet_model_output_count(const fleet_model *model)
{
    return model != NULL ? model->n_outputs : 0;
}

static fleet_status io_shape(const fleet_model *m, const char *fn, const fleet__named *list, int n,
                             int i, int64_t batch, int *ndim, int64_t *shape)
{
    fleet_status st = fleet__model_enter(m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(ndim != NULL && shape != NULL, FLEET_ERR_NULL_POINTER, "%s: NULL argument", fn);
    FLEET_CHECK_ARG(i >= 0 && i < n, FLEET_ERR_INVALID_ARGUMENT, "%s: index %d outside 0..%d", fn,
                    i, n - 1);
    FLEET_CHECK_ARG(batch >= 1 && batch <= FLEET_MODEL_MAX_BATCH, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: batch %lld outside 1..%lld", fn, (long long)batch,
                    (long long)FLEET_MODEL_MAX_BATCH);
    const fleet__value *v = &m->values[list[i].value];
    *ndim = v->ndim;
    for (int d = 0; d < v->ndim; d++)
        shape[d] = v->shape[d] == B ? batch : v->shape[d];
    return FLEET_OK;
}

fleet_status fleet_model_input_shape(const fleet_model *model, int i, int64_t batch, int *ndim,
                                     int64_t *shape)
{
    return io_shape(model, "fleet_model_input_shape", model ? model->inputs : NULL,
                    model ? model->n_inputs : 0, i, batch, ndim, shape);
}

fleet_status fleet_model_output_shape(const fleet_model *model, int i, int64_t batch, int *ndim,
                                      int64_t *shape)
{
    return io_shape(model, "fleet_model_output_shape", model ? model->outputs : NULL,
                    model ? model->n_outputs : 0, i, batch, ndim, shape);
}

size_t fleet__model_value_bytes(const fleet__value *v, int64_t batch)
{
    size_t n = fleet_dtype_size(v->dtype);
    for (int d = 0; d < v->ndim; d++)
        n *= (size_t)(v->shape[d] == B ? batch : v->shape[d]);
    return n;
}
