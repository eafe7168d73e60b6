/* serve/oip_json.h — the Open Inference Protocol's infer request and
 * response, as pure functions on buffers (no sockets, no models): what
 * fuzz/oip_fuzz.c and tests/serve_oip_json.c drive directly.
 *
 * A request body is JSON, or, with the binary tensor extension, `header_len`
 * bytes of JSON followed by the raw bytes of each input that has
 * parameters.binary_data_size, in the order the inputs are listed. Parsing
 * checks everything it can without the model: datatypes, shapes (product
 * overflow), element counts against the shape, binary sizes against the
 * shape and against the bytes that are there. Input data is converted into
 * host buffers of the tensor's dtype (JSON) or points into the body
 * (binary), so the body must outlive the request. */
#ifndef FLEET_SERVE_OIP_JSON_H
#define FLEET_SERVE_OIP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/dtype.h"
#include "fleet/model.h"

#define FLEET__OIP_NAME_MAX 256 /* bytes of a tensor name, its NUL included */

typedef struct fleet__oip_tensor {
    char name[FLEET__OIP_NAME_MAX];
    fleet_dtype dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    int64_t numel;
    const void *data; /* numel * fleet_dtype_size(dtype) bytes           */
    size_t nbytes;
    void *owned;      /* what data points at when converted from JSON    */
} fleet__oip_tensor;

typedef struct fleet__oip_output_request {
    char name[FLEET__OIP_NAME_MAX];
    bool binary;
} fleet__oip_output_request;

typedef struct fleet__oip_request {
    char *id;                   /* the request's "id", or NULL              */
    int n_inputs;
    fleet__oip_tensor inputs[FLEET_MODEL_MAX_IO];
    int n_outputs;              /* 0: every output of the model            */
    fleet__oip_output_request outputs[FLEET_MODEL_MAX_IO];
    bool binary_default;        /* parameters.binary_data_output            */
    int fast_arrays;            /* inputs whose data took the fast path     */
} fleet__oip_request;

/* Parse `len` bytes of body; header_len < 0: the whole body is JSON (no
 * binary extension), else the JSON's length (Inference-Header-Content-Length).
 * FLEET_OK, or FLEET_ERR_INVALID_ARGUMENT with the reason in err (a 400),
 * or FLEET_ERR_OUT_OF_MEMORY. On failure *req holds nothing to free. */
fleet_status fleet__oip_parse_request(const char *body, size_t len, int64_t header_len,
                                      fleet__oip_request *req, char *err, size_t err_size);
/* The same, choosing the "data" arrays' path: fast (what the server uses:
 * large arrays of numbers are converted straight from the text, cJSON
 * parsing only the rest) or not (every element through cJSON's nodes). The
 * two give the same result for every body (fuzz/oip_fuzz.c checks). */
fleet_status fleet__oip_parse_request_ex(const char *body, size_t len, int64_t header_len,
                                         bool fast, fleet__oip_request *req, char *err,
                                         size_t err_size);
/* Free what a parsed request owns (its converted data, its id). */
void fleet__oip_request_free(fleet__oip_request *req);

/* One output tensor of a response, in host memory. */
typedef struct fleet__oip_output {
    const char *name;
    fleet_dtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data;
    size_t nbytes;
    bool binary;        /* its bytes after the JSON, not in "data"        */
} fleet__oip_output;

/* The response body: JSON, then each binary output's bytes in order.
 * *json_len is the JSON's length (the Inference-Header-Content-Length when
 * any output is binary). *body is malloc'd. */
fleet_status fleet__oip_build_response(const char *model, const char *version, const char *id,
                                       const fleet__oip_output *outputs, int n, char **body,
                                       size_t *body_len, size_t *json_len);

/* {"error": "<text>"}, malloc'd (NULL when out of memory). */
char *fleet__oip_error_json(const char *text);

/* "FP32" <-> FLEET_DTYPE_F32, and FP16, BF16, INT32, INT64, BOOL. */
const char *fleet__oip_dtype_name(fleet_dtype dtype);
bool fleet__oip_dtype_parse(const char *name, fleet_dtype *out);

#endif /* FLEET_SERVE_OIP_JSON_H */
