/* model/safetensors.c — the safetensors parser (the format is in safetensors.h).
 *
 * The header is read by a small grammar-directed JSON reader rather than a
 * general one: the format fixes the shape of every value (an object of
 * objects whose values are a string or an array of integers), so anything
 * else is rejected where it appears, with what was expected. There is no
 * recursion and no nesting to bound: a '[' or '{' where a scalar belongs is
 * an error on the spot. The reader never looks past p->n, and every number
 * and product is checked before it is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "model/safetensors.h"
#include "core/prim.h"

/* ---- dtypes --------------------------------------------------------------- */

/* Every dtype the format defines, with its size in bits (F4 and F6 pack
 * several elements into a byte; a tensor of them must fill whole bytes). */
typedef struct st_dtype {
    const char *name;
    unsigned bits;
    int fleet; /* a fleet_dtype, or -1 */
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 32, FLEET_DTYPE_F32},   {"F16", 16, FLEET_DTYPE_F16}, {"BF16", 16, FLEET_DTYPE_BF16},
    {"I32", 32, FLEET_DTYPE_I32},   {"I64", 64, FLEET_DTYPE_I64}, {"F64", 64, -1},
    {"C64", 64, -1},                {"U64", 64, -1},              {"U32", 32, -1},
    {"I16", 16, -1},                {"U16", 16, -1},              {"I8", 8, -1},
    {"U8", 8, -1},                  {"BOOL", 8, -1},              {"F8_E4M3", 8, -1},
    {"F8_E5M2", 8, -1},             {"F8_E8M0", 8, -1},           {"F6_E2M3", 6, -1},
    {"F6_E3M2", 6, -1},             {"F4", 4, -1},
};

#define ST_DTYPE_NAME_MAX 15 /* longer than any name above */

static const st_dtype *st_dtype_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strlen(st_dtypes[i].name) == len && memcmp(st_dtypes[i].name, name, len) == 0)
            return &st_dtypes[i];
    return NULL;
}

/* ---- the reader and its errors -------------------------------------------- */

typedef struct st_parser {
    const uint8_t *h;   /* the header                                      */
    size_t n;           /* its length                                      */
    size_t i;           /* the cursor: h[i] is the next byte; i <= n        */
    const char *tensor; /* the entry being read, for messages; or NULL     */

    const uint8_t *data; /* the data section and its size                   */
    uint64_t data_size;

    char *names; /* every decoded name, NUL-terminated: names_used <= names_cap */
    size_t names_used, names_cap;
    fleet__st_tensor *t; /* count <= cap                                  */
    int count, cap;
    bool seen_metadata;
} st_parser;

/* "safetensors: [tensor 'x': ]<what>[ at byte N of the header]" as the
 * thread's error; `at` adds the cursor position (for syntax errors). */
FLEET_PRINTF(3, 0)
static fleet_status st_vfail(const st_parser *p, bool at, const char *fmt, va_list ap)
{
    char what[384], ctx[128] = "", where[48] = "";
    vsnprintf(what, sizeof what, fmt, ap);
    if (p->tensor != NULL)
        snprintf(ctx, sizeof ctx, "tensor '%.96s%s': ", p->tensor,
                 strlen(p->tensor) > 96 ? "..." : "");
    if (at)
        snprintf(where, sizeof where, " at byte %zu of the header", p->i);
    return fleet__error(FLEET_ERR_INVALID_MODEL, "safetensors: %s%s%s", ctx, what, where);
}

/* A semantic error (the JSON is fine, its meaning is not). */
FLEET_PRINTF(2, 3)
static fleet_status st_invalid(const st_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fleet_status st = st_vfail(p, false, fmt, ap);
    va_end(ap);
    return st;
}

/* A syntax error at the cursor. */
FLEET_PRINTF(2, 3)
static fleet_status st_syntax(const st_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fleet_status st = st_vfail(p, true, fmt, ap);
    va_end(ap);
    return st;
}

/* The next byte, or -1 at the end of the header. */
static int st_peek(const st_parser *p)
{
    return p->i < p->n ? p->h[p->i] : -1;
}

static void st_ws(st_parser *p)
{
    while (p->i < p->n &&
           (p->h[p->i] == ' ' || p->h[p->i] == '\t' || p->h[p->i] == '\n' || p->h[p->i] == '\r'))
        p->i++;
}

