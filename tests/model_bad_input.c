/* Bad input to the model API: each a clear error that changes nothing —
 * outputs keep their contents, no memory stays allocated (the device's
 * live blocks are back to the baseline after each model is destroyed) —
 * and, last, a model used after fleet_shutdown. Runs with two cpu devices
 * to have a tensor on the wrong device. */
#include "model_util.h"
#include "tensor/tensor.h"

#define B FLEET_DIM_BATCH

static fleet_device *dev, *other;
static test_model tm;

static uint64_t live_blocks(void)
{
    fleet_memory_stats ms;
    ASSERT_OK(fleet_memory_get_stats(dev, &ms));
    return ms.live_blocks;
}

static fleet_tensor *make(fleet_device *d, fleet_dtype dtype, int64_t rows, int64_t cols)
{
    int64_t s[] = {rows, cols};
    fleet_tensor *t;
    ASSERT_OK(fleet_tensor_create(d, dtype, 2, s, &t));
    return t;
}

TEST(run_refuses_bad_inputs_and_changes_nothing)
{
    uint64_t base = live_blocks();
    const int64_t widths[] = {8, 16, 4};
    test_model_mlp(dev, widths, 3, 5, &tm);
    fleet_tensor *x = make(dev, FLEET_DTYPE_F32, 3, 8), *y = make(dev, FLEET_DTYPE_F32, 3, 4);
    float xv[24];
    test_rng r = test_rng_make(1);
    test_fill_random(xv, 24, &r);
    ASSERT_OK(fleet_tensor_copy_from_host(x, xv, sizeof xv));
    test_fill_sentinel(y);
    const fleet_tensor *in[] = {x};
    fleet_tensor *out[] = {y};

    ASSERT_STATUS(fleet_model_run(NULL, in, 1, out, 1), FLEET_ERR_NULL_POINTER);
    ASSERT_REFUSED(fleet_model_run(tm.m, in, 2, out, 1), FLEET_ERR_INVALID_ARGUMENT,
                   "takes 1 inputs and 1 outputs");
    ASSERT_STATUS(fleet_model_run(tm.m, NULL, 1, out, 1), FLEET_ERR_NULL_POINTER);
    const fleet_tensor *null_in[] = {NULL};
    ASSERT_STATUS(fleet_model_run(tm.m, null_in, 1, out, 1), FLEET_ERR_NULL_POINTER);

    fleet_tensor *wide = make(dev, FLEET_DTYPE_F32, 3, 9);
    const fleet_tensor *bad_shape[] = {wide};
    ASSERT_REFUSED(fleet_model_run(tm.m, bad_shape, 1, out, 1), FLEET_ERR_SHAPE_MISMATCH,
                   "input 'x' is 3x9");
    fleet_tensor *y_wrong_batch = make(dev, FLEET_DTYPE_F32, 2, 4);
    fleet_tensor *bad_out[] = {y_wrong_batch};
    ASSERT_REFUSED(fleet_model_run(tm.m, in, 1, bad_out, 1), FLEET_ERR_SHAPE_MISMATCH,
                   "output 'y'");
    fleet_tensor *half = make(dev, FLEET_DTYPE_F16, 3, 8);
    const fleet_tensor *bad_dtype[] = {half};
    ASSERT_STATUS(fleet_model_run(tm.m, bad_dtype, 1, out, 1), FLEET_ERR_DTYPE_MISMATCH);
    fleet_tensor *elsewhere = make(other, FLEET_DTYPE_F32, 3, 8);
    const fleet_tensor *bad_dev[] = {elsewhere};
    ASSERT_STATUS(fleet_model_run(tm.m, bad_dev, 1, out, 1), FLEET_ERR_INVALID_DEVICE);
    fleet_tensor *empty = make(dev, FLEET_DTYPE_F32, 0, 8);
    const fleet_tensor *zero_batch[] = {empty};
    ASSERT_REFUSED(fleet_model_run(tm.m, zero_batch, 1, out, 1), FLEET_ERR_SHAPE_MISMATCH,
                   "batch 0 is refused");
    test_assert_sentinel(y); /* no failed run wrote the output */

    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    ASSERT_EQ(st.runs, 0u);
    ASSERT_EQ(st.compiles, 0u);
    ASSERT_STATUS(fleet_model_get_stats(tm.m, NULL), FLEET_ERR_NULL_POINTER);

    /* and the model still works */
    ASSERT_OK(fleet_model_run(tm.m, in, 1, out, 1));
    float got[12], want[12];
    test_tensor_read(y, got);
    test_model_reference(&tm, xv, 3, want);
    ASSERT_CLOSE(got, want, 12, 1e-5, 1e-6);

    TEST_RELEASE(x, y, wide, y_wrong_batch, half, elsewhere, empty);
    test_model_free(&tm);
    ASSERT_EQ(live_blocks(), base);
}

