/* conv_bad_input — fleet_embedding, fleet_concat, fleet_conv1d and
 * fleet_conv2d refuse bad arguments with the right status and text before
 * submitting anything (outputs keep a sentinel), and the integer index
 * dtypes stay refused by the arithmetic ops. Mixed devices use two cpu
 * devices (FLEET_CPU_DEVICES=2, set in main). */
#include "test_util.h"

static fleet_tensor *tidx(fleet_device *d, fleet_dtype dt, int64_t n)
{
    fleet_tensor *t;
    ASSERT_OK(fleet_tensor_create(d, dt, 1, &n, &t));
    size_t bytes = fleet_tensor_nbytes(t);
    void *zeros = calloc(1, bytes > 0 ? bytes : 1);
    ASSERT_OK(fleet_tensor_copy_from_host(t, zeros, bytes));
    free(zeros);
    return t;
}

TEST(null_pointers)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *w = TEST_TENSOR(d, 5, 3), *i = tidx(d, FLEET_DTYPE_I32, 4),
                  *o = TEST_TENSOR(d, 4, 3);
    ASSERT_REFUSED(fleet_embedding(NULL, i, o), FLEET_ERR_NULL_POINTER, "weight");
    ASSERT_REFUSED(fleet_embedding(w, NULL, o), FLEET_ERR_NULL_POINTER, "indices");
    ASSERT_STATUS(fleet_embedding(w, i, NULL), FLEET_ERR_NULL_POINTER);

    const fleet_tensor *ins[] = {w, NULL};
    ASSERT_STATUS(fleet_concat(NULL, 1, 0, o), FLEET_ERR_NULL_POINTER);
    ASSERT_REFUSED(fleet_concat(ins, 2, 0, o), FLEET_ERR_NULL_POINTER, "inputs[1]");
    ASSERT_STATUS(fleet_concat(ins, 1, 0, NULL), FLEET_ERR_NULL_POINTER);

    fleet_tensor *x = TEST_TENSOR(d, 2, 3, 8), *cw = TEST_TENSOR(d, 4, 3, 3),
                  *y = TEST_TENSOR(d, 2, 4, 6);
    ASSERT_STATUS(fleet_conv1d(NULL, cw, NULL, 1, 0, 1, y), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_conv1d(x, NULL, NULL, 1, 0, 1, y), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_conv1d(x, cw, NULL, 1, 0, 1, NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_conv2d(NULL, cw, NULL, 1, 1, 0, 0, 1, 1, y), FLEET_ERR_NULL_POINTER);
    ASSERT_OK(fleet_conv1d(x, cw, NULL, 1, 0, 1, y)); /* a NULL bias is fine */
    TEST_RELEASE(w, i, o, x, cw, y);
}

TEST(embedding_bad_input)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *w = TEST_TENSOR(d, 5, 3), *i = tidx(d, FLEET_DTYPE_I64, 4),
                  *o = TEST_TENSOR(d, 4, 3);
    fleet_tensor *w1 = TEST_TENSOR(d, 15), *o_d = TEST_TENSOR(d, 4, 2), *o_n = TEST_TENSOR(d, 3, 3);
    fleet_tensor *o3 = TEST_TENSOR(d, 1, 4, 3);
    test_fill_sentinel(o);
    ASSERT_REFUSED(fleet_embedding(w1, i, o), FLEET_ERR_SHAPE_MISMATCH, "[V, D]");
    ASSERT_STATUS(fleet_embedding(w, i, o_d), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_embedding(w, i, o_n), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_embedding(w, i, o3), FLEET_ERR_SHAPE_MISMATCH);
    /* index dtypes: f32 and f16 are not indices */
    fleet_tensor *fi = tidx(d, FLEET_DTYPE_F32, 4), *hi = tidx(d, FLEET_DTYPE_F16, 4);
    ASSERT_REFUSED(fleet_embedding(w, fi, o), FLEET_ERR_DTYPE_MISMATCH, "i32 or i64");
    ASSERT_STATUS(fleet_embedding(w, hi, o), FLEET_ERR_DTYPE_MISMATCH);
    /* a non-f32 table */
    fleet_tensor *wi;
    int64_t ws[2] = {5, 3};
    ASSERT_OK(fleet_tensor_create(d, FLEET_DTYPE_I32, 2, ws, &wi));
    ASSERT_STATUS(fleet_embedding(wi, i, o), FLEET_ERR_DTYPE_MISMATCH);
    /* mixed devices */
    fleet_tensor *i1 = tidx(test_cpu_device(1), FLEET_DTYPE_I32, 4),
                  *o1 = TEST_TENSOR(test_cpu_device(1), 4, 3);
    ASSERT_STATUS(fleet_embedding(w, i1, o), FLEET_ERR_INVALID_DEVICE);
    ASSERT_STATUS(fleet_embedding(w, i, o1), FLEET_ERR_INVALID_DEVICE);
    /* layouts: a transposed out, an out over the table itself */
    fleet_tensor *big = TEST_TENSOR(d, 3, 4), *ot;
    ASSERT_OK(fleet_tensor_transpose(big, 0, 1, &ot));
    ASSERT_REFUSED(fleet_embedding(w, i, ot), FLEET_ERR_INVALID_ARGUMENT, "contiguous");
    fleet_tensor *sq = TEST_TENSOR(d, 4, 3);
    ASSERT_REFUSED(fleet_embedding(sq, i, sq), FLEET_ERR_INVALID_ARGUMENT, "overlaps");
    test_assert_sentinel(o);
    TEST_RELEASE(w, i, o, w1, o_d, o_n, o3, fi, hi, wi, i1, o1, big, ot, sq);
}

