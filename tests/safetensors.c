/* safetensors — the .safetensors parser (src/model/safetensors.c): valid
 * files parse to the right names, dtypes, shapes, sizes and bytes; every
 * kind of corruption is FLEET_ERR_INVALID_MODEL with a message that says
 * what; every truncation and a few thousand seeded mutations of a valid file
 * fail cleanly or parse to something self-consistent (run under ASan by
 * `make test-asan`: each input sits in a malloc of exactly its size, so a
 * read past the end is caught). Files are built in memory by the writer
 * below, or written by hand where the JSON itself is the point. */
#include <errno.h>
#include <fcntl.h>

#include "core/error.h"
#include "harness.h"
#include "model/safetensors.h"

/* ---- a test-local writer -------------------------------------------------- */

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

/* An 8-byte length field `n_field`, then header[0..hlen), then data: in a
 * malloc of exactly the file's size. */
static blob raw_file(uint64_t n_field, const char *header, size_t hlen, const void *data,
                     size_t dlen)
{
    blob b = {malloc(8 + hlen + dlen + 1), 8 + hlen + dlen};
    ASSERT_TRUE(b.p != NULL);
    for (int k = 0; k < 8; k++)
        b.p[k] = (uint8_t)(n_field >> (8 * k));
    memcpy(b.p + 8, header, hlen);
    if (dlen)
        memcpy(b.p + 8 + hlen, data, dlen);
    return b;
}

/* Byte i of the data section in hand-written files. */
static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + 1);
}

/* A file whose header is `json` (its real length) and whose data section is
 * `dlen` pattern bytes. */
static blob json_file(const char *json, size_t dlen)
{
    uint8_t *data = calloc(dlen + 1, 1);
    ASSERT_TRUE(data != NULL);
    for (size_t i = 0; i < dlen; i++)
        data[i] = pattern(i);
    blob b = raw_file(strlen(json), json, strlen(json), data, dlen);
    free(data);
    return b;
}

typedef struct tw_tensor {
    const char *name; /* JSON text between the quotes (escape it yourself) */
    const char *dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    const void *data;
    size_t nbytes;
} tw_tensor;

/* Tensors laid out back to back in the given order, with an optional
 * "__metadata__" object (JSON text) first and `pad` spaces after the header
 * object (the format's alignment padding). */
