/* npy — the fleet tool's .npy files (cli/npy.c): files written here byte by
 * byte, in each dtype and format version and in the spellings numpy and
 * older writers use, parse to the right dtype, shape and values; every kind
 * of malformed or unsupported file is refused with the text that says what;
 * every truncation of a valid file is refused; the header fleet writes is
 * the format numpy reads, and files saved and opened again keep their
 * values, leaving no temporary file behind; a save that fails half-way
 * leaves the file before it whole. Each input sits in a malloc of
 * exactly its size, so under ASan (`make test-asan`) a read past its end is
 * caught. The cross-check against numpy itself is npy_numpy. */
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "npy.h"

/* ---- files written by hand ------------------------------------------------------------- */

typedef struct blob {
    unsigned char *p;
    size_t n;
} blob;

#define TRUE_LEN UINT32_MAX /* a header length field that tells the truth */

/* The preamble of format `major`.0 with the header length field hlen_field
 * (TRUE_LEN: the header's), the header text, then dlen data bytes: in a
 * malloc of exactly that size. */
static blob raw_file(int major, uint32_t hlen_field, const char *header, const void *data,
                     size_t dlen)
{
    size_t pre = major == 1 ? 10 : 12, hlen = strlen(header);
    if (hlen_field == TRUE_LEN)
        hlen_field = (uint32_t)hlen;
    blob b = {malloc(pre + hlen + dlen + 1), pre + hlen + dlen};
    ASSERT_TRUE(b.p != NULL);
    memcpy(b.p, "\x93NUMPY", 6);
    b.p[6] = (unsigned char)major;
    b.p[7] = 0;
    for (size_t k = 0; k < pre - 8; k++)
        b.p[8 + k] = (unsigned char)(hlen_field >> (8 * k));
    memcpy(b.p + pre, header, hlen);
    if (dlen > 0)
        memcpy(b.p + pre + hlen, data, dlen);
    return b;
}

/* A file as numpy writes it: the dict, spaces and a newline to a multiple
 * of 64 bytes, then the data. */
static blob npy_file(int major, const char *dict, const void *data, size_t dlen)
{
    size_t pre = major == 1 ? 10 : 12, n = strlen(dict);
    size_t hlen = (pre + n + 1 + 63) / 64 * 64 - pre;
    char header[1024];
    ASSERT_TRUE(hlen < sizeof header);
    memcpy(header, dict, n);
    memset(header + n, ' ', hlen - n - 1);
    header[hlen - 1] = '\n';
    header[hlen] = '\0';
    return raw_file(major, (uint32_t)hlen, header, data, dlen);
}

static blob dict_file(const char *descr, const char *shape, const void *data, size_t dlen)
{
    char dict[512];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
             shape);
    return npy_file(1, dict, data, dlen);
}

static void blob_free(blob *b)
{
    free(b->p);
    *b = (blob){0};
}

static char err[FLEET_CLI_NPY_ERR_SIZE];

static fleet_cli_npy_array parse_ok(const blob *b)
{
    fleet_cli_npy_array a;
    fleet_status st = fleet_cli_npy_parse(b->p, b->n, &a, err, sizeof err);
    if (st != FLEET_OK)
        fprintf(stderr, "refused: %s\n", err);
    ASSERT_EQ(st, FLEET_OK);
    ASSERT_TRUE(err[0] == '\0');
    ASSERT_TRUE((const unsigned char *)a.data + a.nbytes == b->p + b->n);
    return a;
}

