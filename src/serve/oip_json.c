/* serve/oip_json.c — the infer request's and response's JSON (cJSON) and
 * the binary tensor extension. Everything here is bounded by the body it is
 * given: no allocation is sized from a shape before the data that shape
 * claims has been counted or measured, so a lying shape costs nothing. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup */
#endif
#include "serve/oip_json.h"
#include "serve/oip_data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/half.h"
#include "core/prim.h"

#define MAX_DEPTH FLEET__OIP_MAX_DEPTH

static const struct {
    const char *name;
    fleet_dtype dtype;
} dtypes[] = {
    {"FP32", FLEET_DTYPE_F32},  {"FP16", FLEET_DTYPE_F16},  {"BF16", FLEET_DTYPE_BF16},
    {"INT32", FLEET_DTYPE_I32}, {"INT64", FLEET_DTYPE_I64}, {"BOOL", FLEET_DTYPE_BOOL},
};

/* Bytes per element of the datatypes above (the parser stands alone: the
 * fuzzer builds it without the library). */
static size_t elem_size(fleet_dtype dtype)
{
    switch (dtype) {
    case FLEET_DTYPE_F16:
    case FLEET_DTYPE_BF16:
        return 2;
    case FLEET_DTYPE_F32:
    case FLEET_DTYPE_I32:
        return 4;
    case FLEET_DTYPE_I64:
        return 8;
    case FLEET_DTYPE_BOOL:
        return 1;
    }
    return 1;
}

const char *fleet__oip_dtype_name(fleet_dtype dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].name;
    return "UNKNOWN";
}

bool fleet__oip_dtype_parse(const char *name, fleet_dtype *out)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0) {
            *out = dtypes[i].dtype;
            return true;
        }
    return false;
}

void fleet__oip_request_free(fleet__oip_request *req)
{
    for (int i = 0; i < req->n_inputs; i++)
        free(req->inputs[i].owned);
    free(req->id);
    memset(req, 0, sizeof *req);
}

/* ---- data: counting, then converting ------------------------------------------------- */

/* Elements of a flat or nested array (-1: deeper than MAX_DEPTH, or a
 * non-array inside that is an array or object). */
static int64_t count_elements(const cJSON *a, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    int64_t n = 0;
    for (const cJSON *e = a->child; e != NULL; e = e->next) {
        if (cJSON_IsArray(e)) {
            int64_t k = count_elements(e, depth + 1);
            if (k < 0)
                return -1;
            n += k;
        } else if (cJSON_IsObject(e)) {
            return -1;
        } else {
            n++;
        }
    }
    return n;
}

static fleet_status put_one(fleet__oip_fill *f, const cJSON *e)
{
    fleet__oip_scalar k = cJSON_IsNumber(e)  ? FLEET__OIP_NUMBER
                          : cJSON_IsTrue(e)  ? FLEET__OIP_TRUE
                          : cJSON_IsFalse(e) ? FLEET__OIP_FALSE
                                             : FLEET__OIP_OTHER;
    return fleet__oip_put_scalar(f, k, cJSON_IsNumber(e) ? e->valuedouble : 0);
}

