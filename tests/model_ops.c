/* Every op of the model builder, run as a one-op (or few-op) model over a
 * symbolic batch, gives what the eager op gives on the same tensors; views
 * (slice, expand, permute, reshape) cost nothing where their readers take
 * the layout and become one copy where they do not; constants and
 * value_info; the builder refuses bad attributes. */
#include <math.h>
#include <string.h>

#include "model/plan.h"
#include "test_util.h"

#define B FLEET_DIM_BATCH
#define MAXIO 16

static fleet_device *dev;

/* One case: a model under construction, its inputs and the tensors the run
 * and the eager ops take for them (the batch substituted). */
typedef struct mcase {
    fleet_model *m;
    int64_t batch;
    int n;
    fleet_tensor *t[MAXIO];
    int n_own;
    fleet_tensor *own[MAXIO * 2];
    test_rng rng;
    int64_t index_hi; /* integer inputs: values in [-index_hi, index_hi) */
} mcase;

static void mc_begin(mcase *c, int64_t batch, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->batch = batch;
    c->rng = test_rng_make(seed);
    c->index_hi = 3;
    ASSERT_OK(fleet_model_create(dev, &c->m));
}

static fleet_tensor *mc_keep(mcase *c, fleet_tensor *t)
{
    ASSERT_TRUE(c->n_own < MAXIO * 2);
    c->own[c->n_own++] = t;
    return t;
}

static fleet_tensor *mc_tensor(mcase *c, fleet_dtype dt, int ndim, const int64_t *shape)
{
    fleet_tensor *t;
    ASSERT_OK(fleet_tensor_create(dev, dt, ndim, shape, &t));
    return mc_keep(c, t);
}

/* Random host data of n elements of dt: f32 in [-1, 1), integers in
 * [-index_hi, index_hi), bools 0 or 1. */
static void *mc_random(mcase *c, fleet_dtype dt, int64_t n)
{
    size_t es = fleet_dtype_size(dt);
    unsigned char *p = malloc(es * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        float f = test_rng_float(&c->rng);
        int64_t k = (int64_t)floorf((f + 1.0f) * (float)c->index_hi) - c->index_hi;
        if (dt == FLEET_DTYPE_F32)
            ((float *)p)[i] = f;
        else if (dt == FLEET_DTYPE_I64)
            ((int64_t *)p)[i] = k;
        else if (dt == FLEET_DTYPE_I32)
            ((int32_t *)p)[i] = (int32_t)k;
        else if (dt == FLEET_DTYPE_BOOL)
            p[i] = f > 0.0f;
        else
            ASSERT_TRUE(!"mc_random: dtype");
    }
    return p;
}

static int64_t numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    return n;
}

/* A model input of shape (FLEET_DIM_BATCH allowed) and its random tensor. */
static fleet_value mc_input(mcase *c, fleet_dtype dt, int ndim, const int64_t *shape)
{
    char name[16];
    snprintf(name, sizeof name, "in%d", c->n);
    fleet_value v;
    ASSERT_OK(fleet_model_input(c->m, name, dt, ndim, shape, &v));
    int64_t concrete[FLEET_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        concrete[d] = shape[d] == B ? c->batch : shape[d];
    fleet_tensor *t = mc_tensor(c, dt, ndim, concrete);
    void *host = mc_random(c, dt, numel(ndim, concrete));
    ASSERT_OK(fleet_tensor_copy_from_host(t, host, fleet_tensor_nbytes(t)));
    free(host);
    ASSERT_TRUE(c->n < MAXIO);
    c->t[c->n++] = t;
    return v;
}

/* A model constant of random data, and the same data as a tensor in *t. */
static fleet_value mc_const(mcase *c, fleet_dtype dt, int ndim, const int64_t *shape,
                            fleet_tensor **t)
{
    void *host = mc_random(c, dt, numel(ndim, shape));
    fleet_value v;
    ASSERT_OK(fleet_model_constant(c->m, dt, ndim, shape, host, &v));
    *t = mc_tensor(c, dt, ndim, shape);
    ASSERT_OK(fleet_tensor_copy_from_host(*t, host, fleet_tensor_nbytes(*t)));
    free(host);
    return v;
}

/* y the model's one output: finalize, run, the output tensor. */
static fleet_tensor *mc_run(mcase *c, fleet_value y)
{
    ASSERT_OK(fleet_model_output(c->m, "y", y));
    ASSERT_OK(fleet_model_finalize(c->m));
    fleet_dtype dt;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    ASSERT_OK(fleet_model_value_info(c->m, y, &dt, &ndim, shape));
    for (int d = 0; d < ndim; d++) /* -k: k times the batch */
        shape[d] = shape[d] < 0 ? -shape[d] * c->batch : shape[d];
    fleet_tensor *out = mc_tensor(c, dt, ndim, shape);
    ASSERT_OK(fleet_model_run(c->m, (const fleet_tensor *const *)c->t, c->n, &out, 1));
    return out;
}

/* The steps of the case's plan (after mc_run), and how many are copies. */
static int mc_steps(const mcase *c, int *copies)
{
    const fleet__plan *p;
    ASSERT_OK(fleet__plan_get(c->m, c->batch, &p));
    *copies = 0;
    for (int i = 0; i < p->n_steps; i++)
        *copies += p->steps[i].kind == FLEET__STEP_COPY;
    return p->n_steps;
}

static void mc_end(mcase *c)
{
    for (int i = 0; i < c->n_own; i++)
        ASSERT_OK(fleet_tensor_release(c->own[i]));
    ASSERT_OK(fleet_model_destroy(c->m));
}

/* got and want: one dtype and shape; f32 within rtol (NaN matching NaN),
 * other dtypes equal. */
static void expect_same(const fleet_tensor *got, const fleet_tensor *want, double rtol)
{
    ASSERT_EQ(fleet_tensor_dtype(got), fleet_tensor_dtype(want));
    ASSERT_EQ(fleet_tensor_ndim(got), fleet_tensor_ndim(want));
    for (int d = 0; d < fleet_tensor_ndim(got); d++)
        ASSERT_EQ(fleet_tensor_dim(got, d), fleet_tensor_dim(want, d));
    size_t bytes = fleet_tensor_nbytes(got);
    unsigned char *g = malloc(bytes + 1), *w = malloc(bytes + 1);
    ASSERT_OK(fleet_tensor_copy_to_host(got, g, bytes));
    ASSERT_OK(fleet_tensor_copy_to_host(want, w, bytes));
    if (fleet_tensor_dtype(got) == FLEET_DTYPE_F32) {
        const float *gf = (const float *)(void *)g, *wf = (const float *)(void *)w;
        for (size_t i = 0; i < bytes / sizeof(float); i++) {
            if (isnan(wf[i])) {
                ASSERT_TRUE(isnan(gf[i]));
                continue;
            }
            double tol = rtol * (1.0 + fabs((double)wf[i]));
            if (!(fabs((double)gf[i] - (double)wf[i]) <= tol || gf[i] == wf[i])) {
                printf("  element %zu: got %.9g, want %.9g\n", i, (double)gf[i], (double)wf[i]);
                ASSERT_TRUE(!"values differ");
            }
        }
    } else {
        ASSERT_TRUE(memcmp(g, w, bytes) == 0);
    }
    free(g);
    free(w);
}

/* A tensor of want's dtype and shape, for an eager op's output. */
static fleet_tensor *mc_like(mcase *c, fleet_dtype dt, const fleet_tensor *shape_of)
{
    int64_t shape[FLEET_MAX_DIMS];
    int ndim = fleet_tensor_ndim(shape_of);
    for (int d = 0; d < ndim; d++)
        shape[d] = fleet_tensor_dim(shape_of, d);
    return mc_tensor(c, dt, ndim, shape);
}

/* ---- elementwise -------------------------------------------------------------------- */

typedef fleet_status (*model_unary)(fleet_model *, fleet_value, fleet_value *);
typedef fleet_status (*eager_unary)(const fleet_tensor *, fleet_tensor *);
typedef fleet_status (*model_binary)(fleet_model *, fleet_value, fleet_value, fleet_value *);
typedef fleet_status (*eager_binary)(const fleet_tensor *, const fleet_tensor *, fleet_tensor *);

TEST(every_unary_op_runs_as_its_eager_op)
{
    static const struct {
        const char *name;
        model_unary model;
        eager_unary eager;
    } ops[] = {
        {"relu", fleet_model_relu, fleet_relu},
        {"gelu", fleet_model_gelu, fleet_gelu},
        {"gelu_tanh", fleet_model_gelu_tanh, fleet_gelu_tanh},
        {"silu", fleet_model_silu, fleet_silu},
        {"tanh", fleet_model_tanh, fleet_tanh},
        {"sigmoid", fleet_model_sigmoid, fleet_sigmoid},
        {"erf", fleet_model_erf, fleet_erf},
        {"exp", fleet_model_exp, fleet_exp},
        {"log", fleet_model_log, fleet_log},
        {"sqrt", fleet_model_sqrt, fleet_sqrt},
        {"neg", fleet_model_neg, fleet_neg},
        {"abs", fleet_model_abs, fleet_abs},
        {"reciprocal", fleet_model_reciprocal, fleet_reciprocal},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        printf("  %s\n", ops[i].name);
        mcase c;
        mc_begin(&c, 3, 100 + i);
        int64_t xs[] = {B, 5, 7};
        fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 3, xs), y;
        ASSERT_OK(ops[i].model(c.m, x, &y));
        fleet_tensor *got = mc_run(&c, y), *want = mc_like(&c, FLEET_DTYPE_F32, got);
        ASSERT_OK(ops[i].eager(c.t[0], want));
        expect_same(got, want, 0.0);
        mc_end(&c);
    }
}

