/* The model builder and compiler: shape inference over the batch dimension,
 * views and materialised reshapes, the memory plan's reuse, several inputs
 * and outputs, pruning of unused values, one plan per batch size, weights
 * from a safetensors file. Values are checked against plain-C computations. */
#include <unistd.h>

#include "model_util.h"

#define B FLEET_DIM_BATCH

static fleet_device *dev;

static fleet_tensor *host_tensor(int ndim, const int64_t *shape, const float *data)
{
    fleet_tensor *t;
    ASSERT_OK(fleet_tensor_create(dev, FLEET_DTYPE_F32, ndim, shape, &t));
    if (data != NULL)
        ASSERT_OK(fleet_tensor_copy_from_host(t, data, fleet_tensor_nbytes(t)));
    return t;
}

TEST(shape_inference_and_errors)
{
    fleet_model *m;
    ASSERT_OK(fleet_model_create(dev, &m));
    int64_t xs[] = {B, 8}, ws[] = {4, 8}, bs[] = {4}, bad[] = {4, 7};
    fleet_value x, w, b, wbad, y, z;
    ASSERT_OK(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &x));
    ASSERT_OK(fleet_model_weight(m, "w", FLEET_DTYPE_F32, 2, ws, &w));
    ASSERT_OK(fleet_model_weight(m, "b", FLEET_DTYPE_F32, 1, bs, &b));
    ASSERT_OK(fleet_model_weight(m, "wbad", FLEET_DTYPE_F32, 2, bad, &wbad));
    ASSERT_REFUSED(fleet_model_linear(m, x, wbad, FLEET_NO_VALUE, &y), FLEET_ERR_SHAPE_MISMATCH,
                   "Bx8");
    ASSERT_REFUSED(fleet_model_linear(m, x, w, 77, &y), FLEET_ERR_INVALID_ARGUMENT,
                   "unknown value 77");
    ASSERT_STATUS(fleet_model_relu(m, -5, &y), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_OK(fleet_model_linear(m, x, w, b, &y));
    int64_t two[] = {2, 2};
    ASSERT_STATUS(fleet_model_reshape(m, y, 2, two, &z), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_STATUS(fleet_model_add(m, y, wbad, &z), FLEET_ERR_SHAPE_MISMATCH);
    ASSERT_REFUSED(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &z),
                   FLEET_ERR_INVALID_ARGUMENT, "already");
    ASSERT_STATUS(fleet_model_weight(m, "w2", FLEET_DTYPE_F32, 2, xs, &z),
                  FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(fleet_last_error(), "FLEET_DIM_BATCH");
    int64_t hs[] = {B, 8};
    fleet_value h;
    ASSERT_OK(fleet_model_input(m, "h", FLEET_DTYPE_F16, 2, hs, &h));
    ASSERT_STATUS(fleet_model_add(m, x, h, &z), FLEET_ERR_DTYPE_MISMATCH);
    ASSERT_STATUS(fleet_model_finalize(m), FLEET_ERR_INVALID_ARGUMENT); /* no output */
    ASSERT_OK(fleet_model_output(m, "y", y));
    ASSERT_STATUS(fleet_model_output(m, "y", x), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_finalize(m), FLEET_ERR_INVALID_ARGUMENT); /* no weight data */
    ASSERT_STR_CONTAINS(fleet_last_error(), "has no data");
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    ASSERT_OK(fleet_model_output_shape(m, 0, 6, &ndim, shape));
    ASSERT_EQ(ndim, 2);
    ASSERT_EQ(shape[0], 6);
    ASSERT_EQ(shape[1], 4);
    ASSERT_OK(fleet_model_destroy(m));
}

/* y1 = relu(x @ W^T + b) ; y2 = reshape(permute(x3, 0 2 1), [B, 6]) + x2
 * with x [B, 3], x3 [B, 2, 3] and x2 [B, 6]: two inputs feeding two outputs,
 * a copy for the reshape of a permuted view, and an unused branch. */
TEST(views_copies_and_two_outputs)
{
    fleet_model *m;
    ASSERT_OK(fleet_model_create(dev, &m));
    int64_t xs[] = {B, 3}, x3s[] = {B, 2, 3}, x2s[] = {B, 6}, ws[] = {2, 3}, bs[] = {2};
    fleet_value x, x3, x2, w, b, l, y1, p, r, y2, unused;
    ASSERT_OK(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &x));
    ASSERT_OK(fleet_model_input(m, "x3", FLEET_DTYPE_F32, 3, x3s, &x3));
    ASSERT_OK(fleet_model_input(m, "x2", FLEET_DTYPE_F32, 2, x2s, &x2));
    ASSERT_OK(fleet_model_weight(m, "w", FLEET_DTYPE_F32, 2, ws, &w));
    ASSERT_OK(fleet_model_weight(m, "b", FLEET_DTYPE_F32, 1, bs, &b));
    ASSERT_OK(fleet_model_linear(m, x, w, b, &l));
    ASSERT_OK(fleet_model_relu(m, l, &y1));
    ASSERT_OK(fleet_model_transpose(m, x3, 1, 2, &p));
    ASSERT_OK(fleet_model_reshape(m, p, 2, x2s, &r));
    ASSERT_OK(fleet_model_add(m, r, x2, &y2));
    ASSERT_OK(fleet_model_tanh(m, y2, &unused));
    ASSERT_OK(fleet_model_output(m, "y1", y1));
    ASSERT_OK(fleet_model_output(m, "y2", y2));
    const float wv[] = {1, -2, 0.5f, -1, 3, 2}, bv[] = {0.25f, -0.5f};
    ASSERT_OK(fleet_model_set_weight(m, "w", wv, sizeof wv));
    ASSERT_OK(fleet_model_set_weight(m, "b", bv, sizeof bv));
    ASSERT_OK(fleet_model_finalize(m));
    ASSERT_STATUS(fleet_model_relu(m, l, &unused), FLEET_ERR_INVALID_ARGUMENT); /* frozen */

    for (int64_t batch = 1; batch <= 3; batch++) {
        float xv[9], x3v[18], x2v[18], g1[6], g2[18];
        test_rng rng = test_rng_make((uint64_t)batch);
        test_fill_random(xv, 3 * batch, &rng);
        test_fill_random(x3v, 6 * batch, &rng);
        test_fill_random(x2v, 6 * batch, &rng);
        int64_t s1[] = {batch, 3}, s3[] = {batch, 2, 3}, s2[] = {batch, 6}, so[] = {batch, 2};
        fleet_tensor *tx = host_tensor(2, s1, xv), *tx3 = host_tensor(3, s3, x3v);
        fleet_tensor *tx2 = host_tensor(2, s2, x2v), *ty1 = host_tensor(2, so, NULL);
        fleet_tensor *ty2 = host_tensor(2, s2, NULL);
        const fleet_tensor *in[] = {tx, tx3, tx2};
        fleet_tensor *out[] = {ty1, ty2};
        ASSERT_OK(fleet_model_run(m, in, 3, out, 2));
        ASSERT_OK(fleet_tensor_copy_to_host(ty1, g1, sizeof(float) * 2 * (size_t)batch));
        ASSERT_OK(fleet_tensor_copy_to_host(ty2, g2, sizeof(float) * 6 * (size_t)batch));
        for (int64_t i = 0; i < batch; i++) {
            for (int o = 0; o < 2; o++) {
                double acc = bv[o];
                for (int k = 0; k < 3; k++)
                    acc += (double)xv[i * 3 + k] * wv[o * 3 + k];
                ASSERT_TRUE(fabs(g1[i * 2 + o] - (acc > 0 ? acc : 0)) < 1e-5);
            }
            /* r[i] = x3[i]^T flattened: r[i][c * 2 + a] = x3[i][a][c] */
            for (int c = 0; c < 3; c++)
                for (int a = 0; a < 2; a++) {
                    float want = x3v[i * 6 + a * 3 + c] + x2v[i * 6 + c * 2 + a];
                    ASSERT_TRUE(fabsf(g2[i * 6 + c * 2 + a] - want) < 1e-6f);
                }
        }
        TEST_RELEASE(tx, tx3, tx2, ty1, ty2);
    }
    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(m, &st));
    ASSERT_EQ(st.compiles, 3u); /* batch 1, 2, 3 */
    ASSERT_EQ(st.runs, 3u);
    ASSERT_OK(fleet_model_destroy(m));
}

