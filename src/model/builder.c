/* model/builder.c — building a model's graph: its values (inputs and
 * weights by name, constants, the nodes' outputs) and outputs, and the
 * start every op builder shares. The ops themselves are model/graph_ops.c;
 * the model object's life (create, weights, finalize, destroy) is
 * model/model.c. */
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
    if (ndim > 0)
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

/* An unnamed constant: a weight whose data is set now. Its name,
 * "constant:<value>", cannot clash with a user's (':' is refused in names
 * only by convention, so the check below still runs). */
fleet_status fleet_model_constant(fleet_model *model, fleet_dtype dtype, int ndim,
                                  const int64_t *shape, const void *data, fleet_value *out)
{
    static const char fn[] = "fleet_model_constant";
    fleet_status st = fleet__model_enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL && data != NULL, FLEET_ERR_NULL_POINTER, "%s: out or data is NULL",
                    fn);
    char name[32];
    snprintf(name, sizeof name, "constant:%d", model->n_values);
    fleet_value v;
    if ((st = declare(model, fn, FLEET__VALUE_WEIGHT, name, dtype, ndim, shape, &v)) != FLEET_OK)
        return st;
    fleet__weight *w = &model->weights[model->n_weights - 1];
    size_t bytes = fleet__model_value_bytes(&model->values[v], 1);
    if ((w->host = fleet__malloc(bytes > 0 ? bytes : 1)) == NULL) {
        /* the declared value stays, without data: finalize refuses it */
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory for %zu bytes", fn,
                            bytes);
    }
    memcpy(w->host, data, bytes);
    w->bytes = bytes;
    *out = v;
    return FLEET_OK;
}

fleet_status fleet_model_value_info(const fleet_model *model, fleet_value value,
                                    fleet_dtype *dtype, int *ndim, int64_t *shape)
{
    static const char fn[] = "fleet_model_value_info";
    fleet_status st = fleet__model_enter(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(dtype != NULL && ndim != NULL && shape != NULL, FLEET_ERR_NULL_POINTER,
                    "%s: NULL argument", fn);
    const fleet__value *v = fleet__model_value(model, fn, value);
    if (v == NULL)
        return FLEET_ERR_INVALID_ARGUMENT;
    *dtype = v->dtype;
    *ndim = v->ndim;
    if (v->ndim > 0)
        memcpy(shape, v->shape, sizeof(int64_t) * (size_t)v->ndim);
    return FLEET_OK;
}

/* ---- what every op builder starts with ----------------------------------------- */

fleet_status fleet__model_op_begin(fleet_model *m, const char *fn, fleet_value *out,
                                   const fleet_value *ids, int n, unsigned optional_mask,
                                   const fleet__value **vs)
{
    fleet_status st = fleet__model_enter_building(m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    for (int i = 0; i < n; i++) {
        vs[i] = NULL;
        if (ids[i] == FLEET_NO_VALUE && (optional_mask & (1u << i)))
            continue;
        if ((vs[i] = fleet__model_value(m, fn, ids[i])) == NULL)
            return FLEET_ERR_INVALID_ARGUMENT;
    }
    return FLEET_OK;
}
