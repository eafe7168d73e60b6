/* fleet/onnx.h — load an ONNX model into a fleet model.
 *
 *     fleet_onnx_options o = FLEET_ONNX_OPTIONS_INIT;
 *     const char *names[] = {"sequence_length"};
 *     const int64_t values[] = {128};
 *     o.dim_names = names, o.dim_values = values, o.n_dims = 1;
 *     fleet_model *m;
 *     fleet_status st = fleet_model_load_onnx(dev, "model.onnx", &o, &m);
 *     // m is finalized: fleet_model_run it from any thread, or put a batcher
 *     // in front of it; fleet_model_input_info names its inputs.
 *
 * The file is read with fleet's own protobuf reader (bounded in every
 * length, count and nesting: the file is untrusted) and its graph lowered
 * onto the model builder's ops (fleet/model.h): the model's inputs and
 * outputs keep their ONNX names and dtypes. One dimension stays symbolic,
 * the batch: every other named dimension (`dim_param`) must be bound in the
 * options, and the subgraphs that compute shapes from them fold away at
 * load. An operator, attribute or dtype fleet cannot run is refused at load
 * with FLEET_ERR_UNSUPPORTED and one text that lists every unsupported node
 * ("Foo (opset 17, node 'n1')"); a malformed file with FLEET_ERR_INVALID_MODEL
 * and the byte offset. Weights are uploaded from the file's mapping (never
 * copied in host memory first); external data (`location`, models over
 * 2 GB) is read only from files inside the model's folder (or
 * external_data_dir).
 *
 * Operators (the standard domain, opsets 7 through 21): see
 * docs/ARCHITECTURE.md ("ONNX import") for the list and its attributes. */
#ifndef FLEET_ONNX_H
#define FLEET_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fleet_onnx_options {
    /* Named dimensions bound to sizes: dim_names[i] = dim_values[i]. */
    const char *const *dim_names;
    const int64_t *dim_values;
    int n_dims;
    /* The named dimension that is the batch; NULL: the first dimension of
     * the first input, when it is named (or unknown). A model without one
     * runs with batch 1 only. */
    const char *batch_dim;
    /* Where external data files are; NULL: the model file's folder (a
     * model loaded from memory then refuses external data). */
    const char *external_data_dir;
} fleet_onnx_options;

#define FLEET_ONNX_OPTIONS_INIT {NULL, NULL, 0, NULL, NULL}

/* A finalized model from the file at path (options NULL: the defaults). */
FLEET_API fleet_status fleet_model_load_onnx(fleet_device *device, const char *path,
                                             const fleet_onnx_options *options,
                                             fleet_model **out);
/* The same from `size` bytes at data (read during the call only). */
FLEET_API fleet_status fleet_model_load_onnx_memory(fleet_device *device, const void *data,
                                                    size_t size,
                                                    const fleet_onnx_options *options,
                                                    fleet_model **out);

/* What a load of the file does, for tools (`fleet info model.onnx`): the
 * load is run on device and its model destroyed. FLEET_OK whenever the file
 * could be read and decoded — out->unsupported then says whether a load
 * would be refused, and why — else the load's error. */
typedef struct fleet_onnx_report {
    int64_t ir_version, opset;       /* the standard domain's                 */
    char producer[64];               /* producer_name producer_version        */
    int nodes, initializers;
    int64_t parameters;              /* elements of the initializers          */
    int folded, fused;               /* nodes computed at load, fused at load */
    char ops[1024];                  /* "MatMul 12, Add 24, ...": the op types
                                      * and their counts, in first use order  */
    int n_unsupported;
    char unsupported[2048];          /* every unsupported node and why
                                      * ("; "-separated, cut past 2 KiB)      */
    fleet_status load_status;        /* what fleet_model_load_onnx returns    */
} fleet_onnx_report;
FLEET_API fleet_status fleet_onnx_inspect(fleet_device *device, const char *path,
                                          const fleet_onnx_options *options,
                                          fleet_onnx_report *out);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_ONNX_H */
