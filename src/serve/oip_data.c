/* serve/oip_data.c — the "data" arrays of an infer request: each element
 * into the tensor's dtype, and the fast path for large arrays. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "serve/oip_data.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "core/prim.h"

fleet_status fleet__oip_refuse(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return FLEET_ERR_INVALID_ARGUMENT;
}

/* Element f->at, converted to the tensor's dtype; both paths (cJSON's nodes
 * and the fast one) come here, so they check and convert alike. */
fleet_status fleet__oip_put_scalar(fleet__oip_fill *f, fleet__oip_scalar kind, double v)
{
    int64_t i = f->at++;
    if (f->dtype == FLEET_DTYPE_BOOL) {
        if (kind == FLEET__OIP_TRUE || kind == FLEET__OIP_FALSE) {
            f->out[i] = kind == FLEET__OIP_TRUE;
            return FLEET_OK;
        }
        if (kind == FLEET__OIP_NUMBER && (v == 0 || v == 1)) {
            f->out[i] = v == 1;
            return FLEET_OK;
        }
        return fleet__oip_refuse(f->err, f->err_size,
                                 "input '%s': data[%lld] is not a BOOL (true, false)", f->name,
                                 (long long)i);
    }
    if (kind != FLEET__OIP_NUMBER)
        return fleet__oip_refuse(f->err, f->err_size, "input '%s': data[%lld] is not a number",
                                 f->name, (long long)i);
    switch (f->dtype) {
    case FLEET_DTYPE_F32: {
        float x = (float)v;
        memcpy(f->out + 4 * i, &x, 4);
        return FLEET_OK;
    }
    case FLEET_DTYPE_F16: {
        uint16_t h = fleet__f32_to_f16((float)v);
        memcpy(f->out + 2 * i, &h, 2);
        return FLEET_OK;
    }
    case FLEET_DTYPE_BF16: {
        uint16_t h = fleet__f32_to_bf16((float)v);
        memcpy(f->out + 2 * i, &h, 2);
        return FLEET_OK;
    }
    case FLEET_DTYPE_I32:
        if (v != floor(v) || v < -2147483648.0 || v > 2147483647.0)
            return fleet__oip_refuse(f->err, f->err_size,
                                     "input '%s': data[%lld] = %g is not an INT32", f->name,
                                     (long long)i, v);
        {
            int32_t x = (int32_t)v;
            memcpy(f->out + 4 * i, &x, 4);
        }
        return FLEET_OK;
    case FLEET_DTYPE_I64:
        /* JSON numbers arrive as doubles: exact up to 2^53 (the binary
         * extension carries any INT64). */
        if (v != floor(v) || v < -9007199254740992.0 || v > 9007199254740992.0)
            return fleet__oip_refuse(
                f->err, f->err_size,
                "input '%s': data[%lld] = %g is not an INT64 within +-2^53 (send larger "
                "ones as binary data)",
                f->name, (long long)i, v);
        {
            int64_t x = (int64_t)v;
            memcpy(f->out + 8 * i, &x, 8);
        }
        return FLEET_OK;
    default:
        return fleet__oip_refuse(f->err, f->err_size, "input '%s': unsupported dtype", f->name);
    }
}

/* ---- the data fast path ----------------------------------------------------------------
 *
 * A large "data" array would cost cJSON a node (a malloc) per element. So
 * before cJSON sees the JSON, a scanner finds each value of a "data" key
 * that is an array of only numbers, true, false and nested arrays (at least
 * FAST_MIN_SPAN bytes), and in a copy of the JSON replaces it by a marker
 * string of the same length ("\u0001F<k>" and blanks): cJSON parses the
 * envelope alone, and the input's elements are converted straight from the
 * original text, through put_scalar as cJSON's would be. Anything the
 * scanner does not take (a string or object inside, a malformed number,
 * nesting past MAX_DEPTH) stays for cJSON, which reports it as before; the
 * replacement swaps one JSON value for another, so it never makes a
 * malformed body valid (fuzz/oip_fuzz.c checks both paths agree). A body
 * holding "\u0001" or a 0x01 byte anywhere takes the slow path, so a marker
 * is always one of ours. Numbers are read as cJSON reads them: the token
 * copied, '.' made the locale's decimal point, strtod. */
