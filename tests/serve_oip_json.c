/* serve_oip_json — the server's request and response JSON (src/serve/
 * oip_json.c), as pure functions: values of every datatype, flat and nested
 * data, the binary extension, requested outputs and the id; every refusal
 * with its reason; the response's exact text. Each input sits in a malloc
 * of exactly its size (ASan catches a read past it). Skipped (77) in a
 * build without the server. */
#include "harness.h"
#ifdef FLEET_HAVE_SERVER
#include "core/half.h"
#include "serve/oip_json.h"

static char *exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    ASSERT_TRUE(p != NULL);
    memcpy(p, s, n);
    return p;
}

/* Parse text (no binary part); status, and the error text into err. */
static fleet_status parse(const char *text, fleet__oip_request *r, char *err)
{
    size_t n = strlen(text);
    char *p = exact(text, n);
    fleet_status st = fleet__oip_parse_request(p, n, -1, r, err, 512);
    if (st == FLEET_OK) { /* the data was converted: the body may go */
        for (int i = 0; i < r->n_inputs; i++)
            ASSERT_TRUE(r->inputs[i].owned != NULL);
    }
    free(p);
    return st;
}

static void refused(const char *text, const char *needle)
{
    fleet__oip_request r;
    char err[512];
    fleet_status st = parse(text, &r, err);
    if (st != FLEET_ERR_INVALID_ARGUMENT)
        fprintf(stderr, "accepted: %s\n", text);
    ASSERT_EQ(st, FLEET_ERR_INVALID_ARGUMENT); /* err says why, not fleet_last_error */
    ASSERT_STR_CONTAINS(err, needle);
    ASSERT_EQ(r.n_inputs, 0); /* nothing kept */
    ASSERT_TRUE(r.id == NULL);
}

TEST(fp32_flat_and_nested_with_id_and_outputs)
{
    fleet__oip_request r;
    char err[512];
    ASSERT_OK(parse("{\"id\":\"r-7\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":"
                    "\"FP32\",\"data\":[[1.5,-2,3],[4,5e-3,6]]},{\"name\":\"m\",\"shape\":[2],"
                    "\"datatype\":\"BOOL\",\"data\":[true,0]}],\"parameters\":"
                    "{\"binary_data_output\":true},\"outputs\":[{\"name\":\"y\"},{\"name\":\"z\","
                    "\"parameters\":{\"binary_data\":false}}]}",
                    &r, err));
    ASSERT_TRUE(strcmp(r.id, "r-7") == 0);
    ASSERT_EQ(r.n_inputs, 2);
    const fleet__oip_tensor *x = &r.inputs[0];
    ASSERT_TRUE(strcmp(x->name, "x") == 0);
    ASSERT_EQ(x->dtype, FLEET_DTYPE_F32);
    ASSERT_EQ(x->ndim, 2);
    ASSERT_EQ(x->shape[0], 2);
    ASSERT_EQ(x->shape[1], 3);
    ASSERT_EQ(x->numel, 6);
    ASSERT_EQ(x->nbytes, 24u);
    const float want[6] = {1.5f, -2, 3, 4, 5e-3f, 6};
    ASSERT_TRUE(memcmp(x->data, want, sizeof want) == 0);
    const unsigned char *m = r.inputs[1].data;
    ASSERT_EQ(r.inputs[1].dtype, FLEET_DTYPE_BOOL);
    ASSERT_EQ(m[0], 1);
    ASSERT_EQ(m[1], 0);
    ASSERT_TRUE(r.binary_default);
    ASSERT_EQ(r.n_outputs, 2);
    ASSERT_TRUE(strcmp(r.outputs[0].name, "y") == 0 && r.outputs[0].binary);
    ASSERT_TRUE(strcmp(r.outputs[1].name, "z") == 0 && !r.outputs[1].binary);
    fleet__oip_request_free(&r);
}