TEST(every_binary_op_broadcasts_as_its_eager_op)
{
    static const struct {
        const char *name;
        model_binary model;
        eager_binary eager;
        fleet_dtype out;
    } ops[] = {
        {"add", fleet_model_add, fleet_add, FLEET_DTYPE_F32},
        {"sub", fleet_model_sub, fleet_sub, FLEET_DTYPE_F32},
        {"mul", fleet_model_mul, fleet_mul, FLEET_DTYPE_F32},
        {"div", fleet_model_div, fleet_div, FLEET_DTYPE_F32},
        {"pow", fleet_model_pow, fleet_pow, FLEET_DTYPE_F32},
        {"maximum", fleet_model_maximum, fleet_maximum, FLEET_DTYPE_F32},
        {"minimum", fleet_model_minimum, fleet_minimum, FLEET_DTYPE_F32},
        {"equal", fleet_model_equal, fleet_equal, FLEET_DTYPE_BOOL},
        {"less", fleet_model_less, fleet_less, FLEET_DTYPE_BOOL},
        {"less_equal", fleet_model_less_equal, fleet_less_equal, FLEET_DTYPE_BOOL},
        {"greater", fleet_model_greater, fleet_greater, FLEET_DTYPE_BOOL},
        {"greater_equal", fleet_model_greater_equal, fleet_greater_equal, FLEET_DTYPE_BOOL},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        printf("  %s\n", ops[i].name);
        mcase c;
        mc_begin(&c, 2, 200 + i);
        int64_t as[] = {B, 3, 4}, bs[] = {3, 1};
        fleet_value a = mc_input(&c, FLEET_DTYPE_F32, 3, as), b = mc_input(&c, FLEET_DTYPE_F32, 2, bs);
        fleet_value y;
        ASSERT_OK(ops[i].model(c.m, a, b, &y));
        fleet_tensor *got = mc_run(&c, y), *want = mc_like(&c, ops[i].out, got);
        ASSERT_OK(ops[i].eager(c.t[0], c.t[1], want));
        expect_same(got, want, 0.0);
        mc_end(&c);
    }
}

TEST(attributes_where_and_casts_run_as_the_eager_ops)
{
    mcase c;
    mc_begin(&c, 4, 300);
    int64_t xs[] = {B, 6}, cs[] = {B, 1};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 2, xs), cond = mc_input(&c, FLEET_DTYPE_BOOL, 2, cs);
    fleet_value lr, cl, w, ci, cb, sum;
    ASSERT_OK(fleet_model_leaky_relu(c.m, x, 0.1f, &lr));
    ASSERT_OK(fleet_model_clip(c.m, lr, -0.05f, 0.5f, &cl));
    ASSERT_OK(fleet_model_where(c.m, cond, cl, x, &w));
    ASSERT_OK(fleet_model_cast(c.m, w, FLEET_DTYPE_I64, &ci)); /* truncates toward zero */
    ASSERT_OK(fleet_model_cast(c.m, ci, FLEET_DTYPE_F32, &cb));
    ASSERT_OK(fleet_model_add(c.m, cb, w, &sum));
    fleet_tensor *got = mc_run(&c, sum);
    fleet_tensor *t1 = mc_like(&c, FLEET_DTYPE_F32, got), *t2 = mc_like(&c, FLEET_DTYPE_F32, got);
    fleet_tensor *t3 = mc_like(&c, FLEET_DTYPE_F32, got), *ti = mc_like(&c, FLEET_DTYPE_I64, got);
    fleet_tensor *tf = mc_like(&c, FLEET_DTYPE_F32, got), *want = mc_like(&c, FLEET_DTYPE_F32, got);
    ASSERT_OK(fleet_leaky_relu(c.t[0], 0.1f, t1));
    ASSERT_OK(fleet_clip(t1, -0.05f, 0.5f, t2));
    ASSERT_OK(fleet_where(c.t[1], t2, c.t[0], t3));
    ASSERT_OK(fleet_cast(t3, ti));
    ASSERT_OK(fleet_cast(ti, tf));
    ASSERT_OK(fleet_add(tf, t3, want));
    expect_same(got, want, 0.0);
    mc_end(&c);

    mc_begin(&c, 2, 301);
    fleet_value y;
    x = mc_input(&c, FLEET_DTYPE_F32, 2, xs);
    ASSERT_REFUSED(fleet_model_clip(c.m, x, 1.0f, -1.0f, &y), FLEET_ERR_INVALID_ARGUMENT, "min");
    ASSERT_REFUSED(fleet_model_where(c.m, x, x, x, &y), FLEET_ERR_DTYPE_MISMATCH, "bool");
    ASSERT_REFUSED(fleet_model_cast(c.m, x, (fleet_dtype)99, &y), FLEET_ERR_INVALID_ARGUMENT,
                   "dtype");
    mc_end(&c);
}

