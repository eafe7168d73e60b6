/* cli/npy.c — the .npy format (cli/npy.h): a bounded parser over
 * untrusted bytes, the header numpy writes, files mapped in and saved
 * through a rename.
 *
 * The parser walks the header once with a cursor that never passes the
 * header's end; every number is range-checked as its digits are read, so
 * nothing it is given can make it read outside the buffer or overflow. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .npy reader and writer assume a little-endian host"
#endif

static const char MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* The element types read, and what each loads as. */
static const struct npy_type {
    const char *descr;
    fleet_dtype dtype;
    bool from_f64; /* doubles in the file, rounded to f32 */
} NPY_TYPES[] = {
    {"<f4", FLEET_DTYPE_F32, false}, {"<f2", FLEET_DTYPE_F16, false},
    {"<i4", FLEET_DTYPE_I32, false}, {"<i8", FLEET_DTYPE_I64, false},
    {"|b1", FLEET_DTYPE_BOOL, false}, {"<f8", FLEET_DTYPE_F32, true},
};
#define N_TYPES (sizeof NPY_TYPES / sizeof NPY_TYPES[0])

__attribute__((format(printf, 4, 5))) static fleet_status fail(fleet_status st, char *err,
                                                               size_t err_size,
                                                               const char *fmt, ...)
{
    if (err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *fleet_cli_npy_descr(fleet_dtype dtype)
{
    if (dtype == FLEET_DTYPE_BF16)
        return "<f4"; /* widened on save: numpy has no bf16 */
    for (size_t i = 0; i < N_TYPES; i++)
        if (NPY_TYPES[i].dtype == dtype && !NPY_TYPES[i].from_f64)
            return NPY_TYPES[i].descr;
    return NULL;
}

/* ---- parsing ------------------------------------------------------------------------- */

/* The header's bytes not yet read; `base` is the header's offset in the
 * file, for the byte positions in messages. The shape's text as the file
 * writes it is kept for messages about the data. */
typedef struct cursor {
    const char *p, *start, *end;
    size_t base;
    const char *shape_text;
    int shape_len;
    char *err;
    size_t err_size;
} cursor;

#define KEY_CAP 32 /* longest key or descr string read, with its NUL */

static size_t at(const cursor *c)
{
    return c->base + (size_t)(c->p - c->start);
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void skip_blanks(cursor *c)
{
    while (c->p < c->end && is_blank(*c->p))
        c->p++;
}

/* Consumes ch (after blanks) if it is next. */
static bool take(cursor *c, char ch)
{
    skip_blanks(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static fleet_status expected(cursor *c, const char *what)
{
    skip_blanks(c);
    if (c->p == c->end)
        return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                    "header: expected %s, found the end of the header (byte %zu)", what, at(c));
    return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                "header: expected %s at byte %zu, found '%c'", what, at(c), *c->p);
}

/* A quoted string without escapes (all numpy writes for these keys and
 * types), at most KEY_CAP - 1 bytes. */
static fleet_status parse_string(cursor *c, char *out)
{
    skip_blanks(c);
    if (c->p == c->end || (*c->p != '\'' && *c->p != '"'))
        return expected(c, "a quoted string");
    char quote = *c->p++;
    size_t n = 0;
    for (; c->p < c->end && *c->p != quote; c->p++) {
        if (*c->p == '\\')
            return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                        "header: escapes in strings are not supported (byte %zu)", at(c));
        if (n + 1 == KEY_CAP)
            return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                        "header: a string longer than %d bytes at byte %zu", KEY_CAP - 1, at(c));
        out[n++] = *c->p;
    }
    if (c->p == c->end)
        return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                    "header: unterminated string (the header ends at byte %zu)", at(c));
    c->p++;
    out[n] = '\0';
    return FLEET_OK;
}

/* A non-negative decimal integer as Python writes it (no sign, no leading
 * zero), optionally with Python 2's long suffix L. */
static fleet_status parse_dim(cursor *c, int64_t *out)
{
    skip_blanks(c);
    if (c->p == c->end || *c->p < '0' || *c->p > '9')
        return expected(c, "a dimension (a non-negative integer)");
    const char *first = c->p;
    int64_t v = 0;
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++) {
        int digit = *c->p - '0';
        if (v > (INT64_MAX - digit) / 10)
            return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                        "header: dimension at byte %zu is over 2^63 - 1",
                        c->base + (size_t)(first - c->start));
        v = v * 10 + digit;
    }
    if (*first == '0' && c->p - first > 1)
        return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                    "header: dimension with a leading zero at byte %zu",
                    c->base + (size_t)(first - c->start));
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *out = v;
    return FLEET_OK;
}