TEST(integer_and_half_datatypes)
{
    fleet__oip_request r;
    char err[512];
    ASSERT_OK(parse("{\"inputs\":[{\"name\":\"a\",\"shape\":[3],\"datatype\":\"INT64\",\"data\":"
                    "[-9007199254740992,0,123456789012]},{\"name\":\"b\",\"shape\":[2],"
                    "\"datatype\":\"INT32\",\"data\":[-2147483648,2147483647]},{\"name\":\"h\","
                    "\"shape\":[2],\"datatype\":\"FP16\",\"data\":[1.5,-0.25]},{\"name\":\"g\","
                    "\"shape\":[1],\"datatype\":\"BF16\",\"data\":[3.0]}]}",
                    &r, err));
    const int64_t *a = r.inputs[0].data;
    ASSERT_EQ(a[0], -9007199254740992LL);
    ASSERT_EQ(a[1], 0);
    ASSERT_EQ(a[2], 123456789012LL);
    const int32_t *b = r.inputs[1].data;
    ASSERT_EQ(b[0], INT32_MIN);
    ASSERT_EQ(b[1], INT32_MAX);
    const uint16_t *h = r.inputs[2].data;
    ASSERT_EQ(h[0], 0x3e00); /* 1.5 */
    ASSERT_EQ(h[1], 0xb400); /* -0.25 */
    ASSERT_EQ(r.inputs[2].nbytes, 4u);
    const uint16_t *g = r.inputs[3].data;
    ASSERT_EQ(g[0], 0x4040); /* 3.0 */
    fleet__oip_request_free(&r);
}

TEST(binary_extension_points_into_the_body)
{
    const char *json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\","
                       "\"parameters\":{\"binary_data_size\":8}},{\"name\":\"i\",\"shape\":[1],"
                       "\"datatype\":\"INT64\",\"data\":[5]},{\"name\":\"j\",\"shape\":[1],"
                       "\"datatype\":\"INT32\",\"parameters\":{\"binary_data_size\":4}}]}";
    size_t jl = strlen(json);
    const float xs[2] = {0.5f, -7};
    const int32_t j = 42;
    char *body = malloc(jl + 12);
    memcpy(body, json, jl);
    memcpy(body + jl, xs, 8);
    memcpy(body + jl + 8, &j, 4);
    fleet__oip_request r;
    char err[512];
    ASSERT_OK(fleet__oip_parse_request(body, jl + 12, (int64_t)jl, &r, err, sizeof err));
    ASSERT_TRUE(r.inputs[0].data == body + jl); /* no copy */
    ASSERT_TRUE(r.inputs[0].owned == NULL);
    ASSERT_EQ(*(const int64_t *)r.inputs[1].data, 5);
    ASSERT_TRUE(r.inputs[2].data == body + jl + 8);
    fleet__oip_request_free(&r);
    /* lying sizes: one byte short, one byte over, a header past the end */
    ASSERT_EQ(fleet__oip_parse_request(body, jl + 11, (int64_t)jl, &r, err, sizeof err),
              FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(err, "runs past the body");
    char *more = malloc(jl + 13);
    memcpy(more, body, jl + 12);
    more[jl + 12] = 1;
    ASSERT_EQ(fleet__oip_parse_request(more, jl + 13, (int64_t)jl, &r, err, sizeof err),
              FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(err, "add up to 12");
    ASSERT_EQ(fleet__oip_parse_request(body, jl + 12, (int64_t)jl + 13, &r, err, sizeof err),
              FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(err, "larger than the body");
    /* binary sizes without the extension */
    ASSERT_EQ(fleet__oip_parse_request(body, jl, -1, &r, err, sizeof err),
              FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(err, "without an Inference-Header-Content-Length");
    free(more);
    free(body);
}

TEST(refusals_say_why)
{
    refused("{\"inputs\":[", "malformed JSON");
    refused("[]", "not a JSON object");
    refused("{\"inputs\":[]}", "no \"inputs\"");
    refused("{\"id\":3,\"inputs\":[]}", "\"id\" must be a string");
    refused("{\"inputs\":[{\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}", "no \"name\"");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":[1]}]}",
            "'FP64' is not supported");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"UINT8\",\"data\":[1]}]}",
            "not supported");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[4611686018427387904,4],\"datatype\":\"FP32\","
            "\"data\":[1]}]}",
            "overflows 64 bits");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[4611686018427387904],\"datatype\":\"FP32\","
            "\"data\":[1]}]}",
            "byte size overflows");
    refused(
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
        "3 elements but the shape has 4");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
            "3 elements but the shape has 2");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,{}]}]}",
            "nests objects");
    refused(
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,\"2\"]}]}",
        "data[1] is not a number");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":[1.5]}]}",
            "is not an INT32");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":[3e9]}]}",
            "is not an INT32");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":[1e17]}]}",
            "within +-2^53");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"BOOL\",\"data\":[2]}]}",
            "is not a BOOL");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,-1],\"datatype\":\"FP32\",\"data\":[1]}]}",
            "shape[1] is not an integer");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,1,1,1,1,1,1,1],\"datatype\":\"FP32\","
            "\"data\":[1]}]}",
            "9 dimensions");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]},"
            "{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}",
            "given twice");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\"}]}", "no \"data\"");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],"
            "\"parameters\":{\"binary_data_size\":4}}]}",
            "both \"data\" and binary_data_size");
    refused("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],"
            "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":1}}]}",
            "binary_data must be true or false");
    /* deep nesting is bounded */
    char deep[200];
    char *p = deep;
    p += sprintf(p, "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":");
    for (int i = 0; i < 40; i++)
        *p++ = '[';
    *p++ = '1';
    for (int i = 0; i < 40; i++)
        *p++ = ']';
    strcpy(p, "}]}");
    refused(deep, "more than 32 arrays");
}