/* ---- along a dimension --------------------------------------------------------------- */

TEST(row_ops_and_layer_norm_run_as_the_eager_ops)
{
    for (int k = 0; k < 8; k++) {
        mcase c;
        mc_begin(&c, 3, 400 + (uint64_t)k);
        int64_t xs[] = {B, 4, 9};
        fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 3, xs), y;
        fleet_tensor *g = NULL, *b = NULL;
        int dim = k % 2 ? 1 : -1, keep = k / 2 % 2;
        switch (k / 2 % 4) {
        case 0:
            ASSERT_OK(k % 2 ? fleet_model_softmax(c.m, x, dim, &y)
                            : fleet_model_log_softmax(c.m, x, dim, &y));
            break;
        case 1:
            ASSERT_OK(k % 2 ? fleet_model_sum(c.m, x, dim, keep, &y)
                            : fleet_model_mean(c.m, x, dim, keep, &y));
            break;
        case 2:
            ASSERT_OK(fleet_model_max(c.m, x, dim, keep, &y));
            break;
        default: {
            int64_t gs[] = {9};
            fleet_value gv = mc_const(&c, FLEET_DTYPE_F32, 1, gs, &g);
            fleet_value bv = mc_const(&c, FLEET_DTYPE_F32, 1, gs, &b);
            if (k % 2)
                ASSERT_OK(fleet_model_layer_norm(c.m, x, gv, bv, 1e-5f, &y));
            else
                ASSERT_OK(fleet_model_layer_norm(c.m, x, FLEET_NO_VALUE, FLEET_NO_VALUE, 1e-5f,
                                                 &y));
        }
        }
        fleet_tensor *got = mc_run(&c, y), *want = mc_like(&c, FLEET_DTYPE_F32, got);
        switch (k / 2 % 4) {
        case 0:
            ASSERT_OK(k % 2 ? fleet_softmax(c.t[0], dim, want) : fleet_log_softmax(c.t[0], dim, want));
            break;
        case 1:
            ASSERT_OK(k % 2 ? fleet_sum(c.t[0], dim, keep, want) : fleet_mean(c.t[0], dim, keep, want));
            break;
        case 2:
            ASSERT_OK(fleet_max(c.t[0], dim, keep, want));
            break;
        default:
            ASSERT_OK(fleet_layer_norm(c.t[0], k % 2 ? g : NULL, k % 2 ? b : NULL, 1e-5f, want));
        }
        expect_same(got, want, 0.0);
        mc_end(&c);
    }
}

/* ---- convolution and pooling ---------------------------------------------------------- */

TEST(convolutions_and_pooling_run_as_the_eager_ops)
{
    mcase c;
    mc_begin(&c, 2, 500);
    int64_t xs[] = {B, 4, 9, 8}, ws[] = {6, 2, 3, 2}, bs[] = {6};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 4, xs), y;
    fleet_tensor *w, *b;
    fleet_value wv = mc_const(&c, FLEET_DTYPE_F32, 4, ws, &w), bv = mc_const(&c, FLEET_DTYPE_F32, 1, bs, &b);
    fleet_conv2d_params cp = {.stride = {2, 1}, .pad_begin = {1, 0}, .pad_end = {0, 1},
                              .dilation = {1, 2}, .groups = 2};
    ASSERT_OK(fleet_model_conv2d(c.m, x, wv, bv, &cp, &y));
    fleet_tensor *got = mc_run(&c, y), *want = mc_like(&c, FLEET_DTYPE_F32, got);
    ASSERT_OK(fleet_conv2d_ex(c.t[0], w, b, &cp, want));
    expect_same(got, want, 1e-6);
    mc_end(&c);

    mc_begin(&c, 3, 501);
    int64_t x1[] = {B, 3, 20}, w1[] = {5, 3, 3};
    x = mc_input(&c, FLEET_DTYPE_F32, 3, x1);
    wv = mc_const(&c, FLEET_DTYPE_F32, 3, w1, &w);
    ASSERT_OK(fleet_model_conv1d(c.m, x, wv, FLEET_NO_VALUE, 2, 1, 2, &y));
    got = mc_run(&c, y);
    want = mc_like(&c, FLEET_DTYPE_F32, got);
    ASSERT_OK(fleet_conv1d(c.t[0], w, NULL, 2, 1, 2, want));
    expect_same(got, want, 1e-6);
    mc_end(&c);

    for (int k = 0; k < 2; k++) {
        mc_begin(&c, 2, 502 + (uint64_t)k);
        int64_t ps[] = {B, 3, 7, 6};
        x = mc_input(&c, FLEET_DTYPE_F32, 4, ps);
        fleet_pool2d_params pp = {.kernel = {3, 2}, .stride = {2, 2}, .pad_begin = {1, 0},
                                  .pad_end = {1, 1}, .dilation = {1, 1}, .ceil_mode = 1,
                                  .count_include_pad = k};
        ASSERT_OK(k ? fleet_model_avg_pool2d(c.m, x, &pp, &y) : fleet_model_max_pool2d(c.m, x, &pp, &y));
        got = mc_run(&c, y);
        want = mc_like(&c, FLEET_DTYPE_F32, got);
        ASSERT_OK(k ? fleet_avg_pool2d(c.t[0], &pp, want) : fleet_max_pool2d(c.t[0], &pp, want));
        expect_same(got, want, 0.0);
        mc_end(&c);
    }
}