/* A permute the op reading it cannot take as a view is copied by the plan:
 * conv1d needs contiguous input, and a matmul operand whose last two
 * dimensions have no unit stride cannot go to BLAS. Both ran as views, and
 * failed, before the compiler knew its readers. */
TEST(views_their_readers_cannot_take_are_copied)
{
    fleet_model *m;
    ASSERT_OK(fleet_model_create(dev, &m));
    int64_t xcs[] = {B, 6, 3}, xms[] = {B, 2, 3, 4}, cws[] = {4, 3, 3}, cbs[] = {4}, mws[] = {3, 5};
    fleet_value xc, xm, cw, cb, mw, pc, pm, y1, y2;
    ASSERT_OK(fleet_model_input(m, "xc", FLEET_DTYPE_F32, 3, xcs, &xc));
    ASSERT_OK(fleet_model_input(m, "xm", FLEET_DTYPE_F32, 4, xms, &xm));
    ASSERT_OK(fleet_model_weight(m, "cw", FLEET_DTYPE_F32, 3, cws, &cw));
    ASSERT_OK(fleet_model_weight(m, "cb", FLEET_DTYPE_F32, 1, cbs, &cb));
    ASSERT_OK(fleet_model_weight(m, "mw", FLEET_DTYPE_F32, 2, mws, &mw));
    ASSERT_OK(fleet_model_transpose(m, xc, 1, 2, &pc)); /* [B, 3, 6] */
    ASSERT_OK(fleet_model_conv1d(m, pc, cw, cb, 1, 1, 1, &y1));
    const int perm[] = {0, 3, 1, 2}; /* [B, 4, 2, 3], strides {24, 1, 12, 4} */
    ASSERT_OK(fleet_model_permute(m, xm, perm, &pm));
    ASSERT_OK(fleet_model_matmul(m, pm, mw, 1.0f, &y2));
    ASSERT_OK(fleet_model_output(m, "y1", y1));
    ASSERT_OK(fleet_model_output(m, "y2", y2));
    float cwv[36], cbv[4], mwv[15];
    test_rng rng = test_rng_make(41);
    test_fill_random(cwv, 36, &rng);
    test_fill_random(cbv, 4, &rng);
    test_fill_random(mwv, 15, &rng);
    ASSERT_OK(fleet_model_set_weight(m, "cw", cwv, sizeof cwv));
    ASSERT_OK(fleet_model_set_weight(m, "cb", cbv, sizeof cbv));
    ASSERT_OK(fleet_model_set_weight(m, "mw", mwv, sizeof mwv));
    ASSERT_OK(fleet_model_finalize(m));
    for (int64_t batch = 1; batch <= 2; batch++) {
        float xcv[36], xmv[48], pcv[36], pmv[48], g1[48], w1[48], g2[80], w2[80];
        test_fill_random(xcv, 18 * batch, &rng);
        test_fill_random(xmv, 24 * batch, &rng);
        for (int64_t i = 0; i < batch; i++) {
            for (int l = 0; l < 6; l++)
                for (int c = 0; c < 3; c++)
                    pcv[(i * 3 + c) * 6 + l] = xcv[(i * 6 + l) * 3 + c];
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 3; b++)
                    for (int c = 0; c < 4; c++)
                        pmv[((i * 4 + c) * 2 + a) * 3 + b] = xmv[((i * 2 + a) * 3 + b) * 4 + c];
        }
        fleet__conv_geom g = {.n = batch, .c = 3, .h = 1, .w = 6, .cout = 4, .kh = 1, .kw = 3,
                              .sh = 1, .sw = 1, .pw = 1, .dh = 1, .dw = 1, .oh = 1, .ow = 6};
        ref_conv2d(&g, pcv, cwv, cbv, w1);
        ref_matmul(pmv, mwv, NULL, w2, batch * 8, 3, 5);
        int64_t s1[] = {batch, 6, 3}, s2[] = {batch, 2, 3, 4}, so1[] = {batch, 4, 6};
        int64_t so2[] = {batch, 4, 2, 5};
        fleet_tensor *tc = host_tensor(3, s1, xcv), *tm = host_tensor(4, s2, xmv);
        fleet_tensor *ty1 = host_tensor(3, so1, NULL), *ty2 = host_tensor(4, so2, NULL);
        const fleet_tensor *in[] = {tc, tm};
        fleet_tensor *out[] = {ty1, ty2};
        ASSERT_OK(fleet_model_run(m, in, 2, out, 2));
        ASSERT_OK(fleet_tensor_copy_to_host(ty1, g1, sizeof(float) * 24 * (size_t)batch));
        ASSERT_OK(fleet_tensor_copy_to_host(ty2, g2, sizeof(float) * 40 * (size_t)batch));
        ASSERT_CLOSE(g1, w1, 24 * batch, 1e-5, 1e-5);
        ASSERT_CLOSE(g2, w2, 40 * batch, 1e-5, 1e-5);
        TEST_RELEASE(tc, tm, ty1, ty2);
    }
    ASSERT_OK(fleet_model_destroy(m));
}