static fleet_status fill_elements(fleet__oip_fill *f, const cJSON *a)
{
    for (const cJSON *e = a->child; e != NULL; e = e->next) {
        fleet_status st = cJSON_IsArray(e) ? fill_elements(f, e) : put_one(f, e);
        if (st != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

/* The fast path's arrays of the request being parsed (oip_data.h). */
typedef struct fast_ctx {
    const char *text;
    const fleet__oip_span *spans;
    int n_spans;
} fast_ctx;

/* The span a marker string names, or NULL. */
static const fleet__oip_span *marked(const fast_ctx *fc, const cJSON *data)
{
    if (fc == NULL || !cJSON_IsString(data) || data->valuestring[0] != 0x01 ||
        data->valuestring[1] != 'F')
        return NULL;
    int k = atoi(data->valuestring + 2);
    return k >= 0 && k < fc->n_spans ? &fc->spans[k] : NULL;
}

/* ---- one input ------------------------------------------------------------------------ */

static fleet_status parse_shape(const cJSON *s, fleet__oip_tensor *t, char *err, size_t es)
{
    if (!cJSON_IsArray(s))
        return fleet__oip_refuse(err, es, "input '%s': \"shape\" must be an array of integers",
                                 t->name);
    int n = cJSON_GetArraySize(s);
    if (n > FLEET_MAX_DIMS)
        return fleet__oip_refuse(err, es, "input '%s': %d dimensions (at most %d)", t->name, n,
                                 FLEET_MAX_DIMS);
    int64_t numel = 1;
    bool overflow = false;
    int k = 0;
    for (const cJSON *d = s->child; d != NULL; d = d->next, k++) {
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
        if (!cJSON_IsNumber(d) || v != floor(v) || v < 0 || v >= 9223372036854775807.0)
            return fleet__oip_refuse(err, es, "input '%s': shape[%d] is not an integer >= 0",
                                     t->name, k);
        t->shape[k] = (int64_t)v;
        if (t->shape[k] != 0 && numel > INT64_MAX / t->shape[k])
            overflow = true;
        else
            numel *= t->shape[k];
    }
    t->ndim = n;
    if (overflow)
        return fleet__oip_refuse(err, es, "input '%s': the shape's element count overflows 64 bits",
                                 t->name);
    size_t esize = elem_size(t->dtype);
    if ((uint64_t)numel > (uint64_t)(SIZE_MAX / 2) / esize)
        return fleet__oip_refuse(err, es, "input '%s': the shape's byte size overflows", t->name);
    t->numel = numel;
    t->nbytes = (size_t)numel * esize;
    return FLEET_OK;
}

static fleet_status parse_input(const cJSON *in, fleet__oip_tensor *t, const char *bin,
                                size_t bin_len, size_t *bin_at, const fast_ctx *fc, bool *fast,
                                char *err, size_t es)
{
    if (!cJSON_IsObject(in))
        return fleet__oip_refuse(err, es, "\"inputs\" must hold objects");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        return fleet__oip_refuse(err, es, "an input has no \"name\" string");
    if (strlen(name->valuestring) >= FLEET__OIP_NAME_MAX)
        return fleet__oip_refuse(err, es, "an input's name is longer than %d bytes",
                                 FLEET__OIP_NAME_MAX - 1);
    strcpy(t->name, name->valuestring);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    if (!cJSON_IsString(dt))
        return fleet__oip_refuse(err, es, "input '%s': no \"datatype\" string", t->name);
    if (!fleet__oip_dtype_parse(dt->valuestring, &t->dtype))
        return fleet__oip_refuse(
            err, es,
            "input '%s': datatype '%.32s' is not supported (FP32, FP16, BF16, INT64, "
            "INT32, BOOL)",
            t->name, dt->valuestring);
    fleet_status st = parse_shape(cJSON_GetObjectItemCaseSensitive(in, "shape"), t, err, es);
    if (st != FLEET_OK)
        return st;

    const cJSON *params = cJSON_GetObjectItemCaseSensitive(in, "parameters");
    const cJSON *bsize = cJSON_IsObject(params)
                             ? cJSON_GetObjectItemCaseSensitive(params, "binary_data_size")
                             : NULL;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (bsize != NULL) {
        if (data != NULL)
            return fleet__oip_refuse(err, es, "input '%s': both \"data\" and binary_data_size",
                                     t->name);
        if (bin == NULL)
            return fleet__oip_refuse(
                err, es, "input '%s': binary_data_size without an Inference-Header-Content-Length",
                t->name);
        double v = cJSON_IsNumber(bsize) ? bsize->valuedouble : -1;
        if (v != floor(v) || v < 0)
            return fleet__oip_refuse(err, es, "input '%s': binary_data_size is not an integer >= 0",
                                     t->name);
        if (v != (double)t->nbytes)
            return fleet__oip_refuse(err, es,
                                     "input '%s': binary_data_size %.0f but the shape and datatype "
                                     "need %zu bytes",
                                     t->name, v, t->nbytes);
        if (t->nbytes > bin_len - *bin_at)
            return fleet__oip_refuse(
                err, es,
                "input '%s': binary_data_size %zu runs past the body's end (%zu bytes left)",
                t->name, t->nbytes, bin_len - *bin_at);
        t->data = bin + *bin_at;
        *bin_at += t->nbytes;
        return FLEET_OK;
    }
    if (data == NULL)
        return fleet__oip_refuse(err, es, "input '%s': no \"data\" (nor binary_data_size)",
                                 t->name);
    const fleet__oip_span *sp = marked(fc, data);
    if (sp != NULL) {
        if (sp->count != t->numel)
            return fleet__oip_refuse(
                err, es, "input '%s': \"data\" has %lld elements but the shape has %lld", t->name,
                (long long)sp->count, (long long)t->numel);
        t->owned = fleet__malloc(t->nbytes > 0 ? t->nbytes : 1);
        if (t->owned == NULL)
            return FLEET_ERR_OUT_OF_MEMORY;
        fleet__oip_fill f = {t->dtype, t->owned, 0, t->name, err, es};
        st = fleet__oip_fill_span(&f, fc->text, sp);
        if (st != FLEET_OK)
            return st;
        t->data = t->owned;
        *fast = true;
        return FLEET_OK;
    }
    if (!cJSON_IsArray(data))
        return fleet__oip_refuse(err, es, "input '%s': \"data\" must be an array", t->name);
    int64_t count = count_elements(data, 0);
    if (count < 0)
        return fleet__oip_refuse(err, es,
                                 "input '%s': \"data\" nests objects or more than %d arrays",
                                 t->name, MAX_DEPTH);
    if (count != t->numel)
        return fleet__oip_refuse(err, es,
                                 "input '%s': \"data\" has %lld elements but the shape has %lld",
                                 t->name, (long long)count, (long long)t->numel);
    t->owned = fleet__malloc(t->nbytes > 0 ? t->nbytes : 1);
    if (t->owned == NULL)
        return FLEET_ERR_OUT_OF_MEMORY;
    fleet__oip_fill f = {t->dtype, t->owned, 0, t->name, err, es};
    st = fill_elements(&f, data);
    if (st != FLEET_OK)
        return st;
    t->data = t->owned;
    return FLEET_OK;
}

static fleet_status parse_outputs(const cJSON *outs, fleet__oip_request *req, char *err, size_t es)
{
    if (!cJSON_IsArray(outs))
        return fleet__oip_refuse(err, es, "\"outputs\" must be an array");
    for (const cJSON *o = outs->child; o != NULL; o = o->next) {
        if (req->n_outputs == FLEET_MODEL_MAX_IO)
            return fleet__oip_refuse(err, es, "more than %d outputs requested", FLEET_MODEL_MAX_IO);
        const cJSON *name = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "name") : NULL;
        if (name == NULL || !cJSON_IsString(name) ||
            strlen(name->valuestring) >= FLEET__OIP_NAME_MAX)
            return fleet__oip_refuse(
                err, es, "a requested output has no \"name\" string (or a too long one)");
        fleet__oip_output_request *r = &req->outputs[req->n_outputs++];
        strcpy(r->name, name->valuestring);
        r->binary = req->binary_default;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        const cJSON *b =
            cJSON_IsObject(p) ? cJSON_GetObjectItemCaseSensitive(p, "binary_data") : NULL;
        if (b != NULL) {
            if (!cJSON_IsBool(b))
                return fleet__oip_refuse(err, es, "output '%s': binary_data must be true or false",
                                         r->name);
            r->binary = cJSON_IsTrue(b);
        }
    }
    return FLEET_OK;
}

static fleet_status parse_tree(const cJSON *root, const char *bin, size_t bin_len,
                               const fast_ctx *fc, fleet__oip_request *req, char *err, size_t es)
{
    if (!cJSON_IsObject(root))
        return fleet__oip_refuse(err, es, "the request is not a JSON object");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id != NULL) {
        if (!cJSON_IsString(id))
            return fleet__oip_refuse(err, es, "\"id\" must be a string");
        req->id = strdup(id->valuestring);
        if (req->id == NULL)
            return FLEET_ERR_OUT_OF_MEMORY;
    }
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    const cJSON *bd = cJSON_IsObject(params)
                          ? cJSON_GetObjectItemCaseSensitive(params, "binary_data_output")
                          : NULL;
    if (bd != NULL && !cJSON_IsBool(bd))
        return fleet__oip_refuse(err, es, "parameters.binary_data_output must be true or false");
    req->binary_default = bd != NULL && cJSON_IsTrue(bd);

    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(inputs) || inputs->child == NULL)
        return fleet__oip_refuse(err, es, "the request has no \"inputs\" array");
    size_t bin_at = 0;
    for (const cJSON *in = inputs->child; in != NULL; in = in->next) {
        if (req->n_inputs == FLEET_MODEL_MAX_IO)
            return fleet__oip_refuse(err, es, "more than %d inputs", FLEET_MODEL_MAX_IO);
        fleet__oip_tensor *t = &req->inputs[req->n_inputs++];
        bool fast = false;
        fleet_status st = parse_input(in, t, bin, bin_len, &bin_at, fc, &fast, err, es);
        req->fast_arrays += fast;
        if (st != FLEET_OK)
            return st;
        for (int j = 0; j < req->n_inputs - 1; j++)
            if (strcmp(req->inputs[j].name, t->name) == 0)
                return fleet__oip_refuse(err, es, "input '%s' given twice", t->name);
    }
    if (bin != NULL && bin_at != bin_len)
        return fleet__oip_refuse(
            err, es, "the binary data is %zu bytes but the inputs' binary_data_size add up to %zu",
            bin_len, bin_at);
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    return outs != NULL ? parse_outputs(outs, req, err, es) : FLEET_OK;
}