/* ---- gathers and joins --------------------------------------------------------------- */

TEST(gathers_and_embeddings_run_as_the_eager_ops)
{
    mcase c;
    mc_begin(&c, 3, 600);
    int64_t xs[] = {B, 5, 4}, is[] = {2, 3};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 3, xs);
    c.index_hi = 5; /* indices in [-5, 5): negative ones count from the end */
    fleet_value idx = mc_input(&c, FLEET_DTYPE_I64, 2, is), y;
    ASSERT_OK(fleet_model_gather(c.m, x, idx, 1, &y));
    fleet_tensor *got = mc_run(&c, y), *want = mc_like(&c, FLEET_DTYPE_F32, got);
    ASSERT_OK(fleet_gather(c.t[0], c.t[1], 1, want));
    expect_same(got, want, 0.0);
    ASSERT_EQ(fleet_tensor_ndim(got), 4);
    mc_end(&c);

    mc_begin(&c, 4, 601);
    c.index_hi = 10;
    int64_t ids[] = {B, 3}, ts[] = {10, 5};
    idx = mc_input(&c, FLEET_DTYPE_I32, 2, ids); /* negative ones are padding: zero rows */
    fleet_tensor *table;
    fleet_value tv = mc_const(&c, FLEET_DTYPE_F32, 2, ts, &table);
    ASSERT_OK(fleet_model_embedding(c.m, tv, idx, &y));
    got = mc_run(&c, y);
    want = mc_like(&c, FLEET_DTYPE_F32, got);
    ASSERT_OK(fleet_embedding(table, c.t[0], want));
    expect_same(got, want, 0.0);
    mc_end(&c);

    mc_begin(&c, 2, 602);
    ASSERT_REFUSED(fleet_model_gather(c.m, mc_input(&c, FLEET_DTYPE_F32, 2, is),
                                      mc_input(&c, FLEET_DTYPE_F32, 1, is), 0, &y),
                   FLEET_ERR_DTYPE_MISMATCH, "i32 or i64");
    mc_end(&c);
}

/* Eleven parts, more than a node holds: a tree of concatenations; parts
 * of several layouts (an input, a slice view, a transposed view). */
TEST(a_long_concatenation_joins_every_part_in_order)
{
    mcase c;
    mc_begin(&c, 2, 700);
    fleet_value parts[11];
    fleet_tensor *eager[11];
    int64_t ps[] = {B, 3, 2}, wide[] = {B, 3, 4}, tr[] = {B, 2, 3};
    for (int i = 0; i < 11; i++) {
        if (i % 3 == 1) { /* columns 1..2 of a [B, 3, 4] input */
            parts[i] = mc_input(&c, FLEET_DTYPE_F32, 3, wide);
            ASSERT_OK(fleet_model_slice(c.m, parts[i], 2, 1, 3, 1, &parts[i]));
            ASSERT_OK(fleet_tensor_slice(c.t[c.n - 1], 2, 1, 3, &eager[i]));
        } else if (i % 3 == 2) {
            parts[i] = mc_input(&c, FLEET_DTYPE_F32, 3, tr);
            ASSERT_OK(fleet_model_transpose(c.m, parts[i], 1, 2, &parts[i]));
            int perm[] = {0, 2, 1};
            ASSERT_OK(fleet_tensor_permute(c.t[c.n - 1], perm, &eager[i]));
        } else {
            parts[i] = mc_input(&c, FLEET_DTYPE_F32, 3, ps);
            ASSERT_OK(fleet_tensor_slice(c.t[c.n - 1], 0, 0, c.batch, &eager[i]));
        }
        mc_keep(&c, eager[i]);
    }
    fleet_value y;
    ASSERT_OK(fleet_model_concat(c.m, parts, 11, -1, &y));
    fleet_tensor *got = mc_run(&c, y), *want = mc_like(&c, FLEET_DTYPE_F32, got);
    ASSERT_EQ(fleet_tensor_dim(got, 2), 22);
    ASSERT_OK(fleet_concat((const fleet_tensor *const *)eager, 11, -1, want));
    expect_same(got, want, 0.0);
    int copies;
    ASSERT_EQ(mc_steps(&c, &copies), 2); /* 8 parts, then the first 8 and 3 more */
    ASSERT_EQ(copies, 0);                /* the views are read where they lie */
    mc_end(&c);
}

/* ---- views ------------------------------------------------------------------------------ */

/* x[:, 1::2, -3:] read by an add (a view: no copy) and by a softmax (which
 * takes contiguous rows: one copy); checked against the host. */
TEST(a_slice_is_a_view_where_its_reader_takes_it_and_a_copy_where_not)
{
    mcase c;
    mc_begin(&c, 2, 800);
    int64_t xs[] = {B, 5, 6};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 3, xs), s1, s2, a, sm;
    ASSERT_OK(fleet_model_slice(c.m, x, 1, 1, INT64_MAX, 2, &s1));
    ASSERT_OK(fleet_model_slice(c.m, s1, -1, -3, 100, 1, &s2));
    ASSERT_OK(fleet_model_add(c.m, s2, s2, &a));
    ASSERT_OK(fleet_model_softmax(c.m, s2, -1, &sm));
    ASSERT_OK(fleet_model_add(c.m, a, sm, &a));
    fleet_tensor *got = mc_run(&c, a);
    ASSERT_EQ(fleet_tensor_dim(got, 1), 2);
    ASSERT_EQ(fleet_tensor_dim(got, 2), 3);
    float host[2 * 5 * 6], out[2 * 2 * 3];
    test_tensor_read(c.t[0], host);
    test_tensor_read(got, out);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 2; i++) {
            const float *row = &host[(b * 5 + 1 + 2 * i) * 6 + 3];
            double z = 0;
            for (int j = 0; j < 3; j++)
                z += exp((double)row[j]);
            for (int j = 0; j < 3; j++) {
                double want = 2.0 * row[j] + exp((double)row[j]) / z;
                ASSERT_TRUE(fabs(out[(b * 2 + i) * 3 + j] - want) <= 1e-5);
            }
        }
    int copies;
    ASSERT_EQ(mc_steps(&c, &copies), 4); /* copy for the softmax, add, softmax, add */
    ASSERT_EQ(copies, 1);
    mc_end(&c);
}

/* bias [4] expanded to [B, 3, 4]: a view of zero strides read by a mul (no
 * copy) and by a sum over dim 1 (a copy); [3, 1] and [1, 4] expand both ways. */