/* Refused with the text `needle`, and *out left zeroed. */
static void assert_refused(const blob *b, const char *needle)
{
    fleet_cli_npy_array a;
    memset(&a, 0x5a, sizeof a);
    fleet_status st = fleet_cli_npy_parse(b->p, b->n, &a, err, sizeof err);
    ASSERT_EQ(st, FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(err, needle);
    ASSERT_TRUE(a.data == NULL && a.ndim == 0 && a.numel == 0 && a.nbytes == 0);
}

#define ASSERT_REFUSED_NPY(blob_expr, needle)                                            \
    do {                                                                                 \
        blob b_ = (blob_expr);                                                           \
        assert_refused(&b_, needle);                                                     \
        blob_free(&b_);                                                                  \
    } while (0)

/* ---- valid files ----------------------------------------------------------------------- */

TEST(each_dtype_and_format_version_loads_with_its_values)
{
    const float f4[6] = {1.5f, -2.0f, 0.25f, 0.0f, 1e-3f, -7.0f};
    const uint16_t f2[6] = {0x3c00, 0xc000, 0x3400, 0x0000, 0x7c00, 0x8001}; /* 1 -2 .25 0 inf */
    const int32_t i4[6] = {-7, 0, 1, INT32_MAX, INT32_MIN, 42};
    const int64_t i8[6] = {-1, 0, (int64_t)1 << 40, INT64_MAX, INT64_MIN, 3};
    const uint8_t b1[6] = {0, 1, 1, 0, 2, 255};          /* any nonzero byte is true */
    const double f8[6] = {0.1, -2.5, 1e-30, 0.0, 3.0, -1e10};
    const struct {
        const char *descr;
        fleet_dtype dtype;
        const void *data;
        size_t elem;
    } cases[] = {
        {"<f4", FLEET_DTYPE_F32, f4, 4}, {"<f2", FLEET_DTYPE_F16, f2, 2},
        {"<i4", FLEET_DTYPE_I32, i4, 4}, {"<i8", FLEET_DTYPE_I64, i8, 8},
        {"|b1", FLEET_DTYPE_BOOL, b1, 1}, {"<f8", FLEET_DTYPE_F32, f8, 8},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int major = 1; major <= 3; major++) {
            char dict[128];
            snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (2, 3), }",
                     cases[c].descr);
            blob b = npy_file(major, dict, cases[c].data, 6 * cases[c].elem);
            fleet_cli_npy_array a = parse_ok(&b);
            ASSERT_TRUE(strcmp(a.descr, cases[c].descr) == 0);
            ASSERT_EQ(a.dtype, cases[c].dtype);
            ASSERT_EQ(a.version, major);
            ASSERT_EQ(a.file_elem_size, cases[c].elem);
            ASSERT_EQ(a.ndim, 2);
            ASSERT_EQ(a.shape[0], 2);
            ASSERT_EQ(a.shape[1], 3);
            ASSERT_EQ(a.numel, 6);
            ASSERT_EQ(a.nbytes, 6 * cases[c].elem);
            /* numpy pads the header so that the data starts 64-aligned */
            ASSERT_EQ((size_t)((const unsigned char *)a.data - b.p) % 64, 0);
            unsigned char got[48];
            fleet_cli_npy_copy_out(&a, got);
            if (cases[c].dtype == FLEET_DTYPE_BOOL) {
                for (int k = 0; k < 6; k++)
                    ASSERT_EQ(got[k], b1[k] != 0);
            } else if (cases[c].elem == 8 && cases[c].dtype == FLEET_DTYPE_F32) {
                float want[6];
                for (int k = 0; k < 6; k++)
                    want[k] = (float)f8[k];
                ASSERT_TRUE(memcmp(got, want, sizeof want) == 0);
            } else {
                ASSERT_TRUE(memcmp(got, cases[c].data, a.nbytes) == 0);
            }
            blob_free(&b);
        }
}