fleet_status fleet__oip_parse_request_ex(const char *body, size_t len, int64_t header_len,
                                         bool fast, fleet__oip_request *req, char *err,
                                         size_t err_size)
{
    memset(req, 0, sizeof *req);
    if (err_size > 0)
        err[0] = '\0';
    size_t json_len = len;
    const char *bin = NULL;
    size_t bin_len = 0;
    if (header_len >= 0) {
        if ((uint64_t)header_len > len)
            return fleet__oip_refuse(
                err, err_size,
                "Inference-Header-Content-Length %lld is larger than the body (%zu bytes)",
                (long long)header_len, len);
        json_len = (size_t)header_len;
        bin = body + json_len;
        bin_len = len - json_len;
    }
    fleet__oip_span *spans = fast ? fleet__malloc(sizeof *spans * FLEET__OIP_MAX_SPANS) : NULL;
    int n_spans = spans != NULL ? fleet__oip_find_spans(body, json_len, spans) : 0;
    char *copy = n_spans > 0 ? fleet__oip_mark_spans(body, json_len, spans, n_spans) : NULL;
    fast_ctx fc = {body, spans, copy != NULL ? n_spans : 0};
    const char *json = copy != NULL ? copy : body;
    cJSON *root = cJSON_ParseWithLength(json, json_len);
    fleet_status st;
    if (root == NULL) {
        /* cJSON's error pointer is one global: another thread's parse may
         * have moved it, so it is used only when it points into ours. */
        const char *at = cJSON_GetErrorPtr();
        size_t off = at != NULL && at >= json && at <= json + json_len ? (size_t)(at - json) : 0;
        st = fleet__oip_refuse(err, err_size, "malformed JSON near byte %zu", off);
    } else {
        st = parse_tree(root, bin, bin_len, &fc, req, err, err_size);
        cJSON_Delete(root);
    }
    free(copy);
    free(spans);
    if (st != FLEET_OK) {
        if (st == FLEET_ERR_OUT_OF_MEMORY)
            snprintf(err, err_size, "out of memory parsing the request");
        fleet__oip_request_free(req);
    }
    return st;
}

