/* onnx_import — fleet_model_load_onnx on models written here field by
 * field: an MLP with a symbolic batch against a plain-C reference, the
 * named dims bound (and the error when one is not), a transformer-style
 * shape subgraph (Shape, Gather, Unsqueeze, Concat, Reshape) that folds
 * away leaving the batch symbolic, int64 inputs, weights from external
 * data; and the refusals: every unsupported node listed in one error, an
 * external path escaping the folder, every truncation of a valid file, an
 * input of the wrong dtype at run. ONNX's own node tests: onnx_node_tests. */
#include <unistd.h>

#include "fleet/onnx.h"
#include "onnx_writer.h"
#include "test_util.h"

#define B FLEET_DIM_BATCH

static fleet_device *dev;

/* ---- an MLP: relu(x @ W1 + b1) @ W2 + b2, softmax, x [N, 4] ------------------------------ */

static float w1[4 * 5], b1[5], w2[5 * 3], b2[3];

static pbw mlp_model(const char *op_a, bool with_unsupported)
{
    test_rng r = test_rng_make(5);
    test_fill_random(w1, 20, &r), test_fill_random(b1, 5, &r);
    test_fill_random(w2, 15, &r), test_fill_random(b2, 3, &r);
    pbw g = {0};
    pbw_str(&g, 2, "mlp");
    int64_t d1[] = {4, 5}, d2[] = {5}, d3[] = {5, 3}, d4[] = {3};
    onnx_w_init_raw(&g, "W1", 1, 2, d1, w1, sizeof w1);
    onnx_w_init_raw(&g, "b1", 1, 1, d2, b1, sizeof b1);
    onnx_w_init_raw(&g, "W2", 1, 2, d3, w2, sizeof w2);
    onnx_w_init_raw(&g, "b2", 1, 1, d4, b2, sizeof b2);
    const char *const pn[] = {"N", NULL};
    int64_t xd[] = {-1, 4}, yd[] = {-1, 3};
    onnx_w_value_info(&g, 11, "x", 1, 2, xd, pn);
    onnx_w_value_info(&g, 12, "probs", 1, 2, yd, pn);
    onnx_w_node(&g, "MatMul", "mm1", (const char *[]){"x", "W1"}, 2, "h0", NULL, 0);
    onnx_w_node(&g, op_a, "add1", (const char *[]){"h0", "b1"}, 2, "h1", NULL, 0);
    onnx_w_node(&g, "Relu", "relu", (const char *[]){"h1"}, 1, "h2", NULL, 0);
    if (with_unsupported) {
        onnx_w_node(&g, "Foo", "foo1", (const char *[]){"h2"}, 1, "h3", NULL, 0);
        onnx_w_node(&g, "Bar", "bar1", (const char *[]){"h3"}, 1, "h2b", NULL, 0);
    }
    onnx_w_node(&g, "MatMul", "mm2", (const char *[]){with_unsupported ? "h2b" : "h2", "W2"}, 2, "h4",
         NULL, 0);
    onnx_w_node(&g, "Add", "add2", (const char *[]){"h4", "b2"}, 2, "logits", NULL, 0);
    pbw axis = onnx_w_attr_int("axis", -1);
    onnx_w_node(&g, "Softmax", "sm", (const char *[]){"logits"}, 1, "probs", &axis, 1);
    return onnx_w_model(&g, 17);
}

static void mlp_reference(const float *x, int64_t n, float *y)
{
    for (int64_t b = 0; b < n; b++) {
        double h[5], l[3], mx = -1e30, z = 0;
        for (int j = 0; j < 5; j++) {
            h[j] = b1[j];
            for (int k = 0; k < 4; k++)
                h[j] += (double)x[b * 4 + k] * w1[k * 5 + j];
            h[j] = h[j] > 0 ? h[j] : 0;
        }
        for (int j = 0; j < 3; j++) {
            l[j] = b2[j];
            for (int k = 0; k < 5; k++)
                l[j] += h[k] * w2[k * 3 + j];
            mx = l[j] > mx ? l[j] : mx;
        }
        for (int j = 0; j < 3; j++)
            z += exp(l[j] - mx);
        for (int j = 0; j < 3; j++)
            y[b * 3 + j] = (float)(exp(l[j] - mx) / z);
    }
}

static void run_mlp(fleet_model *m, int64_t n)
{
    float x[8 * 4], got[8 * 3], want[8 * 3];
    test_rng r = test_rng_make(9 + (uint64_t)n);
    test_fill_random(x, n * 4, &r);
    int64_t xs[] = {n, 4}, ys[] = {n, 3};
    fleet_tensor *xt = test_tensor_new(dev, 2, xs), *yt = test_tensor_new(dev, 2, ys);
    ASSERT_OK(fleet_tensor_copy_from_host(xt, x, sizeof(float) * (size_t)(n * 4)));
    ASSERT_OK(fleet_model_run(m, (const fleet_tensor *const *)&xt, 1, &yt, 1));
    test_tensor_read(yt, got);
    mlp_reference(x, n, want);
    ASSERT_CLOSE(got, want, n * 3, 1e-5, 1e-6);
    TEST_RELEASE(xt, yt);
}