/* A tuple: "()", "(3,)", "(2, 3)", "(2, 3,)". */
static fleet_status parse_shape(cursor *c, fleet_cli_npy_array *a)
{
    if (!take(c, '('))
        return expected(c, "the shape, a tuple");
    if (take(c, ')'))
        return FLEET_OK;
    for (;;) {
        int64_t dim = 0;
        if (a->ndim == FLEET_MAX_DIMS)
            return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                        "header: the shape has more than %d dimensions (fleet's most)",
                        FLEET_MAX_DIMS);
        fleet_status st = parse_dim(c, &dim);
        if (st != FLEET_OK)
            return st;
        a->shape[a->ndim++] = dim;
        bool comma = take(c, ',');
        if (take(c, ')')) {
            if (a->ndim == 1 && !comma)
                return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                            "header: shape (%lld) is not a tuple (a 1-d shape is (%lld,))",
                            (long long)dim, (long long)dim);
            return FLEET_OK;
        }
        if (!comma)
            return expected(c, "',' or ')' in the shape");
    }
}

static fleet_status parse_descr(cursor *c, fleet_cli_npy_array *a)
{
    skip_blanks(c);
    if (c->p < c->end && *c->p == '[')
        return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                    "header: structured dtypes (a list as descr) are not supported");
    char s[KEY_CAP];
    fleet_status st = parse_string(c, s);
    if (st != FLEET_OK)
        return st;
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(s, NPY_TYPES[i].descr) == 0) {
            memcpy(a->descr, s, sizeof a->descr);
            a->dtype = NPY_TYPES[i].dtype;
            a->file_elem_size = NPY_TYPES[i].from_f64 ? sizeof(double)
                                                      : fleet_dtype_size(NPY_TYPES[i].dtype);
            return FLEET_OK;
        }
    if (s[0] == '>')
        return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                    "dtype '%s' is big-endian, which is not supported (save it little-endian: "
                    "a.astype('<%s'))", s, s + 1);
    return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                "dtype '%s' is not supported (fleet reads '<f4', '<f2', '<i4', '<i8', '|b1', "
                "and '<f8' as f32)", s);
}

static fleet_status parse_fortran_order(cursor *c)
{
    skip_blanks(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        return FLEET_OK;
    }
    if (left >= 4 && memcmp(c->p, "True", 4) == 0)
        return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                    "fortran_order is True (column-major data), which is not supported (save "
                    "it C-ordered: np.ascontiguousarray(a))");
    return expected(c, "False or True for fortran_order");
}

/* The dict: the three keys, each once, in any order. */
static fleet_status parse_dict(cursor *c, fleet_cli_npy_array *a)
{
    static const char *const KEYS[3] = {"descr", "fortran_order", "shape"};
    bool seen[3] = {false, false, false};
    if (!take(c, '{'))
        return expected(c, "'{' (the header is a dict)");
    while (!take(c, '}')) {
        char key[KEY_CAP];
        skip_blanks(c);
        size_t key_at = at(c);
        fleet_status st = parse_string(c, key);
        if (st != FLEET_OK)
            return st;
        int k = 0;
        while (k < 3 && strcmp(key, KEYS[k]) != 0)
            k++;
        if (k == 3)
            return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                        "header: unknown key '%s' at byte %zu (a .npy header has descr, "
                        "fortran_order and shape)", key, key_at);
        if (seen[k])
            return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                        "header: key '%s' given twice (byte %zu)", key, key_at);
        seen[k] = true;
        if (!take(c, ':'))
            return expected(c, "':' after the key");
        if (k == 0) {
            st = parse_descr(c, a);
        } else if (k == 1) {
            st = parse_fortran_order(c);
        } else {
            skip_blanks(c);
            c->shape_text = c->p;
            st = parse_shape(c, a);
            c->shape_len = (int)(c->p - c->shape_text);
        }
        if (st != FLEET_OK)
            return st;
        if (!take(c, ',')) {
            if (take(c, '}'))
                break;
            return expected(c, "',' or '}' after a value");
        }
    }
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                        "header: no '%s' key", KEYS[k]);
    skip_blanks(c);
    if (c->p != c->end)
        return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                    "header: '%c' at byte %zu after the dict (only blanks may follow it)",
                    *c->p, at(c));
    return FLEET_OK;
}

/* numel and bytes. As numpy does, the dimensions other than 0 must
 * multiply, with the element size, to a size that fits, even when a 0
 * makes the array empty. */