TEST(response_text_and_binary_tail)
{
    const float y[4] = {1.5f, -0.1f, 3e-8f, 7};
    const int64_t ys[2] = {2, 2};
    const int64_t k[3] = {-1, 0, 9007199254740993LL};
    const int64_t ks[1] = {3};
    const unsigned char b[2] = {1, 0};
    const int64_t bs[1] = {2};
    fleet__oip_output outs[3] = {
        {"y", FLEET_DTYPE_F32, 2, ys, y, sizeof y, false},
        {"k", FLEET_DTYPE_I64, 1, ks, k, sizeof k, true},
        {"b", FLEET_DTYPE_BOOL, 1, bs, b, sizeof b, false},
    };
    char *body;
    size_t len, jl;
    ASSERT_OK(fleet__oip_build_response("m", "1", "id\"1", outs, 3, &body, &len, &jl));
    const char *want =
        "{\"outputs\":[{\"shape\":[2,2],\"name\":\"y\",\"datatype\":\"FP32\","
        "\"data\":[1.5,-0.100000001,2.99999989e-08,7]},{\"shape\":[3],\"name\":"
        "\"k\",\"datatype\":\"INT64\",\"parameters\":{\"binary_data_size\":24}},"
        "{\"shape\":[2],\"name\":\"b\",\"datatype\":\"BOOL\",\"data\":[true,false]}],"
        "\"model_name\":\"m\",\"model_version\":\"1\",\"id\":\"id\\\"1\"}";
    ASSERT_EQ(jl, strlen(want));
    ASSERT_TRUE(memcmp(body, want, jl) == 0);
    ASSERT_EQ(len, jl + sizeof k);
    ASSERT_TRUE(memcmp(body + jl, k, sizeof k) == 0);
    free(body);
    char *e = fleet__oip_error_json("bad \"x\"\n");
    ASSERT_TRUE(strcmp(e, "{\"error\":\"bad \\\"x\\\"\\n\"}") == 0);
    free(e);
    fleet_dtype dt;
    ASSERT_TRUE(fleet__oip_dtype_parse("BF16", &dt) && dt == FLEET_DTYPE_BF16);
    ASSERT_TRUE(!fleet__oip_dtype_parse("fp32", &dt));
    ASSERT_TRUE(strcmp(fleet__oip_dtype_name(FLEET_DTYPE_I32), "INT32") == 0);
}

/* Both paths on one body: the same status, and the same inputs byte for
 * byte; returns how many arrays took the fast path. */
static int both_paths(const char *text, fleet_status want)
{
    size_t n = strlen(text);
    char *p = exact(text, n);
    fleet__oip_request a, b;
    char ea[512], eb[512];
    fleet_status sa = fleet__oip_parse_request_ex(p, n, -1, true, &a, ea, sizeof ea);
    fleet_status sb = fleet__oip_parse_request_ex(p, n, -1, false, &b, eb, sizeof eb);
    if (sa != want || sb != want)
        fprintf(stderr, "%.120s\nfast: %d %s\nslow: %d %s\n", text, sa, ea, sb, eb);
    ASSERT_EQ(sa, want);
    ASSERT_EQ(sb, want);
    int fast = a.fast_arrays;
    if (sa == FLEET_OK) {
        ASSERT_EQ(b.fast_arrays, 0);
        ASSERT_EQ(a.n_inputs, b.n_inputs);
        for (int i = 0; i < a.n_inputs; i++) {
            ASSERT_EQ(a.inputs[i].nbytes, b.inputs[i].nbytes);
            ASSERT_TRUE(memcmp(a.inputs[i].data, b.inputs[i].data, a.inputs[i].nbytes) == 0);
        }
        fleet__oip_request_free(&a);
        fleet__oip_request_free(&b);
    } else {
        ASSERT_TRUE(strcmp(ea, eb) == 0); /* the same words too */
    }
    free(p);
    return fast;
}