TEST(building_mistakes)
{
    uint64_t base = live_blocks();
    fleet_model *m;
    ASSERT_STATUS(fleet_model_create(NULL, &m), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_model_create(dev, NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_OK(fleet_model_create(dev, &m));
    int64_t xs[] = {B, 4}, ws[] = {4, 4}, big[] = {((int64_t)1 << 40), ((int64_t)1 << 40)};
    fleet_value x, w, v;
    ASSERT_STATUS(fleet_model_input(m, NULL, FLEET_DTYPE_F32, 2, xs, &x), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_model_input(m, "", FLEET_DTYPE_F32, 2, xs, &x), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_input(m, "x", (fleet_dtype)42, 2, xs, &x),
                  FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_input(m, "x", FLEET_DTYPE_F32, 9, xs, &x),
                  FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_weight(m, "huge", FLEET_DTYPE_F32, 2, big, &w),
                  FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_OK(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &x));
    ASSERT_OK(fleet_model_weight(m, "w", FLEET_DTYPE_F32, 2, ws, &w));
    float wv[16] = {0};
    ASSERT_REFUSED(fleet_model_set_weight(m, "w", wv, sizeof wv - 4), FLEET_ERR_SHAPE_MISMATCH,
                   "takes 64 bytes, got 60");
    ASSERT_STATUS(fleet_model_set_weight(m, "nope", wv, sizeof wv), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_softmax(m, x, 2, &v), FLEET_ERR_INVALID_ARGUMENT);
    const int perm[] = {0, 0};
    ASSERT_STATUS(fleet_model_permute(m, x, perm, &v), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_conv1d(m, x, w, FLEET_NO_VALUE, 1, 0, 1, &v),
                  FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_OK(fleet_model_matmul(m, x, w, 1.0f, &v));
    ASSERT_OK(fleet_model_output(m, "y", v));
    /* running before finalize */
    fleet_tensor *tx = make(dev, FLEET_DTYPE_F32, 2, 4), *ty = make(dev, FLEET_DTYPE_F32, 2, 4);
    const fleet_tensor *in[] = {tx};
    fleet_tensor *out[] = {ty};
    ASSERT_REFUSED(fleet_model_run(m, in, 1, out, 1), FLEET_ERR_INVALID_ARGUMENT, "finalize");
    ASSERT_OK(fleet_model_set_weight(m, "w", wv, sizeof wv));
    ASSERT_OK(fleet_model_finalize(m));
    ASSERT_STATUS(fleet_model_finalize(m), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_set_weight(m, "w", wv, sizeof wv), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_build_mlp(dev, ws, 1, &m), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_build_encoder_block(dev, 4, 10, 3, 8, &m),
                  FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(fleet_last_error(), "divisible");
    int64_t shape[FLEET_MAX_DIMS];
    int nd;
    ASSERT_STATUS(fleet_model_input_shape(m, 1, 2, &nd, shape), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_input_shape(m, 0, 0, &nd, shape), FLEET_ERR_INVALID_ARGUMENT);
    TEST_RELEASE(tx, ty);
    ASSERT_OK(fleet_model_destroy(m));
    ASSERT_OK(fleet_model_destroy(NULL));
    ASSERT_EQ(live_blocks(), base);
}

/* Runs last (tests run in file order): after shutdown a model refuses work,
 * and destroying it still frees its host memory (ASan's leak check). */
TEST(zz_model_after_shutdown)
{
    const int64_t widths[] = {4, 4};
    test_model_mlp(dev, widths, 2, 9, &tm);
    fleet_tensor *x = make(dev, FLEET_DTYPE_F32, 1, 4), *y = make(dev, FLEET_DTYPE_F32, 1, 4);
    /* a run that built an instance (cached) before the shutdown */
    const fleet_tensor *in0[] = {x};
    fleet_tensor *out0[] = {y};
    ASSERT_OK(fleet_model_run(tm.m, in0, 1, out0, 1));
    ASSERT_OK(fleet_shutdown());
    const fleet_tensor *in[] = {x};
    fleet_tensor *out[] = {y};
    ASSERT_STATUS(fleet_model_run(tm.m, in, 1, out, 1), FLEET_ERR_SHUTDOWN);
    fleet_model_stats st;
    ASSERT_STATUS(fleet_model_get_stats(tm.m, &st), FLEET_ERR_SHUTDOWN);
    ASSERT_STATUS(fleet_model_destroy(tm.m), FLEET_ERR_SHUTDOWN);
    for (int i = 0; i < tm.n_w; i++)
        free(tm.w[i]);
    /* Releasing a handle after shutdown frees its host memory (LeakSanitizer
     * checks), and a second release is stale. */
    ASSERT_OK(fleet_tensor_release(x));
    ASSERT_OK(fleet_tensor_release(y));
    ASSERT_STATUS(fleet_tensor_release(x), FLEET_ERR_STALE_HANDLE);
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    setenv("FLEET_BACKEND", "cpu", 0);
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &dev));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &other));
    return test_main(argc, argv);
}