TEST(concat_bad_input)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *a = TEST_TENSOR(d, 2, 3, 4), *b = TEST_TENSOR(d, 2, 5, 4),
                  *o = TEST_TENSOR(d, 2, 8, 4);
    fleet_tensor *b_wrong = TEST_TENSOR(d, 2, 5, 3), *b2 = TEST_TENSOR(d, 5, 4);
    fleet_tensor *o_small = TEST_TENSOR(d, 2, 7, 4);
    test_fill_sentinel(o);
    const fleet_tensor *ok[] = {a, b};
    ASSERT_OK(fleet_concat(ok, 2, 1, o));
    test_fill_sentinel(o);
    ASSERT_STATUS(fleet_concat(ok, 0, 1, o), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_concat(ok, 2, 3, o), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_concat(ok, 2, -4, o), FLEET_ERR_INVALID_ARGUMENT);
    const fleet_tensor *w1[] = {a, b_wrong}, *w2[] = {a, b2};
    ASSERT_REFUSED(fleet_concat(w1, 2, 1, o), FLEET_ERR_SHAPE_MISMATCH, "inputs[1]");
    ASSERT_STATUS(fleet_concat(w2, 2, 1, o), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_REFUSED(fleet_concat(ok, 2, 1, o_small), FLEET_ERR_SHAPE_MISMATCH, "out must be 2x8x4");
    ASSERT_STATUS(fleet_concat(ok, 2, 0, o), FLEET_ERR_SHAPE_MISMATCH); /* 3 != 5 along dim 1 */
    /* mixed devices and dtypes */
    fleet_tensor *b1 = TEST_TENSOR(test_cpu_device(1), 2, 5, 4), *bi;
    int64_t bs[3] = {2, 5, 4};
    ASSERT_OK(fleet_tensor_create(d, FLEET_DTYPE_I32, 3, bs, &bi));
    const fleet_tensor *m1[] = {a, b1}, *m2[] = {a, bi};
    ASSERT_REFUSED(fleet_concat(m1, 2, 1, o), FLEET_ERR_INVALID_DEVICE, "inputs[1]");
    ASSERT_STATUS(fleet_concat(m2, 2, 1, o), FLEET_ERR_DTYPE_MISMATCH);
    /* an input that is part of out */
    fleet_tensor *part;
    ASSERT_OK(fleet_tensor_slice(o, 1, 0, 3, &part));
    const fleet_tensor *ov[] = {part, b};
    ASSERT_REFUSED(fleet_concat(ov, 2, 1, o), FLEET_ERR_INVALID_ARGUMENT, "overlaps");
    test_assert_sentinel(o);
    TEST_RELEASE(a, b, o, b_wrong, b2, o_small, b1, bi, part);
}