/* Skip whitespace, then consume `c` if it is next. */
static bool st_take(st_parser *p, char c)
{
    st_ws(p);
    if (st_peek(p) != (unsigned char)c)
        return false;
    p->i++;
    return true;
}

/* What is at the cursor, for "expected X, found Y". */
static const char *st_found(const st_parser *p, char *buf, size_t size)
{
    int c = st_peek(p);
    if (c < 0)
        return "the end of the header";
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte 0x%02x", (unsigned)c);
    return buf;
}

/* "expected <what>, found ..." at the cursor. */
static fleet_status st_expected(const st_parser *p, const char *what)
{
    char buf[16];
    return st_syntax(p, "expected %s, found %s", what, st_found(p, buf, sizeof buf));
}

/* The same where the format has a scalar: a '{' or '[' there is called out
 * as nesting. */
static fleet_status st_expected_scalar(const st_parser *p, const char *what)
{
    int c = st_peek(p);
    if (c == '{' || c == '[')
        return st_syntax(p, "expected %s, found '%c': nesting deeper than the format allows",
                         what, c);
    return st_expected(p, what);
}

/* ---- strings -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (avail bytes left), 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t st_utf8_len(const uint8_t *s, size_t avail)
{
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c < 0xc2)
        return 0;
    if (c < 0xe0) {
        len = 2;
    } else if (c < 0xf0) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c < 0xf5) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (avail < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    return len;
}

static int st_hex4(const uint8_t *s)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int c = s[k], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Store byte b as decoded byte number *len, when it fits in dst[0..cap). */
static void st_put(char *dst, size_t cap, size_t *len, uint8_t b)
{
    if (dst != NULL && *len < cap)
        dst[*len] = (char)b;
    (*len)++;
}

/* Read the JSON string at the cursor (which is at its '"'). Escapes,
 * \uXXXX with surrogate pairs included, are decoded to UTF-8; raw bytes must
 * be valid UTF-8 with no control characters. The decoded text goes to
 * dst[0..cap) when dst is not NULL, NUL-terminated at min(*len, cap) (dst
 * has cap + 1 bytes); *len is the whole decoded length, so *len > cap says
 * the string was too long (the rest is still checked, not stored).
 * *has_nul is set if it decodes to a NUL. */
