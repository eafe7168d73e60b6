/* shape_rules — the shape rules of tensor/shape.h on their own: concrete
 * and symbolic dims (the batch, and other named dims as the importer binds
 * them), the sliding window of convolution and pooling against the sizes
 * PyTorch gives, and the refusals' statuses and texts. The ops and the
 * builder that call these rules are tested through their own APIs. */
#include "fleet/model.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"
#include "test_util.h"

#define B FLEET_DIM_BATCH
#define S ((int64_t)-2) /* another symbolic dim, e.g. a sequence length */

#define DIMS(...)                                                                        \
    fleet__dims_of((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),           \
                   (int64_t[]){__VA_ARGS__})

static void assert_dims(const fleet__dims *got, const fleet__dims *want)
{
    char g[96], w[96], m[256];
    if (!fleet__dims_equal(got, want)) {
        snprintf(m, sizeof m, "dims %s, expected %s",
                 fleet__dims_str(got->ndim, got->d, g, sizeof g),
                 fleet__dims_str(want->ndim, want->d, w, sizeof w));
        test_fail_(__FILE__, __LINE__, m);
    }
}
#define ASSERT_DIMS(got, ...)                                                            \
    do {                                                                                 \
        fleet__dims want_ = DIMS(__VA_ARGS__);                                           \
        assert_dims((got), &want_);                                                      \
    } while (0)

TEST(broadcast)
{
    fleet__dims r, a = DIMS(4, 1, 3), b = DIMS(5, 1), c = DIMS(2, 4);
    ASSERT_OK(fleet__shape_broadcast("t", &a, "a", &b, "b", &r));
    ASSERT_DIMS(&r, 4, 5, 3);
    ASSERT_REFUSED(fleet__shape_broadcast("t", &a, "a", &c, "b", &r), FLEET_ERR_SHAPE_MISMATCH,
                   "t: shapes do not broadcast: a is 4x1x3, b is 2x4");
    fleet__dims sb = DIMS(B, 1, 8), one = DIMS(3, 1), fixed = DIMS(5, 3, 8), other = DIMS(S, 3, 8);
    ASSERT_OK(fleet__shape_broadcast("t", &sb, "a", &one, "b", &r));
    ASSERT_DIMS(&r, B, 3, 8);
    ASSERT_OK(fleet__shape_broadcast("t", &sb, "a", &sb, "b", &r));
    ASSERT_DIMS(&r, B, 1, 8);
    /* B against 5, or against another symbol: not provably equal */
    ASSERT_REFUSED(fleet__shape_broadcast("t", &sb, "a", &fixed, "b", &r),
                   FLEET_ERR_SHAPE_MISMATCH, "a is Bx1x8, b is 5x3x8");
    ASSERT_STATUS(fleet__shape_broadcast("t", &sb, "a", &other, "b", &r), FLEET_ERR_SHAPE_MISMATCH);
    fleet__dims scalar = DIMS(7);
    scalar.ndim = 0;
    ASSERT_OK(fleet__shape_broadcast("t", &scalar, "a", &a, "b", &r));
    ASSERT_DIMS(&r, 4, 1, 3);
}

