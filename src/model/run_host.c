/* model/run_host.c — fleet_model_run_host: one run from host buffers into host
 * buffers in one call. The Python binding's run: one foreign call (one GIL
 * release) instead of a dozen, and nothing of the run is left for the caller
 * to clean up when it is interrupted between calls. Built on the public calls
 * only: tensors on the model's device, fleet_model_run, the copies. */
#include <stdio.h>

#include "core/error.h"
#include "model/graph.h"
#include "model/run.h"

/* Expected bytes of input/output i for `batch`: its shape with the batch
 * filled in, times its dtype's size. */
static fleet_status io_bytes(const fleet_model *m, bool output, int i, int64_t batch,
                             fleet_dtype *dtype, int *ndim, int64_t *shape, size_t *bytes,
                             const char **name)
{
    fleet_status st = output ? fleet_model_output_info(m, i, name, dtype, ndim, shape)
                             : fleet_model_input_info(m, i, name, dtype, ndim, shape);
    if (st == FLEET_OK)
        st = output ? fleet_model_output_shape(m, i, batch, ndim, shape)
                    : fleet_model_input_shape(m, i, batch, ndim, shape);
    if (st != FLEET_OK)
        return st;
    size_t n = fleet_dtype_size(*dtype);
    for (int d = 0; d < *ndim; d++)
        n *= (size_t)shape[d];
    *bytes = n;
    return FLEET_OK;
}

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape)
{
    int k = snprintf(buf, size, "[");
    for (int d = 0; d < ndim && k > 0 && (size_t)k < size; d++)
        k += snprintf(buf + k, size - (size_t)k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k > 0 && (size_t)k < size)
        snprintf(buf + k, size - (size_t)k, "]");
}

/* Tensor i of one side: created for `batch` and, for an input, filled from
 * host. A size that is not the shape's is FLEET_ERR_SHAPE_MISMATCH. */
static fleet_status make_tensor(fleet_model *m, bool output, int i, int64_t batch,
                                const void *host, size_t host_bytes, fleet_tensor **out)
{
    static const char fn[] = "fleet_model_run_host";
    fleet_dtype dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    size_t bytes;
    const char *name;
    fleet_status st = io_bytes(m, output, i, batch, &dtype, &ndim, shape, &bytes, &name);
    if (st != FLEET_OK)
        return st;
    if (host_bytes != bytes) {
        char text[160];
        shape_text(text, sizeof text, ndim, shape);
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: %s %d ('%s') is %zu bytes; %s %s at batch %lld is %zu", fn,
                            output ? "output" : "input", i, name, host_bytes,
                            fleet_dtype_name(dtype), text, (long long)batch, bytes);
    }
    FLEET_CHECK_ARG(host != NULL || bytes == 0, FLEET_ERR_NULL_POINTER, "%s: %s %d ('%s') is NULL",
                    fn, output ? "output" : "input", i, name);
    if ((st = fleet_tensor_create(m->device, dtype, ndim, shape, out)) != FLEET_OK)
        return st;
    if (!output && bytes > 0 && (st = fleet_tensor_copy_from_host(*out, host, bytes)) != FLEET_OK) {
        fleet_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

fleet_status fleet_model_run_host(fleet_model *model, int64_t batch, const void *const *inputs,
                                  const size_t *input_bytes, int n_inputs, void *const *outputs,
                                  const size_t *output_bytes, int n_outputs)
{
    static const char fn[] = "fleet_model_run_host";
    fleet_status st = fleet__model_enter(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(n_inputs == model->n_inputs && n_outputs == model->n_outputs,
                    FLEET_ERR_INVALID_ARGUMENT,
                    "%s: %d inputs and %d outputs given; the model has %d and %d", fn, n_inputs,
                    n_outputs, model->n_inputs, model->n_outputs);
    FLEET_CHECK_ARG((n_inputs == 0 || (inputs != NULL && input_bytes != NULL)) &&
                        outputs != NULL && output_bytes != NULL,
                    FLEET_ERR_NULL_POINTER, "%s: NULL argument", fn);
    fleet_tensor *in_t[FLEET_MODEL_MAX_IO] = {0};
    fleet_tensor *out_t[FLEET_MODEL_MAX_IO] = {0};
    for (int i = 0; i < n_inputs && st == FLEET_OK; i++)
        st = make_tensor(model, false, i, batch, inputs[i], input_bytes[i], &in_t[i]);
    for (int i = 0; i < n_outputs && st == FLEET_OK; i++)
        st = make_tensor(model, true, i, batch, outputs[i], output_bytes[i], &out_t[i]);
    if (st == FLEET_OK)
        st = fleet_model_run(model, (const fleet_tensor *const *)in_t, n_inputs, out_t, n_outputs);
    /* copy_to_host waits for this thread's stream: the run is done after the first */
    for (int i = 0; i < n_outputs && st == FLEET_OK; i++)
        if (output_bytes[i] > 0)
            st = fleet_tensor_copy_to_host(out_t[i], outputs[i], output_bytes[i]);
    /* Only the tensors made: a release of NULL would replace the failure's text. */
    for (int i = 0; i < n_inputs; i++)
        if (in_t[i] != NULL)
            fleet_tensor_release(in_t[i]);
    for (int i = 0; i < n_outputs; i++)
        if (out_t[i] != NULL)
            fleet_tensor_release(out_t[i]);
    return st;
}