static fleet_status st_string(st_parser *p, char *dst, size_t cap, size_t *len, bool *has_nul)
{
    FLEET_ASSERT(st_peek(p) == '"');
    size_t start = p->i++;
    *len = 0;
    *has_nul = false;
    for (;;) {
        if (p->i >= p->n) {
            p->i = start;
            return st_syntax(p, "unterminated string");
        }
        uint8_t c = p->h[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20)
            return st_syntax(p, "control character 0x%02x in a string (must be escaped)", c);
        if (c >= 0x80) {
            size_t k = st_utf8_len(p->h + p->i, p->n - p->i);
            if (k == 0)
                return st_syntax(p, "invalid UTF-8 in a string");
            for (size_t j = 0; j < k; j++)
                st_put(dst, cap, len, p->h[p->i + j]);
            p->i += k;
            continue;
        }
        if (c != '\\') {
            st_put(dst, cap, len, c);
            p->i++;
            continue;
        }
        /* An escape: p->i is at the backslash. */
        if (p->n - p->i < 2) {
            p->i = start;
            return st_syntax(p, "unterminated string");
        }
        uint8_t e = p->h[p->i + 1];
        const char *simple = "\"\\/bfnrt", *decoded = "\"\\/\b\f\n\r\t";
        const char *s = e != 0 ? strchr(simple, e) : NULL;
        if (s != NULL) {
            st_put(dst, cap, len, (uint8_t)decoded[s - simple]);
            p->i += 2;
            continue;
        }
        if (e != 'u') {
            char buf[16];
            p->i++;
            return st_syntax(p, "invalid escape '\\' followed by %s", st_found(p, buf, sizeof buf));
        }
        int cp = p->n - p->i >= 6 ? st_hex4(p->h + p->i + 2) : -1;
        if (cp < 0)
            return st_syntax(p, "invalid \\u escape (needs four hex digits)");
        size_t esc = 6;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return st_syntax(p, "unpaired surrogate \\u%04x in a string", (unsigned)cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            int lo = p->n - p->i >= 12 && p->h[p->i + 6] == '\\' && p->h[p->i + 7] == 'u'
                         ? st_hex4(p->h + p->i + 8)
                         : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                return st_syntax(p, "unpaired surrogate \\u%04x in a string", (unsigned)cp);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            esc = 12;
        }
        if (cp == 0)
            *has_nul = true;
        if (cp < 0x80) {
            st_put(dst, cap, len, (uint8_t)cp);
        } else if (cp < 0x800) {
            st_put(dst, cap, len, (uint8_t)(0xc0 | (cp >> 6)));
            st_put(dst, cap, len, (uint8_t)(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            st_put(dst, cap, len, (uint8_t)(0xe0 | (cp >> 12)));
            st_put(dst, cap, len, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
            st_put(dst, cap, len, (uint8_t)(0x80 | (cp & 0x3f)));
        } else {
            st_put(dst, cap, len, (uint8_t)(0xf0 | (cp >> 18)));
            st_put(dst, cap, len, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
            st_put(dst, cap, len, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
            st_put(dst, cap, len, (uint8_t)(0x80 | (cp & 0x3f)));
        }
        p->i += esc;
    }
    if (dst != NULL)
        dst[*len < cap ? *len : cap] = '\0';
    return FLEET_OK;
}

/* A string key at the cursor (after whitespace), then its ':'. */
static fleet_status st_key(st_parser *p, const char *what, char *dst, size_t cap, size_t *len,
                           bool *has_nul)
{
    st_ws(p);
    if (st_peek(p) != '"')
        return st_expected(p, what);
    fleet_status st = st_string(p, dst, cap, len, has_nul);
    if (st != FLEET_OK)
        return st;
    if (!st_take(p, ':'))
        return st_expected(p, "':' after a key");
    st_ws(p);
    return FLEET_OK;
}

/* After a member of an object: ',' (then *more) or '}'. */
static fleet_status st_next_member(st_parser *p, bool *more)
{
    if (st_take(p, ',')) {
        *more = true;
        return FLEET_OK;
    }
    if (st_take(p, '}')) {
        *more = false;
        return FLEET_OK;
    }
    return st_expected(p, "',' or '}'");
}

/* ---- numbers -------------------------------------------------------------- */

/* A non-negative JSON integer <= max at the cursor; `what` names it. */
static fleet_status st_uint(st_parser *p, const char *what, uint64_t max, uint64_t *out)
{
    st_ws(p);
    int c = st_peek(p);
    if (c == '-')
        return st_syntax(p, "%s must be a non-negative integer, found a negative number", what);
    if (c < '0' || c > '9') {
        char buf[96];
        snprintf(buf, sizeof buf, "%s (a non-negative integer)", what);
        return st_expected_scalar(p, buf);
    }
    size_t start = p->i;
    uint64_t v = 0;
    bool over = false;
    while (p->i < p->n && p->h[p->i] >= '0' && p->h[p->i] <= '9') {
        unsigned d = (unsigned)(p->h[p->i] - '0');
        if (v > (max - d) / 10)
            over = true;
        else
            v = v * 10 + d;
        p->i++;
    }
    c = st_peek(p);
    if (c == '.' || c == 'e' || c == 'E')
        return st_syntax(p, "%s must be an integer, found a fraction or exponent", what);
    if (p->i - start > 1 && p->h[start] == '0') {
        p->i = start;
        return st_syntax(p, "%s has a leading zero (not valid JSON)", what);
    }
    if (over) {
        size_t digits = p->i - start;
        p->i = start;
        return st_syntax(p, "%s %.*s%s is larger than %llu", what, (int)(digits < 24 ? digits : 24),
                         (const char *)p->h + start, digits > 24 ? "..." : "",
                         (unsigned long long)max);
    }
    *out = v;
    return FLEET_OK;
}

/* ---- one tensor's entry --------------------------------------------------- */

static const char *st_shape_str(const fleet__st_tensor *t, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
    return buf;
}

static fleet_status st_dtype_value(st_parser *p, const st_dtype **out)
{
    if (st_peek(p) != '"')
        return st_expected_scalar(p, "a dtype string");
    char name[ST_DTYPE_NAME_MAX + 1];
    size_t len;
    bool nul;
    fleet_status st = st_string(p, name, ST_DTYPE_NAME_MAX, &len, &nul);
    if (st != FLEET_OK)
        return st;
    *out = nul ? NULL : st_dtype_lookup(name, len);
    if (*out == NULL)
        return st_invalid(p, "unknown dtype '%s%s'", name, len > ST_DTYPE_NAME_MAX ? "..." : "");
    return FLEET_OK;
}

static fleet_status st_shape_value(st_parser *p, fleet__st_tensor *t)
{
    if (!st_take(p, '['))
        return st_expected(p, "'[' to open the shape");
    t->ndim = 0;
    if (st_take(p, ']'))
        return FLEET_OK;
    for (;;) {
        if (t->ndim == FLEET_MAX_DIMS)
            return st_syntax(p, "shape has more than %d dimensions", FLEET_MAX_DIMS);
        uint64_t v;
        fleet_status st = st_uint(p, "a shape dimension", (uint64_t)INT64_MAX, &v);
        if (st != FLEET_OK)
            return st;
        t->shape[t->ndim++] = (int64_t)v;
        if (st_take(p, ']'))
            return FLEET_OK;
        if (!st_take(p, ','))
            return st_expected(p, "',' or ']' in the shape");
    }
}

static fleet_status st_offsets_value(st_parser *p, fleet__st_tensor *t)
{
    if (!st_take(p, '['))
        return st_expected(p, "'[' to open data_offsets");
    fleet_status st = st_uint(p, "a data offset", UINT64_MAX, &t->data_offsets[0]);
    if (st != FLEET_OK)
        return st;
    if (!st_take(p, ','))
        return st_expected(p, "',' and the end offset (data_offsets holds [begin, end])");
    if ((st = st_uint(p, "a data offset", UINT64_MAX, &t->data_offsets[1])) != FLEET_OK)
        return st;
    if (!st_take(p, ']'))
        return st_expected(p, "']' (data_offsets holds exactly [begin, end])");
    return FLEET_OK;
}

/* The sizes and offsets of a complete entry agree with each other and with
 * the data section; set nbytes and data. */
static fleet_status st_check_entry(st_parser *p, fleet__st_tensor *t, const st_dtype *dt)
{
    char shape[FLEET_MAX_DIMS * 24 + 8];
    uint64_t numel = 1;
    bool zero = false;
    for (int d = 0; d < t->ndim; d++)
        zero |= t->shape[d] == 0;
    for (int d = 0; d < t->ndim && !zero; d++) {
        uint64_t s = (uint64_t)t->shape[d];
        if (numel > (uint64_t)INT64_MAX / s)
            return st_invalid(p, "shape %s has more than 2^63 - 1 elements",
                              st_shape_str(t, shape, sizeof shape));
        numel *= s;
    }
    if (zero)
        numel = 0;
    if (numel > UINT64_MAX / dt->bits)
        return st_invalid(p, "shape %s of %s is more than 2^64 bits",
                          st_shape_str(t, shape, sizeof shape), dt->name);
    uint64_t bits = numel * dt->bits;
    if (bits % 8 != 0)
        return st_invalid(p, "%llu elements of %s (%u bits each) do not fill whole bytes",
                          (unsigned long long)numel, dt->name, dt->bits);
    t->nbytes = bits / 8;

    uint64_t b = t->data_offsets[0], e = t->data_offsets[1];
    if (b > e)
        return st_invalid(p, "data_offsets [%llu, %llu] are reversed (begin > end)",
                          (unsigned long long)b, (unsigned long long)e);
    if (e > p->data_size)
        return st_invalid(p, "data_offsets [%llu, %llu] exceed the data section (%llu bytes)",
                          (unsigned long long)b, (unsigned long long)e,
                          (unsigned long long)p->data_size);
    if (e - b != t->nbytes)
        return st_invalid(p,
                          "data_offsets [%llu, %llu] hold %llu bytes, but %s of shape %s "
                          "needs %llu",
                          (unsigned long long)b, (unsigned long long)e,
                          (unsigned long long)(e - b), dt->name,
                          st_shape_str(t, shape, sizeof shape), (unsigned long long)t->nbytes);
    t->data = p->data + b;
    t->dtype = dt->fleet;
    t->dtype_name = dt->name;
    return FLEET_OK;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, in any order,
 * each once, nothing else. */
static fleet_status st_entry(st_parser *p, fleet__st_tensor *t)
{
    enum { HAVE_DTYPE = 1, HAVE_SHAPE = 2, HAVE_OFFSETS = 4 };
    unsigned have = 0;
    const st_dtype *dt = NULL;
    fleet_status st;
    if (!st_take(p, '{'))
        return st_expected(p, "'{' to open the tensor's entry");
    bool more = !st_take(p, '}');
    while (more) {
        char key[32];
        size_t len;
        bool nul;
        if ((st = st_key(p, "a key string", key, sizeof key - 1, &len, &nul)) != FLEET_OK)
            return st;
        unsigned which = 0;
        if (!nul && len == 5 && memcmp(key, "dtype", 5) == 0)
            which = HAVE_DTYPE;
        else if (!nul && len == 5 && memcmp(key, "shape", 5) == 0)
            which = HAVE_SHAPE;
        else if (!nul && len == 12 && memcmp(key, "data_offsets", 12) == 0)
            which = HAVE_OFFSETS;
        else
            return st_invalid(p, "unknown key '%s%s' (an entry has dtype, shape, data_offsets)",
                              key, len > sizeof key - 1 ? "..." : "");
        if (have & which)
            return st_invalid(p, "key '%s' appears twice", key);
        have |= which;
        if (which == HAVE_DTYPE)
            st = st_dtype_value(p, &dt);
        else if (which == HAVE_SHAPE)
            st = st_shape_value(p, t);
        else
            st = st_offsets_value(p, t);
        if (st != FLEET_OK)
            return st;
        if ((st = st_next_member(p, &more)) != FLEET_OK)
            return st;
    }
    if (!(have & HAVE_DTYPE))
        return st_invalid(p, "missing key 'dtype'");
    if (!(have & HAVE_SHAPE))
        return st_invalid(p, "missing key 'shape'");
    if (!(have & HAVE_OFFSETS))
        return st_invalid(p, "missing key 'data_offsets'");
    return st_check_entry(p, t, dt);
}

/* "__metadata__": an object of string -> string, checked and skipped. */
static fleet_status st_metadata(st_parser *p)
{
    fleet_status st;
    if (!st_take(p, '{'))
        return st_expected(p, "'{' (__metadata__ is an object of strings)");
    bool more = !st_take(p, '}');
    while (more) {
        size_t len;
        bool nul;
        if ((st = st_key(p, "a key string in __metadata__", NULL, 0, &len, &nul)) != FLEET_OK)
            return st;
        if (st_peek(p) != '"')
            return st_expected_scalar(p, "a string value (__metadata__ maps strings to strings)");
        if ((st = st_string(p, NULL, 0, &len, &nul)) != FLEET_OK)
            return st;
        if ((st = st_next_member(p, &more)) != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

/* ---- the whole header ----------------------------------------------------- */

static fleet_status st_grow(st_parser *p)
{
    if (p->count < p->cap)
        return FLEET_OK;
    if (p->count >= FLEET__ST_MAX_TENSORS)
        return st_invalid(p, "more than %d tensors", FLEET__ST_MAX_TENSORS);
    int cap = p->cap ? p->cap * 2 : 16;
    if (cap > FLEET__ST_MAX_TENSORS)
        cap = FLEET__ST_MAX_TENSORS;
    fleet__st_tensor *t = fleet__realloc(p->t, (size_t)cap * sizeof *t);
    if (t == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "safetensors: no memory for %d tensors", cap);
    p->t = t;
    p->cap = cap;
    return FLEET_OK;
}

static fleet_status st_header(st_parser *p)
{
    fleet_status st;
    if (!st_take(p, '{'))
        return st_expected(p, "'{' (the header is a JSON object)");
    bool more = !st_take(p, '}');
    while (more) {
        /* A name's decoded text plus its NUL is never longer than its JSON
         * text with the quotes, so the names fit in names_cap (the header
         * length + 1) without a check on the total. */
        char *name = p->names + p->names_used;
        size_t room = p->names_cap - p->names_used - 1, len;
        bool nul;
        size_t at = p->i;
        if ((st = st_key(p, "a tensor name (a string)", name,
                         room < FLEET__ST_MAX_NAME ? room : FLEET__ST_MAX_NAME, &len, &nul)) !=
            FLEET_OK)
            return st;
        if (len > FLEET__ST_MAX_NAME) {
            p->i = at;
            return st_syntax(p, "a tensor name of %zu bytes is longer than the limit (%d)", len,
                             FLEET__ST_MAX_NAME);
        }
        FLEET_ASSERT(len <= room);
        if (nul) {
            p->i = at;
            return st_syntax(p, "a tensor name contains a NUL character (\\u0000)");
        }
        if (strcmp(name, "__metadata__") == 0) {
            if (p->seen_metadata)
                return st_invalid(p, "__metadata__ appears twice");
            p->seen_metadata = true;
            st = st_metadata(p);
        } else {
            if ((st = st_grow(p)) != FLEET_OK)
                return st;
            fleet__st_tensor *t = &p->t[p->count];
            *t = (fleet__st_tensor){.name = name};
            p->names_used += len + 1;
            p->tensor = name;
            st = st_entry(p, t);
            p->count++;
        }
        if (st != FLEET_OK)
            return st;
        if ((st = st_next_member(p, &more)) != FLEET_OK)
            return st;
        p->tensor = NULL;
    }
    st_ws(p);
    if (p->i != p->n)
        return st_expected(p, "the end of the header after its object");
    return FLEET_OK;
}

static int st_cmp_name(const void *a, const void *b)
{
    return strcmp(((const fleet__st_tensor *)a)->name, ((const fleet__st_tensor *)b)->name);
}

static int st_cmp_offsets(const void *a, const void *b)
{
    const fleet__st_tensor *x = *(const fleet__st_tensor *const *)a;
    const fleet__st_tensor *y = *(const fleet__st_tensor *const *)b;
    for (int k = 0; k < 2; k++)
        if (x->data_offsets[k] != y->data_offsets[k])
            return x->data_offsets[k] < y->data_offsets[k] ? -1 : 1;
    return 0;
}

/* Sorted by name, no name twice; by offset, the tensors tile the data
 * section: each begins where the one before ends, the first at 0, the last
 * ending at data_size (zero-size tensors sit between two others). */
static fleet_status st_check_file(st_parser *p)
{
    if (p->count == 0) /* p->t is NULL, which qsort may not be given */
        return p->data_size == 0 ? FLEET_OK
                                 : st_invalid(p,
                                              "bytes [0, %llu) at the end of the data section "
                                              "belong to no tensor",
                                              (unsigned long long)p->data_size);
    qsort(p->t, (size_t)p->count, sizeof *p->t, st_cmp_name);
    for (int k = 1; k < p->count; k++)
        if (strcmp(p->t[k - 1].name, p->t[k].name) == 0)
            return st_invalid(p, "tensor name '%.96s' appears twice", p->t[k].name);

    const fleet__st_tensor **by = fleet__malloc(((size_t)p->count + 1) * sizeof *by);
    if (by == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "safetensors: no memory to sort %d tensors",
                            p->count);
    for (int k = 0; k < p->count; k++)
        by[k] = &p->t[k];
    qsort(by, (size_t)p->count, sizeof *by, st_cmp_offsets);
    fleet_status st = FLEET_OK;
    uint64_t pos = 0;
    for (int k = 0; k < p->count && st == FLEET_OK; k++) {
        uint64_t b = by[k]->data_offsets[0], e = by[k]->data_offsets[1];
        if (b > pos)
            st = st_invalid(p, "bytes [%llu, %llu) of the data section belong to no tensor "
                               "(a hole before tensor '%.96s')",
                            (unsigned long long)pos, (unsigned long long)b, by[k]->name);
        else if (b < pos)
            st = st_invalid(p, "tensor '%.96s' [%llu, %llu] overlaps tensor '%.96s' [%llu, %llu]",
                            by[k]->name, (unsigned long long)b, (unsigned long long)e,
                            by[k - 1]->name, (unsigned long long)by[k - 1]->data_offsets[0],
                            (unsigned long long)by[k - 1]->data_offsets[1]);
        pos = e;
    }
    free(by);
    if (st == FLEET_OK && pos != p->data_size)
        st = st_invalid(p, "bytes [%llu, %llu) at the end of the data section belong to no tensor",
                        (unsigned long long)pos, (unsigned long long)p->data_size);
    return st;
}

fleet_status fleet__safetensors_parse(const uint8_t *buf, size_t len, fleet__st_file *out)
{
    if (out == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "fleet__safetensors_parse: out is NULL");
    *out = (fleet__st_file){0};
    if (buf == NULL && len > 0)
        return fleet__error(FLEET_ERR_NULL_POINTER, "fleet__safetensors_parse: buf is NULL");
    if (len < 8)
        return fleet__error(FLEET_ERR_INVALID_MODEL,
                            "safetensors: the file is %zu bytes, shorter than the 8-byte header "
                            "length",
                            len);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = n << 8 | buf[k];
    if (n > FLEET__ST_MAX_HEADER)
        return fleet__error(FLEET_ERR_INVALID_MODEL,
                            "safetensors: header length %llu is over the limit (%zu bytes)",
                            (unsigned long long)n, FLEET__ST_MAX_HEADER);
    if (n > len - 8)
        return fleet__error(FLEET_ERR_INVALID_MODEL,
                            "safetensors: header length %llu runs past the end of the file "
                            "(%zu bytes after the length)",
                            (unsigned long long)n, len - 8);

    st_parser p = {
        .h = buf + 8,
        .n = (size_t)n,
        .data = buf + 8 + n,
        .data_size = len - 8 - n,
        .names_cap = (size_t)n + 1,
    };
    p.names = fleet__malloc(p.names_cap);
    if (p.names == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "safetensors: no memory for a %zu-byte header",
                            p.names_cap);
    fleet_status st = st_header(&p);
    if (st == FLEET_OK) {
        p.tensor = NULL;
        st = st_check_file(&p);
    }
    if (st != FLEET_OK) {
        free(p.t);
        free(p.names);
        return st;
    }
    out->count = p.count;
    out->tensors = p.t;
    out->names_ = p.names;
    out->size_ = len;
    return FLEET_OK;
}

/* ---- files ---------------------------------------------------------------- */

fleet_status fleet__safetensors_open(const char *path, fleet__st_file *out)
{
    if (out == NULL || path == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "fleet__safetensors_open: %s is NULL",
                            out == NULL ? "out" : "path");
    *out = (fleet__st_file){0};
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fleet__error(FLEET_ERR_IO, "safetensors: cannot open '%s': %s", path,
                            strerror(errno));

    fleet_status st = FLEET_OK;
    uint8_t *bytes = NULL;
    size_t size = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = fleet__error(FLEET_ERR_IO, "safetensors: cannot stat '%s': %s", path,
                          strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = fleet__error(FLEET_ERR_IO, "safetensors: '%s' is not a regular file", path);
        goto out;
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size >= (uint64_t)SIZE_MAX) {
        st = fleet__error(FLEET_ERR_IO, "safetensors: '%s' is too large to read", path);
        goto out;
    }
    size = (size_t)sb.st_size;
    bytes = fleet__malloc(size ? size : 1);
    if (bytes == NULL) {
        st = fleet__error(FLEET_ERR_OUT_OF_MEMORY, "safetensors: no memory to read '%s' (%zu bytes)",
                          path, size);
        goto out;
    }
    for (size_t got = 0; got < size;) {
        size_t want = size - got > ((size_t)1 << 30) ? (size_t)1 << 30 : size - got;
        ssize_t r = read(fd, bytes + got, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = fleet__error(FLEET_ERR_IO, "safetensors: cannot read '%s': %s", path,
                              strerror(errno));
            goto out;
        }
        if (r == 0) {
            st = fleet__error(FLEET_ERR_IO,
                              "safetensors: '%s' shrank while being read (%zu of %zu bytes)", path,
                              got, size);
            goto out;
        }
        got += (size_t)r;
    }
    st = fleet__safetensors_parse(bytes, size, out);
    if (st != FLEET_OK)
        st = fleet__error_prefix(st, path);
out:
    close(fd);
    if (st != FLEET_OK) {
        free(bytes);
        return st;
    }
    out->bytes_ = bytes;
    return FLEET_OK;
}

void fleet__safetensors_close(fleet__st_file *f)
{
    if (f == NULL)
        return;
    free(f->tensors);
    free(f->names_);
    free(f->bytes_);
    *f = (fleet__st_file){0};
}

const fleet__st_tensor *fleet__safetensors_find(const fleet__st_file *f, const char *name)
{
    if (f == NULL || name == NULL)
        return NULL;
    int lo = 0, hi = f->count; /* the name, if here, is in [lo, hi) */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0)
            return &f->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