TEST(an_mlp_with_a_symbolic_batch_runs_as_its_reference)
{
    pbw file = mlp_model("Add", false);
    fleet_model *m;
    ASSERT_OK(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m));
    pbw_free(&file); /* the model keeps nothing of the bytes */
    const char *name;
    fleet_dtype dt;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    ASSERT_OK(fleet_model_input_info(m, 0, &name, &dt, &ndim, shape));
    ASSERT_TRUE(strcmp(name, "x") == 0);
    ASSERT_EQ(ndim, 2);
    ASSERT_EQ(shape[0], B);
    ASSERT_OK(fleet_model_output_info(m, 0, &name, &dt, &ndim, shape));
    ASSERT_TRUE(strcmp(name, "probs") == 0);
    for (int64_t n = 1; n <= 8; n += 3)
        run_mlp(m, n);
    /* Both MatMul + Add pairs became one linear each at load, and the first
     * linear's ReLU fused into its GEMM in each plan. */
    fleet_model_stats ms;
    ASSERT_OK(fleet_model_get_stats(m, &ms));
    ASSERT_EQ(ms.load_fused, 2);
    ASSERT_EQ(ms.load_folded, 0);
    ASSERT_EQ(ms.fusions, ms.plans);
    ASSERT_OK(fleet_model_destroy(m));
}

TEST(every_unsupported_node_is_listed_in_one_error)
{
    pbw file = mlp_model("Add", true);
    fleet_model *m = (fleet_model *)1;
    ASSERT_REFUSED(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m),
                   FLEET_ERR_UNSUPPORTED, "2 unsupported in the model: Foo (opset 17, node 'foo1')");
    ASSERT_STR_CONTAINS(fleet_last_error(), "Bar (opset 17, node 'bar1')");
    ASSERT_TRUE(m == NULL);
    pbw_free(&file);
}

TEST(every_truncation_of_a_valid_file_is_refused_cleanly)
{
    pbw file = mlp_model("Add", false);
    for (size_t n = 0; n < file.n; n++) {
        fleet_model *m = NULL;
        fleet_status st = fleet_model_load_onnx_memory(dev, file.p, n, NULL, &m);
        ASSERT_TRUE(st != FLEET_OK);
        ASSERT_TRUE(m == NULL);
        ASSERT_TRUE(fleet_last_error()[0] != '\0');
    }
    pbw_free(&file);
}

TEST(a_run_with_the_wrong_dtype_or_shape_is_refused)
{
    pbw file = mlp_model("Add", false);
    fleet_model *m;
    ASSERT_OK(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m));
    pbw_free(&file);
    int64_t xs[] = {2, 4}, bad[] = {2, 5}, ys[] = {2, 3};
    fleet_tensor *xi, *xb = test_tensor_new(dev, 2, bad), *yt = test_tensor_new(dev, 2, ys);
    ASSERT_OK(fleet_tensor_create(dev, FLEET_DTYPE_I64, 2, xs, &xi));
    ASSERT_REFUSED(fleet_model_run(m, (const fleet_tensor *const *)&xi, 1, &yt, 1),
                   FLEET_ERR_DTYPE_MISMATCH, "'x' is i64");
    ASSERT_REFUSED(fleet_model_run(m, (const fleet_tensor *const *)&xb, 1, &yt, 1),
                   FLEET_ERR_SHAPE_MISMATCH, "'x'");
    TEST_RELEASE(xi, xb, yt);
    ASSERT_OK(fleet_model_destroy(m));
}

/* ---- folding: x [N, S, 6] reshaped to [N, S*6] through its own Shape ---------------------- */

static pbw reshape_model(void)
{
    pbw g = {0};
    const char *const pn[] = {"batch", "seq", NULL};
    int64_t xd[] = {-1, -1, 6}, yd[] = {-1, 18};
    onnx_w_value_info(&g, 11, "x", 1, 3, xd, pn);
    onnx_w_value_info(&g, 12, "y", 1, 2, yd, pn);
    onnx_w_init_i64(&g, "zero", 1, (const int64_t[]){0});
    onnx_w_init_i64(&g, "minus1", 1, (const int64_t[]){-1});
    pbw axes = onnx_w_attr_int("axis", 0);
    onnx_w_node(&g, "Shape", "shape", (const char *[]){"x"}, 1, "s", NULL, 0);
    onnx_w_node(&g, "Gather", "g0", (const char *[]){"s", "zero"}, 2, "n", &axes, 1);
    onnx_w_node(&g, "Concat", "cat", (const char *[]){"n", "minus1"}, 2, "target",
         (pbw[]){onnx_w_attr_int("axis", 0)}, 1);
    onnx_w_node(&g, "Reshape", "rs", (const char *[]){"x", "target"}, 2, "y", NULL, 0);
    return onnx_w_model(&g, 14);
}