TEST(expand_broadcasts_without_copying_where_it_can)
{
    mcase c;
    mc_begin(&c, 3, 900);
    int64_t xs[] = {B, 3, 4}, bs[] = {4}, to[] = {B, 3, 4};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 3, xs);
    fleet_tensor *bt;
    fleet_value bias = mc_const(&c, FLEET_DTYPE_F32, 1, bs, &bt), e, p, s, y;
    ASSERT_OK(fleet_model_expand(c.m, bias, 3, to, &e));
    ASSERT_OK(fleet_model_mul(c.m, x, e, &p));
    ASSERT_OK(fleet_model_sum(c.m, e, 1, 1, &s)); /* 3 * bias, keepdim [B, 1, 4] */
    ASSERT_OK(fleet_model_add(c.m, p, s, &y));
    fleet_tensor *got = mc_run(&c, y);
    float host[3 * 3 * 4], bh[4], out[3 * 3 * 4];
    test_tensor_read(c.t[0], host);
    test_tensor_read(bt, bh);
    test_tensor_read(got, out);
    for (int i = 0; i < 36; i++)
        ASSERT_TRUE(fabsf(out[i] - (host[i] * bh[i % 4] + 3.0f * bh[i % 4])) <= 1e-6f);
    int copies;
    mc_steps(&c, &copies);
    ASSERT_EQ(copies, 1);
    mc_end(&c);

    mc_begin(&c, 1, 901);
    int64_t cs[] = {3, 1}, rs[] = {1, 4};
    fleet_value col = mc_input(&c, FLEET_DTYPE_F32, 2, cs);
    int64_t bad[] = {2, 4};
    ASSERT_REFUSED(fleet_model_expand(c.m, col, 2, bad, &e), FLEET_ERR_SHAPE_MISMATCH, "3x1");
    int64_t huge[] = {INT64_MIN, 4};
    ASSERT_REFUSED(fleet_model_expand(c.m, col, 2, huge, &e), FLEET_ERR_INVALID_ARGUMENT,
                   "dimension 0");
    ASSERT_OK(fleet_model_expand(c.m, col, 2, rs, &e));
    got = mc_run(&c, e);
    ASSERT_EQ(fleet_tensor_dim(got, 0), 3);
    ASSERT_EQ(fleet_tensor_dim(got, 1), 4);
    float ch[3], eo[12];
    test_tensor_read(c.t[0], ch);
    test_tensor_read(got, eo);
    for (int i = 0; i < 12; i++)
        ASSERT_TRUE(eo[i] == ch[i / 4]);
    mc_end(&c);
}

/* A transposed weight is a GEMM operand as it lies; a transposed input
 * read by a gather (contiguous only) is copied once. */
TEST(permuted_operands_are_copied_only_for_readers_that_need_it)
{
    mcase c;
    mc_begin(&c, 2, 1000);
    int64_t xs[] = {B, 6}, ws[] = {6, 4}, gs[] = {B, 4, 3}, is[] = {2};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 2, xs);
    fleet_value g = mc_input(&c, FLEET_DTYPE_F32, 3, gs);
    c.index_hi = 2;
    fleet_value idx = mc_input(&c, FLEET_DTYPE_I64, 1, is);
    fleet_tensor *w;
    fleet_value wv = mc_const(&c, FLEET_DTYPE_F32, 2, ws, &w), wt, l, gt, ga, y;
    ASSERT_OK(fleet_model_transpose(c.m, wv, 0, 1, &wt)); /* [4, 6] */
    ASSERT_OK(fleet_model_linear(c.m, x, wt, FLEET_NO_VALUE, &l)); /* [B, 4] */
    ASSERT_OK(fleet_model_transpose(c.m, g, 1, 2, &gt));             /* [B, 3, 4] */
    ASSERT_OK(fleet_model_gather(c.m, gt, idx, 1, &ga));              /* [B, 2, 4] */
    ASSERT_OK(fleet_model_sum(c.m, ga, 1, 0, &ga));                   /* [B, 4] */
    ASSERT_OK(fleet_model_add(c.m, l, ga, &y));
    fleet_tensor *got = mc_run(&c, y);
    int copies;
    mc_steps(&c, &copies);
    ASSERT_EQ(copies, 1);
    /* eager: the same through fleet_matmul on the weight as it is */
    fleet_tensor *mm = mc_like(&c, FLEET_DTYPE_F32, got), *gtc, *gav, *gs2, *want;
    ASSERT_OK(fleet_matmul(c.t[0], w, mm));
    int perm[] = {0, 2, 1};
    fleet_tensor *gtv;
    ASSERT_OK(fleet_tensor_permute(c.t[1], perm, &gtv));
    mc_keep(&c, gtv);
    int64_t gts[] = {2, 3, 4}, gas[] = {2, 2, 4};
    gtc = mc_tensor(&c, FLEET_DTYPE_F32, 3, gts);
    ASSERT_OK(fleet_copy(gtv, gtc));
    gav = mc_tensor(&c, FLEET_DTYPE_F32, 3, gas);
    ASSERT_OK(fleet_gather(gtc, c.t[2], 1, gav));
    gs2 = mc_like(&c, FLEET_DTYPE_F32, got);
    ASSERT_OK(fleet_sum(gav, 1, 0, gs2));
    want = mc_like(&c, FLEET_DTYPE_F32, got);
    ASSERT_OK(fleet_add(mm, gs2, want));
    expect_same(got, want, 1e-6);
    mc_end(&c);
}

/* [B, 4, 6] -> [4B, 6] rows -> a linear -> [B, 4, 5] (how GPT-2's exports
 * fold the batch into the rows of a GEMM), and an output of 4B rows. */