/* layer_norm with no gamma and beta (FLEET_NO_VALUE), as fleet_layer_norm
 * takes NULL: y = (x - mean) / sqrt(var + eps) over the last dimension; and
 * with gamma only. */
TEST(layer_norm_without_gamma_or_beta)
{
    for (int with_gamma = 0; with_gamma < 2; with_gamma++) {
        fleet_model *m;
        ASSERT_OK(fleet_model_create(dev, &m));
        int64_t xs[] = {B, 5}, gs[] = {5};
        fleet_value x, g = FLEET_NO_VALUE, y;
        ASSERT_OK(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &x));
        if (with_gamma)
            ASSERT_OK(fleet_model_weight(m, "g", FLEET_DTYPE_F32, 1, gs, &g));
        ASSERT_OK(fleet_model_layer_norm(m, x, g, FLEET_NO_VALUE, 1e-5f, &y));
        ASSERT_OK(fleet_model_output(m, "y", y));
        const float gv[5] = {1, 2, -1, 0.5f, 3};
        if (with_gamma)
            ASSERT_OK(fleet_model_set_weight(m, "g", gv, sizeof gv));
        ASSERT_OK(fleet_model_finalize(m));
        float xv[3 * 5], got[3 * 5];
        test_rng r = test_rng_make(77);
        test_fill_random(xv, 15, &r);
        int64_t s[] = {3, 5};
        fleet_tensor *tx = host_tensor(2, s, xv), *ty = host_tensor(2, s, NULL);
        const fleet_tensor *in[] = {tx};
        fleet_tensor *out[] = {ty};
        ASSERT_OK(fleet_model_run(m, in, 1, out, 1));
        ASSERT_OK(fleet_tensor_copy_to_host(ty, got, sizeof got));
        for (int i = 0; i < 3; i++) {
            double mean = 0, var = 0;
            for (int k = 0; k < 5; k++)
                mean += xv[i * 5 + k] / 5.0;
            for (int k = 0; k < 5; k++)
                var += (xv[i * 5 + k] - mean) * (xv[i * 5 + k] - mean) / 5.0;
            for (int k = 0; k < 5; k++) {
                double want = (xv[i * 5 + k] - mean) / sqrt(var + 1e-5) * (with_gamma ? gv[k] : 1);
                ASSERT_TRUE(fabs(got[i * 5 + k] - want) < 1e-5 * (1 + fabs(want)));
            }
        }
        TEST_RELEASE(tx, ty);
        ASSERT_OK(fleet_model_destroy(m));
    }
}

