/* model/weights.c — a model's weights from a safetensors file. */
#include <string.h>

#include "core/error.h"
#include "model/graph.h"
#include "model/safetensors.h"
#include "tensor/tensor.h"

fleet_status fleet_model_load_safetensors(fleet_model *model, const char *path, int *loaded)
{
    static const char fn[] = "fleet_model_load_safetensors";
    fleet_status st = fleet__model_enter(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(!model->finalized, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: the model is finalized; its weights can no longer change", fn);
    FLEET_CHECK_ARG(path != NULL, FLEET_ERR_NULL_POINTER, "%s: path is NULL", fn);
    fleet__st_file f;
    if ((st = fleet__safetensors_open(path, &f)) != FLEET_OK)
        return fleet__error_prefix(st, fn);
    /* Check every match first, so that a mismatch changes no weight. */
    int matched = 0;
    for (int i = 0; i < model->n_weights && st == FLEET_OK; i++) {
        const fleet__weight *w = &model->weights[i];
        const fleet__st_tensor *t = fleet__safetensors_find(&f, w->name);
        if (t == NULL)
            continue;
        const fleet__value *v = &model->values[w->value];
        bool same = t->ndim == v->ndim;
        for (int d = 0; same && d < v->ndim; d++)
            same = t->shape[d] == v->shape[d];
        char got[96], want[96];
        if (t->dtype != (int)v->dtype)
            st = fleet__error(FLEET_ERR_DTYPE_MISMATCH,
                              "%s: %s: tensor '%s' is %s, the model declares %s", fn, path,
                              w->name, t->dtype_name, fleet_dtype_name(v->dtype));
        else if (!same)
            st = fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                              "%s: %s: tensor '%s' is %s, the model declares %s", fn, path,
                              w->name, fleet__dims_str(t->ndim, t->shape, got, sizeof got),
                              fleet__dims_str(v->ndim, v->shape, want, sizeof want));
        matched++;
    }
    for (int i = 0; i < model->n_weights && st == FLEET_OK; i++) {
        const fleet__st_tensor *t = fleet__safetensors_find(&f, model->weights[i].name);
        if (t != NULL)
            st = fleet_model_set_weight(model, model->weights[i].name, t->data, (size_t)t->nbytes);
    }
    fleet__safetensors_close(&f);
    if (st == FLEET_OK && loaded != NULL)
        *loaded = matched;
    return st;
}