static blob tw_file(const char *metadata, const tw_tensor *t, int n, int pad)
{
    char json[4096];
    uint8_t data[1024];
    size_t k = 0, off = 0;
    k += (size_t)snprintf(json + k, sizeof json - k, "{");
    if (metadata)
        k += (size_t)snprintf(json + k, sizeof json - k, "\"__metadata__\":%s%s", metadata,
                              n ? "," : "");
    for (int i = 0; i < n; i++) {
        k += (size_t)snprintf(json + k, sizeof json - k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                              i ? "," : "", t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            k += (size_t)snprintf(json + k, sizeof json - k, "%s%lld", d ? "," : "",
                                  (long long)t[i].shape[d]);
        k += (size_t)snprintf(json + k, sizeof json - k, "],\"data_offsets\":[%zu,%zu]}", off,
                              off + t[i].nbytes);
        ASSERT_TRUE(off + t[i].nbytes <= sizeof data);
        if (t[i].nbytes)
            memcpy(data + off, t[i].data, t[i].nbytes);
        off += t[i].nbytes;
    }
    k += (size_t)snprintf(json + k, sizeof json - k, "}%*s", pad, "");
    ASSERT_TRUE(k < sizeof json);
    return raw_file(k, json, k, data, off);
}

/* The valid file most tests start from: three tensors of different dtypes
 * and shapes (a 0-d scalar, a tensor with a 0 dimension) and metadata. */
static const float W1[6] = {1, -2, 3.5f, 4, 5, -6.25f};
static const int64_t SCALE = INT64_C(-1234567890123);

static blob valid_file(int pad)
{
    tw_tensor t[3] = {
        {"w1", "F32", 2, {2, 3}, W1, sizeof W1},
        {"scale", "I64", 0, {0}, &SCALE, sizeof SCALE},
        {"empty", "F16", 2, {4, 0}, NULL, 0},
    };
    return tw_file("{\"format\":\"pt\",\"note\":\"a \\\"quoted\\\" value\"}", t, 3, pad);
}

/* Parse `json` + dlen pattern bytes, expecting FLEET_ERR_INVALID_MODEL with
 * `needle` in the message and an empty *out. */
#define EXPECT_BAD(json, dlen, needle)                                                   \
    do {                                                                                 \
        blob bad_b_ = json_file((json), (dlen));                                             \
        fleet__st_file bad_f_ = {.count = 99};                                               \
        ASSERT_STATUS(fleet__safetensors_parse(bad_b_.p, bad_b_.n, &bad_f_), FLEET_ERR_INVALID_MODEL); \
        ASSERT_STR_CONTAINS(fleet_last_error(), "safetensors: ");                       \
        ASSERT_STR_CONTAINS(fleet_last_error(), (needle));                               \
        ASSERT_EQ(bad_f_.count, 0);                                                          \
        ASSERT_TRUE(bad_f_.tensors == NULL);                                                 \
        fleet__safetensors_close(&bad_f_);                                                   \
        free(bad_b_.p);                                                                      \
    } while (0)

/* A complete entry for name `n` with the given dtype, shape and offsets. */
#define ENTRY(n, dt, shape, b, e)                                                        \
    "\"" n "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

/* ---- valid files ---------------------------------------------------------- */

static void check_valid(const fleet__st_file *f, const blob *b)
{
    ASSERT_EQ(f->count, 3);
    /* Sorted by name. */
    ASSERT_EQ(strcmp(f->tensors[0].name, "empty"), 0);
    ASSERT_EQ(strcmp(f->tensors[1].name, "scale"), 0);
    ASSERT_EQ(strcmp(f->tensors[2].name, "w1"), 0);

    const fleet__st_tensor *w1 = &f->tensors[2];
    ASSERT_EQ(w1->dtype, FLEET_DTYPE_F32);
    ASSERT_EQ(strcmp(w1->dtype_name, "F32"), 0);
    ASSERT_EQ(w1->ndim, 2);
    ASSERT_EQ(w1->shape[0], 2);
    ASSERT_EQ(w1->shape[1], 3);
    ASSERT_EQ(w1->nbytes, sizeof W1);
    ASSERT_EQ(w1->data_offsets[0], 0);
    ASSERT_EQ(w1->data_offsets[1], 24);
    float w[6];
    memcpy(w, w1->data, sizeof w); /* unaligned in the file: copy */
    ASSERT_CLOSE(w, W1, 6, 0, 0);

    const fleet__st_tensor *s = &f->tensors[1];
    ASSERT_EQ(s->dtype, FLEET_DTYPE_I64);
    ASSERT_EQ(strcmp(s->dtype_name, "I64"), 0);
    ASSERT_EQ(s->ndim, 0);
    ASSERT_EQ(s->nbytes, 8);
    ASSERT_EQ(s->data_offsets[0], 24);
    ASSERT_EQ(s->data_offsets[1], 32);
    int64_t v;
    memcpy(&v, s->data, sizeof v);
    ASSERT_EQ(v, SCALE);

    const fleet__st_tensor *e = &f->tensors[0];
    ASSERT_EQ(e->dtype, FLEET_DTYPE_F16);
    ASSERT_EQ(strcmp(e->dtype_name, "F16"), 0);
    ASSERT_EQ(e->ndim, 2);
    ASSERT_EQ(e->shape[0], 4);
    ASSERT_EQ(e->shape[1], 0);
    ASSERT_EQ(e->nbytes, 0);
    ASSERT_EQ(e->data_offsets[0], 32);
    ASSERT_EQ(e->data_offsets[1], 32);

    /* The data pointers are into the buffer's data section. */
    size_t data_start = b->n - 32;
    ASSERT_TRUE((const uint8_t *)w1->data == b->p + data_start);
    ASSERT_TRUE((const uint8_t *)s->data == b->p + data_start + 24);
    ASSERT_TRUE((const uint8_t *)e->data == b->p + b->n);
}

TEST(valid_file_values)
{
    for (int pad = 0; pad <= 7; pad += 7) { /* with and without alignment padding */
        blob b = valid_file(pad);
        fleet__st_file f;
        ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
        check_valid(&f, &b);
        fleet__safetensors_close(&f);
        ASSERT_EQ(f.count, 0);
        ASSERT_TRUE(f.tensors == NULL);
        fleet__safetensors_close(&f); /* idempotent */
        free(b.p);
    }
    fleet__safetensors_close(NULL);
}

TEST(metadata_skipped_and_empty_files)
{
    /* Metadata only, no tensors, no data. */
    blob b = json_file("{\"__metadata__\":{\"a\":\"b\",\"c\":\"\\u00e9\\n\"}}", 0);
    fleet__st_file f;
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    ASSERT_EQ(f.count, 0);
    ASSERT_TRUE(fleet__safetensors_find(&f, "__metadata__") == NULL);
    fleet__safetensors_close(&f);
    free(b.p);

    /* Metadata after a tensor, whitespace everywhere JSON allows it. */
    b = json_file(" {\n\t\"x\" : { \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 2 ] , "
                  "\"dtype\" : \"U8\" } ,\r\n \"__metadata__\" : { } } ",
                  2);
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    ASSERT_EQ(f.count, 1);
    ASSERT_EQ(strcmp(f.tensors[0].name, "x"), 0);
    ASSERT_EQ(f.tensors[0].ndim, 1);
    ASSERT_EQ(f.tensors[0].shape[0], 2);
    ASSERT_EQ(((const uint8_t *)f.tensors[0].data)[1], pattern(1));
    fleet__safetensors_close(&f);
    free(b.p);

    /* "{}" and no data: a file with nothing in it. */
    b = json_file("{}", 0);
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    ASSERT_EQ(f.count, 0);
    fleet__safetensors_close(&f);
    free(b.p);
}

TEST(find_hits_and_misses)
{
    blob b = valid_file(0);
    fleet__st_file f;
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    const char *names[] = {"w1", "scale", "empty"};
    for (int i = 0; i < 3; i++) {
        const fleet__st_tensor *t = fleet__safetensors_find(&f, names[i]);
        ASSERT_TRUE(t != NULL);
        ASSERT_EQ(strcmp(t->name, names[i]), 0);
    }
    ASSERT_EQ(fleet__safetensors_find(&f, "w1")->nbytes, 24);
    const char *misses[] = {"w", "w10", "W1", "", "a", "zzz", "scal", "__metadata__"};
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++)
        ASSERT_TRUE(fleet__safetensors_find(&f, misses[i]) == NULL);
    ASSERT_TRUE(fleet__safetensors_find(&f, NULL) == NULL);
    ASSERT_TRUE(fleet__safetensors_find(NULL, "w1") == NULL);
    fleet__safetensors_close(&f);
    ASSERT_TRUE(fleet__safetensors_find(&f, "w1") == NULL); /* closed: empty */
    free(b.p);
}