TEST(the_batch_folds_into_rows_and_back)
{
    mcase c;
    mc_begin(&c, 3, 1300);
    int64_t xs[] = {B, 4, 6}, rows[] = {FLEET_DIM_BATCH_TIMES(4), 6}, back[] = {B, 4, 5};
    int64_t ws[] = {5, 6};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 3, xs), r, l, y;
    fleet_tensor *w;
    fleet_value wv = mc_const(&c, FLEET_DTYPE_F32, 2, ws, &w);
    ASSERT_OK(fleet_model_reshape(c.m, x, 2, rows, &r));
    ASSERT_OK(fleet_model_linear(c.m, r, wv, FLEET_NO_VALUE, &l));
    ASSERT_OK(fleet_model_reshape(c.m, l, 3, back, &y));
    int64_t bad[] = {FLEET_DIM_BATCH_TIMES(5), 6};
    fleet_value z;
    ASSERT_REFUSED(fleet_model_reshape(c.m, x, 2, bad, &z), FLEET_ERR_SHAPE_MISMATCH, "5B");
    ASSERT_OK(fleet_model_output(c.m, "y", y));
    ASSERT_OK(fleet_model_output(c.m, "rows", l));
    ASSERT_OK(fleet_model_finalize(c.m));
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    ASSERT_OK(fleet_model_output_shape(c.m, 1, 3, &ndim, shape));
    ASSERT_EQ(shape[0], 12); /* 4 times the batch */
    int64_t b3[] = {3, 4, 5}, r12[] = {12, 6}, o12[] = {12, 5};
    fleet_tensor *got = mc_tensor(&c, FLEET_DTYPE_F32, 3, b3);
    fleet_tensor *rows_out = mc_tensor(&c, FLEET_DTYPE_F32, 2, o12);
    fleet_tensor *outs[] = {got, rows_out};
    ASSERT_OK(fleet_model_run(c.m, (const fleet_tensor *const *)c.t, 1, outs, 2));
    /* the eager way: x viewed as [12, 6] */
    fleet_tensor *xv, *lv, *want = mc_tensor(&c, FLEET_DTYPE_F32, 3, b3);
    fleet_tensor *lo = mc_tensor(&c, FLEET_DTYPE_F32, 2, o12);
    ASSERT_OK(fleet_tensor_reshape(c.t[0], 2, r12, &xv));
    mc_keep(&c, xv);
    ASSERT_OK(fleet_linear(xv, w, NULL, lo));
    ASSERT_OK(fleet_tensor_reshape(lo, 3, b3, &lv));
    mc_keep(&c, lv);
    ASSERT_OK(fleet_copy(lv, want));
    expect_same(got, want, 1e-6);
    expect_same(rows_out, lo, 1e-6);
    /* a run whose rows output is not 4 times the batch is refused */
    fleet_tensor *short_rows = mc_tensor(&c, FLEET_DTYPE_F32, 2, (int64_t[]){3, 5});
    fleet_tensor *bad_outs[] = {got, short_rows};
    ASSERT_REFUSED(fleet_model_run(c.m, (const fleet_tensor *const *)c.t, 1, bad_outs, 2),
                   FLEET_ERR_SHAPE_MISMATCH, "'rows'");
    mc_end(&c);
}

TEST(slice_attributes_clamp_and_refuse_as_onnx_says)
{
    mcase c;
    mc_begin(&c, 2, 1100);
    int64_t xs[] = {B, 7};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 2, xs), y;
    fleet_dtype dt;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    ASSERT_OK(fleet_model_slice(c.m, x, 1, -100, 100, 3, &y)); /* 0, 3, 6 */
    ASSERT_OK(fleet_model_value_info(c.m, y, &dt, &ndim, shape));
    ASSERT_EQ(shape[1], 3);
    ASSERT_OK(fleet_model_slice(c.m, x, 1, 5, 2, 1, &y)); /* empty */
    ASSERT_OK(fleet_model_value_info(c.m, y, &dt, &ndim, shape));
    ASSERT_EQ(shape[1], 0);
    ASSERT_OK(fleet_model_slice(c.m, x, 0, 0, INT64_MAX, 1, &y)); /* the whole batch */
    ASSERT_OK(fleet_model_value_info(c.m, y, &dt, &ndim, shape));
    ASSERT_EQ(shape[0], B);
    ASSERT_REFUSED(fleet_model_slice(c.m, x, 0, 1, INT64_MAX, 1, &y), FLEET_ERR_SHAPE_MISMATCH,
                   "run time");
    ASSERT_REFUSED(fleet_model_slice(c.m, x, 1, 0, 4, 0, &y), FLEET_ERR_INVALID_ARGUMENT, "step");
    ASSERT_REFUSED(fleet_model_slice(c.m, x, 2, 0, 4, 1, &y), FLEET_ERR_INVALID_ARGUMENT, "dim");
    mc_end(&c);
}

TEST(constants_and_value_info)
{
    mcase c;
    mc_begin(&c, 2, 1200);
    int64_t xs[] = {B, 3};
    fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 2, xs), k, s, y;
    float two = 2.0f;
    int64_t rows[] = {3};
    float row[] = {1.0f, -1.0f, 0.5f};
    ASSERT_OK(fleet_model_constant(c.m, FLEET_DTYPE_F32, 0, NULL, &two, &k)); /* a scalar */
    ASSERT_OK(fleet_model_constant(c.m, FLEET_DTYPE_F32, 1, rows, row, &s));
    ASSERT_OK(fleet_model_mul(c.m, x, k, &y));
    ASSERT_OK(fleet_model_add(c.m, y, s, &y));
    fleet_dtype dt;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    ASSERT_OK(fleet_model_value_info(c.m, k, &dt, &ndim, shape));
    ASSERT_EQ(ndim, 0);
    ASSERT_OK(fleet_model_value_info(c.m, y, &dt, &ndim, shape));
    ASSERT_EQ(dt, FLEET_DTYPE_F32);
    ASSERT_EQ(ndim, 2);
    ASSERT_EQ(shape[0], B);
    ASSERT_EQ(shape[1], 3);
    ASSERT_REFUSED(fleet_model_value_info(c.m, 999, &dt, &ndim, shape), FLEET_ERR_INVALID_ARGUMENT,
                   "unknown value");
    ASSERT_REFUSED(fleet_model_constant(c.m, FLEET_DTYPE_F32, 1, rows, NULL, &k),
                   FLEET_ERR_NULL_POINTER, "data is NULL");
    ASSERT_REFUSED(fleet_model_constant(c.m, FLEET_DTYPE_F32, 1, xs, row, &k),
                   FLEET_ERR_INVALID_ARGUMENT, "FLEET_DIM_BATCH");
    row[0] = 99.0f; /* the constant's data was copied at the call */
    fleet_tensor *got = mc_run(&c, y);
    float host[6], out[6];
    const float want_row[] = {1.0f, -1.0f, 0.5f};
    test_tensor_read(c.t[0], host);
    test_tensor_read(got, out);
    for (int i = 0; i < 6; i++)
        ASSERT_TRUE(out[i] == host[i] * 2.0f + want_row[i % 3]);
    mc_end(&c);
}

/* Integer arithmetic is exact (wrapping), a division by 0 gives 0 and
 * INT64_MIN / -1 wraps, as the kernels document; the same on i32. */
static int64_t ref_int(fleet__ew_op op, int64_t x, int64_t y, bool wide)
{
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y, r;
    switch (op) {
    case FLEET__EW_ADD: r = ux + uy; break;
    case FLEET__EW_SUB: r = ux - uy; break;
    case FLEET__EW_MUL: r = ux * uy; break;
    case FLEET__EW_DIV:
        r = y == 0 ? 0 : y == -1 ? 0 - ux : (uint64_t)(x / y);
        break;
    case FLEET__EW_MAX: r = (uint64_t)(x > y ? x : y); break;
    case FLEET__EW_MIN: r = (uint64_t)(x < y ? x : y); break;
    case FLEET__EW_LESS: return x < y;
    case FLEET__EW_EQUAL: return x == y;
    case FLEET__EW_NEG: r = 0 - ux; break;
    default: r = (uint64_t)(x < 0 ? -x : x); break; /* ABS of the values below */
    }
    return wide ? (int64_t)r : (int64_t)(int32_t)(uint32_t)r;
}