TEST(the_spellings_numpy_and_older_writers_use_are_read)
{
    const float x[6] = {1, 2, 3, 4, 5, 6};
    static const struct {
        const char *dict;
        int ndim;
        int64_t d0, d1;
    } spellings[] = {
        {"{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 2, 2, 3},
        {"{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,3)}", 2, 2, 3},
        {"{ 'descr' : '<f4' ,\t'fortran_order' : False ,\n 'shape' : ( 2 , 3 , ) , }", 2, 2, 3},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 2, 2, 3}, /* py2 */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 1, 6, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 6), }", 2, 1, 6},
    };
    for (size_t s = 0; s < sizeof spellings / sizeof spellings[0]; s++) {
        blob b = npy_file(1, spellings[s].dict, x, sizeof x);
        fleet_cli_npy_array a = parse_ok(&b);
        ASSERT_EQ(a.dtype, FLEET_DTYPE_F32);
        ASSERT_EQ(a.ndim, spellings[s].ndim);
        ASSERT_EQ(a.shape[0], spellings[s].d0);
        if (a.ndim == 2)
            ASSERT_EQ(a.shape[1], spellings[s].d1);
        ASSERT_EQ(a.numel, 6);
        blob_free(&b);
    }
    /* a header without the padding, no newline */
    blob b = raw_file(1, TRUE_LEN, "{'descr':'<f4','fortran_order':False,'shape':(6,),}    ", x,
                      sizeof x);
    ASSERT_EQ(parse_ok(&b).numel, 6);
    blob_free(&b);
}

TEST(scalars_and_empty_arrays_load)
{
    const float one = 2.5f;
    blob b = dict_file("<f4", "()", &one, 4);
    fleet_cli_npy_array a = parse_ok(&b);
    ASSERT_EQ(a.ndim, 0);
    ASSERT_EQ(a.numel, 1);
    float got;
    fleet_cli_npy_copy_out(&a, &got);
    ASSERT_TRUE(got == 2.5f);
    blob_free(&b);
    const char *empty[] = {"(0,)", "(0, 5)", "(3, 0, 2)", "(1152921504606846975, 0)"};
    for (size_t k = 0; k < sizeof empty / sizeof empty[0]; k++) {
        b = dict_file("<i8", empty[k], NULL, 0);
        a = parse_ok(&b);
        ASSERT_EQ(a.numel, 0);
        ASSERT_EQ(a.nbytes, 0);
        blob_free(&b);
    }
    int64_t dims8[8] = {1, 2, 1, 2, 1, 2, 1, 1};
    uint8_t data[8] = {1, 0, 1, 0, 1, 0, 1, 0};
    b = dict_file("|b1", "(1, 2, 1, 2, 1, 2, 1, 1)", data, 8);
    a = parse_ok(&b);
    ASSERT_EQ(a.ndim, FLEET_MAX_DIMS);
    for (int d = 0; d < 8; d++)
        ASSERT_EQ(a.shape[d], dims8[d]);
    blob_free(&b);
}

/* ---- refusals -------------------------------------------------------------------------- */