TEST(many_tensors_sorted_and_found)
{
    /* 300 one-byte tensors written in reverse name order. */
    enum { N = 300 };
    char *json = malloc(N * 80 + 8);
    ASSERT_TRUE(json != NULL);
    size_t k = (size_t)sprintf(json, "{");
    for (int i = 0; i < N; i++)
        k += (size_t)sprintf(json + k, "%s\"t%03d\":{\"dtype\":\"I8\",\"shape\":[1],"
                                       "\"data_offsets\":[%d,%d]}",
                             i ? "," : "", N - 1 - i, i, i + 1);
    sprintf(json + k, "}");
    blob b = json_file(json, N);
    free(json);
    fleet__st_file f;
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    ASSERT_EQ(f.count, N);
    for (int i = 0; i < N; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%03d", i);
        ASSERT_EQ(strcmp(f.tensors[i].name, name), 0);
        const fleet__st_tensor *t = fleet__safetensors_find(&f, name);
        ASSERT_TRUE(t == &f.tensors[i]);
        /* t%03d = i was written at position N - 1 - i. */
        ASSERT_EQ(t->data_offsets[0], N - 1 - i);
        ASSERT_EQ(*(const uint8_t *)t->data, pattern((size_t)(N - 1 - i)));
    }
    fleet__safetensors_close(&f);
    free(b.p);
}

TEST(names_with_escapes)
{
    /* \" \\ \/ \n \u00e9 (é), a surrogate pair (U+1F600), raw UTF-8 (ü). */
    blob b = json_file("{" ENTRY("a\\\"b\\\\c\\/d\\ne\\u00e9\\ud83d\\ude00\xc3\xbc", "U8", "[1]", 0,
                                 1) "," ENTRY("", "U8", "[]", 1, 2) "}",
                       2);
    fleet__st_file f;
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    ASSERT_EQ(f.count, 2);
    const char *want = "a\"b\\c/d\ne\xc3\xa9\xf0\x9f\x98\x80\xc3\xbc";
    const fleet__st_tensor *t = fleet__safetensors_find(&f, want);
    ASSERT_TRUE(t != NULL);
    ASSERT_EQ(t->data_offsets[0], 0);
    t = fleet__safetensors_find(&f, ""); /* the empty name is a name */
    ASSERT_TRUE(t != NULL);
    ASSERT_EQ(t->ndim, 0);
    ASSERT_EQ(*(const uint8_t *)t->data, pattern(1));
    fleet__safetensors_close(&f);
    free(b.p);
}