TEST(integer_arithmetic_is_exact_and_wraps)
{
    const int64_t vals[] = {0, 1, -1, 7, -7, 3, INT64_MAX, INT64_MIN, 1000000007, -2};
    const fleet__ew_op ops[] = {FLEET__EW_ADD, FLEET__EW_SUB, FLEET__EW_MUL, FLEET__EW_DIV,
                                FLEET__EW_MAX, FLEET__EW_MIN, FLEET__EW_LESS, FLEET__EW_EQUAL};
    for (int wide = 0; wide <= 1; wide++) {
        fleet_dtype dt = wide ? FLEET_DTYPE_I64 : FLEET_DTYPE_I32;
        int64_t a64[100], b64[100];
        int32_t a32[100], b32[100];
        for (int i = 0; i < 100; i++) {
            a64[i] = vals[i / 10], b64[i] = vals[i % 10];
            if (!wide)
                a64[i] = (int32_t)(uint32_t)a64[i], b64[i] = (int32_t)(uint32_t)b64[i];
            a32[i] = (int32_t)a64[i], b32[i] = (int32_t)b64[i];
        }
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            mcase c;
            mc_begin(&c, 10, 1300 + k);
            int64_t xs[] = {B, 10};
            fleet_value a = mc_input(&c, dt, 2, xs), b = mc_input(&c, dt, 2, xs), y;
            ASSERT_OK(fleet_tensor_copy_from_host(c.t[0], wide ? (void *)a64 : (void *)a32,
                                                  fleet_tensor_nbytes(c.t[0])));
            ASSERT_OK(fleet_tensor_copy_from_host(c.t[1], wide ? (void *)b64 : (void *)b32,
                                                  fleet_tensor_nbytes(c.t[1])));
            switch (ops[k]) {
            case FLEET__EW_ADD: ASSERT_OK(fleet_model_add(c.m, a, b, &y)); break;
            case FLEET__EW_SUB: ASSERT_OK(fleet_model_sub(c.m, a, b, &y)); break;
            case FLEET__EW_MUL: ASSERT_OK(fleet_model_mul(c.m, a, b, &y)); break;
            case FLEET__EW_DIV: ASSERT_OK(fleet_model_div(c.m, a, b, &y)); break;
            case FLEET__EW_MAX: ASSERT_OK(fleet_model_maximum(c.m, a, b, &y)); break;
            case FLEET__EW_MIN: ASSERT_OK(fleet_model_minimum(c.m, a, b, &y)); break;
            case FLEET__EW_LESS: ASSERT_OK(fleet_model_less(c.m, a, b, &y)); break;
            default: ASSERT_OK(fleet_model_equal(c.m, a, b, &y)); break;
            }
            fleet_tensor *got = mc_run(&c, y);
            bool cmp = ops[k] == FLEET__EW_LESS || ops[k] == FLEET__EW_EQUAL;
            unsigned char raw[800];
            ASSERT_OK(fleet_tensor_copy_to_host(got, raw, fleet_tensor_nbytes(got)));
            for (int i = 0; i < 100; i++) {
                int64_t want = ref_int(ops[k], a64[i], b64[i], wide), v;
                if (cmp) {
                    v = raw[i];
                } else if (wide) {
                    memcpy(&v, raw + 8 * i, 8);
                } else {
                    int32_t v32;
                    memcpy(&v32, raw + 4 * i, 4);
                    v = v32;
                }
                if (v != want)
                    printf("  %s op %d: %lld and %lld gave %lld, want %lld\n",
                           fleet_dtype_name(dt), (int)ops[k], (long long)a64[i],
                           (long long)b64[i], (long long)v, (long long)want);
                ASSERT_EQ(v, want);
            }
            mc_end(&c);
        }
    }
    /* the float-only ops refuse integers at build time */
    mcase c;
    mc_begin(&c, 2, 1320);
    int64_t xs[] = {B, 3};
    fleet_value a = mc_input(&c, FLEET_DTYPE_I64, 2, xs), y;
    ASSERT_REFUSED(fleet_model_exp(c.m, a, &y), FLEET_ERR_UNSUPPORTED, "i64");
    ASSERT_REFUSED(fleet_model_pow(c.m, a, a, &y), FLEET_ERR_UNSUPPORTED, "i64");
    mc_end(&c);
}

/* A range as long as the batch (or k times it), in integers and floats,
 * right at two batch sizes; refused for what it cannot make. */
TEST(a_range_follows_the_batch)
{
    for (int64_t batch = 3; batch <= 7; batch += 4) {
        mcase c;
        mc_begin(&c, batch, 1400);
        int64_t xs[] = {B};
        c.index_hi = 100;
        fleet_value x = mc_input(&c, FLEET_DTYPE_I64, 1, xs), r, y;
        ASSERT_OK(fleet_model_range(c.m, FLEET_DTYPE_I64, 5.0, -2.0, B, &r));
        ASSERT_OK(fleet_model_add(c.m, x, r, &y));
        fleet_tensor *got = mc_run(&c, y);
        int64_t in[8], out[8];
        ASSERT_OK(fleet_tensor_copy_to_host(c.t[0], in, sizeof(int64_t) * (size_t)batch));
        ASSERT_OK(fleet_tensor_copy_to_host(got, out, sizeof(int64_t) * (size_t)batch));
        for (int64_t i = 0; i < batch; i++)
            ASSERT_EQ(out[i], in[i] + 5 - 2 * i);
        mc_end(&c);

        mc_begin(&c, batch, 1401);
        fleet_value xf = mc_input(&c, FLEET_DTYPE_F32, 1, xs);
        ASSERT_OK(fleet_model_range(c.m, FLEET_DTYPE_F32, 0.5, 0.25, FLEET_DIM_BATCH_TIMES(3),
                                    &r));
        ASSERT_OK(fleet_model_reshape(c.m, r, 2, (const int64_t[]){B, 3}, &r));
        ASSERT_OK(fleet_model_reshape(c.m, xf, 2, (const int64_t[]){B, 1}, &xf));
        ASSERT_OK(fleet_model_mul(c.m, xf, r, &y));
        got = mc_run(&c, y);
        float fin[8], fout[24];
        test_tensor_read(c.t[0], fin);
        test_tensor_read(got, fout);
        for (int64_t i = 0; i < 3 * batch; i++)
            ASSERT_TRUE(fabsf(fout[i] - fin[i / 3] * (0.5f + 0.25f * (float)i)) < 1e-6f);
        mc_end(&c);
    }
    mcase c;
    mc_begin(&c, 2, 1402);
    fleet_value r;
    ASSERT_REFUSED(fleet_model_range(c.m, FLEET_DTYPE_BOOL, 0, 1, B, &r), FLEET_ERR_UNSUPPORTED,
                   "bool");
    ASSERT_REFUSED(fleet_model_range(c.m, FLEET_DTYPE_I64, 0.5, 1, B, &r),
                   FLEET_ERR_INVALID_ARGUMENT, "integers");
    ASSERT_REFUSED(fleet_model_range(c.m, FLEET_DTYPE_F32, NAN, 1, 4, &r),
                   FLEET_ERR_INVALID_ARGUMENT, "finite");
    ASSERT_REFUSED(fleet_model_range(c.m, FLEET_DTYPE_F32, 0, 1, -((int64_t)1 << 40), &r),
                   FLEET_ERR_INVALID_ARGUMENT, "dimension 0");
    mc_end(&c);
}