TEST(malformed_and_unsupported_files_are_refused_with_the_reason)
{
    const float x[6] = {0};
    static const unsigned char not_npy[16] = "PK\3\4 not numpy";
    blob nb = {malloc(sizeof not_npy), sizeof not_npy};
    memcpy(nb.p, not_npy, sizeof not_npy);
    assert_refused(&nb, "not a .npy file");
    nb.n = 3;
    assert_refused(&nb, "too short for a .npy file (3 bytes)");
    nb.n = 0;
    assert_refused(&nb, "too short for a .npy file (0 bytes)");
    blob_free(&nb);
    ASSERT_REFUSED_NPY(raw_file(1, TRUE_LEN, "", NULL, 0), "expected '{'");

    /* versions */
    blob b = dict_file("<f4", "(2, 3)", x, 24);
    b.p[6] = 4;
    assert_refused(&b, "format version 4.0 is not supported");
    b.p[6] = 1, b.p[7] = 1;
    assert_refused(&b, "format version 1.1 is not supported");
    b.p[6] = 0, b.p[7] = 0;
    assert_refused(&b, "format version 0.0");
    blob_free(&b);

    /* the header's length lies, or is too long */
    ASSERT_REFUSED_NPY(raw_file(1, 1000, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                                x, 4),
                       "truncated: the header length says 1000 bytes, the file has 59");
    ASSERT_REFUSED_NPY(raw_file(2, 0x7fffffff, "{}", NULL, 0),
                       "header length 2147483647 is over the limit of 10000 bytes");
    ASSERT_REFUSED_NPY(raw_file(1, 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                                x, 4),
                       "header: expected a quoted string");

    /* the data's length */
    ASSERT_REFUSED_NPY(dict_file("<f4", "(2, 3)", x, 20),
                       "truncated: the data is 20 bytes, shape (2, 3) of '<f4' needs 24");
    ASSERT_REFUSED_NPY(dict_file("<f4", "(5,)", x, 24),
                       "4 bytes after the data (shape (5,) of '<f4' is 20 bytes)");
    ASSERT_REFUSED_NPY(dict_file("<f4", "(4294967296, 4294967296)", x, 24),
                       "shape (4294967296, 4294967296) is too large: its dimensions multiply to "
                       "more than 2^63 - 1");
    ASSERT_REFUSED_NPY(dict_file("<i8", "(2305843009213693952,)", x, 24),
                       "shape (2305843009213693952,) of '<i8' is more bytes than this machine "
                       "can address");
    /* as numpy: a 0 makes the array empty, but the others must still fit */
    ASSERT_REFUSED_NPY(dict_file("<f4", "(4294967296, 0, 4294967296)", NULL, 0),
                       "is too large");
    ASSERT_REFUSED_NPY(dict_file("<i8", "(9223372036854775807, 0)", NULL, 0),
                       "is more bytes than this machine can address");
    ASSERT_REFUSED_NPY(dict_file("<f4", "(9223372036854775808,)", x, 24), "over 2^63 - 1");

    /* what fleet does not read */
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                                x, 24),
                       "fortran_order is True (column-major data), which is not supported");
    ASSERT_REFUSED_NPY(dict_file("<u2", "(3,)", x, 6), "dtype '<u2' is not supported");
    ASSERT_REFUSED_NPY(dict_file("|u1", "(3,)", x, 3), "dtype '|u1' is not supported");
    ASSERT_REFUSED_NPY(dict_file("<c8", "(3,)", x, 24), "dtype '<c8' is not supported");
    ASSERT_REFUSED_NPY(dict_file(">f4", "(3,)", x, 12), "dtype '>f4' is big-endian");
    ASSERT_REFUSED_NPY(dict_file(">i8", "(3,)", x, 24), "a.astype('<i8')");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': [('a', '<f4')], 'fortran_order': False, "
                                   "'shape': (3,), }", x, 12),
                       "structured dtypes");
    ASSERT_REFUSED_NPY(dict_file("<f4", "(1, 1, 1, 1, 1, 1, 1, 1, 1)", x, 4),
                       "more than 8 dimensions");

    /* the dict, strictly */
    ASSERT_REFUSED_NPY(dict_file("<f4", "(3)", x, 12), "shape (3) is not a tuple");
    ASSERT_REFUSED_NPY(dict_file("<f4", "(03,)", x, 12), "leading zero");
    ASSERT_REFUSED_NPY(dict_file("<f4", "(-3,)", x, 12), "expected a dimension");
    ASSERT_REFUSED_NPY(dict_file("<f4", "(2.0,)", x, 8), "expected ',' or ')' in the shape");
    ASSERT_REFUSED_NPY(dict_file("<f4", "[2, 3]", x, 24), "expected the shape, a tuple");
    ASSERT_REFUSED_NPY(dict_file("<f4", "(2,,)", x, 8), "expected a dimension");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'shape': (3,)}", x, 12),
                       "no 'fortran_order' key");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'fortran_order': False}", x, 12),
                       "no 'shape' key");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), "
                                   "'descr': '<f4'}", x, 12),
                       "key 'descr' given twice");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), "
                                   "'align': 1}", x, 12),
                       "unknown key 'align'");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", x, 12),
                       "expected False or True for fortran_order");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}", x,
                                12),
                       "expected ',' or '}' after a value");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr' '<f4', 'fortran_order': False, 'shape': (3,)}", x,
                                12),
                       "expected ':' after the key");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x",
                                x, 12),
                       "'x' at byte");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}",
                                x, 12),
                       "escapes in strings are not supported");
    ASSERT_REFUSED_NPY(raw_file(1, TRUE_LEN, "{'descr': '<", NULL, 0), "unterminated string");
    ASSERT_REFUSED_NPY(raw_file(1, TRUE_LEN, "{'descr': '<f4', 'fo", NULL, 0),
                       "unterminated string");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}", x, 0),
                       "a string longer than 31 bytes");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), "
                                   "'\xc3\xa9': 1}", x, 12),
                       "not printable ASCII");
    ASSERT_REFUSED_NPY(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)",
                                x, 12),
                       "expected ',' or '}' after a value");
}

