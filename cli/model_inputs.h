/* cli/model_inputs.h — the inputs the fleet tool makes for a model it runs
 * without given data (`fleet run model.onnx`, `fleet bench --model`), in one
 * place so both commands feed a model the same values:
 *
 *     unsigned seed = 17;
 *     fleet_cli_input_fill(FLEET_DTYPE_F32, host, bytes, &seed);
 *     // or: every input of m at batch b, made and uploaded, and its outputs
 *     fleet_tensor *in[FLEET_MODEL_MAX_IO] = {0}, *out[FLEET_MODEL_MAX_IO] = {0};
 *     int ni, no;
 *     fleet_status st = fleet_cli_model_tensors(m, dev, b, 17, in, &ni, out, &no);
 *     ... fleet_model_run(m, in, ni, out, no) ...
 *     fleet_cli_model_tensors_release(in, out);
 *
 * The values: floats uniform in [-1, 1) from a linear congruential sequence
 * (seed' = seed * 1103515245 + 12345, one step per element), every other
 * dtype the integer 1 in its width (valid token ids, masks of ones, bools
 * true). The same seed gives the same bytes on every run and machine.
 *
 * Header-only (static inline) so that each command links it without a build
 * change. Thread-safe: no shared state. */
#ifndef FLEET_CLI_MODEL_INPUTS_H
#define FLEET_CLI_MODEL_INPUTS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

/* Fills `bytes` bytes at host with elements of dtype, advancing *seed one
 * step per element of every dtype (only floats use the value). */
static inline void fleet_cli_input_fill(fleet_dtype dtype, void *host, size_t bytes,
                                        unsigned *seed)
{
    size_t es = fleet_dtype_size(dtype);
    unsigned char *h = host;
    for (size_t k = 0; k < bytes / (es ? es : 1); k++) {
        *seed = *seed * 1103515245u + 12345u;
        float f = (float)((*seed >> 8) & 0xffff) / 32768.0f - 1.0f;
        int64_t one = 1;
        if (dtype == FLEET_DTYPE_F32)
            memcpy(h + k * 4, &f, 4);
        else
            memcpy(h + k * es, &one, es); /* little-endian: 1 in any width */
    }
}

/* Creates on dev every input of m at batch size `batch` (FLEET_DIM_BATCH
 * filled in), filled by fleet_cli_input_fill from seed in declaration order
 * and uploaded, and every output; *n_in and *n_out are the model's counts.
 * in and out hold FLEET_MODEL_MAX_IO entries, NULL on entry: on failure
 * what was created is left there for fleet_cli_model_tensors_release, and
 * fleet_last_error() says why. */
static inline fleet_status fleet_cli_model_tensors(fleet_model *m, fleet_device *dev,
                                                   int64_t batch, unsigned seed,
                                                   fleet_tensor **in, int *n_in,
                                                   fleet_tensor **out, int *n_out)
{
    *n_in = fleet_model_input_count(m);
    *n_out = fleet_model_output_count(m);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < (pass ? *n_out : *n_in); i++) {
            const char *name;
            fleet_dtype dt;
            int ndim;
            int64_t shape[FLEET_MAX_DIMS];
            fleet_status st = pass ? fleet_model_output_info(m, i, &name, &dt, &ndim, shape)
                                   : fleet_model_input_info(m, i, &name, &dt, &ndim, shape);
            /* the shape at this batch (an output's FLEET_DIM_BATCH_TIMES(k)
             * too) */
            if (st == FLEET_OK)
                st = pass ? fleet_model_output_shape(m, i, batch, &ndim, shape)
                          : fleet_model_input_shape(m, i, batch, &ndim, shape);
            fleet_tensor **t = pass ? &out[i] : &in[i];
            if (st == FLEET_OK)
                st = fleet_tensor_create(dev, dt, ndim, shape, t);
            if (st != FLEET_OK)
                return st;
            if (pass)
                continue;
            size_t bytes = fleet_tensor_nbytes(*t);
            unsigned char *h = malloc(bytes + 1);
            if (h == NULL)
                return FLEET_ERR_OUT_OF_MEMORY;
            fleet_cli_input_fill(dt, h, bytes, &seed);
            st = fleet_tensor_copy_from_host(*t, h, bytes);
            free(h);
            if (st != FLEET_OK)
                return st;
        }
    return FLEET_OK;
}

/* Releases the tensors fleet_cli_model_tensors made (NULL entries skipped)
 * and sets their entries to NULL. */
static inline void fleet_cli_model_tensors_release(fleet_tensor **in, fleet_tensor **out)
{
    for (int k = 0; k < FLEET_MODEL_MAX_IO; k++) {
        if (in[k] != NULL)
            fleet_tensor_release(in[k]);
        if (out[k] != NULL)
            fleet_tensor_release(out[k]);
        in[k] = out[k] = NULL;
    }
}

#endif /* FLEET_CLI_MODEL_INPUTS_H */