static fleet_status size_array(cursor *c, fleet_cli_npy_array *a)
{
    int64_t product = 1;
    bool empty = false;
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] == 0) {
            empty = true;
            continue;
        }
        if (product > INT64_MAX / a->shape[d])
            return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                        "shape %.*s is too large: its dimensions multiply to more than "
                        "2^63 - 1", c->shape_len, c->shape_text);
        product *= a->shape[d];
    }
    if ((uint64_t)product > (uint64_t)INT64_MAX / a->file_elem_size ||
        (uint64_t)product > SIZE_MAX / a->file_elem_size)
        return fail(FLEET_ERR_INVALID_ARGUMENT, c->err, c->err_size,
                    "shape %.*s of '%s' is more bytes than this machine can address",
                    c->shape_len, c->shape_text, a->descr);
    a->numel = empty ? 0 : product;
    a->nbytes = (size_t)a->numel * a->file_elem_size;
    return FLEET_OK;
}

fleet_status fleet_cli_npy_parse(const void *buf, size_t size, fleet_cli_npy_array *out,
                                 char *err, size_t err_size)
{
    const unsigned char *b = buf;
    fleet_cli_npy_array a = {0};
    *out = a;
    if (err_size > 0)
        err[0] = '\0';
    if (size >= sizeof MAGIC && memcmp(b, MAGIC, sizeof MAGIC) != 0)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "not a .npy file (it does not start with \\x93NUMPY)");
    if (size < 10)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "too short for a .npy file (%zu bytes)", size);
    unsigned major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "format version %u.%u is not supported (1.0, 2.0 and 3.0 are)", major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (size < pre)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "too short for a .npy file (%zu bytes)", size);
    uint64_t hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
    if (major > 1)
        hlen |= (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
    if (hlen > FLEET_CLI_NPY_MAX_HEADER)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "header length %llu is over the limit of %d bytes", (unsigned long long)hlen,
                    FLEET_CLI_NPY_MAX_HEADER);
    if (hlen > size - pre)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "truncated: the header length says %llu bytes, the file has %zu after the "
                    "preamble", (unsigned long long)hlen, size - pre);
    const char *h = (const char *)b + pre;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)h[i];
        if ((ch < 0x20 || ch > 0x7e) && !is_blank((char)ch))
            return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                        "header: byte %zu is 0x%02x, not printable ASCII", pre + i, ch);
    }
    cursor c = {.p = h, .start = h, .end = h + hlen, .base = pre, .err = err,
                .err_size = err_size};
    a.version = (int)major;
    fleet_status st = parse_dict(&c, &a);
    if (st == FLEET_OK)
        st = size_array(&c, &a);
    if (st != FLEET_OK)
        return st;
    size_t have = size - pre - (size_t)hlen;
    if (have < a.nbytes)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "truncated: the data is %zu bytes, shape %.*s of '%s' needs %zu", have,
                    c.shape_len, c.shape_text, a.descr, a.nbytes);
    if (have > a.nbytes)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "%zu bytes after the data (shape %.*s of '%s' is %zu bytes)", have - a.nbytes,
                    c.shape_len, c.shape_text, a.descr, a.nbytes);
    a.data = b + pre + hlen;
    *out = a;
    return FLEET_OK;
}

void fleet_cli_npy_copy_out(const fleet_cli_npy_array *a, void *dst)
{
    const unsigned char *src = a->data;
    unsigned char *d = dst;
    if (a->dtype == FLEET_DTYPE_F32 && a->file_elem_size == sizeof(double)) {
        for (int64_t k = 0; k < a->numel; k++) {
            double v;
            memcpy(&v, src + (size_t)k * sizeof v, sizeof v);
            float f = (float)v;
            memcpy(d + (size_t)k * sizeof f, &f, sizeof f);
        }
    } else if (a->dtype == FLEET_DTYPE_BOOL) {
        for (int64_t k = 0; k < a->numel; k++)
            d[k] = src[k] != 0;
    } else if (a->nbytes > 0) {
        memcpy(d, src, a->nbytes);
    }
}

/* ---- writing --------------------------------------------------------------------------- */

size_t fleet_cli_npy_header(fleet_dtype dtype, int ndim, const int64_t *shape, char *buf,
                            size_t cap)
{
    const char *descr = fleet_cli_npy_descr(dtype);
    if (descr == NULL || ndim < 0 || ndim > FLEET_MAX_DIMS)
        return 0;
    /* at most 58 + 8 * 21 + 5 bytes: it fits */
    char dict[FLEET_CLI_NPY_HEADER_CAP];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return 0;
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", d ? ", " : "",
                      (long long)shape[d]);
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, ndim == 1 ? ",), }" : "), }");
    /* blanks, then a newline, to a multiple of 64 bytes in all (numpy's
     * alignment) */
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64, hlen = total - 10;
    if (total > cap)
        return 0;
    memcpy(buf, MAGIC, sizeof MAGIC);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', hlen - (size_t)n - 1);
    buf[total - 1] = '\n';
    return total;
}