TEST(a_shape_subgraph_folds_away_leaving_the_batch)
{
    pbw file = reshape_model();
    fleet_model *m;
    ASSERT_REFUSED(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m),
                   FLEET_ERR_INVALID_ARGUMENT, "'seq', which is not bound");
    const char *names[] = {"seq"};
    const int64_t values[] = {3};
    fleet_onnx_options o = FLEET_ONNX_OPTIONS_INIT;
    o.dim_names = names, o.dim_values = values, o.n_dims = 1;
    ASSERT_OK(fleet_model_load_onnx_memory(dev, file.p, file.n, &o, &m));
    pbw_free(&file);
    const char *name;
    fleet_dtype dt;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    ASSERT_OK(fleet_model_output_info(m, 0, &name, &dt, &ndim, shape));
    ASSERT_EQ(ndim, 2);
    ASSERT_EQ(shape[0], B);
    ASSERT_EQ(shape[1], 18);
    int64_t xs[] = {2, 3, 6}, ys[] = {2, 18};
    fleet_tensor *x = test_tensor_new(dev, 3, xs), *y = test_tensor_new(dev, 2, ys);
    float h[36], got[36];
    for (int i = 0; i < 36; i++)
        h[i] = (float)i;
    ASSERT_OK(fleet_tensor_copy_from_host(x, h, sizeof h));
    ASSERT_OK(fleet_model_run(m, (const fleet_tensor *const *)&x, 1, &y, 1));
    test_tensor_read(y, got);
    for (int i = 0; i < 36; i++)
        ASSERT_TRUE(got[i] == h[i]);
    fleet_model_stats ms;
    ASSERT_OK(fleet_model_get_stats(m, &ms));
    ASSERT_EQ(ms.load_folded, 3); /* Shape, Gather, Concat */
    TEST_RELEASE(x, y);
    ASSERT_OK(fleet_model_destroy(m));
}

/* ---- int64 inputs: an embedding lookup, Gather of a table by token ids ---------------------- */

TEST(int64_token_ids_gather_rows_of_a_table)
{
    pbw g = {0};
    float table[6 * 4];
    for (int i = 0; i < 24; i++)
        table[i] = (float)i * 0.5f;
    int64_t td[] = {6, 4};
    onnx_w_init_raw(&g, "emb", 1, 2, td, table, sizeof table);
    const char *const pn[] = {"b", NULL};
    int64_t idd[] = {-1, 3}, yd[] = {-1, 3, 4};
    onnx_w_value_info(&g, 11, "ids", 7, 2, idd, pn);
    onnx_w_value_info(&g, 12, "y", 1, 3, yd, pn);
    onnx_w_node(&g, "Gather", "lookup", (const char *[]){"emb", "ids"}, 2, "y", NULL, 0);
    pbw file = onnx_w_model(&g, 13);
    fleet_model *m;
    ASSERT_OK(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m));
    pbw_free(&file);
    int64_t is[] = {2, 3}, ys[] = {2, 3, 4}, ids[] = {0, 5, -1, 2, 2, 3};
    fleet_tensor *it, *y = test_tensor_new(dev, 3, ys);
    ASSERT_OK(fleet_tensor_create(dev, FLEET_DTYPE_I64, 2, is, &it));
    ASSERT_OK(fleet_tensor_copy_from_host(it, ids, sizeof ids));
    ASSERT_OK(fleet_model_run(m, (const fleet_tensor *const *)&it, 1, &y, 1));
    float got[24];
    test_tensor_read(y, got);
    for (int t = 0; t < 6; t++) {
        int64_t row = ids[t] < 0 ? ids[t] + 6 : ids[t];
        for (int k = 0; k < 4; k++)
            ASSERT_TRUE(got[t * 4 + k] == table[row * 4 + k]);
    }
    TEST_RELEASE(it, y);
    ASSERT_OK(fleet_model_destroy(m));
}

/* ---- GELU spelled out, as torch exports it ------------------------------------------------- */

static void scalar_init(pbw *g, const char *name, float v)
{
    onnx_w_init_raw(g, name, 1, 0, NULL, &v, sizeof v);
}