#define FAST_MIN_SPAN 32
#define SCAN_MAX_DEPTH 64

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The length of the JSON number (RFC 8259) at t, 0 if none or over 63
 * bytes (left to cJSON). */
static size_t number_len(const char *t, size_t n)
{
    size_t i = 0;
    if (i < n && t[i] == '-')
        i++;
    if (i < n && t[i] == '0')
        i++;
    else if (i < n && t[i] >= '1' && t[i] <= '9')
        while (i < n && is_digit(t[i]))
            i++;
    else
        return 0;
    if (i < n && t[i] == '.') {
        i++;
        if (!(i < n && is_digit(t[i])))
            return 0;
        while (i < n && is_digit(t[i]))
            i++;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        if (!(i < n && is_digit(t[i])))
            return 0;
        while (i < n && is_digit(t[i]))
            i++;
    }
    return i <= 63 ? i : 0;
}

/* The k-byte JSON number at t as strtod reads it, when that is exact
 * without strtod (Clinger's fast path: a decimal mantissa below 2^53 and a
 * power of ten within 10^22, both exact doubles, so one multiply or divide
 * rounds once, correctly, as strtod does); false to leave it to strtod. */
static bool decimal_fast(const char *t, size_t k, double *v)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0;
    bool neg = t[0] == '-';
    i += neg;
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    for (; i < k && is_digit(t[i]); i++, digits += m != 0)
        m = m * 10 + (uint64_t)(t[i] - '0');
    if (i < k && t[i] == '.')
        for (i++; i < k && is_digit(t[i]); i++, exp10--, digits += m != 0)
            m = m * 10 + (uint64_t)(t[i] - '0');
    if (digits > 15) /* m might pass 2^53 (or wrap) */
        return false;
    if (i < k && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        bool eneg = t[i] == '-';
        i += t[i] == '-' || t[i] == '+';
        int e = 0;
        for (; i < k && is_digit(t[i]); i++)
            if (e < 10000)
                e = e * 10 + (t[i] - '0');
        exp10 += eneg ? -e : e;
    }
    if (exp10 < -22 || exp10 > 22)
        return false;
    double x = (double)m;
    x = exp10 < 0 ? x / pow10[-exp10] : x * pow10[exp10];
    *v = neg ? -x : x;
    return true;
}

/* The scalar at t (n bytes left): its kind, value (when v is not NULL;
 * `point` is the locale's decimal point) and length; 0 if none. */
static size_t scalar_at(const char *t, size_t n, fleet__oip_scalar *kind, double *v, char point)
{
    if (n >= 4 && memcmp(t, "true", 4) == 0) {
        *kind = FLEET__OIP_TRUE;
        return 4;
    }
    if (n >= 5 && memcmp(t, "false", 5) == 0) {
        *kind = FLEET__OIP_FALSE;
        return 5;
    }
    size_t k = number_len(t, n);
    if (k == 0)
        return 0;
    if (v != NULL && decimal_fast(t, k, v)) {
        /* exact without strtod */
    } else if (v != NULL && point == '.') {
        /* strtod stops where the token does: what follows it in a
         * scanned array is a blank, ',' or ']' */
        *v = strtod(t, NULL);
    } else if (v != NULL) {
        char buf[64];
        memcpy(buf, t, k);
        buf[k] = '\0';
        for (size_t i = 0; i < k; i++)
            if (buf[i] == '.')
                buf[i] = point;
        *v = strtod(buf, NULL);
    }
    *kind = FLEET__OIP_NUMBER;
    return k;
}

/* t[at] is '['. One past the array's ']' if it holds only scalars and
 * nested arrays (no deeper than the slow path takes), counting the
 * scalars; 0 otherwise. */
