/* model/builder.c — building a model's graph: inputs, weights and outputs by
 * name, and the ops, each shaped by its rule in tensor/shape.h over the
 * symbolic batch dimension. The model object's life (create, weights,
 * finalize, destroy) is model/model.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/prim.h"
#include "model/graph.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"

#define NAME_MAX_LEN 255
#define B FLEET_DIM_BATCH

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
    fleet_status st = fleet__model_enter_building(m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    if ((st = check_name(m, fn, name, m->inputs, m->n_inputs, "an input")) != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(fleet__model_find_weight(m, name) < 0, FLEET_ERR_INVALID_ARGUMENT,
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
    fleet_status st = fleet__model_enter_building(model, fn);
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

/* ---- shape inference: the rules of tensor/shape.h ------------------------------ */

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

/* v's dims, or NULL for an absent optional operand (into *store). */
static const fleet__dims *dims_or_null(const fleet__value *v, fleet__dims *store)
{
    if (v == NULL)
        return NULL;
    *store = FLEET__DIMS(v);
    return store;
}

/* The start every op with operands shares: building, out given, the
 * operands known and of one dtype (FLEET_NO_VALUE allowed where optional). */
static fleet_status op_begin(fleet_model *m, const char *fn, fleet_value *out,
                             const fleet_value *ids, int n, unsigned optional_mask,
                             const fleet__value **vs)
{
    fleet_status st = fleet__model_enter_building(m, fn);
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
    fleet__dims dx = FLEET__DIMS(v[0]), dw = FLEET__DIMS(v[1]), db, r;
    if ((st = fleet__shape_linear(fn, &dx, &dw, dims_or_null(v[2], &db), &r)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_LINEAR, .n_in = 3, .in = {x, weight, bias}};
    return fleet__model_add_node(model, fn, &n, v[0]->dtype, r.ndim, r.d, out);
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
    fleet__dims da = FLEET__DIMS(v[0]), db = FLEET__DIMS(v[1]), r;
    if ((st = fleet__shape_matmul(fn, &da, &db, &r)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_MATMUL, .n_in = 2, .in = {a, b}, .attr.alpha = alpha};
    return fleet__model_add_node(model, fn, &n, v[0]->dtype, r.ndim, r.d, out);
}

static fleet_status binary(fleet_model *m, const char *fn, fleet__binary_kind kind, fleet_value a,
                           fleet_value b, fleet_value *out)
{
    const fleet_value ids[] = {a, b};
    const fleet__value *v[2];
    fleet_status st = op_begin(m, fn, out, ids, 2, 0u, v);
    if (st != FLEET_OK)
        return st;
    fleet__dims da = FLEET__DIMS(v[0]), db = FLEET__DIMS(v[1]), r;
    if ((st = fleet__shape_broadcast(fn, &da, "a", &db, "b", &r)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_BINARY, .n_in = 2, .in = {a, b}, .attr.kind = (int)kind};
    return fleet__model_add_node(m, fn, &n, v[0]->dtype, r.ndim, r.d, out);
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
    fleet_status st = fleet__model_enter_building(m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    const fleet__value *v = fleet__model_value(m, fn, x);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    if (n->op == FLEET__NODE_SOFTMAX &&
        (st = fleet__shape_dim(fn, v->ndim, n->attr.dim, &n->attr.dim)) != FLEET_OK)
        return st;
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
    fleet__dims dx = FLEET__DIMS(v[0]), dg, db, r;
    if ((st = fleet__shape_layer_norm(fn, &dx, dims_or_null(v[1], &dg), dims_or_null(v[2], &db),
                                      &r)) != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(eps >= 0.0f, FLEET_ERR_INVALID_ARGUMENT, "%s: eps must be >= 0", fn);
    fleet__node n = {.op = FLEET__NODE_LAYER_NORM, .n_in = 3, .in = {x, gamma, beta},
                     .attr.eps = eps};
    return fleet__model_add_node(model, fn, &n, v[0]->dtype, r.ndim, r.d, out);
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
    fleet__window win = {.stride = stride, .pad_begin = padding, .pad_end = padding,
                         .dilation = dilation};
    fleet__dims dx = FLEET__DIMS(v[0]), dw = FLEET__DIMS(v[1]), db, r;
    if ((st = fleet__shape_conv(fn, 1, &dx, &dw, dims_or_null(v[2], &db), &win, 1, &r)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_CONV1D, .n_in = 3, .in = {x, weight, bias},
                     .attr.conv = {stride, padding, dilation}};
    return fleet__model_add_node(model, fn, &n, v[0]->dtype, r.ndim, r.d, out);
}

fleet_status fleet_model_reshape(fleet_model *model, fleet_value x, int ndim, const int64_t *shape,
                                 fleet_value *out)
{
    static const char fn[] = "fleet_model_reshape";
    fleet_status st = fleet__model_enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    const fleet__value *v = fleet__model_value(model, fn, x);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    if ((st = check_decl(fn, v->dtype, ndim, shape, true)) != FLEET_OK)
        return st;
    fleet__dims dx = FLEET__DIMS(v), to = fleet__dims_of(ndim, shape);
    if ((st = fleet__shape_reshape(fn, &dx, &to)) != FLEET_OK)
        return st;
    fleet__node n = {.op = FLEET__NODE_RESHAPE, .n_in = 1, .in = {x}};
    return fleet__model_add_node(model, fn, &n, v->dtype, ndim, shape, out);
}

fleet_status fleet_model_permute(fleet_model *model, fleet_value x, const int *dims,
                                 fleet_value *out)
{
    static const char fn[] = "fleet_model_permute";
    fleet_status st = fleet__model_enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL && dims != NULL, FLEET_ERR_NULL_POINTER, "%s: NULL argument", fn);
    const fleet__value *v = fleet__model_value(model, fn, x);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    fleet__node n = {.op = FLEET__NODE_PERMUTE, .n_in = 1, .in = {x}};
    if (v->ndim > 0)
        memcpy(n.attr.perm, dims, sizeof(int) * (size_t)v->ndim);
    fleet__dims dx = FLEET__DIMS(v), r;
    if ((st = fleet__shape_permute(fn, &dx, n.attr.perm, &r)) != FLEET_OK)
        return st;
    return fleet__model_add_node(model, fn, &n, v->dtype, r.ndim, r.d, out);
}

fleet_status fleet_model_transpose(fleet_model *model, fleet_value x, int dim0, int dim1,
                                   fleet_value *out)
{
    static const char fn[] = "fleet_model_transpose";
    fleet_status st = fleet__model_enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    const fleet__value *v = fleet__model_value(model, fn, x);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    if ((st = fleet__shape_dim(fn, v->ndim, dim0, &dim0)) != FLEET_OK ||
        (st = fleet__shape_dim(fn, v->ndim, dim1, &dim1)) != FLEET_OK)
        return st;
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
    fleet__dims dq = FLEET__DIMS(vs[0]), dk = FLEET__DIMS(vs[1]), dv = FLEET__DIMS(vs[2]), r;
    if ((st = fleet__shape_attention(fn, &dq, &dk, &dv, NULL, NULL, &r)) != FLEET_OK)
        return st;
    int64_t d = dq.d[dq.ndim - 1];
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