TEST(matmul_and_linear)
{
    fleet__dims r, a = DIMS(B, 1, 4, 6), b = DIMS(3, 6, 5), bad = DIMS(7, 5), vec = DIMS(6);
    ASSERT_OK(fleet__shape_matmul("t", &a, &b, &r));
    ASSERT_DIMS(&r, B, 3, 4, 5);
    ASSERT_REFUSED(fleet__shape_matmul("t", &a, &bad, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "inner dimensions differ");
    ASSERT_REFUSED(fleet__shape_matmul("t", &vec, &b, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "2 or more dimensions");
    fleet__dims a2 = DIMS(2, 4, 6), b2 = DIMS(3, 6, 5);
    ASSERT_REFUSED(fleet__shape_matmul("t", &a2, &b2, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "batch dimensions do not broadcast");
    fleet__dims sk = DIMS(4, S), ks = DIMS(S, 2);
    ASSERT_OK(fleet__shape_matmul("t", &sk, &ks, &r)); /* the same symbol inside */
    ASSERT_DIMS(&r, 4, 2);

    fleet__dims x = DIMS(B, 10, 8), w = DIMS(16, 8), bias = DIMS(16), wb = DIMS(B, 8);
    ASSERT_OK(fleet__shape_linear("t", &x, &w, &bias, &r));
    ASSERT_DIMS(&r, B, 10, 16);
    ASSERT_OK(fleet__shape_linear("t", &vec, &(fleet__dims){2, {3, 6}}, NULL, &r));
    ASSERT_DIMS(&r, 3);
    ASSERT_REFUSED(fleet__shape_linear("t", &x, &w, &vec, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "bias must be [out]");
    ASSERT_REFUSED(fleet__shape_linear("t", &x, &wb, NULL, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "weight's rows must be a fixed size");
    fleet__dims w9 = DIMS(16, 9);
    ASSERT_REFUSED(fleet__shape_linear("t", &x, &w9, NULL, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "x's last dimension must equal weight's columns: x is Bx10x8, weight is 16x9");
}

TEST(reductions_and_norms)
{
    fleet__dims r, x = DIMS(B, 5, 7);
    int d;
    ASSERT_OK(fleet__shape_reduce("t", &x, -1, false, &r, &d));
    ASSERT_DIMS(&r, B, 5);
    ASSERT_EQ(d, 2);
    ASSERT_OK(fleet__shape_reduce("t", &x, 0, true, &r, NULL));
    ASSERT_DIMS(&r, 1, 5, 7);
    ASSERT_REFUSED(fleet__shape_reduce("t", &x, 3, false, &r, NULL), FLEET_ERR_INVALID_ARGUMENT,
                   "t: dim 3 of a 3-D tensor");
    ASSERT_STATUS(fleet__shape_reduce("t", &x, -4, false, &r, NULL), FLEET_ERR_INVALID_ARGUMENT);
    fleet__dims g = DIMS(7), g5 = DIMS(5);
    ASSERT_OK(fleet__shape_layer_norm("t", &x, &g, NULL, &r));
    ASSERT_DIMS(&r, B, 5, 7);
    ASSERT_REFUSED(fleet__shape_layer_norm("t", &x, NULL, &g5, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "beta must be 1-D of x's last dimension");
    fleet__dims scalar = {.ndim = 0};
    ASSERT_STATUS(fleet__shape_layer_norm("t", &scalar, NULL, NULL, &r),
                  FLEET_ERR_INVALID_ARGUMENT);
}

/* Sizes as torch.nn.functional.{conv1d,max_pool1d} give them. */
TEST(sliding_window)
{
    static const struct {
        int64_t in, k, s, pb, pe, d;
        bool ceil;
        int64_t want;
    } cases[] = {
        {7, 3, 1, 0, 0, 1, false, 5},  {7, 3, 2, 0, 0, 2, false, 2}, {8, 3, 2, 1, 1, 1, false, 4},
        {5, 2, 2, 0, 0, 1, true, 3},   {5, 2, 2, 0, 0, 1, false, 2}, {6, 3, 2, 1, 1, 1, true, 4},
        {4, 2, 2, 1, 1, 1, true, 3},   {5, 2, 3, 1, 1, 1, true, 2},  /* last window: in padding */
        {10, 4, 3, 2, 1, 1, true, 4},  {1, 1, 1, 0, 0, 1, false, 1}, {3, 5, 1, 1, 1, 1, false, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fleet__window w = {.kernel = cases[i].k, .stride = cases[i].s, .pad_begin = cases[i].pb,
                           .pad_end = cases[i].pe, .dilation = cases[i].d,
                           .ceil_mode = cases[i].ceil};
        int64_t n = -7;
        ASSERT_OK(fleet__shape_window("t", cases[i].in, &w, &n));
        ASSERT_EQ(n, cases[i].want);
    }
    int64_t n;
    fleet__window big = {.kernel = 4, .stride = 1, .dilation = 3};
    ASSERT_REFUSED(fleet__shape_window("t", 9, &big, &n), FLEET_ERR_SHAPE_MISMATCH,
                   "output size would be <= 0: input 9 + padding 0 is shorter than the dilated "
                   "kernel 10");
    fleet__window huge = {.kernel = (int64_t)1 << 60, .stride = 1, .dilation = 1 << 20};
    ASSERT_REFUSED(fleet__shape_window("t", 9, &huge, &n), FLEET_ERR_SHAPE_MISMATCH,
                   "beyond 2^63");
    fleet__window zero = {.kernel = 0, .stride = 1, .dilation = 1};
    ASSERT_REFUSED(fleet__shape_window("t", 9, &zero, &n), FLEET_ERR_SHAPE_MISMATCH, ">= 1");
    fleet__window bad[] = {{.kernel = 1, .stride = 0, .dilation = 1},
                           {.kernel = 1, .stride = 1, .dilation = 0},
                           {.kernel = 1, .stride = 1, .dilation = 1, .pad_end = -1},
                           {.kernel = 1, .stride = (int64_t)1 << 31, .dilation = 1}};
    for (int i = 0; i < 4; i++)
        ASSERT_REFUSED(fleet__shape_window("t", 9, &bad[i], &n), FLEET_ERR_INVALID_ARGUMENT,
                       "need stride >= 1");
    fleet__window ok = {.kernel = 1, .stride = 1, .dilation = 1};
    ASSERT_REFUSED(fleet__shape_window("t", B, &ok, &n), FLEET_ERR_SHAPE_MISMATCH,
                   "fixed input size");
}

TEST(conv_and_pool)
{
    fleet__window w1 = {.stride = 2, .pad_begin = 1, .pad_end = 1, .dilation = 1};
    fleet__dims r, x = DIMS(B, 3, 9), w = DIMS(4, 3, 3), bias = DIMS(4), b5 = DIMS(5);
    ASSERT_OK(fleet__shape_conv("t", 1, &x, &w, &bias, &w1, 1, &r));
    ASSERT_DIMS(&r, B, 4, 5);
    ASSERT_REFUSED(fleet__shape_conv("t", 1, &x, &w, &b5, &w1, 1, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "bias must be [Cout]");
    fleet__dims xc = DIMS(2, 2, 9), xl = DIMS(2, 3, B), ws = DIMS(4, B, 3);
    ASSERT_REFUSED(fleet__shape_conv("t", 1, &xc, &w, NULL, &w1, 1, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "channels");
    ASSERT_REFUSED(fleet__shape_conv("t", 1, &xl, &w, NULL, &w1, 1, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "fixed input size");
    ASSERT_REFUSED(fleet__shape_conv("t", 1, &x, &ws, NULL, &w1, 1, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "fixed sizes");
    fleet__window w2[2] = {{.stride = 1, .dilation = 2}, {.stride = 2, .pad_begin = 1, .pad_end = 0,
                                                          .dilation = 1}};
    fleet__dims x2 = DIMS(1, 2, 8, 7), k2 = DIMS(6, 2, 3, 2);
    ASSERT_OK(fleet__shape_conv("t", 2, &x2, &k2, NULL, w2, 1, &r));
    ASSERT_DIMS(&r, 1, 6, 4, 4); /* (8 - 4 - 1) / 1 + 1, (7 + 1 - 1 - 1) / 2 + 1 */
    fleet__dims xg = DIMS(1, 6, 8, 7), kg = DIMS(9, 2, 3, 2), kb = DIMS(8, 2, 3, 2);
    ASSERT_OK(fleet__shape_conv("t", 2, &xg, &kg, NULL, w2, 3, &r)); /* 3 groups of 2 */
    ASSERT_DIMS(&r, 1, 9, 4, 4);
    ASSERT_REFUSED(fleet__shape_conv("t", 2, &xg, &kb, NULL, w2, 3, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "groups must divide");
    ASSERT_REFUSED(fleet__shape_conv("t", 2, &xg, &kg, NULL, w2, 2, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "groups times");
    ASSERT_STATUS(fleet__shape_conv("t", 2, &xg, &kg, NULL, w2, 0, &r), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_REFUSED(fleet__shape_conv("t", 2, &x, &k2, NULL, w2, 1, &r), FLEET_ERR_SHAPE_MISMATCH,
                   "expected x[N, Cin, H, W]");

    fleet__window p[2] = {{.kernel = 3, .stride = 2, .dilation = 1, .ceil_mode = true},
                          {.kernel = 2, .stride = 2, .dilation = 1}};
    fleet__dims img = DIMS(B, 16, 10, 9);
    ASSERT_OK(fleet__shape_pool("t", 2, &img, p, &r));
    ASSERT_DIMS(&r, B, 16, 5, 4);
    ASSERT_STATUS(fleet__shape_pool("t", 2, &x, p, &r), FLEET_ERR_SHAPE_MISMATCH);
}

TEST(views)
{
    fleet__dims x = DIMS(B, 2, 3), to_ok = DIMS(6, B), to_bad = DIMS(2, 3), to_two = DIMS(B, B, 6);
    ASSERT_OK(fleet__shape_reshape("t", &x, &to_ok));
    ASSERT_REFUSED(fleet__shape_reshape("t", &x, &to_bad), FLEET_ERR_SHAPE_MISMATCH,
                   "the element counts differ: x is Bx2x3, shape is 2x3");
    ASSERT_STATUS(fleet__shape_reshape("t", &x, &to_two), FLEET_ERR_SHAPE_MISMATCH);
    /* -k is k times the batch: [B, 2, 3] holds as many as [-2, 3] or [-6] */
    fleet__dims rows = DIMS(-2, 3), flat = DIMS(-6), wrong = DIMS(-3, 3);
    ASSERT_OK(fleet__shape_reshape("t", &x, &rows));
    ASSERT_OK(fleet__shape_reshape("t", &rows, &flat));
    ASSERT_OK(fleet__shape_reshape("t", &flat, &x));
    ASSERT_REFUSED(fleet__shape_reshape("t", &rows, &wrong), FLEET_ERR_SHAPE_MISMATCH,
                   "x is 2Bx3, shape is 3Bx3");
    fleet__dims c = DIMS(4, 0, 3), c2 = DIMS(0, 5), big = DIMS((int64_t)1 << 62, 8);
    fleet__dims big2 = DIMS(2, (int64_t)1 << 62);
    ASSERT_OK(fleet__shape_reshape("t", &c, &(fleet__dims){1, {0}}));
    ASSERT_OK(fleet__shape_reshape("t", &c, &c2)); /* no elements either way */
    ASSERT_STATUS(fleet__shape_reshape("t", &big, &big2), FLEET_ERR_SHAPE_MISMATCH); /* overflow */

    fleet__dims r, p = DIMS(B, 4, 5);
    int perm[] = {2, -3, 1};
    ASSERT_OK(fleet__shape_permute("t", &p, perm, &r));
    ASSERT_DIMS(&r, 5, B, 4);
    ASSERT_EQ(perm[1], 0); /* normalised */
    int twice[] = {0, 0, 1}, out_of_range[] = {0, 1, 3};
    ASSERT_REFUSED(fleet__shape_permute("t", &p, twice, &r), FLEET_ERR_INVALID_ARGUMENT,
                   "dims is not a permutation of 0..2 (dims[1] = 0)");
    ASSERT_STATUS(fleet__shape_permute("t", &p, out_of_range, &r), FLEET_ERR_INVALID_ARGUMENT);
}

TEST(composites)
{
    fleet__dims s, r, q = DIMS(B, 4, 10, 8), k = DIMS(4, 12, 8), v = DIMS(1, 12, 6);
    fleet__dims mask = DIMS(10, 12), bad_mask = DIMS(3, 12);
    ASSERT_OK(fleet__shape_attention("t", &q, &k, &v, &mask, &s, &r));
    ASSERT_DIMS(&s, B, 4, 10, 12);
    ASSERT_DIMS(&r, B, 4, 10, 6);
    ASSERT_REFUSED(fleet__shape_attention("t", &q, &k, &v, &bad_mask, NULL, &r),
                   FLEET_ERR_SHAPE_MISMATCH, "mask must broadcast");
    fleet__dims v_rows = DIMS(4, 11, 6);
    ASSERT_REFUSED(fleet__shape_attention("t", &q, &k, &v_rows, NULL, NULL, &r),
                   FLEET_ERR_SHAPE_MISMATCH, "k and v must have as many rows");

    fleet__dims w = DIMS(100, 16), idx = DIMS(B, 7);
    ASSERT_OK(fleet__shape_embedding("t", &w, &idx, &r));
    ASSERT_DIMS(&r, B, 7, 16);
    ASSERT_REFUSED(fleet__shape_embedding("t", &idx, &w, &r), FLEET_ERR_SHAPE_MISMATCH, "[V, D]");

    fleet__dims parts[] = {DIMS(B, 2, 5), DIMS(B, 3, 5), DIMS(B, 1, 5)};
    int d;
    ASSERT_OK(fleet__shape_concat("t", parts, 3, -2, &r, &d));
    ASSERT_DIMS(&r, B, 6, 5);
    ASSERT_EQ(d, 1);
    fleet__dims same[] = {DIMS(B, 2, 5), DIMS(B, 2, 5)};
    ASSERT_REFUSED(fleet__shape_concat("t", same, 2, 0, &r, NULL), FLEET_ERR_SHAPE_MISMATCH,
                   "cannot join along a symbolic dimension");
    ASSERT_REFUSED(fleet__shape_concat("t", parts, 3, 2, &r, NULL), FLEET_ERR_SHAPE_MISMATCH,
                   "inputs[1]");
    ASSERT_OK(fleet__shape_concat("t", parts, 1, 0, &r, NULL)); /* one input: nothing to add */
    ASSERT_DIMS(&r, B, 2, 5);
}

TEST(slice)
{
    fleet__dims r, x = DIMS(B, 10, S);
    int d;
    int64_t first;
    ASSERT_OK(fleet__shape_slice("t", &x, 1, 1, INT64_MAX, 3, &r, &d, &first)); /* 1, 4, 7 */
    ASSERT_DIMS(&r, B, 3, S);
    ASSERT_EQ(d, 1);
    ASSERT_EQ(first, 1);
    ASSERT_OK(fleet__shape_slice("t", &x, -2, -3, -1, 1, &r, &d, &first)); /* 7, 8 */
    ASSERT_DIMS(&r, B, 2, S);
    ASSERT_EQ(first, 7);
    ASSERT_OK(fleet__shape_slice("t", &x, 1, -100, 100, 1, &r, &d, &first)); /* clamped */
    ASSERT_DIMS(&r, B, 10, S);
    ASSERT_EQ(first, 0);
    ASSERT_OK(fleet__shape_slice("t", &x, 1, 8, 3, 1, &r, &d, &first)); /* empty */
    ASSERT_DIMS(&r, B, 0, S);
    ASSERT_OK(fleet__shape_slice("t", &x, 1, 0, 10, INT64_MAX, &r, &d, &first)); /* one */
    ASSERT_DIMS(&r, B, 1, S);
    ASSERT_OK(fleet__shape_slice("t", &x, 2, 0, INT64_MAX, 1, &r, &d, &first)); /* S whole */
    ASSERT_DIMS(&r, B, 10, S);
    ASSERT_REFUSED(fleet__shape_slice("t", &x, 0, 0, 4, 1, &r, &d, &first),
                   FLEET_ERR_SHAPE_MISMATCH, "dimension 0 is known only at run time");
    ASSERT_REFUSED(fleet__shape_slice("t", &x, 1, 0, 4, -1, &r, &d, &first),
                   FLEET_ERR_INVALID_ARGUMENT, "step -1");
    ASSERT_REFUSED(fleet__shape_slice("t", &x, 3, 0, 4, 1, &r, &d, &first),
                   FLEET_ERR_INVALID_ARGUMENT, "dim 3");
}

TEST(expect)
{
    fleet__dims want = DIMS(3, 4), same = DIMS(3, 4), lead = DIMS(1, 1, 3, 4);
    fleet__dims lead2 = DIMS(2, 3, 4);
    ASSERT_OK(fleet__shape_expect("t", "out", &same, &want, NULL));
    ASSERT_REFUSED(fleet__shape_expect("t", "out", &lead, &want, "the hint"),
                   FLEET_ERR_SHAPE_MISMATCH, "t: out must be 3x4 (the hint), got 1x1x3x4");
    ASSERT_OK(fleet__shape_expect_aligned("t", "out", &lead, &want, NULL));
    ASSERT_REFUSED(fleet__shape_expect_aligned("t", "y", &lead2, &want, NULL),
                   FLEET_ERR_SHAPE_MISMATCH, "t: y must be 3x4, got 2x3x4");
    ASSERT_STATUS(fleet__shape_expect_aligned("t", "y", &want, &lead, NULL),
                  FLEET_ERR_SHAPE_MISMATCH);
}

TEST_MAIN()
