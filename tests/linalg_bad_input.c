/* linalg_bad_input — every linalg op refuses bad arguments with the right
 * status and text, before submitting anything (outputs unchanged), and
 * reports singular / not positive definite inputs found while running as
 * FLEET_ERR_INVALID_ARGUMENT naming the batch index and the pivot. Mixed
 * devices use two cpu devices (FLEET_CPU_DEVICES=2, set in main); the value
 * errors also run on the default device (cuda when present). */
#include "test_util.h"

TEST(null_pointers)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *a = TEST_TENSOR(d, 3, 3), *b = TEST_TENSOR(d, 3, 2), *x = TEST_TENSOR(d, 3, 2);
    ASSERT_STATUS(fleet_linalg_solve(NULL, b, x), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_linalg_solve(a, NULL, x), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_linalg_solve(a, b, NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_linalg_cholesky(a, NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_linalg_solve_triangular(a, NULL, 1, x), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_linalg_qr(a, NULL, a), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_linalg_inv(NULL, a), FLEET_ERR_NULL_POINTER);
    TEST_RELEASE(a, b, x);
}

TEST(wrong_shapes)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *rect = TEST_TENSOR(d, 3, 4), *a = TEST_TENSOR(d, 3, 3), *b = TEST_TENSOR(d, 3, 2),
                  *x = TEST_TENSOR(d, 3, 2);
    fleet_tensor *b4 = TEST_TENSOR(d, 4, 2), *x3 = TEST_TENSOR(d, 3, 3),
                  *out = TEST_TENSOR(d, 3, 3), *out4 = TEST_TENSOR(d, 4, 4);
    fleet_tensor *ab = TEST_TENSOR(d, 2, 3, 3), *bb = TEST_TENSOR(d, 3, 3, 2),
                  *xb = TEST_TENSOR(d, 3, 3, 2);
    int64_t s1[1] = {9};
    fleet_tensor *vec = test_tensor_new(d, 1, s1);
    test_fill_sentinel(x), test_fill_sentinel(out), test_fill_sentinel(xb);

    ASSERT_REFUSED(fleet_linalg_solve(rect, b, x), FLEET_ERR_SHAPE_MISMATCH, "square");
    ASSERT_STR_CONTAINS(fleet_last_error(), "3x4");
    ASSERT_STATUS(fleet_linalg_solve(a, b4, x), FLEET_ERR_SHAPE_MISMATCH); /* rows differ */
    ASSERT_STR_CONTAINS(fleet_last_error(), "4x2");
    ASSERT_STATUS(fleet_linalg_solve(a, b, x3), FLEET_ERR_SHAPE_MISMATCH); /* x not b's shape */
    ASSERT_STATUS(fleet_linalg_solve(ab, bb, xb), FLEET_ERR_SHAPE_MISMATCH); /* batch 2 vs 3 */
    ASSERT_STR_CONTAINS(fleet_last_error(), "2x3x3");
    ASSERT_STATUS(fleet_linalg_solve(a, bb, xb), FLEET_ERR_SHAPE_MISMATCH); /* ranks differ */
    ASSERT_STATUS(fleet_linalg_solve(vec, b, x), FLEET_ERR_SHAPE_MISMATCH); /* 1-D */

    ASSERT_STATUS(fleet_linalg_cholesky(rect, out), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_linalg_cholesky(a, out4), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_linalg_inv(rect, out), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_linalg_inv(a, out4), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_linalg_solve_triangular(rect, b, 0, x), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_linalg_solve_triangular(a, b4, 1, x), FLEET_ERR_SHAPE_MISMATCH);

    /* QR: m < n, q not a's shape, r not n x n. */
    fleet_tensor *wide = TEST_TENSOR(d, 2, 3), *qw = TEST_TENSOR(d, 2, 3),
                  *rw = TEST_TENSOR(d, 3, 3);
    ASSERT_REFUSED(fleet_linalg_qr(wide, qw, rw), FLEET_ERR_SHAPE_MISMATCH, "m >= n");
    fleet_tensor *tall = TEST_TENSOR(d, 4, 3), *q = TEST_TENSOR(d, 4, 3), *r = TEST_TENSOR(d, 3, 3),
                  *rbad = TEST_TENSOR(d, 4, 3);
    ASSERT_STATUS(fleet_linalg_qr(tall, out, r), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_linalg_qr(tall, q, rbad), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_linalg_qr(vec, q, r), FLEET_ERR_SHAPE_MISMATCH);

    test_assert_sentinel(x), test_assert_sentinel(out), test_assert_sentinel(xb);
    TEST_RELEASE(rect, a, b, x, b4, x3, out, out4, ab, bb, xb, vec, wide, qw, rw, tall, q, r, rbad);
}

