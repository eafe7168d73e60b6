/* oip_fuzz — libFuzzer target for the server's request parser
 * (src/serve/oip_json.c): the infer request's JSON envelope and the binary
 * tensor extension, as fleet serve hands them over.
 *
 * The first input byte picks the framing: even, the whole rest is JSON
 * (no Inference-Header-Content-Length); odd, the next two bytes are the
 * header length (which may lie), the rest the body. The body sits in a
 * malloc of exactly its size, so ASan sees any read past it. On success
 * the parser's promises are checked: every input has a name, a supported
 * datatype, at most FLEET_MAX_DIMS dimensions whose product is numel,
 * nbytes = numel * the element size, and data inside the body (binary) or
 * its own buffer (JSON); then each input is written back as a response
 * output (JSON and binary alternately), which must succeed and end with
 * the binary bytes. On failure the error text is set and nothing is kept.
 * Every body is also parsed with the data fast path off: status, error
 * text, names, dtypes, shapes and data bytes must agree. A broken promise
 * traps. Built and run by scripts/fuzz.sh (`make fuzz`). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/oip_json.h"
#include "fuzz.h"

static size_t esize(fleet_dtype d)
{
    return d == FLEET_DTYPE_I64                           ? 8
           : d == FLEET_DTYPE_F32 || d == FLEET_DTYPE_I32 ? 4
           : d == FLEET_DTYPE_BOOL                        ? 1
                                                          : 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int64_t header_len = -1;
    size_t skip = 1;
    if (data[0] & 1) {
        if (size < 3)
            return 0;
        header_len = (int64_t)data[1] | (int64_t)data[2] << 8;
        skip = 3;
    }
    size_t len = size - skip;
    char *body = malloc(len ? len : 1);
    CHECK(body != NULL);
    memcpy(body, data + skip, len);
    static fleet__oip_request req, slow;
    char err[256], err_slow[256];
    fleet_status st = fleet__oip_parse_request(body, len, header_len, &req, err, sizeof err);
    /* the data fast path and cJSON's nodes agree on every body */
    fleet_status st_slow =
        fleet__oip_parse_request_ex(body, len, header_len, false, &slow, err_slow, sizeof err_slow);
    CHECK(st == st_slow);
    if (st != FLEET_OK) {
        CHECK(err[0] != '\0');
        CHECK(strcmp(err, err_slow) == 0);
        CHECK(req.n_inputs == 0 && req.id == NULL);
        free(body);
        return 0;
    }
    CHECK(slow.n_inputs == req.n_inputs && slow.fast_arrays == 0);
    for (int i = 0; i < req.n_inputs; i++) {
        CHECK(strcmp(slow.inputs[i].name, req.inputs[i].name) == 0);
        CHECK(slow.inputs[i].dtype == req.inputs[i].dtype);
        CHECK(slow.inputs[i].ndim == req.inputs[i].ndim);
        CHECK(memcmp(slow.inputs[i].shape, req.inputs[i].shape, sizeof req.inputs[i].shape) == 0);
        CHECK(slow.inputs[i].nbytes == req.inputs[i].nbytes);
        CHECK(memcmp(slow.inputs[i].data, req.inputs[i].data, req.inputs[i].nbytes) == 0);
    }
    fleet__oip_request_free(&slow);
    CHECK(req.n_inputs >= 1 && req.n_inputs <= FLEET_MODEL_MAX_IO);
    fleet__oip_output outs[FLEET_MODEL_MAX_IO];
    size_t binary = 0;
    for (int i = 0; i < req.n_inputs; i++) {
        const fleet__oip_tensor *t = &req.inputs[i];
        CHECK(t->name[0] != '\0' && strlen(t->name) < FLEET__OIP_NAME_MAX);
        CHECK(t->ndim >= 0 && t->ndim <= FLEET_MAX_DIMS);
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] >= 0);
            n *= t->shape[d];
        }
        CHECK(n == t->numel);
        CHECK(t->nbytes == (size_t)n * esize(t->dtype));
        const char *p = t->data;
        if (t->owned == NULL) /* binary: inside the body's tail */
            CHECK(header_len >= 0 && p >= body + header_len && p + t->nbytes <= body + len);
        else
            CHECK(p == t->owned);
        for (size_t k = 0; k < t->nbytes; k++) /* every byte readable */
            binary += (unsigned char)p[k] == 0xA5;
        outs[i] = (fleet__oip_output){t->name, t->dtype,  t->ndim,   t->shape,
                                      t->data, t->nbytes, i % 2 == 1};
    }
    /* keep the response small: data text grows ~16 bytes per element */
    bool small = true;
    for (int i = 0; i < req.n_inputs; i++)
        small = small && req.inputs[i].numel <= 4096;
    if (small) {
        char *out;
        size_t out_len, json_len;
        CHECK(fleet__oip_build_response("m", "1", req.id, outs, req.n_inputs, &out, &out_len,
                                        &json_len) == FLEET_OK);
        size_t tail = 0;
        for (int i = 1; i < req.n_inputs; i += 2)
            tail += req.inputs[i].nbytes;
        CHECK(out_len == json_len + tail);
        CHECK(json_len > 0 && out[0] == '{' && out[json_len - 1] == '}');
        free(out);
    }
    (void)binary;
    fleet__oip_request_free(&req);
    free(body);
    return 0;
}
