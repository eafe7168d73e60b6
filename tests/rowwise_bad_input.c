/* rowwise_bad_input — softmax, layer norm, sum and mean refuse bad arguments
 * with the right status and a text naming the function, before submitting
 * anything: outputs keep their sentinel values. Mixed devices use two cpu
 * devices (FLEET_CPU_DEVICES=2, set in main). */
#include "test_util.h"

/* A f32 tensor of the dims written out, holding the sentinel. */
#define TN(d, ...) test_fill_sentinel(TEST_TENSOR(d, __VA_ARGS__))

TEST(null_pointers)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *x = TN(d, 3, 4), *o = TN(d, 3, 4), *g = TN(d, 4);
    fleet_tensor *s = TN(d, 3);
    ASSERT_REFUSED(fleet_softmax(NULL, -1, o), FLEET_ERR_NULL_POINTER, "fleet_softmax");
    ASSERT_REFUSED(fleet_softmax(x, -1, NULL), FLEET_ERR_NULL_POINTER, "fleet_softmax");
    ASSERT_REFUSED(fleet_layer_norm(NULL, g, g, 1e-5f, o), FLEET_ERR_NULL_POINTER,
                   "fleet_layer_norm");
    ASSERT_REFUSED(fleet_layer_norm(x, g, g, 1e-5f, NULL), FLEET_ERR_NULL_POINTER,
                   "fleet_layer_norm");
    ASSERT_REFUSED(fleet_sum(NULL, 1, 0, s), FLEET_ERR_NULL_POINTER, "fleet_sum");
    ASSERT_REFUSED(fleet_mean(x, 1, 0, NULL), FLEET_ERR_NULL_POINTER, "fleet_mean");
    test_assert_sentinel(o);
    test_assert_sentinel(s);
    TEST_RELEASE(x, o, g, s);
}

TEST(dim_out_of_range)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *x = TN(d, 3, 4), *o = TN(d, 3, 4), *s = TN(d, 3);
    ASSERT_REFUSED(fleet_softmax(x, 2, o), FLEET_ERR_INVALID_ARGUMENT, "fleet_softmax");
    ASSERT_STR_CONTAINS(fleet_last_error(), "dim 2 of a 2-D tensor");
    ASSERT_REFUSED(fleet_softmax(x, -3, o), FLEET_ERR_INVALID_ARGUMENT, "fleet_softmax");
    ASSERT_REFUSED(fleet_sum(x, 2, 0, s), FLEET_ERR_INVALID_ARGUMENT, "fleet_sum");
    ASSERT_REFUSED(fleet_mean(x, -3, 1, s), FLEET_ERR_INVALID_ARGUMENT, "fleet_mean");
    fleet_tensor *scalar;
    ASSERT_OK(fleet_tensor_create(d, FLEET_DTYPE_F32, 0, NULL, &scalar));
    ASSERT_REFUSED(fleet_softmax(scalar, 0, scalar), FLEET_ERR_INVALID_ARGUMENT, "fleet_softmax");
    ASSERT_REFUSED(fleet_layer_norm(scalar, NULL, NULL, 1e-5f, scalar), FLEET_ERR_INVALID_ARGUMENT,
            "fleet_layer_norm");
    ASSERT_REFUSED(fleet_layer_norm(x, NULL, NULL, -1.0f, o), FLEET_ERR_INVALID_ARGUMENT,
            "fleet_layer_norm");
    test_assert_sentinel(o);
    test_assert_sentinel(s);
    TEST_RELEASE(x, o, s, scalar);
}

TEST(wrong_shapes)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *x = TN(d, 3, 4), *o43 = TN(d, 4, 3), *o = TN(d, 3, 4);
    fleet_tensor *g5 = TN(d, 5), *g2d = TN(d, 1, 4), *g4 = TN(d, 4);
    fleet_tensor *s3 = TN(d, 3), *s4 = TN(d, 4), *s31 = TN(d, 3, 1);
    ASSERT_REFUSED(fleet_softmax(x, 1, o43), FLEET_ERR_SHAPE_MISMATCH, "fleet_softmax");
    ASSERT_STR_CONTAINS(fleet_last_error(), "4x3");
    ASSERT_REFUSED(fleet_layer_norm(x, g4, NULL, 1e-5f, o43), FLEET_ERR_SHAPE_MISMATCH,
                   "fleet_layer_norm");
    ASSERT_REFUSED(fleet_layer_norm(x, g5, NULL, 1e-5f, o), FLEET_ERR_SHAPE_MISMATCH,
                   "fleet_layer_norm");
    ASSERT_STR_CONTAINS(fleet_last_error(), "gamma");
    ASSERT_REFUSED(fleet_layer_norm(x, NULL, g5, 1e-5f, o), FLEET_ERR_SHAPE_MISMATCH,
                   "fleet_layer_norm");
    ASSERT_STR_CONTAINS(fleet_last_error(), "beta");
    ASSERT_REFUSED(fleet_layer_norm(x, g2d, g4, 1e-5f, o), FLEET_ERR_SHAPE_MISMATCH,
                   "fleet_layer_norm");
    /* sum over dim 1 of 3x4: out is [3] (keepdim 0) or 3x1 (keepdim 1) */
    ASSERT_REFUSED(fleet_sum(x, 1, 0, s4), FLEET_ERR_SHAPE_MISMATCH, "fleet_sum");
    ASSERT_REFUSED(fleet_sum(x, 1, 1, s3), FLEET_ERR_SHAPE_MISMATCH, "fleet_sum");
    ASSERT_STR_CONTAINS(fleet_last_error(), "dim set to 1");
    ASSERT_REFUSED(fleet_mean(x, 1, 0, s31), FLEET_ERR_SHAPE_MISMATCH, "fleet_mean");
    ASSERT_REFUSED(fleet_mean(x, 0, 0, s3), FLEET_ERR_SHAPE_MISMATCH, "fleet_mean");
    ASSERT_REFUSED(fleet_sum(x, 0, 0, o), FLEET_ERR_SHAPE_MISMATCH, "fleet_sum");
    ASSERT_OK(fleet_sum(x, 1, 0, s3)); /* and the right shapes pass */
    ASSERT_OK(fleet_mean(x, -1, 1, s31));
    test_assert_sentinel(o);
    test_assert_sentinel(o43);
    test_assert_sentinel(s4);
    TEST_RELEASE(x, o43, o, g5, g2d, g4, s3, s4, s31);
}