/* A chain of n elementwise ops over [B, 256] floats needs two buffers,
 * however long: each op reads one and writes the other (the input's copy is
 * dead after the first op). */
TEST(memory_plan_reuses_buffers)
{
    fleet_model *m;
    ASSERT_OK(fleet_model_create(dev, &m));
    int64_t xs[] = {B, 256};
    fleet_value v;
    ASSERT_OK(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &v));
    for (int i = 0; i < 20; i++)
        ASSERT_OK(i % 2 ? fleet_model_tanh(m, v, &v) : fleet_model_sigmoid(m, v, &v));
    ASSERT_OK(fleet_model_output(m, "y", v));
    ASSERT_OK(fleet_model_finalize(m));
    float x[4 * 256], y[4 * 256];
    test_rng r = test_rng_make(3);
    test_fill_random(x, 4 * 256, &r);
    int64_t s[] = {4, 256};
    fleet_tensor *tx = host_tensor(2, s, x), *ty = host_tensor(2, s, NULL);
    const fleet_tensor *in[] = {tx};
    fleet_tensor *out[] = {ty};
    ASSERT_OK(fleet_model_run(m, in, 1, out, 1));
    ASSERT_OK(fleet_tensor_copy_to_host(ty, y, sizeof y));
    for (int i = 0; i < 4 * 256; i++) {
        double a = x[i];
        for (int k = 0; k < 20; k++)
            a = k % 2 ? tanh(a) : 1.0 / (1.0 + exp(-a));
        ASSERT_TRUE(fabs(y[i] - a) < 1e-5);
    }
    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(m, &st));
    printf("  21 values of 4 KiB in an arena of %zu bytes\n", st.arena_bytes_max);
    ASSERT_EQ(st.arena_bytes_max, 2u * 4096u);
    TEST_RELEASE(tx, ty);
    ASSERT_OK(fleet_model_destroy(m));
}