TEST(other_dtypes)
{
    /* Dtypes fleet has no fleet_dtype for parse with dtype -1 and their
     * name; sub-byte F4 packs two elements into a byte. */
    blob b = json_file("{" ENTRY("d", "F64", "[3]", 0, 24) "," ENTRY("b", "BOOL", "[2,2]", 24, 28)
                       "," ENTRY("q", "F4", "[2,3]", 28, 31) "," ENTRY("e", "F8_E4M3", "[5]", 31, 36)
                       "," ENTRY("h", "BF16", "[1,1,1,1,1,1,1,1]", 36, 38) "}",
                       38);
    fleet__st_file f;
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    ASSERT_EQ(f.count, 5);
    const fleet__st_tensor *d = fleet__safetensors_find(&f, "d");
    ASSERT_EQ(d->dtype, -1);
    ASSERT_EQ(strcmp(d->dtype_name, "F64"), 0);
    ASSERT_EQ(d->nbytes, 24);
    ASSERT_EQ(((const uint8_t *)d->data)[5], pattern(5));
    const fleet__st_tensor *bo = fleet__safetensors_find(&f, "b");
    ASSERT_EQ(bo->dtype, -1);
    ASSERT_EQ(strcmp(bo->dtype_name, "BOOL"), 0);
    ASSERT_EQ(bo->nbytes, 4);
    const fleet__st_tensor *q = fleet__safetensors_find(&f, "q");
    ASSERT_EQ(strcmp(q->dtype_name, "F4"), 0);
    ASSERT_EQ(q->nbytes, 3);
    ASSERT_EQ(fleet__safetensors_find(&f, "e")->dtype, -1);
    const fleet__st_tensor *h = fleet__safetensors_find(&f, "h");
    ASSERT_EQ(h->dtype, FLEET_DTYPE_BF16);
    ASSERT_EQ(h->ndim, FLEET_MAX_DIMS);
    fleet__safetensors_close(&f);
    free(b.p);

    /* Zero-size tensors may share an offset, and a zero dimension makes any
     * other dimension's size harmless. */
    b = json_file("{" ENTRY("z1", "F32", "[0]", 4, 4) "," ENTRY("z2", "F32",
                                                                "[9223372036854775807,0,"
                                                                "9223372036854775807]",
                                                                4, 4) "," ENTRY("a", "I32", "[1]",
                                                                                0, 4) "}",
                  4);
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    ASSERT_EQ(f.count, 3);
    ASSERT_EQ(fleet__safetensors_find(&f, "z2")->shape[0], INT64_MAX);
    ASSERT_EQ(fleet__safetensors_find(&f, "z2")->nbytes, 0);
    fleet__safetensors_close(&f);
    free(b.p);
}

/* ---- files on disk -------------------------------------------------------- */

static void write_temp(char *path, size_t size, const blob *b)
{
    snprintf(path, size, "%s/safetensors_XXXXXX", FLEET_TEST_BINARY_DIR);
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(write(fd, b->p, b->n), (long long)b->n);
    ASSERT_EQ(close(fd), 0);
}