static size_t scan_array(const char *t, size_t n, size_t at, int64_t *count)
{
    int depth = 0;
    int64_t c = 0;
    bool want_value = true, just_opened = false;
    for (size_t i = at; i < n;) {
        char ch = t[i];
        if (is_ws(ch)) {
            i++;
        } else if (ch == '[') {
            if (!want_value || ++depth > FLEET__OIP_MAX_DEPTH + 1)
                return 0;
            just_opened = true;
            i++;
        } else if (ch == ']') {
            if (want_value && !just_opened)
                return 0;
            want_value = just_opened = false;
            i++;
            if (--depth == 0) {
                *count = c;
                return i;
            }
        } else if (ch == ',') {
            if (want_value)
                return 0;
            want_value = true;
            just_opened = false;
            i++;
        } else {
            fleet__oip_scalar kind;
            size_t k = want_value ? scalar_at(t + i, n - i, &kind, NULL, '.') : 0;
            if (k == 0)
                return 0;
            c++;
            i += k;
            want_value = just_opened = false;
        }
    }
    return 0;
}

/* The "data" arrays worth the fast path, in text order. */
int fleet__oip_find_spans(const char *t, size_t n, fleet__oip_span *spans)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] == 0x01 || (t[i] == '\\' && i + 5 < n && memcmp(t + i, "\\u0001", 6) == 0))
            return 0;
    bool object[SCAN_MAX_DEPTH];
    int depth = 0, n_spans = 0;
    bool expect_key = false;
    size_t i = 0;
    while (i < n && n_spans < FLEET__OIP_MAX_SPANS) {
        char ch = t[i];
        if (ch == '"') {
            size_t j = i + 1;
            while (j < n && t[j] != '"')
                j += t[j] == '\\' ? 2 : 1;
            if (j >= n)
                break; /* unterminated: cJSON refuses it */
            bool key = depth > 0 && object[depth - 1] && expect_key;
            bool data = key && j - i - 1 == 4 && memcmp(t + i + 1, "data", 4) == 0;
            i = j + 1;
            if (!key)
                continue;
            expect_key = false;
            while (i < n && is_ws(t[i]))
                i++;
            if (i >= n || t[i] != ':')
                continue;
            i++;
            while (i < n && is_ws(t[i]))
                i++;
            int64_t count = 0;
            size_t end = data && i < n && t[i] == '[' ? scan_array(t, n, i, &count) : 0;
            if (end != 0 && end - i >= FAST_MIN_SPAN) {
                spans[n_spans++] = (fleet__oip_span){i, end, count};
                i = end;
            }
        } else if (ch == '{' || ch == '[') {
            if (depth == SCAN_MAX_DEPTH)
                return 0;
            object[depth++] = ch == '{';
            expect_key = ch == '{';
            i++;
        } else if (ch == '}' || ch == ']') {
            depth -= depth > 0;
            expect_key = false;
            i++;
        } else if (ch == ',') {
            expect_key = depth > 0 && object[depth - 1];
            i++;
        } else {
            i++;
        }
    }
    return n_spans;
}

/* The JSON with each span replaced by its marker (fleet__malloc'd). */
char *fleet__oip_mark_spans(const char *t, size_t n, const fleet__oip_span *spans, int n_spans)
{
    char *copy = fleet__malloc(n ? n : 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, t, n);
    for (int k = 0; k < n_spans; k++) {
        char marker[24];
        int m = snprintf(marker, sizeof marker, "\"\\u0001F%d\"", k);
        memset(copy + spans[k].start, ' ', spans[k].end - spans[k].start);
        memcpy(copy + spans[k].start, marker, (size_t)m);
    }
    return copy;
}

fleet_status fleet__oip_fill_span(fleet__oip_fill *f, const char *t, const fleet__oip_span *sp)
{
    char point = localeconv()->decimal_point[0];
    for (size_t i = sp->start; i < sp->end;) {
        char ch = t[i];
        if (ch == '[' || ch == ']' || ch == ',' || is_ws(ch)) {
            i++;
            continue;
        }
        fleet__oip_scalar kind;
        double v = 0;
        size_t k = scalar_at(t + i, sp->end - i, &kind, &v, point);
        FLEET_ASSERT(k > 0); /* scan_array took it */
        fleet_status st = fleet__oip_put_scalar(f, kind, v);
        if (st != FLEET_OK)
            return st;
        i += k;
    }
    return FLEET_OK;
}