/* GatherND against a plain loop: x [B, 4, 3], indices [B, 2, k] for k = 1,
 * 2, 3, negative indices counting from the end of their dimension. */
TEST(gather_nd_picks_what_a_loop_picks)
{
    for (int k = 1; k <= 3; k++) {
        mcase c;
        const int64_t batch = 3;
        mc_begin(&c, batch, 1500 + (uint64_t)k);
        int64_t xs[] = {B, 4, 3}, is[] = {2, 2, k};
        fleet_value x = mc_input(&c, FLEET_DTYPE_F32, 3, xs);
        c.index_hi = 3; /* [-3, 3): in range for every dimension (sizes 3, 4, 3) */
        fleet_value idx = mc_input(&c, FLEET_DTYPE_I64, 3, is), y;
        ASSERT_OK(fleet_model_gather_nd(c.m, x, idx, &y));
        fleet_tensor *got = mc_run(&c, y);
        float xh[36], out[48];
        int64_t ih[12];
        test_tensor_read(c.t[0], xh);
        ASSERT_OK(fleet_tensor_copy_to_host(c.t[1], ih, sizeof(int64_t) * 4 * (size_t)k));
        test_tensor_read(got, out);
        const int64_t dims[] = {batch, 4, 3};
        int64_t inner = 1;
        for (int d = k; d < 3; d++)
            inner *= dims[d];
        ASSERT_EQ(fleet_tensor_numel(got), 4 * inner);
        for (int r = 0; r < 4; r++) {
            int64_t off = 0;
            for (int j = 0; j < k; j++) {
                int64_t v = ih[r * k + j];
                v = v < 0 ? v + dims[j] : v;
                off = off * dims[j] + v;
            }
            for (int64_t e = 0; e < inner; e++)
                ASSERT_TRUE(out[r * inner + e] == xh[off * inner + e]);
        }
        mc_end(&c);
    }
    mcase c;
    mc_begin(&c, 2, 1510);
    int64_t xs[] = {B, 4}, bad[] = {2, 3}, bsym[] = {4, B};
    fleet_value y;
    ASSERT_REFUSED(fleet_model_gather_nd(c.m, mc_input(&c, FLEET_DTYPE_F32, 2, xs),
                                         mc_input(&c, FLEET_DTYPE_I64, 2, bad), &y),
                   FLEET_ERR_SHAPE_MISMATCH, "last dimension");
    ASSERT_REFUSED(fleet_model_gather_nd(c.m, mc_input(&c, FLEET_DTYPE_F32, 2, bsym),
                                         mc_input(&c, FLEET_DTYPE_I64, 2, (const int64_t[]){2, 2}),
                                         &y),
                   FLEET_ERR_UNSUPPORTED, "batch");
    mc_end(&c);
}

/* Running sums against a loop, inclusive and exclusive, i64 and f32, over
 * lengths 1 (no add at all) to 9 (past a power of two). */
TEST(cumsum_sums_what_a_loop_sums)
{
    for (int n = 1; n <= 9; n += 4)
        for (int excl = 0; excl <= 1; excl++)
            for (int wide = 0; wide <= 1; wide++) {
                mcase c;
                mc_begin(&c, 2, 1600 + (uint64_t)(n * 4 + excl * 2 + wide));
                c.index_hi = 50;
                fleet_dtype dt = wide ? FLEET_DTYPE_I64 : FLEET_DTYPE_F32;
                int64_t xs[] = {B, n};
                fleet_value x = mc_input(&c, dt, 2, xs), y;
                ASSERT_OK(fleet_model_cumsum(c.m, x, -1, excl, &y));
                fleet_tensor *got = mc_run(&c, y);
                int64_t ih[18], io[18];
                float fh[18], fo[18];
                if (wide) {
                    ASSERT_OK(fleet_tensor_copy_to_host(c.t[0], ih, 8 * 2 * (size_t)n));
                    ASSERT_OK(fleet_tensor_copy_to_host(got, io, 8 * 2 * (size_t)n));
                } else {
                    test_tensor_read(c.t[0], fh);
                    test_tensor_read(got, fo);
                }
                /* Only the dtype under test was read: sum that one (the
                 * other array is not initialized). */
                for (int r = 0; r < 2; r++) {
                    int64_t si = 0;
                    double sf = 0;
                    for (int i = 0; i < n; i++) {
                        int k = r * n + i;
                        if (!excl) {
                            if (wide)
                                si += ih[k];
                            else
                                sf += fh[k];
                        }
                        if (wide)
                            ASSERT_EQ(io[k], si);
                        else
                            ASSERT_TRUE(fabs(fo[k] - sf) < 1e-5);
                        if (excl) {
                            if (wide)
                                si += ih[k];
                            else
                                sf += fh[k];
                        }
                    }
                }
                mc_end(&c);
            }
    mcase c;
    mc_begin(&c, 2, 1620);
    int64_t xs[] = {B, 3};
    fleet_value y;
    ASSERT_REFUSED(fleet_model_cumsum(c.m, mc_input(&c, FLEET_DTYPE_F32, 2, xs), 0, 0, &y),
                   FLEET_ERR_UNSUPPORTED, "batch");
    ASSERT_REFUSED(fleet_model_cumsum(c.m, mc_input(&c, FLEET_DTYPE_BOOL, 2, xs), 1, 0, &y),
                   FLEET_ERR_UNSUPPORTED, "bool");
    mc_end(&c);
}

int main(int argc, char **argv)
{
    dev = test_default_device();
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