TEST(mixed_devices_and_dtypes)
{
    fleet_device *d0 = test_cpu_device(0), *d1 = test_cpu_device(1);
    fleet_tensor *x = TN(d0, 3, 4), *o1 = TN(d1, 3, 4), *g1 = TN(d1, 4);
    fleet_tensor *o = TN(d0, 3, 4), *s1 = TN(d1, 3);
    ASSERT_REFUSED(fleet_softmax(x, -1, o1), FLEET_ERR_INVALID_DEVICE, "fleet_softmax");
    ASSERT_REFUSED(fleet_layer_norm(x, g1, NULL, 1e-5f, o), FLEET_ERR_INVALID_DEVICE,
                   "fleet_layer_norm");
    ASSERT_STR_CONTAINS(fleet_last_error(), "gamma");
    ASSERT_REFUSED(fleet_sum(x, 1, 0, s1), FLEET_ERR_INVALID_DEVICE, "fleet_sum");
    /* f16 on cpu: unsupported, saying where it runs; mixed dtypes refused */
    const int64_t shape[2] = {3, 4};
    fleet_tensor *h, *h2;
    ASSERT_OK(fleet_tensor_create(d0, FLEET_DTYPE_F16, 2, shape, &h));
    ASSERT_OK(fleet_tensor_create(d0, FLEET_DTYPE_F16, 2, shape, &h2));
    ASSERT_REFUSED(fleet_softmax(h, -1, h2), FLEET_ERR_UNSUPPORTED, "fleet_softmax");
    ASSERT_STR_CONTAINS(fleet_last_error(), "cuda");
    ASSERT_REFUSED(fleet_softmax(x, -1, h), FLEET_ERR_DTYPE_MISMATCH, "fleet_softmax");
    ASSERT_REFUSED(fleet_mean(h, 0, 1, x), FLEET_ERR_SHAPE_MISMATCH,
                   "fleet_mean"); /* shape first */
    test_assert_sentinel(o);
    test_assert_sentinel(o1);
    test_assert_sentinel(s1);
    TEST_RELEASE(x, o1, g1, o, s1, h, h2);
}

TEST(overlap)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *p = TN(d, 4, 8), *a, *b, *s, *g;
    ASSERT_OK(fleet_tensor_slice(p, 1, 0, 4, &a));
    ASSERT_OK(fleet_tensor_slice(p, 1, 2, 6, &b)); /* interleaves with a */
    ASSERT_REFUSED(fleet_softmax(a, -1, b), FLEET_ERR_INVALID_ARGUMENT, "fleet_softmax");
    ASSERT_STR_CONTAINS(fleet_last_error(), "overlap");
    ASSERT_REFUSED(fleet_layer_norm(a, NULL, NULL, 1e-5f, b), FLEET_ERR_INVALID_ARGUMENT,
            "fleet_layer_norm");
    /* gamma inside out */
    ASSERT_OK(fleet_tensor_slice(p, 0, 0, 1, &s));
    ASSERT_OK(fleet_tensor_reshape(s, 1, (const int64_t[]){8}, &g));
    fleet_tensor *x = TN(d, 2, 8);
    fleet_tensor *gx;
    ASSERT_OK(fleet_tensor_slice(p, 0, 0, 2, &gx)); /* rows 0-1 of p: out covers gamma */
    ASSERT_REFUSED(fleet_layer_norm(x, g, NULL, 1e-5f, gx), FLEET_ERR_INVALID_ARGUMENT,
                   "fleet_layer_norm");
    ASSERT_STR_CONTAINS(fleet_last_error(), "gamma");
    /* a sum into its own input */
    fleet_tensor *col;
    ASSERT_OK(fleet_tensor_slice(a, 1, 0, 1, &col));
    ASSERT_REFUSED(fleet_sum(a, 1, 1, col), FLEET_ERR_INVALID_ARGUMENT, "fleet_sum");
    test_assert_sentinel(p);
    TEST_RELEASE(col, gx, x, g, s, b, a, p);
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
}