TEST(a_spelled_out_gelu_becomes_one_gelu)
{
    /* t 0: torch's TorchScript order; 1: the same with the Erf read outside
     * the chain (not fused); 2: the dynamo exporter's, Mul by 0.5 first */
    for (int t = 0; t < 3; t++) {
        int reader = t == 1, dynamo = t == 2;
        pbw g = {0};
        const char *const pn[] = {"b", NULL};
        int64_t xd[] = {-1, 5};
        onnx_w_value_info(&g, 11, "x", 1, 2, xd, pn);
        onnx_w_value_info(&g, 12, "y", 1, 2, xd, pn);
        if (reader)
            onnx_w_value_info(&g, 12, "e", 1, 2, xd, pn); /* the Erf is read outside the chain */
        scalar_init(&g, "sqrt2", 1.4142135623730951f);
        scalar_init(&g, "one", 1.0f);
        scalar_init(&g, "half", 0.5f);
        onnx_w_node(&g, "Div", "div", (const char *[]){"x", "sqrt2"}, 2, "d", NULL, 0);
        onnx_w_node(&g, "Erf", "erf", (const char *[]){"d"}, 1, "e", NULL, 0);
        onnx_w_node(&g, "Add", "add", (const char *[]){"e", "one"}, 2, "a", NULL, 0);
        if (dynamo) {
            onnx_w_node(&g, "Mul", "mul", (const char *[]){"a", "half"}, 2, "m", NULL, 0);
            onnx_w_node(&g, "Mul", "mul2", (const char *[]){"x", "m"}, 2, "y", NULL, 0);
        } else {
            onnx_w_node(&g, "Mul", "mul", (const char *[]){"x", "a"}, 2, "m", NULL, 0);
            onnx_w_node(&g, "Mul", "mul2", (const char *[]){"m", "half"}, 2, "y", NULL, 0);
        }
        pbw file = onnx_w_model(&g, 17);
        fleet_model *m;
        ASSERT_OK(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m));
        pbw_free(&file);
        fleet_model_stats ms;
        ASSERT_OK(fleet_model_get_stats(m, &ms));
        ASSERT_EQ(ms.load_fused, reader ? 0 : 4);
        int64_t xs[] = {2, 5};
        float x[10], got[10], e[10];
        for (int i = 0; i < 10; i++)
            x[i] = (float)i * 0.6f - 3.0f;
        fleet_tensor *xt = test_tensor_new(dev, 2, xs), *yt = test_tensor_new(dev, 2, xs);
        fleet_tensor *et = test_tensor_new(dev, 2, xs), *outs[] = {yt, et};
        ASSERT_OK(fleet_tensor_copy_from_host(xt, x, sizeof x));
        ASSERT_OK(fleet_model_run(m, (const fleet_tensor *const *)&xt, 1, outs, 1 + reader));
        test_tensor_read(yt, got);
        for (int i = 0; i < 10; i++) {
            double want = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
            ASSERT_TRUE(fabs(got[i] - want) <= 1e-6 + 1e-5 * fabs(want));
        }
        if (reader) {
            test_tensor_read(et, e);
            for (int i = 0; i < 10; i++)
                ASSERT_TRUE(fabs(e[i] - erf(x[i] / sqrt(2.0))) <= 1e-6);
        }
        TEST_RELEASE(xt, yt, et);
        ASSERT_OK(fleet_model_destroy(m));
    }
}

/* Layer norm spelled out as torch writes it before opset 17, its exponent
 * and eps from Constant nodes that come after the first ReduceMean. */
static void constant_node(pbw *g, const char *out, float v)
{
    pbw a = {0}, t = {0};
    onnx_w_tensor_head(&t, "", 1, 0, NULL);
    pbw_bytes(&t, 9, &v, sizeof v);
    pbw_str(&a, 1, "value");
    pbw_varint(&a, 20, 4);
    pbw_msg(&a, 5, &t);
    pbw_free(&t);
    onnx_w_node(g, "Constant", out, NULL, 0, out, &a, 1);
}