TEST(dtypes)
{
    fleet_device *d = test_cpu_device(0);
    int64_t s[2] = {3, 3};
    fleet_tensor *h, *h2, *a = TEST_TENSOR(d, 3, 3), *out = TEST_TENSOR(d, 3, 3);
    ASSERT_OK(fleet_tensor_create(d, FLEET_DTYPE_F16, 2, s, &h));
    ASSERT_OK(fleet_tensor_create(d, FLEET_DTYPE_F16, 2, s, &h2));
    test_fill_sentinel(out);
    ASSERT_REFUSED(fleet_linalg_inv(h, out), FLEET_ERR_DTYPE_MISMATCH, "f16");
    ASSERT_STATUS(fleet_linalg_solve(a, h, out), FLEET_ERR_DTYPE_MISMATCH);
    ASSERT_STATUS(fleet_linalg_cholesky(h, h2), FLEET_ERR_UNSUPPORTED); /* f32 only */
    test_assert_sentinel(out);
    TEST_RELEASE(h, h2, a, out);
}

TEST(mixed_devices)
{
    fleet_device *d0 = test_cpu_device(0), *d1 = test_cpu_device(1);
    fleet_tensor *a = TEST_TENSOR(d0, 3, 3), *b = TEST_TENSOR(d0, 3, 1), *x = TEST_TENSOR(d1, 3, 1),
                  *l = TEST_TENSOR(d1, 3, 3);
    fleet_tensor *q = TEST_TENSOR(d0, 3, 3), *r = TEST_TENSOR(d1, 3, 3);
    test_fill_sentinel(x), test_fill_sentinel(l);
    ASSERT_REFUSED(fleet_linalg_solve(a, b, x), FLEET_ERR_INVALID_DEVICE, "cpu:1");
    ASSERT_STATUS(fleet_linalg_cholesky(a, l), FLEET_ERR_INVALID_DEVICE);
    ASSERT_STATUS(fleet_linalg_inv(a, l), FLEET_ERR_INVALID_DEVICE);
    ASSERT_STATUS(fleet_linalg_solve_triangular(a, b, 0, x), FLEET_ERR_INVALID_DEVICE);
    ASSERT_STATUS(fleet_linalg_qr(a, q, r), FLEET_ERR_INVALID_DEVICE);
    test_assert_sentinel(x), test_assert_sentinel(l);
    TEST_RELEASE(a, b, x, l, q, r);
}

TEST(outputs_overlapping_inputs)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *a = TEST_TENSOR(d, 3, 3), *b = TEST_TENSOR(d, 3, 3);
    ASSERT_REFUSED(fleet_linalg_inv(a, a), FLEET_ERR_INVALID_ARGUMENT, "overlaps");
    ASSERT_STATUS(fleet_linalg_solve(a, b, b), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_linalg_qr(a, b, b), FLEET_ERR_INVALID_ARGUMENT); /* q and r */
    TEST_RELEASE(a, b);
}

/* Batch of 3 where matrix 1 is singular (a zero row: LU meets an exactly
 * zero pivot whatever the rounding, FMA or not); 0 and 2 are fine. */