/* relu(linear(x)) runs as one fused GEMM step when the linear's output has no
 * other reader; not when it is also an output or read twice. Values equal
 * the unfused computation either way. */
TEST(relu_fused_into_its_linear)
{
    fleet_model *m;
    ASSERT_OK(fleet_model_create(dev, &m));
    int64_t xs[] = {B, 4}, ws[] = {3, 4}, bs[] = {3};
    fleet_value x, w, b, l1, r1, l2, r2, l3, r3, t3;
    ASSERT_OK(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &x));
    ASSERT_OK(fleet_model_weight(m, "w", FLEET_DTYPE_F32, 2, ws, &w));
    ASSERT_OK(fleet_model_weight(m, "b", FLEET_DTYPE_F32, 1, bs, &b));
    ASSERT_OK(fleet_model_linear(m, x, w, b, &l1)); /* fused: relu is its only reader */
    ASSERT_OK(fleet_model_relu(m, l1, &r1));
    ASSERT_OK(fleet_model_linear(m, x, w, b, &l2)); /* not: l2 is an output too */
    ASSERT_OK(fleet_model_relu(m, l2, &r2));
    ASSERT_OK(fleet_model_linear(m, x, w, b, &l3)); /* not: l3 is read twice */
    ASSERT_OK(fleet_model_relu(m, l3, &r3));
    ASSERT_OK(fleet_model_tanh(m, l3, &t3));
    ASSERT_OK(fleet_model_output(m, "r1", r1));
    ASSERT_OK(fleet_model_output(m, "r2", r2));
    ASSERT_OK(fleet_model_output(m, "l2", l2));
    ASSERT_OK(fleet_model_output(m, "r3", r3));
    ASSERT_OK(fleet_model_output(m, "t3", t3));
    const float wv[] = {1, -1, 0.5f, 2, -2, 1, 0, 1, 0.25f, 0.25f, -1, 3}, bv[] = {0.5f, -1, 0};
    ASSERT_OK(fleet_model_set_weight(m, "w", wv, sizeof wv));
    ASSERT_OK(fleet_model_set_weight(m, "b", bv, sizeof bv));
    ASSERT_OK(fleet_model_finalize(m));
    float xv[8] = {1, 2, -1, 0.5f, -3, 1, 2, -0.5f}, got[5][6];
    int64_t s2[] = {2, 4}, so[] = {2, 3};
    fleet_tensor *tx = host_tensor(2, s2, xv), *outs[5];
    for (int i = 0; i < 5; i++)
        outs[i] = host_tensor(2, so, NULL);
    const fleet_tensor *in[] = {tx};
    ASSERT_OK(fleet_model_run(m, in, 1, outs, 5));
    for (int i = 0; i < 5; i++)
        ASSERT_OK(fleet_tensor_copy_to_host(outs[i], got[i], sizeof got[i]));
    for (int r = 0; r < 2; r++)
        for (int o = 0; o < 3; o++) {
            double l = bv[o];
            for (int k = 0; k < 4; k++)
                l += (double)xv[r * 4 + k] * wv[o * 4 + k];
            double relu = l > 0 ? l : 0;
            ASSERT_TRUE(fabs(got[0][r * 3 + o] - relu) < 1e-5);
            ASSERT_TRUE(fabs(got[1][r * 3 + o] - relu) < 1e-5);
            ASSERT_TRUE(fabs(got[2][r * 3 + o] - l) < 1e-5); /* unfused: the linear itself */
            ASSERT_TRUE(fabs(got[3][r * 3 + o] - relu) < 1e-5);
            ASSERT_TRUE(fabs(got[4][r * 3 + o] - tanh(l)) < 1e-5);
        }
    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(m, &st));
    ASSERT_EQ(st.fusions, 1u);
    TEST_RELEASE(tx, outs[0], outs[1], outs[2], outs[3], outs[4]);
    ASSERT_OK(fleet_model_destroy(m));
}

/* Runs alternate between two input/output pairs that live at the same time,
 * so on cuda the replayed graph's copy nodes must follow each run's tensors:
 * every output must be its own input's result, never the other pair's. */