TEST(a_spelled_out_layer_norm_becomes_one_layer_norm)
{
    pbw g = {0};
    const char *const pn[] = {"b", NULL, NULL};
    int64_t xd[] = {-1, 3, 6}, dd[] = {6};
    float gamma[6], beta[6];
    for (int i = 0; i < 6; i++)
        gamma[i] = 1.0f + 0.1f * (float)i, beta[i] = 0.05f * (float)i;
    onnx_w_init_raw(&g, "gamma", 1, 1, dd, gamma, sizeof gamma);
    onnx_w_init_raw(&g, "beta", 1, 1, dd, beta, sizeof beta);
    onnx_w_value_info(&g, 11, "x", 1, 3, xd, pn);
    onnx_w_value_info(&g, 12, "y", 1, 3, xd, pn);
    pbw ax1 = {0}, ax2 = {0};
    pbw_str(&ax1, 1, "axes");
    pbw_varint(&ax1, 20, 7);
    pbw_packed_varints(&ax1, 8, (const int64_t[]){-1}, 1);
    pbw_str(&ax2, 1, "axes");
    pbw_varint(&ax2, 20, 7);
    pbw_packed_varints(&ax2, 8, (const int64_t[]){-1}, 1);
    onnx_w_node(&g, "ReduceMean", "m1", (const char *[]){"x"}, 1, "mean", &ax1, 1);
    onnx_w_node(&g, "Sub", "sub", (const char *[]){"x", "mean"}, 2, "d", NULL, 0);
    constant_node(&g, "two", 2.0f);
    onnx_w_node(&g, "Pow", "pow", (const char *[]){"d", "two"}, 2, "p", NULL, 0);
    onnx_w_node(&g, "ReduceMean", "m2", (const char *[]){"p"}, 1, "var", &ax2, 1);
    constant_node(&g, "eps", 1e-5f);
    onnx_w_node(&g, "Add", "add", (const char *[]){"var", "eps"}, 2, "ve", NULL, 0);
    onnx_w_node(&g, "Sqrt", "sqrt", (const char *[]){"ve"}, 1, "s", NULL, 0);
    onnx_w_node(&g, "Div", "div", (const char *[]){"d", "s"}, 2, "nrm", NULL, 0);
    onnx_w_node(&g, "Mul", "mul", (const char *[]){"nrm", "gamma"}, 2, "sc", NULL, 0);
    onnx_w_node(&g, "Add", "add2", (const char *[]){"sc", "beta"}, 2, "y", NULL, 0);
    pbw file = onnx_w_model(&g, 14);
    fleet_model *m;
    ASSERT_OK(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m));
    pbw_free(&file);
    fleet_model_stats ms;
    ASSERT_OK(fleet_model_get_stats(m, &ms));
    ASSERT_EQ(ms.load_fused, 8);
    int64_t xs[] = {2, 3, 6};
    float x[36], got[36];
    test_rng r = test_rng_make(77);
    test_fill_random(x, 36, &r);
    fleet_tensor *xt = test_tensor_new(dev, 3, xs), *yt = test_tensor_new(dev, 3, xs);
    ASSERT_OK(fleet_tensor_copy_from_host(xt, x, sizeof x));
    ASSERT_OK(fleet_model_run(m, (const fleet_tensor *const *)&xt, 1, &yt, 1));
    test_tensor_read(yt, got);
    for (int row = 0; row < 6; row++) {
        double mean = 0, var = 0;
        for (int i = 0; i < 6; i++)
            mean += x[row * 6 + i] / 6.0;
        for (int i = 0; i < 6; i++)
            var += (x[row * 6 + i] - mean) * (x[row * 6 + i] - mean) / 6.0;
        for (int i = 0; i < 6; i++) {
            double want = (x[row * 6 + i] - mean) / sqrt(var + 1e-5) * gamma[i] + beta[i];
            ASSERT_TRUE(fabs(got[row * 6 + i] - want) <= 1e-5);
        }
    }
    TEST_RELEASE(xt, yt);
    ASSERT_OK(fleet_model_destroy(m));
}

/* ---- external data ---------------------------------------------------------------------- */

static pbw external_model(const char *location)
{
    pbw g = {0}, t = {0}, e1 = {0}, e2 = {0};
    int64_t d[] = {4};
    onnx_w_tensor_head(&t, "bias", 1, 1, d);
    pbw_str(&e1, 1, "location");
    pbw_str(&e1, 2, location);
    pbw_msg(&t, 13, &e1);
    pbw_str(&e2, 1, "offset");
    pbw_str(&e2, 2, "8");
    pbw_msg(&t, 13, &e2);
    pbw_varint(&t, 14, 1);
    pbw_msg(&g, 5, &t);
    pbw_free(&t), pbw_free(&e1), pbw_free(&e2);
    int64_t xd[] = {2, 4};
    onnx_w_value_info(&g, 11, "x", 1, 2, xd, NULL);
    onnx_w_value_info(&g, 12, "y", 1, 2, xd, NULL);
    onnx_w_node(&g, "Add", "add", (const char *[]){"x", "bias"}, 2, "y", NULL, 0);
    return onnx_w_model(&g, 13);
}

/* Conv -> BatchNormalization (as the dynamo exporter leaves ResNets): the
 * BN folds into the conv's weight and bias (with and without a bias), and
 * stays a node of its own when the conv's output is read elsewhere too —
 * the same values either way, against a plain-C conv and BN. */
