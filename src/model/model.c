/* model/model.c — a model object's life: create, entry checks, weight data,
 * finalize (weights uploaded, graph frozen), the shapes of its inputs and
 * outputs, destroy. Building its graph is model/builder.c. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/prim.h"
#include "model/graph.h"
#include "model/graph_cache.h"
#include "model/plan.h"
#include "model/run.h"
#include "runtime/device.h"
#include "tensor/tensor.h"

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

fleet_status fleet__model_enter_building(fleet_model *m, const char *fn)
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

/* Forget w's host data, freeing it unless borrowed. */
static void weight_drop_host(fleet__weight *w)
{
    if (!w->borrowed)
        free(w->host);
    w->host = NULL;
    w->borrowed = false;
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
        weight_drop_host(w);
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

/* ---- weights and finalize ---------------------------------------------------- */


fleet_status fleet_model_set_weight(fleet_model *model, const char *name, const void *data,
                                    size_t bytes)
{
    static const char fn[] = "fleet_model_set_weight";
    fleet_status st = fleet__model_enter_building(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(name != NULL && data != NULL, FLEET_ERR_NULL_POINTER, "%s: NULL argument", fn);
    int i = fleet__model_find_weight(model, name);
    FLEET_CHECK_ARG(i >= 0, FLEET_ERR_INVALID_ARGUMENT, "%s: the model has no weight '%s'", fn,
                    name);
    size_t want = fleet__model_value_bytes(&model->values[model->weights[i].value], 1);
    FLEET_CHECK_ARG(bytes == want, FLEET_ERR_SHAPE_MISMATCH,
                    "%s: weight '%s' takes %zu bytes, got %zu", fn, name, want, bytes);
    void *copy = fleet__malloc(bytes > 0 ? bytes : 1);
    if (copy == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory for %zu bytes", fn, bytes);
    memcpy(copy, data, bytes);
    weight_drop_host(&model->weights[i]);
    model->weights[i].host = copy;
    model->weights[i].bytes = bytes;
    return FLEET_OK;
}

fleet_status fleet__model_weight_borrow(fleet_model *m, fleet_value v, const void *data,
                                        size_t bytes)
{
    const fleet__value *val = &m->values[v];
    FLEET_ASSERT(val->kind == FLEET__VALUE_WEIGHT);
    fleet__weight *w = &m->weights[val->index];
    if (bytes != fleet__model_value_bytes(val, 1))
        return fleet__error(FLEET_ERR_INVALID_MODEL, "weight '%s' takes %zu bytes, its data has %zu",
                            w->name, fleet__model_value_bytes(val, 1), bytes);
    weight_drop_host(w);
    w->host = (void *)data;
    w->borrowed = true;
    w->bytes = bytes;
    return FLEET_OK;
}

int fleet__model_find_weight(const fleet_model *m, const char *name)
{
    for (int i = 0; i < m->n_weights; i++)
        if (strcmp(m->weights[i].name, name) == 0)
            return i;
    return -1;
}

fleet_status fleet_model_finalize(fleet_model *model)
{
    static const char fn[] = "fleet_model_finalize";
    fleet_status st = fleet__model_enter_building(model, fn);
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
    for (int i = 0; i < model->n_weights; i++)
        weight_drop_host(&model->weights[i]);
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
        shape[d] = fleet__dim_at(v->shape[d], batch);
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

static fleet_status io_info(const fleet_model *m, const char *fn, bool output, int i,
                            const char **name, fleet_dtype *dtype, int *ndim, int64_t *shape)
{
    fleet_status st = fleet__model_enter(m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(name != NULL && dtype != NULL && ndim != NULL && shape != NULL,
                    FLEET_ERR_NULL_POINTER, "%s: NULL argument", fn);
    int n = output ? m->n_outputs : m->n_inputs;
    FLEET_CHECK_ARG(i >= 0 && i < n, FLEET_ERR_INVALID_ARGUMENT, "%s: index %d outside 0..%d", fn,
                    i, n - 1);
    const fleet__named *io = output ? &m->outputs[i] : &m->inputs[i];
    const fleet__value *v = &m->values[io->value];
    *name = io->name;
    *dtype = v->dtype;
    *ndim = v->ndim;
    for (int d = 0; d < v->ndim; d++)
        shape[d] = v->shape[d];
    return FLEET_OK;
}

fleet_status fleet_model_input_info(const fleet_model *model, int i, const char **name,
                                    fleet_dtype *dtype, int *ndim, int64_t *shape)
{
    return io_info(model, "fleet_model_input_info", false, i, name, dtype, ndim, shape);
}

fleet_status fleet_model_output_info(const fleet_model *model, int i, const char **name,
                                     fleet_dtype *dtype, int *ndim, int64_t *shape)
{
    return io_info(model, "fleet_model_output_info", true, i, name, dtype, ndim, shape);
}

size_t fleet__model_value_bytes(const fleet__value *v, int64_t batch)
{
    size_t n = fleet_dtype_size(v->dtype);
    for (int d = 0; d < v->ndim; d++)
        n *= (size_t)fleet__dim_at(v->shape[d], batch);
    return n;
}

struct fleet_device *fleet__model_device(const fleet_model *m)
{
    return m->device;
}

bool fleet__model_finalized(const fleet_model *m)
{
    return m->finalized;
}

int fleet__model_io_count(const fleet_model *m, bool output)
{
    return output ? m->n_outputs : m->n_inputs;
}

fleet__model_io fleet__model_io_at(const fleet_model *m, bool output, int i)
{
    const fleet__named *io = output ? &m->outputs[i] : &m->inputs[i];
    const fleet__value *v = &m->values[io->value];
    return (fleet__model_io){.name = io->name, .dtype = v->dtype, .ndim = v->ndim,
                             .shape = v->shape};
}