TEST(runs_follow_their_own_tensors)
{
    const int64_t widths[] = {8, 16, 4};
    test_model tm;
    test_model_mlp(dev, widths, 3, 41, &tm);
    float x[2][3 * 8], want[2][3 * 4], got[3 * 4];
    int64_t xs[] = {3, 8}, ys[] = {3, 4};
    fleet_tensor *tx[2], *ty[2];
    for (int p = 0; p < 2; p++) {
        test_rng r = test_rng_make(60 + (uint64_t)p);
        test_fill_random(x[p], 3 * 8, &r);
        test_model_reference(&tm, x[p], 3, want[p]);
        tx[p] = host_tensor(2, xs, x[p]);
        ty[p] = host_tensor(2, ys, NULL);
    }
    for (int i = 0; i < 8; i++) {
        int p = i % 2;
        test_fill_sentinel(ty[p]);
        const fleet_tensor *in[] = {tx[p]};
        fleet_tensor *out[] = {ty[p]};
        ASSERT_OK(fleet_model_run(tm.m, in, 1, out, 1));
        ASSERT_OK(fleet_tensor_copy_to_host(ty[p], got, sizeof got));
        ASSERT_CLOSE(got, want[p], 12, 1e-5, 1e-6);
    }
    /* a non-contiguous output: the run copies outside any graph, still right */
    fleet_tensor *wide = host_tensor(2, (int64_t[]){3, 8}, NULL), *view;
    ASSERT_OK(fleet_tensor_slice(wide, 1, 2, 6, &view));
    const fleet_tensor *in[] = {tx[0]};
    fleet_tensor *out[] = {view};
    ASSERT_OK(fleet_model_run(tm.m, in, 1, out, 1));
    float all[3 * 8];
    ASSERT_OK(fleet_tensor_copy_to_host(wide, all, sizeof all));
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            ASSERT_TRUE(fabsf(all[r * 8 + 2 + c] - want[0][r * 4 + c]) < 1e-5f);
    fleet_model_stats st;
    ASSERT_OK(fleet_model_get_stats(tm.m, &st));
    ASSERT_EQ(st.runs, 9u);
    if (fleet_device_backend(dev) == FLEET_BACKEND_CUDA && !getenv("FLEET_MODEL_GRAPHS"))
        ASSERT_EQ(st.graph_replays, 7u); /* run 1 eager, 2 captures, 3..8 replay, 9 eager */
    TEST_RELEASE(tx[0], tx[1], ty[0], ty[1], view, wide);
    test_model_free(&tm);
}

/* ---- safetensors ------------------------------------------------------------------ */

typedef struct st_entry {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t bytes;
} st_entry;

/* Write a safetensors file; returns its size. */
static size_t write_safetensors(const char *path, const st_entry *e, int n)
{
    char header[4096];
    size_t len = 0, off = 0;
    len += (size_t)snprintf(header + len, sizeof header - len, "{");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(header + len, sizeof header - len,
                                "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
                                e[i].name, e[i].dtype);
        for (int d = 0; d < e[i].ndim; d++)
            len += (size_t)snprintf(header + len, sizeof header - len, "%s%lld", d ? "," : "",
                                    (long long)e[i].shape[d]);
        len += (size_t)snprintf(header + len, sizeof header - len,
                                "],\"data_offsets\":[%zu,%zu]}", off, off + e[i].bytes);
        off += e[i].bytes;
    }
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    uint64_t hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hl >> (8 * i));
    ASSERT_EQ(fwrite(le, 1, 8, f), 8u);
    ASSERT_EQ(fwrite(header, 1, len, f), len);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(fwrite(e[i].data, 1, e[i].bytes, f), e[i].bytes);
    ASSERT_EQ(fclose(f), 0);
    return 8 + len + off;
}

static fleet_model *tiny_linear(void)
{
    fleet_model *m;
    ASSERT_OK(fleet_model_create(dev, &m));
    int64_t xs[] = {B, 3}, ws[] = {2, 3}, bs[] = {2};
    fleet_value x, w, b, y;
    ASSERT_OK(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &x));
    ASSERT_OK(fleet_model_weight(m, "fc.weight", FLEET_DTYPE_F32, 2, ws, &w));
    ASSERT_OK(fleet_model_weight(m, "fc.bias", FLEET_DTYPE_F32, 1, bs, &b));
    ASSERT_OK(fleet_model_linear(m, x, w, b, &y));
    ASSERT_OK(fleet_model_output(m, "y", y));
    return m;
}