TEST(every_truncation_of_a_valid_file_is_refused)
{
    const int64_t v[6] = {1, 2, 3, 4, 5, 6};
    for (int major = 1; major <= 3; major++) {
        blob b = npy_file(major, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }",
                          v, sizeof v);
        parse_ok(&b);
        for (size_t n = 0; n < b.n; n++) {
            unsigned char *cut = malloc(n + 1); /* exactly n bytes for ASan */
            memcpy(cut, b.p, n);
            fleet_cli_npy_array a;
            ASSERT_EQ(fleet_cli_npy_parse(n ? cut : NULL, n, &a, err, sizeof err),
                      FLEET_ERR_INVALID_ARGUMENT);
            ASSERT_TRUE(err[0] != '\0' && a.data == NULL);
            free(cut);
        }
        blob_free(&b);
    }
}

/* ---- writing --------------------------------------------------------------------------- */

/* The header written for the array, NUL-terminated in h (which holds
 * FLEET_CLI_NPY_HEADER_CAP + 1 bytes); its length, 0 when refused. */
static size_t header_of(fleet_dtype dtype, int ndim, const int64_t *shape, char *h, size_t cap)
{
    memset(h, 0, FLEET_CLI_NPY_HEADER_CAP + 1);
    return fleet_cli_npy_header(dtype, ndim, shape, h, cap);
}

TEST(the_header_written_is_numpys_format_1_0)
{
    char h[FLEET_CLI_NPY_HEADER_CAP + 1];
    const size_t cap = FLEET_CLI_NPY_HEADER_CAP;
    int64_t s23[2] = {2, 3}, s5[1] = {5};
    size_t n = header_of(FLEET_DTYPE_F32, 2, s23, h, cap);
    static const char want[] =
        "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    ASSERT_EQ(n, 128); /* the same bytes numpy 2 writes for this array */
    ASSERT_TRUE(memcmp(h, want, sizeof want - 1) == 0);
    for (size_t k = sizeof want - 1; k < 127; k++)
        ASSERT_EQ(h[k], ' ');
    ASSERT_EQ(h[127], '\n');
    /* a 1-d shape keeps its comma; a scalar's is (); bf16 is written as f32 */
    n = header_of(FLEET_DTYPE_I64, 1, s5, h, cap);
    ASSERT_EQ(n, 128);
    ASSERT_TRUE(strstr(h + 10, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }") ==
                h + 10);
    n = header_of(FLEET_DTYPE_BOOL, 0, NULL, h, cap);
    ASSERT_TRUE(n == 128 && strstr(h + 10, "{'descr': '|b1', 'fortran_order': False, "
                                          "'shape': (), }") == h + 10);
    n = header_of(FLEET_DTYPE_BF16, 1, s5, h, cap);
    ASSERT_TRUE(n == 128 && strstr(h + 10, "'descr': '<f4'"));
    /* the most dimensions of the largest sizes fit in the documented cap */
    int64_t big[FLEET_MAX_DIMS];
    for (int d = 0; d < FLEET_MAX_DIMS; d++)
        big[d] = INT64_MAX;
    n = header_of(FLEET_DTYPE_F16, FLEET_MAX_DIMS, big, h, cap);
    ASSERT_TRUE(n > 0 && n % 64 == 0 && n <= FLEET_CLI_NPY_HEADER_CAP);
    /* what it cannot write */
    int64_t neg[1] = {-1};
    ASSERT_EQ(header_of(FLEET_DTYPE_F32, 1, neg, h, cap), 0);
    ASSERT_EQ(header_of(FLEET_DTYPE_F32, FLEET_MAX_DIMS + 1, big, h, cap), 0);
    ASSERT_EQ(header_of((fleet_dtype)42, 1, s5, h, cap), 0);
    ASSERT_EQ(header_of(FLEET_DTYPE_F32, 1, s5, h, 127), 0);
    /* and a header written parses back, its data appended */
    const int32_t d[5] = {5, 4, 3, 2, 1};
    n = header_of(FLEET_DTYPE_I32, 1, s5, h, cap);
    blob b = {malloc(n + sizeof d), n + sizeof d};
    memcpy(b.p, h, n);
    memcpy(b.p + n, d, sizeof d);
    fleet_cli_npy_array a = parse_ok(&b);
    ASSERT_TRUE(a.dtype == FLEET_DTYPE_I32 && a.ndim == 1 && a.shape[0] == 5 && a.version == 1);
    ASSERT_TRUE(memcmp(a.data, d, sizeof d) == 0);
    blob_free(&b);
}