TEST(a_batch_norm_after_a_conv_folds_into_its_weights)
{
    enum { C = 2, O = 3, H = 4, K = 3, P = H - K + 1 };
    float w[O * C * K * K], bias[O], bn[4][O], x[2 * C * H * H];
    test_rng r = test_rng_make(77);
    test_fill_random(w, O * C * K * K, &r), test_fill_random(bias, O, &r);
    test_fill_random(x, 2 * C * H * H, &r);
    for (int k = 0; k < 4; k++)
        test_fill_random(bn[k], O, &r);
    for (int o = 0; o < O; o++)
        bn[3][o] = 0.5f + fabsf(bn[3][o]); /* a variance */
    for (int with_bias = 0; with_bias < 2; with_bias++)
        for (int shared = 0; shared < 2; shared++) {
            pbw g = {0};
            const char *const pn[] = {"n", NULL, NULL, NULL};
            int64_t xd[] = {-1, C, H, H}, yd[] = {-1, O, P, P}, wd[] = {O, C, K, K}, cd[] = {O};
            onnx_w_value_info(&g, 11, "x", 1, 4, xd, pn);
            onnx_w_value_info(&g, 12, "y", 1, 4, yd, pn);
            if (shared)
                onnx_w_value_info(&g, 12, "c", 1, 4, yd, pn); /* the conv's output read outside */
            onnx_w_init_raw(&g, "W", 1, 4, wd, w, sizeof w);
            onnx_w_init_raw(&g, "B", 1, 1, cd, bias, sizeof bias);
            const char *bn_names[] = {"scale", "shift", "mean", "var"};
            for (int k = 0; k < 4; k++)
                onnx_w_init_raw(&g, bn_names[k], 1, 1, cd, bn[k], sizeof bn[k]);
            onnx_w_node(&g, "Conv", "conv", (const char *[]){"x", "W", "B"}, 2 + with_bias, "c", NULL,
                 0);
            pbw eps = onnx_w_attr_float("epsilon", 1e-3f);
            onnx_w_node(&g, "BatchNormalization", "bn",
                 (const char *[]){"c", "scale", "shift", "mean", "var"}, 5, "y", &eps, 1);
            pbw file = onnx_w_model(&g, 15);
            fleet_model *m;
            ASSERT_OK(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m));
            pbw_free(&file);
            fleet_model_stats ms;
            ASSERT_OK(fleet_model_get_stats(m, &ms));
            ASSERT_EQ(ms.load_fused, shared ? 0 : 1);
            int64_t xs[] = {2, C, H, H}, ys[] = {2, O, P, P};
            fleet_tensor *xt = test_tensor_new(dev, 4, xs), *yt = test_tensor_new(dev, 4, ys);
            fleet_tensor *ct = test_tensor_new(dev, 4, ys), *outs[] = {yt, ct};
            ASSERT_OK(fleet_tensor_copy_from_host(xt, x, sizeof x));
            ASSERT_OK(fleet_model_run(m, (const fleet_tensor *const *)&xt, 1, outs, 1 + shared));
            float got[2 * O * P * P], want[2 * O * P * P], conv[2 * O * P * P];
            for (int b = 0; b < 2; b++)
                for (int o = 0; o < O; o++)
                    for (int i = 0; i < P; i++)
                        for (int j = 0; j < P; j++) {
                            double acc = with_bias ? bias[o] : 0.0;
                            for (int c = 0; c < C; c++)
                                for (int u = 0; u < K; u++)
                                    for (int v = 0; v < K; v++)
                                        acc += (double)x[((b * C + c) * H + i + u) * H + j + v] *
                                               w[((o * C + c) * K + u) * K + v];
                            int at = ((b * O + o) * P + i) * P + j;
                            conv[at] = (float)acc;
                            want[at] = (float)((acc - bn[2][o]) / sqrt(bn[3][o] + 1e-3) *
                                                   bn[0][o] + bn[1][o]);
                        }
            test_tensor_read(yt, got);
            ASSERT_CLOSE(got, want, 2 * O * P * P, 1e-5, 1e-5);
            if (shared) {
                test_tensor_read(ct, got);
                ASSERT_CLOSE(got, conv, 2 * O * P * P, 1e-5, 1e-5);
            }
            TEST_RELEASE(xt, yt, ct);
            ASSERT_OK(fleet_model_destroy(m));
        }
}

/* Attention as torch exports it — MatMul(q, Transpose(k)), Div by sqrt(d)
 * or Mul, Add of a mask computed after the first MatMul, Softmax, Cast to
 * f32, MatMul with v — becomes one fleet attention; with the scores also a
 * graph output it stays the plain nodes. The same values either way,
 * against softmax(q k^T * scale + mask) v in plain C. */