TEST(weights_from_safetensors)
{
    char path[] = "/tmp/fleet_model_st_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    const float wv[] = {1, 2, 3, 4, 5, 6}, bv[] = {-1, 1}, extra[] = {9};
    st_entry e[] = {
        {"fc.bias", "F32", 1, {2}, bv, sizeof bv},
        {"fc.weight", "F32", 2, {2, 3}, wv, sizeof wv},
        {"unused", "F32", 1, {1}, extra, sizeof extra},
    };
    size_t size = write_safetensors(path, e, 3);

    /* A truncated copy is refused and sets nothing. */
    fleet_model *m = tiny_linear();
    ASSERT_EQ(truncate(path, (off_t)(size - 3)), 0);
    int loaded = -1;
    ASSERT_STATUS(fleet_model_load_safetensors(m, path, &loaded), FLEET_ERR_INVALID_MODEL);
    ASSERT_EQ(loaded, -1);
    ASSERT_STATUS(fleet_model_finalize(m), FLEET_ERR_INVALID_ARGUMENT); /* still no data */
    /* A tensor of the wrong shape is refused and sets nothing. */
    st_entry wrong[] = {{"fc.bias", "F32", 1, {2}, bv, sizeof bv},
                        {"fc.weight", "F32", 2, {3, 2}, wv, sizeof wv}};
    write_safetensors(path, wrong, 2);
    ASSERT_REFUSED(fleet_model_load_safetensors(m, path, &loaded), FLEET_ERR_SHAPE_MISMATCH,
                   "tensor 'fc.weight' is 3x2, the model declares 2x3");
    ASSERT_STATUS(fleet_model_finalize(m), FLEET_ERR_INVALID_ARGUMENT);
    /* ... and one of the wrong dtype says so, with both dtypes. */
    const uint16_t wh[6] = {0};
    st_entry half[] = {{"fc.bias", "F32", 1, {2}, bv, sizeof bv},
                       {"fc.weight", "F16", 2, {2, 3}, wh, sizeof wh}};
    write_safetensors(path, half, 2);
    ASSERT_REFUSED(fleet_model_load_safetensors(m, path, &loaded), FLEET_ERR_DTYPE_MISMATCH,
                   "tensor 'fc.weight' is F16, the model declares f32");
    ASSERT_STATUS(fleet_model_finalize(m), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STATUS(fleet_model_load_safetensors(m, "/nonexistent/w.safetensors", NULL),
                  FLEET_ERR_IO);

    write_safetensors(path, e, 3);
    ASSERT_OK(fleet_model_load_safetensors(m, path, &loaded));
    ASSERT_EQ(loaded, 2);
    ASSERT_OK(fleet_model_finalize(m));
    ASSERT_EQ(unlink(path), 0);
    const float x[] = {1, 0, -1, 0.5f, 0.5f, 0.5f};
    int64_t xs[] = {2, 3}, ys[] = {2, 2};
    fleet_tensor *tx = host_tensor(2, xs, x), *ty = host_tensor(2, ys, NULL);
    const fleet_tensor *in[] = {tx};
    fleet_tensor *out[] = {ty};
    ASSERT_OK(fleet_model_run(m, in, 1, out, 1));
    float y[4];
    ASSERT_OK(fleet_tensor_copy_to_host(ty, y, sizeof y));
    const float want[] = {1 - 3 - 1, 4 - 6 + 1, 3 - 1, 7.5f + 1};
    ASSERT_CLOSE(y, want, 4, 1e-6, 1e-6);
    TEST_RELEASE(tx, ty);
    ASSERT_OK(fleet_model_destroy(m));
}

/* Random weights for an encoder block's names after prefix (norm scales
 * near 1), the same for each model given. */
static void encoder_weights(fleet_model *const *ms, int n_models, const char *prefix, int64_t d,
                            int64_t ff, uint64_t seed)
{
    static const char *const leaves[] = {
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
        "linear1", "linear2", "norm1", "norm2"};
    test_rng r = test_rng_make(seed);
    for (int l = 0; l < 8; l++)
        for (int part = 0; part < 2; part++) {
            int64_t rows = l == 4 ? ff : d, cols = l == 5 ? ff : d;
            bool norm = l >= 6, bias = part == 1;
            int64_t nel = bias || norm ? rows : rows * cols;
            float *w = malloc(sizeof(float) * (size_t)nel);
            test_fill_random(w, nel, &r);
            for (int64_t i = 0; norm && !bias && i < nel; i++)
                w[i] = 1.0f + 0.1f * w[i];
            char name[128];
            snprintf(name, sizeof name, "%s%s.%s", prefix, leaves[l], bias ? "bias" : "weight");
            for (int k = 0; k < n_models; k++)
                ASSERT_OK(fleet_model_set_weight(ms[k], name, w, sizeof(float) * (size_t)nel));
            free(w);
        }
}

/* Two stacked encoder blocks over 6 positions with the last 2 masked out
 * (an additive -inf padding mask) give, on the first 4 positions, what the
 * same blocks give over those 4 positions alone. */
TEST(stacked_encoder_blocks_with_a_padding_mask)
{
    const int64_t d = 8, ff = 16, full = 6, kept = 4, batch = 2;
    fleet_model *m[2];
    fleet_value y[2];
    for (int k = 0; k < 2; k++) {
        int64_t seq = k == 0 ? full : kept, xs[] = {B, seq, d}, ms[] = {B, 1, 1, seq};
        ASSERT_OK(fleet_model_create(dev, &m[k]));
        fleet_value x, mask = FLEET_NO_VALUE, h;
        ASSERT_OK(fleet_model_input(m[k], "x", FLEET_DTYPE_F32, 3, xs, &x));
        if (k == 0)
            ASSERT_OK(fleet_model_input(m[k], "mask", FLEET_DTYPE_F32, 4, ms, &mask));
        fleet_encoder_params p = {.seq = seq, .d_model = d, .heads = 2, .ff = ff, .eps = 1e-6f};
        ASSERT_OK(fleet_model_add_encoder_block(m[k], "layers.0.", x, mask, &p, &h));
        ASSERT_OK(fleet_model_add_encoder_block(m[k], "layers.1.", h, mask, &p, &y[k]));
        ASSERT_OK(fleet_model_output(m[k], "y", y[k]));
    }
    encoder_weights(m, 2, "layers.0.", d, ff, 71);
    encoder_weights(m, 2, "layers.1.", d, ff, 72);
    fleet_encoder_params bad = {.seq = full, .d_model = d, .heads = 3, .ff = ff, .eps = 1e-6f};
    fleet_value z;
    ASSERT_REFUSED(fleet_model_add_encoder_block(m[0], "x.", y[0], FLEET_NO_VALUE, &bad, &z),
                   FLEET_ERR_INVALID_ARGUMENT, "not divisible");
    for (int k = 0; k < 2; k++)
        ASSERT_OK(fleet_model_finalize(m[k]));
    float x[2 * 6 * 8], mask[2 * 6], got[2 * 6 * 8], want[2 * 4 * 8], xk[2 * 4 * 8];
    test_rng r = test_rng_make(73);
    test_fill_random(x, 2 * 6 * 8, &r);
    for (int i = 0; i < 12; i++)
        mask[i] = i % 6 < kept ? 0.0f : -INFINITY;
    for (int b = 0; b < 2; b++)
        memcpy(xk + b * kept * d, x + b * full * d, sizeof(float) * (size_t)(kept * d));
    int64_t xs[] = {batch, full, d}, ms[] = {batch, 1, 1, full}, ks[] = {batch, kept, d};
    fleet_tensor *tx = host_tensor(3, xs, x), *tm = host_tensor(4, ms, mask);
    fleet_tensor *ty = host_tensor(3, xs, NULL), *tk = host_tensor(3, ks, xk);
    fleet_tensor *tyk = host_tensor(3, ks, NULL);
    const fleet_tensor *in0[] = {tx, tm};
    ASSERT_OK(fleet_model_run(m[0], in0, 2, &ty, 1));
    ASSERT_OK(fleet_model_run(m[1], (const fleet_tensor *const *)&tk, 1, &tyk, 1));
    test_tensor_read(ty, got);
    test_tensor_read(tyk, want);
    for (int b = 0; b < 2; b++)
        ASSERT_CLOSE(got + b * full * d, want + b * kept * d, kept * d, 1e-4, 1e-5);
    TEST_RELEASE(tx, tm, ty, tk, tyk);
    for (int k = 0; k < 2; k++)
        ASSERT_OK(fleet_model_destroy(m[k]));
}

int main(int argc, char **argv)
{
    ASSERT_OK(fleet_device_default(&dev));
    return test_main(argc, argv);
}