TEST(data_fast_path_agrees_with_cjson)
{
    /* 1000 floats in rows of 10, written in every number form JSON has */
    static char big[40000];
    char *p = big;
    p += sprintf(p, "{\"inputs\":[{\"name\":\"x\",\"shape\":[100,10],\"datatype\":\"FP32\","
                    "\"data\":[");
    for (int r = 0; r < 100; r++) {
        p += sprintf(p, "%s[", r ? ", " : "");
        for (int c = 0; c < 10; c++) {
            static const char *const forms[] = {"0",    "-0",    "1.5",           "-2.25e-3",
                                                "3E+2", "1e-40", "123456789.125", "-0.0",
                                                "7e38", "4e39"};
            p += sprintf(p, "%s%s", c ? "," : "", forms[(r + c) % 10]);
        }
        *p++ = ']';
    }
    sprintf(p, "]},{\"name\":\"m\",\"shape\":[40],\"datatype\":\"BOOL\",\"data\":[true,false,"
               "1,0,true,false,true,true,false,false,true,false,1,0,true,false,true,true,false,"
               "false,true,false,1,0,true,false,true,true,false,false,true,false,1,0,true,false,"
               "true,true,false,false]}],\"id\":\"data\"}");
    ASSERT_EQ(both_paths(big, FLEET_OK), 2);
    /* INT64 and INT32 through the fast path, exact and refused alike */
    ASSERT_EQ(both_paths("{\"inputs\":[{\"name\":\"a\",\"shape\":[6],\"datatype\":\"INT64\","
                         "\"data\":[9007199254740992, -9007199254740992, 0, 1, -1, 42]}]}",
                         FLEET_OK),
              1);
    ASSERT_EQ(both_paths("{\"inputs\":[{\"name\":\"a\",\"shape\":[6],\"datatype\":\"INT32\","
                         "\"data\":[1, 2, 3, 4, 5,            2147483648]}]}",
                         FLEET_ERR_INVALID_ARGUMENT),
              0);
    ASSERT_EQ(both_paths("{\"inputs\":[{\"name\":\"a\",\"shape\":[7],\"datatype\":\"FP32\","
                         "\"data\":[1, 2, 3, 4, 5, 6, 7, 8            ]}]}",
                         FLEET_ERR_INVALID_ARGUMENT),
              0);
    ASSERT_EQ(both_paths("{\"inputs\":[{\"name\":\"a\",\"shape\":[4],\"datatype\":\"BOOL\","
                         "\"data\":[true, false, 2, true                ]}]}",
                         FLEET_ERR_INVALID_ARGUMENT),
              0);
    /* left to cJSON: a string inside, a malformed number, a key "data"
     * inside a string, short arrays */
    ASSERT_EQ(both_paths("{\"inputs\":[{\"name\":\"a\",\"shape\":[8],\"datatype\":\"FP32\","
                         "\"data\":[1, 2, 3, 4, 5, 6, 7, \"8\"              ]}]}",
                         FLEET_ERR_INVALID_ARGUMENT),
              0);
    /* (cJSON reads "08" as 8, as strtod does; not JSON, so the fast path
     * leaves it to cJSON, and the result is cJSON's) */
    ASSERT_EQ(both_paths("{\"inputs\":[{\"name\":\"a\",\"shape\":[8],\"datatype\":\"FP32\","
                         "\"data\":[1, 2, 3, 4, 5, 6, 7, 08               ]}]}",
                         FLEET_OK),
              0);
    ASSERT_EQ(both_paths(
                  "{\"id\":\"\\\"data\\\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\","
                  "\"inputs\":[{\"name\":\"a\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}",
                  FLEET_OK),
              0);
    /* a marker-like string from the client: the slow path for the whole body */
    ASSERT_EQ(
        both_paths("{\"id\":\"\\u0001F0\",\"inputs\":[{\"name\":\"a\",\"shape\":[16],"
                   "\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}",
                   FLEET_OK),
        0);
    ASSERT_EQ(both_paths("{\"inputs\":[{\"name\":\"a\",\"shape\":[16],\"datatype\":\"FP32\","
                         "\"data\":\"\\u0001F0\"}]}",
                         FLEET_ERR_INVALID_ARGUMENT),
              0);
    /* malformed after a fast array: still malformed, same offset */
    ASSERT_EQ(both_paths("{\"inputs\":[{\"name\":\"a\",\"shape\":[16],\"datatype\":\"FP32\","
                         "\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]} x]}",
                         FLEET_ERR_INVALID_ARGUMENT),
              0);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
#else
int main(void)
{
    printf("SKIP: built without the server (libmicrohttpd, libcjson)\n");
    return 77;
}
#endif