TEST(conv_bad_input)
{
    fleet_device *d = test_cpu_device(0);
    /* x [2, 3, 8], w [4, 3, 3], out [2, 4, 6] (stride 1, no padding) */
    fleet_tensor *x = TEST_TENSOR(d, 2, 3, 8), *w = TEST_TENSOR(d, 4, 3, 3),
                  *y = TEST_TENSOR(d, 2, 4, 6);
    fleet_tensor *bias = TEST_TENSOR(d, 4), *bias5 = TEST_TENSOR(d, 5);
    test_fill_sentinel(y);
    ASSERT_REFUSED(fleet_conv1d(x, w, bias, 0, 0, 1, y), FLEET_ERR_INVALID_ARGUMENT, "stride");
    ASSERT_STATUS(fleet_conv1d(x, w, bias, 1, -1, 1, y), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_conv1d(x, w, bias, 1, 0, 0, y), FLEET_ERR_INVALID_ARGUMENT);
    /* wrong shapes */
    fleet_tensor *x2 = TEST_TENSOR(d, 3, 8), *wc = TEST_TENSOR(d, 4, 2, 3),
                  *y7 = TEST_TENSOR(d, 2, 4, 7);
    fleet_tensor *yc = TEST_TENSOR(d, 2, 5, 6), *yn = TEST_TENSOR(d, 1, 4, 6);
    ASSERT_STATUS(fleet_conv1d(x2, w, bias, 1, 0, 1, y), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_REFUSED(fleet_conv1d(x, wc, bias, 1, 0, 1, y), FLEET_ERR_SHAPE_MISMATCH, "channels");
    ASSERT_REFUSED(fleet_conv1d(x, w, bias, 1, 0, 1, y7), FLEET_ERR_SHAPE_MISMATCH, "2x4x6");
    ASSERT_STATUS(fleet_conv1d(x, w, bias, 1, 0, 1, yc), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_conv1d(x, w, bias, 1, 0, 1, yn), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_conv1d(x, w, bias5, 1, 0, 1, y), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_conv1d(x, w, bias, 2, 1, 1, y), FLEET_ERR_SHAPE_MISMATCH); /* Lout 4 */
    /* Lout <= 0: L 8 vs a dilated kernel of 9 */
    fleet_tensor *y1 = TEST_TENSOR(d, 2, 4, 1);
    ASSERT_REFUSED(fleet_conv1d(x, w, bias, 1, 0, 4, y1), FLEET_ERR_SHAPE_MISMATCH, "<= 0");
    /* mixed devices, dtypes, layouts, overlap */
    fleet_tensor *w1 = TEST_TENSOR(test_cpu_device(1), 4, 3, 3),
                  *b1 = TEST_TENSOR(test_cpu_device(1), 4), *wi;
    int64_t ws[3] = {4, 3, 3};
    ASSERT_OK(fleet_tensor_create(d, FLEET_DTYPE_I32, 3, ws, &wi));
    ASSERT_STATUS(fleet_conv1d(x, w1, bias, 1, 0, 1, y), FLEET_ERR_INVALID_DEVICE);
    ASSERT_STATUS(fleet_conv1d(x, w, b1, 1, 0, 1, y), FLEET_ERR_INVALID_DEVICE);
    ASSERT_STATUS(fleet_conv1d(x, wi, bias, 1, 0, 1, y), FLEET_ERR_DTYPE_MISMATCH);
    fleet_tensor *xp = TEST_TENSOR(d, 2, 8, 3), *xt;
    ASSERT_OK(fleet_tensor_transpose(xp, 1, 2, &xt));
    ASSERT_REFUSED(fleet_conv1d(xt, w, bias, 1, 0, 1, y), FLEET_ERR_INVALID_ARGUMENT, "contiguous");
    fleet_tensor *sq = TEST_TENSOR(d, 2, 3, 3), *ws3 = TEST_TENSOR(d, 3, 3, 1);
    ASSERT_REFUSED(fleet_conv1d(sq, ws3, NULL, 1, 0, 1, sq), FLEET_ERR_INVALID_ARGUMENT,
                   "overlaps");
    test_assert_sentinel(y);

    /* conv2d: x [1, 2, 5, 5], w [3, 2, 3, 3], out [1, 3, 3, 3] */
    fleet_tensor *x4 = TEST_TENSOR(d, 1, 2, 5, 5), *w4 = TEST_TENSOR(d, 3, 2, 3, 3),
                  *y4 = TEST_TENSOR(d, 1, 3, 3, 3);
    fleet_tensor *y4w = TEST_TENSOR(d, 1, 3, 3, 4);
    test_fill_sentinel(y4);
    ASSERT_OK(fleet_conv2d(x4, w4, NULL, 1, 1, 0, 0, 1, 1, y4));
    test_fill_sentinel(y4);
    ASSERT_STATUS(fleet_conv2d(x4, w4, NULL, 1, 0, 0, 0, 1, 1, y4), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_conv2d(x4, w4, NULL, 1, 1, 0, 0, 1, -2, y4), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_REFUSED(fleet_conv2d(x4, w4, NULL, 1, 1, 0, 0, 1, 1, y4w), FLEET_ERR_SHAPE_MISMATCH,
                   "1x3x3x3");
    ASSERT_REFUSED(fleet_conv2d(x4, w4, NULL, 1, 1, 0, 0, 3, 1, y4), FLEET_ERR_SHAPE_MISMATCH,
                   "<= 0");
    ASSERT_STATUS(fleet_conv2d(x, w, NULL, 1, 1, 0, 0, 1, 1, y), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_conv1d(x4, w4, NULL, 1, 0, 1, y4), FLEET_ERR_SHAPE_MISMATCH);
    test_assert_sentinel(y4);
    TEST_RELEASE(x, w, y, bias, bias5, x2, wc, y7, yc, yn, y1, w1, b1, wi, xp, xt, sq, ws3, x4, w4, y4, y4w);
}

/* The integer dtypes take the integer ops only (index arithmetic: add, ...,
 * comparisons), no float math and no GEMM; copies and concatenation move
 * them. */
TEST(integer_dtypes_refused_by_float_arithmetic)
{
    fleet_device *d = test_cpu_device(0);
    ASSERT_EQ(fleet_dtype_size(FLEET_DTYPE_I32), 4);
    ASSERT_EQ(fleet_dtype_size(FLEET_DTYPE_I64), 8);
    ASSERT_STR_CONTAINS(fleet_dtype_name(FLEET_DTYPE_I32), "i32");
    ASSERT_STR_CONTAINS(fleet_dtype_name(FLEET_DTYPE_I64), "i64");
    const fleet_dtype dts[] = {FLEET_DTYPE_I32, FLEET_DTYPE_I64};
    for (int t = 0; t < 2; t++) {
        int64_t s[2] = {3, 3};
        fleet_tensor *a, *b, *c;
        ASSERT_OK(fleet_tensor_create(d, dts[t], 2, s, &a));
        ASSERT_OK(fleet_tensor_create(d, dts[t], 2, s, &b));
        ASSERT_OK(fleet_tensor_create(d, dts[t], 2, s, &c));
        ASSERT_STATUS(fleet_relu(a, c), FLEET_ERR_UNSUPPORTED);
        ASSERT_STR_CONTAINS(fleet_last_error(), fleet_dtype_name(dts[t]));
        ASSERT_STATUS(fleet_exp(a, c), FLEET_ERR_UNSUPPORTED);
        ASSERT_STATUS(fleet_matmul(a, b, c), FLEET_ERR_UNSUPPORTED);
        ASSERT_STATUS(fleet_linear(a, b, NULL, c), FLEET_ERR_UNSUPPORTED);
        /* moving integers is not arithmetic: copies and concatenation take them */
        int64_t vals[9] = {1, -2, 3, 1ll << 40, 5, -6, 7, 8, -(1ll << 35)};
        unsigned char host[72], got[144];
        size_t es = fleet_dtype_size(dts[t]);
        for (int i = 0; i < 9; i++) {
            int32_t v32 = (int32_t)vals[i];
            memcpy(host + (size_t)i * es, es == 8 ? (const void *)&vals[i] : &v32, es);
        }
        ASSERT_OK(fleet_tensor_copy_from_host(a, host, 9 * es));
        fleet_tensor *at;
        ASSERT_OK(fleet_tensor_transpose(a, 0, 1, &at));
        ASSERT_OK(fleet_copy(a, c));
        ASSERT_OK(fleet_tensor_copy_to_host(c, got, 9 * es));
        ASSERT_TRUE(memcmp(got, host, 9 * es) == 0);
        ASSERT_OK(fleet_sub(a, a, b)); /* exact: zeros, at 2^40 too */
        ASSERT_OK(fleet_tensor_copy_to_host(b, got, 9 * es));
        for (size_t i = 0; i < 9 * es; i++)
            ASSERT_EQ(got[i], 0);
        const fleet_tensor *parts[] = {a, at};
        int64_t s2[2] = {6, 3};
        fleet_tensor *o;
        ASSERT_OK(fleet_tensor_create(d, dts[t], 2, s2, &o));
        ASSERT_OK(fleet_concat(parts, 2, 0, o));
        ASSERT_OK(fleet_tensor_copy_to_host(o, got, 18 * es));
        ASSERT_TRUE(memcmp(got, host, 9 * es) == 0);
        for (int i = 0; i < 3; i++) /* rows 3..5: a transposed */
            for (int j = 0; j < 3; j++)
                ASSERT_TRUE(memcmp(got + (size_t)(9 + i * 3 + j) * es,
                                   host + (size_t)(j * 3 + i) * es, es) == 0);
        TEST_RELEASE(a, b, c, o, at);
    }
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
}