static void singular_on(fleet_device *d)
{
    enum { N = 3 };
    float a[3 * N * N] = {
        4, 1, 0, 1, 4, 1, 0, 1, 4,
        1, 2, 3, 0, 0, 0, 0, 1, 5,
        2, 0, 0, 0, 3, 0, 0, 0, 5,
    };
    float b[3 * N] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    fleet_tensor *ta = TEST_TENSOR(d, 3, N, N), *tb = TEST_TENSOR(d, 3, N, 1),
                  *tx = TEST_TENSOR(d, 3, N, 1);
    fleet_tensor *to = TEST_TENSOR(d, 3, N, N);
    ASSERT_OK(fleet_tensor_copy_from_host(ta, a, sizeof a));
    ASSERT_OK(fleet_tensor_copy_from_host(tb, b, sizeof b));
    ASSERT_REFUSED(fleet_linalg_solve(ta, tb, tx), FLEET_ERR_INVALID_ARGUMENT, "singular");
    ASSERT_STR_CONTAINS(fleet_last_error(), "matrix 1 of the batch");
    ASSERT_STR_CONTAINS(fleet_last_error(), "pivot");
    ASSERT_REFUSED(fleet_linalg_inv(ta, to), FLEET_ERR_INVALID_ARGUMENT, "singular");
    ASSERT_STR_CONTAINS(fleet_last_error(), "matrix 1 of the batch");

    /* Triangular with a zero on the diagonal of matrix 2 (the lower triangle
     * of the others is nonsingular). */
    float tri[3 * N * N] = {
        1, 0, 0, 2, 1, 0, 3, 4, 1,
        2, 0, 0, 1, 2, 0, 1, 1, 2,
        1, 0, 0, 5, 0, 0, 1, 1, 1,
    };
    ASSERT_OK(fleet_tensor_copy_from_host(ta, tri, sizeof tri));
    ASSERT_REFUSED(fleet_linalg_solve_triangular(ta, tb, 0, tx), FLEET_ERR_INVALID_ARGUMENT,
                   "singular");
    ASSERT_STR_CONTAINS(fleet_last_error(), "matrix 2 of the batch");
    ASSERT_STR_CONTAINS(fleet_last_error(), "a[1,1]");

    /* Not SPD: matrix 0 symmetric with a negative eigenvalue (minor 2 < 0). */
    float spd[3 * N * N] = {
        1, 2, 0, 2, 1, 0, 0, 0, 1,
        4, 1, 0, 1, 4, 1, 0, 1, 4,
        4, 1, 0, 1, 4, 1, 0, 1, 4,
    };
    ASSERT_OK(fleet_tensor_copy_from_host(ta, spd, sizeof spd));
    ASSERT_REFUSED(fleet_linalg_cholesky(ta, to), FLEET_ERR_INVALID_ARGUMENT,
                   "not positive definite");
    ASSERT_STR_CONTAINS(fleet_last_error(), "matrix 0 of the batch");
    ASSERT_STR_CONTAINS(fleet_last_error(), "pivot 1");

    /* After the failures the stream still works: a good solve succeeds. */
    float good[N * N] = {4, 1, 0, 1, 4, 1, 0, 1, 4}, rhs[N] = {5, 6, 5}, x[N];
    fleet_tensor *ga = TEST_TENSOR(d, N, N), *gb = TEST_TENSOR(d, N, 1), *gx = TEST_TENSOR(d, N, 1);
    ASSERT_OK(fleet_tensor_copy_from_host(ga, good, sizeof good));
    ASSERT_OK(fleet_tensor_copy_from_host(gb, rhs, sizeof rhs));
    ASSERT_OK(fleet_linalg_solve(ga, gb, gx));
    test_tensor_read(gx, x);
    float one[N] = {1, 1, 1};
    ASSERT_CLOSE(x, one, N, 1e-5, 1e-5);
    TEST_RELEASE(ta, tb, tx, to, ga, gb, gx);
}

TEST(singular_and_not_spd_cpu) { singular_on(test_cpu_device(0)); }
TEST(singular_and_not_spd_default_device) { singular_on(test_default_device()); }

/* An empty batch is a no-op. (0 x 0 matrices are not tested: a tensor with
 * a 0-size trailing dimension reads as non-contiguous today, see
 * fleet_tensor_is_contiguous; linalg then refuses it like every op.) */
TEST(empty_batch_is_a_no_op)
{
    fleet_device *d = test_cpu_device(0);
    fleet_tensor *ab = TEST_TENSOR(d, 0, 3, 3), *ob = TEST_TENSOR(d, 0, 3, 3),
                  *bb = TEST_TENSOR(d, 0, 3, 2);
    fleet_tensor *xb = TEST_TENSOR(d, 0, 3, 2);
    ASSERT_OK(fleet_linalg_inv(ab, ob));
    ASSERT_OK(fleet_linalg_cholesky(ab, ob));
    ASSERT_OK(fleet_linalg_solve(ab, bb, xb));
    ASSERT_OK(fleet_linalg_solve_triangular(ab, bb, 1, xb));
    fleet_tensor *rb = TEST_TENSOR(d, 0, 3, 3);
    ASSERT_OK(fleet_linalg_qr(ab, ob, rb));
    TEST_RELEASE(ab, ob, bb, xb, rb);
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
}