fleet_status fleet__oip_parse_request(const char *body, size_t len, int64_t header_len,
                                      fleet__oip_request *req, char *err, size_t err_size)
{
    return fleet__oip_parse_request_ex(body, len, header_len, true, req, err, err_size);
}

/* ---- the response --------------------------------------------------------------------- */

typedef struct text {
    char *p;
    size_t len, cap;
    bool oom;
} text;

static void text_reserve(text *t, size_t more)
{
    if (t->oom || t->len + more + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *p = fleet__realloc(t->p, cap);
    if (p == NULL) {
        t->oom = true;
        return;
    }
    t->p = p;
    t->cap = cap;
}

/* The "data" array's text, written directly (the fast path: no cJSON node
 * per element); f32 with 9 significant digits, which round-trips. */
static char *data_text(const fleet__oip_output *o)
{
    text t = {0};
    int64_t n = 1;
    for (int i = 0; i < o->ndim; i++)
        n *= o->shape[i];
    text_reserve(&t, (size_t)n * 16 + 2);
    if (t.oom)
        return NULL;
    t.p[t.len++] = '[';
    const unsigned char *d = o->data;
    for (int64_t i = 0; i < n && !t.oom; i++) {
        char buf[40];
        int k = 0;
        switch (o->dtype) {
        case FLEET_DTYPE_F32: {
            float x;
            memcpy(&x, d + 4 * i, 4);
            k = isfinite(x) ? snprintf(buf, sizeof buf, "%.9g", (double)x)
                            : snprintf(buf, sizeof buf, "null");
            break;
        }
        case FLEET_DTYPE_F16:
        case FLEET_DTYPE_BF16: {
            uint16_t h;
            memcpy(&h, d + 2 * i, 2);
            float x = o->dtype == FLEET_DTYPE_F16 ? fleet__f16_to_f32(h) : fleet__bf16_to_f32(h);
            k = isfinite(x) ? snprintf(buf, sizeof buf, "%.5g", (double)x)
                            : snprintf(buf, sizeof buf, "null");
            break;
        }
        case FLEET_DTYPE_I32: {
            int32_t x;
            memcpy(&x, d + 4 * i, 4);
            k = snprintf(buf, sizeof buf, "%ld", (long)x);
            break;
        }
        case FLEET_DTYPE_I64: {
            int64_t x;
            memcpy(&x, d + 8 * i, 8);
            k = snprintf(buf, sizeof buf, "%lld", (long long)x);
            break;
        }
        case FLEET_DTYPE_BOOL:
            k = snprintf(buf, sizeof buf, "%s", d[i] ? "true" : "false");
            break;
        }
        text_reserve(&t, (size_t)k + 1);
        if (t.oom)
            break;
        if (i > 0)
            t.p[t.len++] = ',';
        memcpy(t.p + t.len, buf, (size_t)k);
        t.len += (size_t)k;
    }
    text_reserve(&t, 1);
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    t.p[t.len++] = ']';
    t.p[t.len] = '\0';
    return t.p;
}

fleet_status fleet__oip_build_response(const char *model, const char *version, const char *id,
                                       const fleet__oip_output *outputs, int n, char **body,
                                       size_t *body_len, size_t *json_len)
{
    *body = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *outs = root ? cJSON_AddArrayToObject(root, "outputs") : NULL;
    bool ok = outs != NULL && cJSON_AddStringToObject(root, "model_name", model) &&
              cJSON_AddStringToObject(root, "model_version", version) &&
              (id == NULL || cJSON_AddStringToObject(root, "id", id));
    size_t binary = 0;
    for (int i = 0; ok && i < n; i++) {
        const fleet__oip_output *o = &outputs[i];
        cJSON *t = cJSON_CreateObject();
        ok = t != NULL && cJSON_AddItemToArray(outs, t);
        if (!ok) {
            cJSON_Delete(t);
            break;
        }
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        ok = cJSON_AddStringToObject(t, "name", o->name) &&
             cJSON_AddStringToObject(t, "datatype", fleet__oip_dtype_name(o->dtype)) && shape;
        for (int d = 0; ok && d < o->ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)o->shape[d]));
        if (!ok)
            break;
        if (o->binary) {
            cJSON *p = cJSON_AddObjectToObject(t, "parameters");
            ok = p && cJSON_AddNumberToObject(p, "binary_data_size", (double)o->nbytes);
            binary += o->nbytes;
        } else {
            char *d = data_text(o);
            ok = d != NULL && cJSON_AddRawToObject(t, "data", d);
            free(d);
        }
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (json == NULL)
        return FLEET_ERR_OUT_OF_MEMORY;
    size_t jl = strlen(json);
    char *all = binary ? fleet__realloc(json, jl + binary) : json;
    if (all == NULL) {
        free(json);
        return FLEET_ERR_OUT_OF_MEMORY;
    }
    size_t at = jl;
    for (int i = 0; i < n; i++)
        if (outputs[i].binary) {
            memcpy(all + at, outputs[i].data, outputs[i].nbytes);
            at += outputs[i].nbytes;
        }
    *body = all;
    *body_len = at;
    *json_len = jl;
    return FLEET_OK;
}

char *fleet__oip_error_json(const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;
    if (root != NULL && cJSON_AddStringToObject(root, "error", msg))
        out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}