TEST(an_exported_attention_becomes_one_attention)
{
    enum { H = 2, S = 4, D = 3, DV = 5, N = 2 };
    float q[N * H * S * D], k[N * H * S * D], v[N * H * S * DV], mask[N * S];
    test_rng r = test_rng_make(91);
    test_fill_random(q, N * H * S * D, &r), test_fill_random(k, N * H * S * D, &r);
    test_fill_random(v, N * H * S * DV, &r);
    for (int i = 0; i < N * S; i++)
        mask[i] = i % S == S - 1 && i >= S ? -10000.0f : 0.0f; /* row 1 pads its last */
    /* v_one: v [1, H, S, DV], broadcast by the last MatMul: not what fleet's
     * attention takes, so the chain is computed as its nodes would */
    const struct { bool div, masked, cast, scores_out, v_one; int fused; } cases[] = {
        {true, true, true, false, false, 5}, {false, false, false, false, false, 3},
        {true, true, true, true, false, 0}, {true, true, true, false, true, 5},
    };
    for (int t = 0; t < 4; t++) {
        pbw g = {0};
        const char *const pn[] = {"n", NULL, NULL, NULL};
        int64_t qd[] = {-1, H, S, D}, vd[] = {-1, H, S, DV}, md[] = {-1, 1, 1, S},
                sd[] = {-1, H, S, S}, v1d[] = {1, H, S, DV};
        onnx_w_value_info(&g, 11, "q", 1, 4, qd, pn);
        onnx_w_value_info(&g, 11, "k", 1, 4, qd, pn);
        if (cases[t].v_one)
            onnx_w_init_raw(&g, "v", 1, 4, v1d, v, sizeof(float) * H * S * DV);
        else
            onnx_w_value_info(&g, 11, "v", 1, 4, vd, pn);
        if (cases[t].masked)
            onnx_w_value_info(&g, 11, "mask", 1, 4, md, pn);
        onnx_w_value_info(&g, 12, "y", 1, 4, vd, pn);
        if (cases[t].scores_out)
            onnx_w_value_info(&g, 12, "s", 1, 4, sd, pn);
        scalar_init(&g, "c", cases[t].div ? sqrtf((float)D) : 0.5f);
        pbw perm = onnx_w_attr_ints("perm", 4, (const int64_t[]){0, 1, 3, 2});
        onnx_w_node(&g, "Transpose", "kt", (const char *[]){"k"}, 1, "kT", &perm, 1);
        onnx_w_node(&g, "MatMul", "qk", (const char *[]){"q", "kT"}, 2, "s", NULL, 0);
        onnx_w_node(&g, cases[t].div ? "Div" : "Mul", "scale", (const char *[]){"s", "c"}, 2, "s2",
             NULL, 0);
        const char *soft_in = "s2";
        if (cases[t].masked) {
            onnx_w_node(&g, "Identity", "mask_view", (const char *[]){"mask"}, 1, "m", NULL, 0);
            onnx_w_node(&g, "Add", "add_mask", (const char *[]){"s2", "m"}, 2, "s3", NULL, 0);
            soft_in = "s3";
        }
        pbw axis = onnx_w_attr_int("axis", -1);
        onnx_w_node(&g, "Softmax", "softmax", (const char *[]){soft_in}, 1, "p", &axis, 1);
        const char *pv_in = "p";
        if (cases[t].cast) {
            pbw to = onnx_w_attr_int("to", 1);
            onnx_w_node(&g, "Cast", "cast", (const char *[]){"p"}, 1, "p32", &to, 1);
            pv_in = "p32";
        }
        onnx_w_node(&g, "MatMul", "pv", (const char *[]){pv_in, "v"}, 2, "y", NULL, 0);
        pbw file = onnx_w_model(&g, 17);
        fleet_model *m;
        ASSERT_OK(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m));
        pbw_free(&file);
        fleet_model_stats ms;
        ASSERT_OK(fleet_model_get_stats(m, &ms));
        ASSERT_EQ(ms.load_fused, cases[t].fused);
        int64_t qs[] = {N, H, S, D}, vs[] = {N, H, S, DV}, ms_[] = {N, 1, 1, S},
                ss[] = {N, H, S, S};
        fleet_tensor *in[4] = {test_tensor_new(dev, 4, qs), test_tensor_new(dev, 4, qs),
                               test_tensor_new(dev, 4, vs), test_tensor_new(dev, 4, ms_)};
        if (cases[t].v_one) { /* v is a weight: the mask is the third input */
            fleet_tensor *tmp = in[2];
            in[2] = in[3], in[3] = tmp;
        }
        fleet_tensor *outs[2] = {test_tensor_new(dev, 4, vs), test_tensor_new(dev, 4, ss)};
        ASSERT_OK(fleet_tensor_copy_from_host(in[0], q, sizeof q));
        ASSERT_OK(fleet_tensor_copy_from_host(in[1], k, sizeof k));
        ASSERT_OK(fleet_tensor_copy_from_host(in[cases[t].v_one ? 3 : 2], v, sizeof v));
        ASSERT_OK(fleet_tensor_copy_from_host(in[cases[t].v_one ? 2 : 3], mask, sizeof mask));
        ASSERT_OK(fleet_model_run(m, (const fleet_tensor *const *)in,
                                  3 + cases[t].masked - cases[t].v_one, outs,
                                  1 + cases[t].scores_out));
        float got[N * H * S * DV], want[N * H * S * DV], scores[N * H * S * S];
        double scale = cases[t].div ? 1.0 / sqrt((double)D) : 0.5;
        for (int b = 0; b < N * H; b++)
            for (int i = 0; i < S; i++) {
                double p[S], mx = -1e30, z = 0;
                for (int j = 0; j < S; j++) {
                    double a = 0;
                    for (int d = 0; d < D; d++)
                        a += (double)q[(b * S + i) * D + d] * k[(b * S + j) * D + d];
                    scores[(b * S + i) * S + j] = (float)a;
                    p[j] = a * scale + (cases[t].masked ? mask[(b / H) * S + j] : 0.0);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = 0; j < S; j++)
                    z += (p[j] = exp(p[j] - mx));
                for (int e = 0; e < DV; e++) {
                    double a = 0;
                    for (int j = 0; j < S; j++)
                        a += p[j] / z * v[((cases[t].v_one ? b % H : b) * S + j) * DV + e];
                    want[(b * S + i) * DV + e] = (float)a;
                }
            }
        test_tensor_read(outs[0], got);
        ASSERT_CLOSE(got, want, N * H * S * DV, 1e-5, 1e-5);
        if (cases[t].scores_out) {
            float gs[N * H * S * S];
            test_tensor_read(outs[1], gs);
            ASSERT_CLOSE(gs, scores, N * H * S * S, 1e-5, 1e-5);
        }
        TEST_RELEASE(in[0], in[1], in[2], in[3], outs[0], outs[1]);
        ASSERT_OK(fleet_model_destroy(m));
    }
}