TEST(open_from_path)
{
    blob b = valid_file(3);
    char path[256];
    write_temp(path, sizeof path, &b);
    fleet__st_file f;
    ASSERT_OK(fleet__safetensors_open(path, &f));
    ASSERT_EQ(f.count, 3);
    /* The file's own copy: same values, not the caller's buffer. */
    const fleet__st_tensor *w1 = fleet__safetensors_find(&f, "w1");
    ASSERT_TRUE(w1 != NULL);
    ASSERT_EQ(memcmp(w1->data, W1, sizeof W1), 0);
    ASSERT_TRUE((const uint8_t *)w1->data < b.p || (const uint8_t *)w1->data >= b.p + b.n);
    free(b.p); /* the file does not depend on it */
    ASSERT_EQ(memcmp(w1->data, W1, sizeof W1), 0);
    fleet__safetensors_close(&f);
    fleet__safetensors_close(&f);
    ASSERT_EQ(unlink(path), 0);

    /* A missing path: FLEET_ERR_IO naming the path and errno's text. */
    fleet__st_file g = {.count = 5};
    ASSERT_STATUS(fleet__safetensors_open(path, &g), FLEET_ERR_IO);
    ASSERT_STR_CONTAINS(fleet_last_error(), path);
    ASSERT_STR_CONTAINS(fleet_last_error(), strerror(ENOENT));
    ASSERT_EQ(g.count, 0);
    fleet__safetensors_close(&g);

    /* A directory is not a file. */
    ASSERT_REFUSED(fleet__safetensors_open(FLEET_TEST_BINARY_DIR, &g), FLEET_ERR_IO,
                   "not a regular file");

    /* A corrupt file: the parser's error, with the path in front. */
    blob bad = json_file("{\"a\":{}}", 0);
    write_temp(path, sizeof path, &bad);
    ASSERT_STATUS(fleet__safetensors_open(path, &g), FLEET_ERR_INVALID_MODEL);
    ASSERT_STR_CONTAINS(fleet_last_error(), path);
    ASSERT_STR_CONTAINS(fleet_last_error(), "tensor 'a': missing key 'dtype'");
    ASSERT_EQ(g.count, 0);
    ASSERT_EQ(unlink(path), 0);
    free(bad.p);

    ASSERT_STATUS(fleet__safetensors_open(NULL, &g), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet__safetensors_open("x", NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet__safetensors_parse(NULL, 8, &g), FLEET_ERR_NULL_POINTER);
    uint8_t eight[8] = {0};
    ASSERT_STATUS(fleet__safetensors_parse(eight, 8, NULL), FLEET_ERR_NULL_POINTER);
}

/* ---- corrupt files -------------------------------------------------------- */

TEST(bad_framing)
{
    fleet__st_file f;
    uint8_t seven[7] = {2, 0, 0, 0, 0, 0, 0};
    ASSERT_REFUSED(fleet__safetensors_parse(seven, sizeof seven, &f), FLEET_ERR_INVALID_MODEL,
                   "the file is 7 bytes, shorter than the 8-byte header");
    ASSERT_REFUSED(fleet__safetensors_parse(NULL, 0, &f), FLEET_ERR_INVALID_MODEL,
                   "the file is 0 bytes");

    /* Header length beyond the file. */
    blob b = raw_file(3, "{}", 2, NULL, 0);
    ASSERT_REFUSED(fleet__safetensors_parse(b.p, b.n, &f), FLEET_ERR_INVALID_MODEL,
                   "header length 3 runs past the end of the file (2 bytes");
    free(b.p);
    b = raw_file(UINT64_MAX, "{}", 2, NULL, 0);
    ASSERT_REFUSED(fleet__safetensors_parse(b.p, b.n, &f), FLEET_ERR_INVALID_MODEL,
                   "header length 18446744073709551615 is over the limit");
    free(b.p);
    /* Over the limit (checked before the file's size). */
    b = raw_file((uint64_t)FLEET__ST_MAX_HEADER + 1, "{}", 2, NULL, 0);
    ASSERT_REFUSED(fleet__safetensors_parse(b.p, b.n, &f), FLEET_ERR_INVALID_MODEL,
                   "header length 104857601 is over the limit (104857600");
    free(b.p);

    /* A header of length 0, or one that is not an object. */
    EXPECT_BAD("", 0, "expected '{' (the header is a JSON object), found the end of the header");
    EXPECT_BAD("[]", 0, "expected '{' (the header is a JSON object), found '['");
    EXPECT_BAD("   ", 0, "at byte 3 of the header");
}

TEST(bad_json)
{
    /* Truncated strings, at a name, a key and a value. */
    EXPECT_BAD("{\"w1", 0, "unterminated string at byte 1 of the header");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F3", 0, "tensor 'a': unterminated string");
    EXPECT_BAD("{\"a\\", 0, "unterminated string");
    /* Missing colon, comma, brace. */
    EXPECT_BAD("{\"a\" {}}", 0, "expected ':' after a key, found '{' at byte 5 of the header");
    EXPECT_BAD("{" ENTRY("a", "U8", "[1]", 0, 1) " " ENTRY("b", "U8", "[1]", 1, 2) "}", 2,
               "tensor 'a': expected ',' or '}', found '\"'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\"", 0, "expected ',' or '}', found the end of the header");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\" \"shape\":[]}}", 0, "expected ',' or '}', found '\"'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[1 2]}}", 0, "expected ',' or ']' in the shape");
    /* Trailing commas and garbage. */
    EXPECT_BAD("{" ENTRY("a", "U8", "[1]", 0, 1) ",}", 1,
               "expected a tensor name (a string), found '}'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\",}}", 0, "expected a key string, found '}'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,]}}", 0,
               "expected a shape dimension (a non-negative integer), found ']'");
    EXPECT_BAD("{}x", 0, "expected the end of the header after its object, found 'x' at byte 2");
    EXPECT_BAD("{}{}", 0, "expected the end of the header after its object");
    EXPECT_BAD("{} \x01", 0, "found byte 0x01");
    /* Bad escapes and strings. */
    EXPECT_BAD("{\"a\\q\":{}}", 0, "invalid escape '\\' followed by 'q'");
    EXPECT_BAD("{\"a\\u12g4\":{}}", 0, "invalid \\u escape (needs four hex digits)");
    EXPECT_BAD("{\"a\\u12\"}", 0, "invalid \\u escape");
    EXPECT_BAD("{\"a\\ud83d\":{}}", 0, "unpaired surrogate \\ud83d");
    EXPECT_BAD("{\"a\\ud83d\\u0041\":{}}", 0, "unpaired surrogate \\ud83d");
    EXPECT_BAD("{\"a\\ude00\":{}}", 0, "unpaired surrogate \\ude00");
    EXPECT_BAD("{\"a\nb\":{}}", 0, "control character 0x0a in a string");
    EXPECT_BAD("{\"a\xff\":{}}", 0, "invalid UTF-8 in a string");
    EXPECT_BAD("{\"a\xc0\x80\":{}}", 0, "invalid UTF-8"); /* overlong NUL */
    EXPECT_BAD("{\"a\xed\xa0\x80\":{}}", 0, "invalid UTF-8"); /* raw surrogate */
    EXPECT_BAD("{\"a\xe2\x82\":{}}", 0, "invalid UTF-8");     /* cut sequence */
    EXPECT_BAD("{\"a\\u0000b\":{}}", 0, "a tensor name contains a NUL character");
    /* Nesting deeper than the format has. */
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[[[[[[1]]]]]],\"data_offsets\":[0,4]}}", 4,
               "expected a shape dimension (a non-negative integer), found '[': nesting deeper "
               "than the format allows");
    EXPECT_BAD("{\"a\":{\"dtype\":{\"x\":{\"y\":{}}}}}", 0,
               "expected a dtype string, found '{': nesting deeper than the format allows");
    EXPECT_BAD("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0,
               "expected a string value (__metadata__ maps strings to strings), found '{'");
    EXPECT_BAD("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ maps strings to strings");
    EXPECT_BAD("{\"__metadata__\":[]}", 0, "__metadata__ is an object of strings");
    EXPECT_BAD("{\"a\":[{}]}", 0, "tensor 'a': expected '{' to open the tensor's entry, found '['");
    EXPECT_BAD("{\"a\":null}", 0, "expected '{' to open the tensor's entry, found 'n'");
    EXPECT_BAD("{\"a\":{\"dtype\":true}}", 0, "expected a dtype string, found 't'");
    /* Duplicate keys. */
    EXPECT_BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ appears twice");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\"}}", 0,
               "tensor 'a': key 'dtype' appears twice");
}