/* ---- files ----------------------------------------------------------------------------- */

fleet_status fleet_cli_npy_open(const char *path, fleet_cli_npy_file *f, char *err,
                                size_t err_size)
{
    *f = (fleet_cli_npy_file){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(FLEET_ERR_IO, err, err_size, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0) {
        close(fd);
        return fail(FLEET_ERR_IO, err, err_size, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = size > 0 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return fail(FLEET_ERR_IO, err, err_size, "cannot map '%s': %s", path,
                    strerror(map_errno));
    char why[FLEET_CLI_NPY_ERR_SIZE];
    static const unsigned char empty[1];
    fleet_status st = fleet_cli_npy_parse(map != NULL ? map : empty, size, &f->array, why,
                                          sizeof why);
    if (st != FLEET_OK) {
        if (map != NULL)
            munmap(map, size);
        return fail(st, err, err_size, "%s: %s", path, why);
    }
    f->map = map;
    f->size = size;
    return FLEET_OK;
}

void fleet_cli_npy_close(fleet_cli_npy_file *f)
{
    if (f->map != NULL)
        munmap(f->map, f->size);
    *f = (fleet_cli_npy_file){0};
}

/* Writes the elements; bf16 widened to f32 a chunk at a time. */
static bool write_data(FILE *out, fleet_dtype dtype, const unsigned char *data, size_t numel)
{
    if (numel == 0)
        return true;
    if (dtype != FLEET_DTYPE_BF16)
        return fwrite(data, fleet_dtype_size(dtype), numel, out) == numel;
    uint32_t chunk[1024] = {0}; /* zeroed for cppcheck, which cannot follow the fill */
    for (size_t k = 0; k < numel;) {
        size_t n = numel - k < 1024 ? numel - k : 1024;
        for (size_t j = 0; j < n; j++) {
            uint16_t bits;
            memcpy(&bits, data + (k + j) * 2, 2);
            chunk[j] = (uint32_t)bits << 16; /* bf16 is f32's upper half */
        }
        if (fwrite(chunk, 4, n, out) != n)
            return false;
        k += n;
    }
    return true;
}

/* Creates the temporary file for path: ".<name>.<pid>-<n>.tmp" in its
 * folder, made exclusively (with the mode a plain create gives). Returns
 * the fd, its name in *tmp (freed by the caller), or -1 with errno set. */
static int create_temporary(const char *path, char **tmp)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash != NULL ? (int)(slash - path) + 1 : 0;
    size_t cap = strlen(path) + 48;
    *tmp = malloc(cap);
    if (*tmp == NULL) {
        errno = ENOMEM;
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(*tmp, cap, "%.*s.%s.%ld-%d.tmp", dir_len, path, path + dir_len,
                 (long)getpid(), attempt);
        int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

fleet_status fleet_cli_npy_save(const char *path, fleet_dtype dtype, int ndim,
                                const int64_t *shape, const void *data, char *err,
                                size_t err_size)
{
    char head[FLEET_CLI_NPY_HEADER_CAP];
    size_t head_len = fleet_cli_npy_header(dtype, ndim, shape, head, sizeof head);
    if (head_len == 0)
        return fail(FLEET_ERR_INVALID_ARGUMENT, err, err_size,
                    "'%s': no .npy header for a %s array of %d dimensions", path,
                    fleet_dtype_name(dtype), ndim);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++)
        numel *= (size_t)shape[d]; /* the caller's data is that long */
    char *tmp = NULL;
    int fd = create_temporary(path, &tmp);
    if (fd < 0) {
        fleet_status st = fail(FLEET_ERR_IO, err, err_size,
                               "cannot create a temporary file beside '%s': %s", path,
                               strerror(errno));
        free(tmp);
        return st;
    }
    fleet_status st = FLEET_OK;
    FILE *out = fdopen(fd, "wb");
    if (out == NULL) {
        st = fail(FLEET_ERR_IO, err, err_size, "cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
    } else {
        if (fwrite(head, 1, head_len, out) != head_len || !write_data(out, dtype, data, numel) ||
            fflush(out) != 0 || fsync(fd) != 0)
            st = fail(FLEET_ERR_IO, err, err_size, "cannot write '%s': %s", tmp,
                      strerror(errno));
        if (fclose(out) != 0 && st == FLEET_OK)
            st = fail(FLEET_ERR_IO, err, err_size, "cannot write '%s': %s", tmp,
                      strerror(errno));
    }
    if (st == FLEET_OK && rename(tmp, path) != 0)
        st = fail(FLEET_ERR_IO, err, err_size, "cannot rename '%s' to '%s': %s", tmp, path,
                  strerror(errno));
    if (st != FLEET_OK)
        unlink(tmp);
    free(tmp);
    return st;
}