static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    ASSERT_TRUE(d != NULL);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

TEST(saved_files_open_with_their_values_and_leave_no_temporary)
{
    char dir[] = "/tmp/fleet-npy-XXXXXX", path[256];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/a.npy", dir);
    int64_t shape[3] = {2, 1, 3};
    const int64_t i8[6] = {-5, 0, 5, INT64_MAX, INT64_MIN, 1};
    const uint16_t f2[6] = {0x3c00, 0xc000, 0x3400, 0, 0x7c00, 0x8001};
    const uint8_t b1[6] = {1, 0, 0, 1, 1, 0};
    const struct {
        fleet_dtype dtype;
        const void *data;
    } cases[] = {{FLEET_DTYPE_I64, i8}, {FLEET_DTYPE_F16, f2}, {FLEET_DTYPE_BOOL, b1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* each save replaces the file before */
        ASSERT_EQ(fleet_cli_npy_save(path, cases[c].dtype, 3, shape, cases[c].data, err,
                                     sizeof err),
                  FLEET_OK);
        ASSERT_EQ(files_in(dir), 1);
        struct stat sb;
        ASSERT_EQ(stat(path, &sb), 0);
        mode_t mask = umask(0);
        umask(mask);
        ASSERT_EQ(sb.st_mode & 0777, 0666 & ~mask); /* a plain create's mode */
        fleet_cli_npy_file f;
        ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
        ASSERT_EQ(f.array.dtype, cases[c].dtype);
        ASSERT_EQ(f.array.ndim, 3);
        ASSERT_TRUE(f.array.shape[0] == 2 && f.array.shape[1] == 1 && f.array.shape[2] == 3);
        ASSERT_EQ(f.size % 64, (6 * fleet_dtype_size(cases[c].dtype)) % 64);
        ASSERT_TRUE(memcmp(f.array.data, cases[c].data, f.array.nbytes) == 0);
        fleet_cli_npy_close(&f);
        fleet_cli_npy_close(&f); /* a closed file is zeroed: closing again is nothing */
    }
    /* bf16 is widened to f32, exactly; a scalar and an empty array */
    const uint16_t bf[3] = {0x3fc0, 0xc000, 0x0001}; /* 1.5, -2, the smallest subnormal */
    int64_t s3[1] = {3}, s0[2] = {0, 4};
    ASSERT_EQ(fleet_cli_npy_save(path, FLEET_DTYPE_BF16, 1, s3, bf, err, sizeof err), FLEET_OK);
    fleet_cli_npy_file f;
    ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
    ASSERT_TRUE(strcmp(f.array.descr, "<f4") == 0 && f.array.numel == 3);
    for (int k = 0; k < 3; k++) {
        uint32_t bits;
        memcpy(&bits, (const char *)f.array.data + 4 * k, 4);
        ASSERT_EQ(bits, (uint32_t)bf[k] << 16);
    }
    fleet_cli_npy_close(&f);
    const float pi = 3.25f;
    ASSERT_EQ(fleet_cli_npy_save(path, FLEET_DTYPE_F32, 0, NULL, &pi, err, sizeof err), FLEET_OK);
    ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
    float got;
    memcpy(&got, f.array.data, sizeof got);
    ASSERT_TRUE(f.array.ndim == 0 && f.array.numel == 1 && got == pi);
    fleet_cli_npy_close(&f);
    ASSERT_EQ(fleet_cli_npy_save(path, FLEET_DTYPE_I32, 2, s0, NULL, err, sizeof err), FLEET_OK);
    ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
    ASSERT_TRUE(f.array.ndim == 2 && f.array.numel == 0 && f.size == 128);
    fleet_cli_npy_close(&f);
    ASSERT_EQ(files_in(dir), 1);

    /* failures: nothing is left behind, and the reason names the file */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/folder/b.npy", dir);
    ASSERT_EQ(fleet_cli_npy_save(missing, FLEET_DTYPE_I32, 1, s3, i8, err, sizeof err),
              FLEET_ERR_IO);
    ASSERT_STR_CONTAINS(err, "cannot create a temporary file beside");
    ASSERT_STR_CONTAINS(err, "No such file or directory");
    ASSERT_EQ(fleet_cli_npy_save(path, FLEET_DTYPE_I32, 9, shape, i8, err, sizeof err),
              FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(err, "no .npy header for a i32 array of 9 dimensions");
    ASSERT_EQ(fleet_cli_npy_open(missing, &f, err, sizeof err), FLEET_ERR_IO);
    ASSERT_STR_CONTAINS(err, "cannot open '");
    ASSERT_TRUE(f.map == NULL);
    ASSERT_EQ(fleet_cli_npy_open(dir, &f, err, sizeof err), FLEET_ERR_IO);
    ASSERT_STR_CONTAINS(err, "is not a regular file");
    FILE *e = fopen(path, "w");
    ASSERT_TRUE(e != NULL);
    fclose(e);
    ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(err, "a.npy: too short for a .npy file (0 bytes)");
    ASSERT_EQ(files_in(dir), 1);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(rmdir(dir), 0);
}

/* A save whose write fails half-way (a file size limit in a child) reports
 * it, leaves the file that was there untouched and no temporary file. */
TEST(a_save_that_fails_half_way_leaves_the_old_file_whole)
{
    char dir[] = "/tmp/fleet-npy-XXXXXX", path[256];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/y.npy", dir);
    int64_t one[1] = {1};
    const int32_t old = 7;
    ASSERT_EQ(fleet_cli_npy_save(path, FLEET_DTYPE_I32, 1, one, &old, err, sizeof err), FLEET_OK);
    fflush(stdout);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        static int64_t big[8192]; /* 64 KiB, past the limit */
        int64_t shape[1] = {8192};
        struct rlimit limit = {4096, 4096};
        signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead */
        if (setrlimit(RLIMIT_FSIZE, &limit) != 0)
            _exit(3);
        fleet_status st = fleet_cli_npy_save(path, FLEET_DTYPE_I64, 1, shape, big, err,
                                             sizeof err);
        _exit(st == FLEET_ERR_IO && strstr(err, "cannot write") != NULL &&
                      strstr(err, "File too large") != NULL
                  ? 0
                  : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ(files_in(dir), 1);
    fleet_cli_npy_file f;
    ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
    int32_t got;
    memcpy(&got, f.array.data, sizeof got);
    ASSERT_TRUE(f.array.dtype == FLEET_DTYPE_I32 && f.array.numel == 1 && got == old);
    fleet_cli_npy_close(&f);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(rmdir(dir), 0);
}

TEST_MAIN()