TEST(bad_entries)
{
    EXPECT_BAD("{\"w1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
               "tensor 'w1': unknown key 'extra' (an entry has dtype, shape, data_offsets)");
    EXPECT_BAD("{\"w1\":{\"dtype\":\"F32\",\"Shape\":[1]}}", 4, "unknown key 'Shape'");
    EXPECT_BAD("{\"w1\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "tensor 'w1': missing key 'dtype'");
    EXPECT_BAD("{\"w1\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
               "tensor 'w1': missing key 'shape'");
    EXPECT_BAD("{\"w1\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
               "tensor 'w1': missing key 'data_offsets'");
    EXPECT_BAD("{\"w1\":{}}", 0, "tensor 'w1': missing key 'dtype'");
    EXPECT_BAD("{" ENTRY("w1", "Q4", "[1]", 0, 1) "}", 1, "tensor 'w1': unknown dtype 'Q4'");
    EXPECT_BAD("{" ENTRY("w1", "f32", "[1]", 0, 4) "}", 4, "unknown dtype 'f32'");
    EXPECT_BAD("{" ENTRY("w1", "F32_AND_A_VERY_LONG_NAME", "[1]", 0, 4) "}", 4,
               "unknown dtype 'F32_AND_A_VERY_...'");
    /* Shapes. */
    EXPECT_BAD("{" ENTRY("w1", "F32", "[-1]", 0, 4) "}", 4,
               "tensor 'w1': a shape dimension must be a non-negative integer, found a negative "
               "number");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[1.5]", 0, 4) "}", 4,
               "a shape dimension must be an integer, found a fraction or exponent");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[1e2]", 0, 4) "}", 4, "found a fraction or exponent");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[01]", 0, 4) "}", 4, "a shape dimension has a leading zero");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[\"1\"]", 0, 4) "}", 4,
               "expected a shape dimension (a non-negative integer), found '\"'");
    EXPECT_BAD("{" ENTRY("w1", "F32", "2", 0, 4) "}", 4, "expected '[' to open the shape, found '2'");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4,
               "tensor 'w1': shape has more than 8 dimensions");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[9223372036854775808]", 0, 4) "}", 4,
               "a shape dimension 9223372036854775808 is larger than 9223372036854775807");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[99999999999999999999999999999999]", 0, 4) "}", 4,
               "a shape dimension 999999999999999999999999... is larger than");
    /* Element counts past int64, and byte counts past uint64. */
    EXPECT_BAD("{" ENTRY("w1", "F32", "[4294967296,4294967296]", 0, 4) "}", 4,
               "tensor 'w1': shape [4294967296, 4294967296] has more than 2^63 - 1 elements");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[3037000500,3037000500,3037000500]", 0, 4) "}", 4,
               "has more than 2^63 - 1 elements");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[4611686018427387904]", 0, 4) "}", 4,
               "shape [4611686018427387904] of F32 is more than 2^64 bits");
    EXPECT_BAD("{" ENTRY("w1", "F4", "[3]", 0, 2) "}", 2,
               "3 elements of F4 (4 bits each) do not fill whole bytes");
    /* Offsets. */
    EXPECT_BAD("{" ENTRY("w1", "F32", "[1]", 4, 0) "}", 4,
               "tensor 'w1': data_offsets [4, 0] are reversed (begin > end)");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[25]", 0, 100) "}", 64,
               "safetensors: tensor 'w1': data_offsets [0, 100] exceed the data section (64 bytes)");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[1]", 18446744073709551612, 18446744073709551615) "}",
               4, "exceed the data section (4 bytes)");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[1]", 0, 18446744073709551616) "}", 4,
               "a data offset 18446744073709551616 is larger than 18446744073709551615");
    EXPECT_BAD("{" ENTRY("w1", "F32", "[2,3]", 0, 12) "}", 12,
               "tensor 'w1': data_offsets [0, 12] hold 12 bytes, but F32 of shape [2, 3] needs 24");
    EXPECT_BAD("{\"w1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
               "expected ',' and the end offset");
    EXPECT_BAD("{\"w1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
               "expected ']' (data_offsets holds exactly [begin, end]), found ','");
    EXPECT_BAD("{\"w1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4,
               "a data offset must be a non-negative integer");
    EXPECT_BAD("{\"w1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4,
               "expected '[' to open data_offsets, found '{'");
}

