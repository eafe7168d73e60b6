/* serve/oip_data.h — the "data" arrays of an infer request: converting
 * one element into a tensor's dtype (both paths use it), and the fast path
 * that takes large arrays of numbers out of cJSON's hands (oip_data.c says
 * how). Private to serve/oip_json.c. */
#ifndef FLEET_SERVE_OIP_DATA_H
#define FLEET_SERVE_OIP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/assert.h"
#include "fleet/dtype.h"
#include "fleet/status.h"

#define FLEET__OIP_MAX_DEPTH 32   /* nesting of a "data" array past the outer one */
#define FLEET__OIP_MAX_SPANS 256  /* fast-path arrays per request                */

/* Store the formatted reason in err and return FLEET_ERR_INVALID_ARGUMENT. */
fleet_status fleet__oip_refuse(char *err, size_t size, const char *fmt, ...) FLEET_PRINTF(3, 4);

/* Where converted elements go. */
typedef struct fleet__oip_fill {
    fleet_dtype dtype;
    unsigned char *out;
    int64_t at;         /* the next element's index */
    const char *name;   /* the input's, for errors  */
    char *err;
    size_t err_size;
} fleet__oip_fill;

/* One element of a data array: a number, true, false, or anything else. */
typedef enum fleet__oip_scalar { FLEET__OIP_NUMBER, FLEET__OIP_TRUE, FLEET__OIP_FALSE,
                                 FLEET__OIP_OTHER } fleet__oip_scalar;

/* Element f->at, converted to f->dtype (or refused, saying why). */
fleet_status fleet__oip_put_scalar(fleet__oip_fill *f, fleet__oip_scalar kind, double v);

/* A "data" array the fast path takes: bytes [start, end) of the JSON. */
typedef struct fleet__oip_span {
    size_t start, end;
    int64_t count;      /* its elements */
} fleet__oip_span;

/* The fast-path arrays of n bytes of JSON, in text order (at most
 * FLEET__OIP_MAX_SPANS); 0 when the body must take the slow path. */
int fleet__oip_find_spans(const char *json, size_t n, fleet__oip_span *spans);
/* A copy of the JSON with each span replaced by the marker string
 * "\u0001F<k>" and blanks (fleet__malloc'd; NULL when out of memory). */
char *fleet__oip_mark_spans(const char *json, size_t n, const fleet__oip_span *spans, int n_spans);
/* Convert a span's elements (span->count of them) into f. */
fleet_status fleet__oip_fill_span(fleet__oip_fill *f, const char *json, const fleet__oip_span *sp);

#endif /* FLEET_SERVE_OIP_DATA_H */