TEST(external_data_is_read_from_the_models_folder_only)
{
    char dir[] = "/tmp/fleet-onnx-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char path[256], data_path[256];
    snprintf(data_path, sizeof data_path, "%s/weights.bin", dir);
    float blob[6] = {99, 99, 1, 2, 3, 4}; /* offset 8: the bias starts at blob[2] */
    FILE *f = fopen(data_path, "wb");
    ASSERT_TRUE(f != NULL && fwrite(blob, sizeof blob, 1, f) == 1);
    fclose(f);
    const char *cases[] = {"weights.bin", "../weights.bin", "/etc/passwd", "a/../../x"};
    for (int c = 0; c < 4; c++) {
        pbw file = external_model(cases[c]);
        snprintf(path, sizeof path, "%s/model.onnx", dir);
        f = fopen(path, "wb");
        ASSERT_TRUE(f != NULL && fwrite(file.p, file.n, 1, f) == 1);
        fclose(f);
        fleet_model *m;
        if (c > 0) {
            ASSERT_REFUSED(fleet_model_load_onnx(dev, path, NULL, &m), FLEET_ERR_INVALID_MODEL,
                           "not a path inside the model's folder");
        } else {
            ASSERT_OK(fleet_model_load_onnx(dev, path, NULL, &m));
            int64_t xs[] = {2, 4};
            float x[8] = {0}, got[8];
            fleet_tensor *xt = test_tensor_new(dev, 2, xs), *yt = test_tensor_new(dev, 2, xs);
            ASSERT_OK(fleet_tensor_copy_from_host(xt, x, sizeof x));
            ASSERT_OK(fleet_model_run(m, (const fleet_tensor *const *)&xt, 1, &yt, 1));
            test_tensor_read(yt, got);
            for (int i = 0; i < 8; i++)
                ASSERT_TRUE(got[i] == blob[2 + i % 4]);
            TEST_RELEASE(xt, yt);
            ASSERT_OK(fleet_model_destroy(m));
            /* from memory there is no folder to read it from */
            ASSERT_REFUSED(fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m),
                           FLEET_ERR_INVALID_ARGUMENT, "external_data_dir");
        }
        pbw_free(&file);
    }
    ASSERT_REFUSED(fleet_model_load_onnx(dev, "/nonexistent/model.onnx", NULL,
                                         &(fleet_model *){NULL}),
                   FLEET_ERR_IO, "cannot open");
    unlink(path);
    unlink(data_path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    dev = test_default_device();
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