TEST(bad_layout)
{
    /* Names: duplicate, too long. */
    EXPECT_BAD("{" ENTRY("a", "U8", "[1]", 0, 1) "," ENTRY("b", "U8", "[1]", 1, 2) "," ENTRY(
                   "a", "U8", "[1]", 2, 3) "}",
               3, "tensor name 'a' appears twice");
    char json[1200];
    snprintf(json, sizeof json, "{\"%0*d\":{}}", FLEET__ST_MAX_NAME + 1, 7);
    EXPECT_BAD(json, 0, "a tensor name of 1025 bytes is longer than the limit (1024)");
    snprintf(json, sizeof json, "{\"%0*d\":{}}", FLEET__ST_MAX_NAME, 7);
    EXPECT_BAD(json, 0, "missing key 'dtype'"); /* 1024 bytes is fine */

    /* Overlaps, holes, uncovered bytes at either end. */
    EXPECT_BAD("{" ENTRY("a", "U8", "[8]", 0, 8) "," ENTRY("b", "U8", "[8]", 4, 12) "}", 12,
               "tensor 'b' [4, 12] overlaps tensor 'a' [0, 8]");
    EXPECT_BAD("{" ENTRY("a", "U8", "[8]", 0, 8) "," ENTRY("b", "U8", "[8]", 0, 8) "}", 8,
               "overlaps");
    EXPECT_BAD("{" ENTRY("a", "U8", "[8]", 0, 8) "," ENTRY("z", "U8", "[0]", 4, 4) "}", 8,
               "tensor 'z' [4, 4] overlaps tensor 'a' [0, 8]");
    EXPECT_BAD("{" ENTRY("a", "U8", "[4]", 0, 4) "," ENTRY("b", "U8", "[4]", 8, 12) "}", 12,
               "bytes [4, 8) of the data section belong to no tensor (a hole before tensor 'b')");
    EXPECT_BAD("{" ENTRY("b", "U8", "[4]", 2, 6) "}", 6, "bytes [0, 2) of the data section");
    EXPECT_BAD("{" ENTRY("a", "U8", "[4]", 0, 4) "}", 6,
               "bytes [4, 6) at the end of the data section belong to no tensor");
    EXPECT_BAD("{}", 1, "bytes [0, 1) at the end of the data section belong to no tensor");
}

/* ---- every truncation, and mutations -------------------------------------- */

TEST(every_truncation_fails)
{
    blob b = valid_file(0);
    for (size_t len = 0; len < b.n; len++) {
        uint8_t *cut = malloc(len ? len : 1); /* exactly len bytes: ASan sees any overread */
        ASSERT_TRUE(cut != NULL);
        memcpy(cut, b.p, len);
        fleet__st_file f;
        fleet__error_clear();
        ASSERT_STATUS(fleet__safetensors_parse(len ? cut : NULL, len, &f), FLEET_ERR_INVALID_MODEL);
        ASSERT_EQ(f.count, 0);
        ASSERT_TRUE(f.tensors == NULL);
        free(cut);
    }
    /* ... and the whole file still parses. */
    fleet__st_file f;
    ASSERT_OK(fleet__safetensors_parse(b.p, b.n, &f));
    check_valid(&f, &b);
    fleet__safetensors_close(&f);
    free(b.p);
}

/* A parse that succeeded describes its buffer: tensors sorted by name, each
 * inside the data section, sized by its shape and dtype, and together
 * covering the data section exactly. */
static void check_consistent(const fleet__st_file *f, const uint8_t *buf, size_t len)
{
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = n << 8 | buf[k];
    uint64_t data_size = len - 8 - n, total = 0;
    for (int i = 0; i < f->count; i++) {
        const fleet__st_tensor *t = &f->tensors[i];
        if (i > 0)
            ASSERT_TRUE(strcmp(f->tensors[i - 1].name, t->name) < 0);
        ASSERT_TRUE(fleet__safetensors_find(f, t->name) == t);
        ASSERT_TRUE(t->ndim >= 0 && t->ndim <= FLEET_MAX_DIMS);
        ASSERT_EQ(t->data_offsets[1] - t->data_offsets[0], t->nbytes);
        ASSERT_TRUE(t->data_offsets[1] <= data_size);
        ASSERT_TRUE((const uint8_t *)t->data == buf + 8 + n + t->data_offsets[0]);
        ASSERT_TRUE(t->dtype_name != NULL && t->dtype >= -1 && t->dtype <= FLEET_DTYPE_I64);
        total += t->nbytes;
    }
    ASSERT_EQ(total, data_size);
}

TEST(seeded_mutations)
{
    blob b = valid_file(2);
    static const uint8_t special[] = "{}[]\":,\\-.0123456789eu \x00\x80"; /* JSON-significant */
    test_rng r = test_rng_make(1);
    int iters = test_scaled(20000), ok = 0, bad = 0;
    for (int it = 0; it < iters; it++) {
        uint8_t *m = malloc(b.n);
        ASSERT_TRUE(m != NULL);
        memcpy(m, b.p, b.n);
        size_t len = b.n;
        int edits = 1 + (int)(test_rng_next(&r) % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = test_rng_next(&r) % len;
            switch (test_rng_next(&r) % 4) {
            case 0: /* flip a bit */
                m[at] ^= (uint8_t)(1u << (test_rng_next(&r) % 8));
                break;
            case 1: /* a JSON-significant byte */
                m[at] = special[test_rng_next(&r) % (sizeof special - 1)];
                break;
            case 2: /* cut the end */
                len = at + 1;
                break;
            default: /* a digit of the data offsets or shape one up or down */
                if (m[at] >= '1' && m[at] <= '8')
                    m[at] = (uint8_t)(m[at] + (test_rng_next(&r) % 2 ? 1 : -1));
                break;
            }
        }
        uint8_t *exact = malloc(len);
        ASSERT_TRUE(exact != NULL);
        memcpy(exact, m, len);
        free(m);
        fleet__st_file f;
        fleet_status st = fleet__safetensors_parse(exact, len, &f);
        if (st == FLEET_OK) {
            check_consistent(&f, exact, len);
            ok++;
        } else {
            ASSERT_EQ(st, FLEET_ERR_INVALID_MODEL);
            ASSERT_STR_CONTAINS(fleet_last_error(), "safetensors: ");
            ASSERT_EQ(f.count, 0);
            bad++;
        }
        fleet__safetensors_close(&f);
        free(exact);
    }
    printf("  %d mutations: %d parsed, %d rejected\n", iters, ok, bad);
    ASSERT_EQ(ok + bad, iters);
    ASSERT_TRUE(ok > 0 && bad > 0);
    free(b.p);
}

TEST_MAIN()
