/* backend_ops — every op, on every backend present, on fresh random inputs
 * of several shapes (odd sizes, broadcasting, transposed, sliced and
 * permuted views), against the plain-C reference in tests/ref/ref*.c with a
 * per-op tolerance. Prints the ops it covered. (ggml's test-backend-ops.) */
#include "harness.h"
#include "ref/ref.h"
#include "tensor/shape.h"
#include "test_util.h"

static int ndevs;
static fleet_device *devs[2];
static int checks;

static void find_devices(void)
{
    ndevs = test_devices(devs);
}

/* ---- inputs as views ---------------------------------------------------------- */

typedef enum { LAYOUT_CONTIGUOUS, LAYOUT_TRANSPOSED, LAYOUT_SLICED, LAYOUT_PERMUTED } layout;
static const char *const layout_names[] = {"contiguous", "transposed", "sliced", "permuted"};

/* A tensor of the wanted shape seen through `lay`, its values random, and
 * the same view over a host copy of the whole parent buffer. */
typedef struct input {
    fleet_tensor *parent, *view;
    float *host;
    fleet__view hv;
} input;

static void view_of(input *in, const fleet_tensor *t, const fleet_tensor *parent)
{
    in->hv.ndim = fleet_tensor_ndim(t);
    for (int d = 0; d < in->hv.ndim; d++) {
        in->hv.shape[d] = fleet_tensor_dim(t, d);
        in->hv.strides[d] = fleet_tensor_stride(t, d);
    }
    ptrdiff_t off = (const char *)fleet_tensor_data(t) - (const char *)fleet_tensor_data(parent);
    in->hv.data = (char *)in->host + off;
}

/* The values an op's input takes: any in [-2, 2); |v| >= 0.5 (a
 * denominator); positive (log, sqrt, a power's base); or the integers -2..2
 * (comparisons, so that equal values occur). */
enum { DOMAIN_ANY, DOMAIN_NONZERO, DOMAIN_POSITIVE, DOMAIN_SMALL_INT };

static input make_input(fleet_device *dev, int ndim, const int64_t *shape, layout lay,
                        test_rng *r, int domain)
{
    input in = {0};
    int64_t pshape[FLEET_MAX_DIMS];
    memcpy(pshape, shape, sizeof(int64_t) * (size_t)ndim);
    int perm[4] = {3, 1, 0, 2};
    if (lay == LAYOUT_TRANSPOSED && ndim >= 2) { /* parent has the last two swapped */
        pshape[ndim - 2] = shape[ndim - 1];
        pshape[ndim - 1] = shape[ndim - 2];
    } else if (lay == LAYOUT_SLICED && ndim >= 1) {
        pshape[ndim - 1] = shape[ndim - 1] + 5; /* view starts at 3, parent has 2 more */
    } else if (lay == LAYOUT_PERMUTED && ndim == 4) {
        for (int i = 0; i < 4; i++) /* view dim i is parent dim perm[i] */
            pshape[perm[i]] = shape[i];
    }
    in.parent = test_tensor_new(dev, ndim, pshape);
    int64_t n = fleet_tensor_numel(in.parent);
    in.host = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        float v = 2.0f * test_rng_float(r);
        if (domain == DOMAIN_NONZERO)
            v = v < 0 ? v - 0.5f : v + 0.5f;
        else if (domain == DOMAIN_POSITIVE)
            v = fabsf(v) + 0.125f;
        else if (domain == DOMAIN_SMALL_INT)
            v = roundf(v);
        in.host[i] = v;
    }
    ASSERT_OK(fleet_tensor_copy_from_host(in.parent, in.host, sizeof(float) * (size_t)n));
    if (lay == LAYOUT_TRANSPOSED && ndim >= 2)
        ASSERT_OK(fleet_tensor_transpose(in.parent, -1, -2, &in.view));
    else if (lay == LAYOUT_SLICED && ndim >= 1)
        ASSERT_OK(fleet_tensor_slice(in.parent, -1, 3, 3 + shape[ndim - 1], &in.view));
    else if (lay == LAYOUT_PERMUTED && ndim == 4)
        ASSERT_OK(fleet_tensor_permute(in.parent, perm, &in.view));
    else {
        in.view = in.parent;
        ASSERT_OK(fleet_tensor_retain(in.view));
    }
    for (int d = 0; d < ndim; d++)
        ASSERT_EQ(fleet_tensor_dim(in.view, d), shape[d]);
    view_of(&in, in.view, in.parent);
    return in;
}

static void free_input(input *in)
{
    ASSERT_OK(fleet_tensor_release(in->view));
    ASSERT_OK(fleet_tensor_release(in->parent));
    free(in->host);
}

/* x seen with out's shape (right-aligned, zero strides where broadcast). */
static fleet__view broadcast_host(const fleet__view *x, int ndim, const int64_t *shape)
{
    fleet__view v = {.data = x->data, .ndim = ndim};
    int shift = ndim - x->ndim;
    for (int d = 0; d < ndim; d++) {
        int xd = d - shift;
        v.shape[d] = shape[d];
        v.strides[d] = xd < 0 || x->shape[xd] == 1 ? 0 : x->strides[xd];
    }
    return v;
}

/* ---- elementwise -------------------------------------------------------------- */

typedef fleet_status (*unary_fn)(const fleet_tensor *, fleet_tensor *);
typedef fleet_status (*binary_fn)(const fleet_tensor *, const fleet_tensor *, fleet_tensor *);

static fleet_status leaky_relu(const fleet_tensor *x, fleet_tensor *out)
{
    return fleet_leaky_relu(x, 0.125f, out);
}

static fleet_status clip(const fleet_tensor *x, fleet_tensor *out)
{
    return fleet_clip(x, -0.5f, 0.75f, out);
}

static const struct {
    const char *name;
    int op;
    unary_fn fn;
    double rtol, atol;
    int domain;
    float alpha, beta;
} unary_ops[] = {
    {"copy", FLEET__EW_COPY, fleet_copy, 0, 0, DOMAIN_ANY, 0, 0},
    {"relu", FLEET__EW_RELU, fleet_relu, 0, 0, DOMAIN_ANY, 0, 0},
    {"gelu", FLEET__EW_GELU, fleet_gelu, 2e-6, 2e-6, DOMAIN_ANY, 0, 0},
    {"gelu_tanh", FLEET__EW_GELU_TANH, fleet_gelu_tanh, 2e-6, 2e-6, DOMAIN_ANY, 0, 0},
    {"silu", FLEET__EW_SILU, fleet_silu, 2e-6, 2e-6, DOMAIN_ANY, 0, 0},
    {"tanh", FLEET__EW_TANH, fleet_tanh, 2e-6, 2e-6, DOMAIN_ANY, 0, 0},
    {"sigmoid", FLEET__EW_SIGMOID, fleet_sigmoid, 2e-6, 2e-6, DOMAIN_ANY, 0, 0},
    {"erf", FLEET__EW_ERF, fleet_erf, 2e-6, 2e-6, DOMAIN_ANY, 0, 0},
    {"exp", FLEET__EW_EXP, fleet_exp, 2e-6, 0, DOMAIN_ANY, 0, 0},
    {"log", FLEET__EW_LOG, fleet_log, 2e-6, 2e-7, DOMAIN_POSITIVE, 0, 0},
    {"sqrt", FLEET__EW_SQRT, fleet_sqrt, 2e-7, 0, DOMAIN_POSITIVE, 0, 0},
    {"neg", FLEET__EW_NEG, fleet_neg, 0, 0, DOMAIN_ANY, 0, 0},
    {"abs", FLEET__EW_ABS, fleet_abs, 0, 0, DOMAIN_ANY, 0, 0},
    {"reciprocal", FLEET__EW_RECIPROCAL, fleet_reciprocal, 2e-7, 0, DOMAIN_NONZERO, 0, 0},
    {"leaky_relu", FLEET__EW_LEAKY_RELU, leaky_relu, 1e-7, 0, DOMAIN_ANY, 0.125f, 0},
    {"clip", FLEET__EW_CLIP, clip, 0, 0, DOMAIN_ANY, -0.5f, 0.75f},
};

/* A comparison writes bool: its table row says so, and its inputs are
 * small integers so that both outcomes occur. */
static const struct {
    const char *name;
    int op;
    binary_fn fn;
    double rtol, atol;
    int domain_a, domain_b;
} binary_ops[] = {
    {"add", FLEET__EW_ADD, fleet_add, 1e-7, 0, DOMAIN_ANY, DOMAIN_ANY},
    {"sub", FLEET__EW_SUB, fleet_sub, 1e-7, 0, DOMAIN_ANY, DOMAIN_ANY},
    {"mul", FLEET__EW_MUL, fleet_mul, 1e-7, 0, DOMAIN_ANY, DOMAIN_ANY},
    {"div", FLEET__EW_DIV, fleet_div, 2e-7, 0, DOMAIN_ANY, DOMAIN_NONZERO},
    {"pow", FLEET__EW_POW, fleet_pow, 1e-6, 1e-7, DOMAIN_POSITIVE, DOMAIN_ANY},
    {"maximum", FLEET__EW_MAX, fleet_maximum, 0, 0, DOMAIN_ANY, DOMAIN_ANY},
    {"minimum", FLEET__EW_MIN, fleet_minimum, 0, 0, DOMAIN_ANY, DOMAIN_ANY},
    {"equal", FLEET__EW_EQUAL, fleet_equal, 0, 0, DOMAIN_SMALL_INT, DOMAIN_SMALL_INT},
    {"less", FLEET__EW_LESS, fleet_less, 0, 0, DOMAIN_SMALL_INT, DOMAIN_SMALL_INT},
    {"less_equal", FLEET__EW_LESS_EQUAL, fleet_less_equal, 0, 0, DOMAIN_SMALL_INT,
     DOMAIN_SMALL_INT},
    {"greater", FLEET__EW_GREATER, fleet_greater, 0, 0, DOMAIN_SMALL_INT, DOMAIN_SMALL_INT},
    {"greater_equal", FLEET__EW_GREATER_EQUAL, fleet_greater_equal, 0, 0, DOMAIN_SMALL_INT,
     DOMAIN_SMALL_INT},
};

typedef struct shape_case {
    int ndim;
    int64_t shape[4];
} shape_case;

static const struct {
    shape_case s;
    layout lay;
} unary_cases[] = {
    {{1, {1}}, LAYOUT_CONTIGUOUS},        {{1, {7}}, LAYOUT_CONTIGUOUS},
    {{2, {33, 65}}, LAYOUT_CONTIGUOUS},   {{2, {9, 17}}, LAYOUT_TRANSPOSED},
    {{2, {8, 22}}, LAYOUT_SLICED},        {{4, {5, 3, 2, 4}}, LAYOUT_PERMUTED},
    {{3, {3, 1, 1000}}, LAYOUT_CONTIGUOUS},
};

static const struct {
    shape_case a, b, out;
    layout la, lb;
} binary_cases[] = {
    {{1, {7}}, {1, {7}}, {1, {7}}, LAYOUT_CONTIGUOUS, LAYOUT_CONTIGUOUS},
    {{2, {33, 65}}, {1, {65}}, {2, {33, 65}}, LAYOUT_CONTIGUOUS, LAYOUT_CONTIGUOUS},
    {{3, {4, 1, 6}}, {3, {1, 5, 1}}, {3, {4, 5, 6}}, LAYOUT_CONTIGUOUS, LAYOUT_CONTIGUOUS},
    {{2, {9, 17}}, {2, {9, 17}}, {2, {9, 17}}, LAYOUT_TRANSPOSED, LAYOUT_CONTIGUOUS},
    {{1, {5}}, {1, {1}}, {1, {5}}, LAYOUT_CONTIGUOUS, LAYOUT_CONTIGUOUS},
    {{4, {5, 3, 2, 4}}, {1, {4}}, {4, {5, 3, 2, 4}}, LAYOUT_PERMUTED, LAYOUT_CONTIGUOUS},
    {{2, {8, 22}}, {2, {8, 1}}, {2, {8, 22}}, LAYOUT_SLICED, LAYOUT_SLICED},
};

static int same_dims(const fleet_tensor *x, const fleet_tensor *y)
{
    if (fleet_tensor_ndim(x) != fleet_tensor_ndim(y))
        return 0;
    for (int d = 0; d < fleet_tensor_ndim(x); d++)
        if (fleet_tensor_dim(x, d) != fleet_tensor_dim(y, d))
            return 0;
    return 1;
}

static void check_out(fleet_tensor *out, const float *want, int64_t n, double rtol, double atol)
{
    float *got = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ASSERT_OK(fleet_tensor_copy_to_host(out, got, sizeof(float) * (size_t)n));
    ASSERT_CLOSE(got, want, n, rtol, atol);
    free(got);
    checks++;
}

/* A contiguous host view of `shape` over buf. */
static fleet__view contiguous_host(void *buf, int ndim, const int64_t *shape)
{
    fleet__view v = {.data = buf, .ndim = ndim};
    for (int d = ndim - 1, st = 1; d >= 0; st *= (int)shape[d], d--) {
        v.shape[d] = shape[d];
        v.strides[d] = st;
    }
    return v;
}

/* out's bytes read back equal want's exactly (bool and integer outputs). */
static void check_bytes(fleet_tensor *out, const void *want, size_t bytes)
{
    unsigned char *got = malloc(bytes > 0 ? bytes : 1);
    ASSERT_OK(fleet_tensor_copy_to_host(out, got, bytes));
    for (size_t i = 0; i < bytes; i++)
        if (got[i] != ((const unsigned char *)want)[i]) {
            char m[128];
            snprintf(m, sizeof m, "byte %zu: got %u, expected %u", i, got[i],
                     ((const unsigned char *)want)[i]);
            test_fail_(__FILE__, __LINE__, m);
        }
    free(got);
    checks++;
}

TEST(elementwise_ops_match_reference)
{
    find_devices();
    for (int di = 0; di < ndevs; di++) {
        fleet_device *dev = devs[di];
        for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; o++)
            for (size_t c = 0; c < sizeof unary_cases / sizeof unary_cases[0]; c++) {
                const shape_case *s = &unary_cases[c].s;
                test_rng r = test_rng_make(o * 100 + c);
                input x = make_input(dev, s->ndim, s->shape, unary_cases[c].lay, &r,
                                     unary_ops[o].domain);
                fleet_tensor *out = test_tensor_new(dev, s->ndim, s->shape);
                int64_t n = fleet_tensor_numel(out);
                float *want = malloc(sizeof(float) * (size_t)n);
                fleet__view wv = contiguous_host(want, s->ndim, s->shape);
                ref_elementwise_ex(unary_ops[o].op, unary_ops[o].alpha, unary_ops[o].beta,
                                   FLEET_DTYPE_F32, FLEET_DTYPE_F32, &wv, &x.hv, NULL, NULL);
                ASSERT_OK(unary_ops[o].fn(x.view, out));
                check_out(out, want, n, unary_ops[o].rtol, unary_ops[o].atol);
                free(want);
                ASSERT_OK(fleet_tensor_release(out));
                free_input(&x);
            }
        for (size_t o = 0; o < sizeof binary_ops / sizeof binary_ops[0]; o++)
            for (size_t c = 0; c < sizeof binary_cases / sizeof binary_cases[0]; c++) {
                bool compare = fleet__ew_is_compare((fleet__ew_op)binary_ops[o].op);
                test_rng r = test_rng_make(1000 + o * 100 + c);
                input a = make_input(dev, binary_cases[c].a.ndim, binary_cases[c].a.shape,
                                     binary_cases[c].la, &r, binary_ops[o].domain_a);
                input b = make_input(dev, binary_cases[c].b.ndim, binary_cases[c].b.shape,
                                     binary_cases[c].lb, &r, binary_ops[o].domain_b);
                const shape_case *so = &binary_cases[c].out;
                fleet_tensor *out;
                ASSERT_OK(fleet_tensor_create(dev, compare ? FLEET_DTYPE_BOOL : FLEET_DTYPE_F32,
                                              so->ndim, so->shape, &out));
                int64_t n = fleet_tensor_numel(out);
                float *want = malloc(sizeof(float) * (size_t)n);
                fleet__view wv = contiguous_host(want, so->ndim, so->shape);
                fleet__view av = broadcast_host(&a.hv, so->ndim, so->shape);
                fleet__view bv = broadcast_host(&b.hv, so->ndim, so->shape);
                ref_elementwise_ex(binary_ops[o].op, 0, 0, FLEET_DTYPE_F32,
                                   compare ? FLEET_DTYPE_BOOL : FLEET_DTYPE_F32, &wv, &av, &bv,
                                   NULL);
                ASSERT_OK(binary_ops[o].fn(a.view, b.view, out));
                if (compare) {
                    check_bytes(out, want, (size_t)n);
                } else {
                    check_out(out, want, n, binary_ops[o].rtol, binary_ops[o].atol);
                    /* in place: out = a op b written over a contiguous a */
                    if (binary_cases[c].la == LAYOUT_CONTIGUOUS && same_dims(a.view, out)) {
                        ASSERT_OK(binary_ops[o].fn(a.view, b.view, a.view));
                        check_out(a.view, want, n, binary_ops[o].rtol, binary_ops[o].atol);
                    }
                }
                free(want);
                ASSERT_OK(fleet_tensor_release(out));
                free_input(&a);
                free_input(&b);
            }
    }
}

/* Integer and bool tensors: fill one of `dtype` from floats (truncated). */
static fleet_tensor *typed_tensor(fleet_device *dev, fleet_dtype dt, int ndim,
                                  const int64_t *shape, const float *values, void **host)
{
    fleet_tensor *t;
    ASSERT_OK(fleet_tensor_create(dev, dt, ndim, shape, &t));
    int64_t n = fleet_tensor_numel(t);
    size_t es = fleet_dtype_size(dt);
    *host = malloc((size_t)(n > 0 ? n : 1) * es);
    fleet__view src = contiguous_host((void *)values, ndim, shape);
    fleet__view dst = contiguous_host(*host, ndim, shape);
    ref_elementwise_ex(FLEET__EW_CAST, 0, 0, FLEET_DTYPE_F32, dt, &dst, &src, NULL, NULL);
    ASSERT_OK(fleet_tensor_copy_from_host(t, *host, (size_t)n * es));
    return t;
}

/* CAST between every pair of f32, i32, i64 and bool (values with fractions,
 * negatives, large magnitudes, NaN); COPY and WHERE on every dtype, with
 * broadcasting and transposed views. */
TEST(casts_copies_and_where_on_every_dtype)
{
    find_devices();
    static const fleet_dtype dts[] = {FLEET_DTYPE_F32, FLEET_DTYPE_I32, FLEET_DTYPE_I64,
                                      FLEET_DTYPE_BOOL};
    enum { R = 5, C = 7, N = R * C };
    float vals[N];
    test_rng r = test_rng_make(77);
    for (int i = 0; i < N; i++)
        vals[i] = 6.0f * test_rng_float(&r);
    vals[0] = 0.0f;
    vals[1] = -0.75f;
    vals[2] = 3e9f; /* beyond i32: saturates */
    vals[3] = NAN;
    vals[4] = -1e19f; /* beyond i64: saturates */
    int64_t shape[2] = {R, C}, tshape[2] = {C, R};
    for (int di = 0; di < ndevs; di++) {
        fleet_device *dev = devs[di];
        for (int f = 0; f < 4; f++)
            for (int t = 0; t < 4; t++) {
                void *src_host, *want = malloc((size_t)N * 8);
                fleet_tensor *src = typed_tensor(dev, dts[f], 2, shape, vals, &src_host);
                fleet_tensor *out, *srcT, *outT;
                ASSERT_OK(fleet_tensor_create(dev, dts[t], 2, shape, &out));
                fleet__view sv = contiguous_host(src_host, 2, shape);
                fleet__view wv = contiguous_host(want, 2, shape);
                ref_elementwise_ex(FLEET__EW_CAST, 0, 0, dts[f], dts[t], &wv, &sv, NULL, NULL);
                ASSERT_OK(fleet_cast(src, out));
                check_bytes(out, want, (size_t)N * fleet_dtype_size(dts[t]));
                /* a transposed view cast into a transposed out */
                ASSERT_OK(fleet_tensor_create(dev, dts[t], 2, tshape, &outT));
                ASSERT_OK(fleet_tensor_transpose(src, 0, 1, &srcT));
                ASSERT_OK(fleet_cast(srcT, outT));
                fleet__view svT = {.data = src_host, .ndim = 2, .shape = {C, R},
                                   .strides = {1, C}};
                fleet__view wvT = contiguous_host(want, 2, tshape);
                ref_elementwise_ex(FLEET__EW_CAST, 0, 0, dts[f], dts[t], &wvT, &svT, NULL, NULL);
                check_bytes(outT, want, (size_t)N * fleet_dtype_size(dts[t]));
                if (f == t) { /* COPY of the transposed view, every dtype */
                    ASSERT_OK(fleet_copy(srcT, outT));
                    check_bytes(outT, want, (size_t)N * fleet_dtype_size(dts[t]));
                }
                TEST_RELEASE(src, out, srcT, outT);
                free(src_host);
                free(want);
            }
        /* where(cond [R, 1], a [R, C], b [C]) for every dtype of a and b */
        float cv[R];
        for (int i = 0; i < R; i++)
            cv[i] = (float)(i % 2);
        int64_t cshape[2] = {R, 1}, bshape[1] = {C};
        for (int k = 0; k < 4; k++) {
            void *ch, *ah, *bh, *want = malloc((size_t)N * 8);
            fleet_tensor *cond = typed_tensor(dev, FLEET_DTYPE_BOOL, 2, cshape, cv, &ch);
            fleet_tensor *a = typed_tensor(dev, dts[k], 2, shape, vals, &ah);
            fleet_tensor *b = typed_tensor(dev, dts[k], 1, bshape, vals + 5, &bh);
            fleet_tensor *out;
            ASSERT_OK(fleet_tensor_create(dev, dts[k], 2, shape, &out));
            fleet__view cvw = {.data = ch, .ndim = 2, .shape = {R, C}, .strides = {1, 0}};
            fleet__view avw = contiguous_host(ah, 2, shape);
            fleet__view bvw = {.data = bh, .ndim = 2, .shape = {R, C}, .strides = {0, 1}};
            fleet__view wv = contiguous_host(want, 2, shape);
            ref_elementwise_ex(FLEET__EW_WHERE, 0, 0, dts[k], dts[k], &wv, &avw, &bvw, &cvw);
            ASSERT_OK(fleet_where(cond, a, b, out));
            check_bytes(out, want, (size_t)N * fleet_dtype_size(dts[k]));
            if (k == 3) /* bool values: a is a valid condition */
                ASSERT_OK(fleet_where(a, a, a, out));
            else
                ASSERT_REFUSED(fleet_where(a, a, a, out), FLEET_ERR_DTYPE_MISMATCH,
                               "cond must be bool");
            TEST_RELEASE(cond, a, b, out);
            free(ch);
            free(ah);
            free(bh);
            free(want);
        }
    }
}

/* ---- matmul --------------------------------------------------------------------- */

TEST(matmul_matches_reference)
{
    find_devices();
    static const int64_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 257, 129}, {64, 256, 128}};
    for (int di = 0; di < ndevs; di++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
            test_rng r = test_rng_make(5000 + s);
            float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
            float *want = malloc(sizeof(float) * m * n);
            test_fill_random(a, m * k, &r);
            test_fill_random(b, k * n, &r);
            ref_matmul(a, b, NULL, want, m, k, n);
            fleet_tensor *ta = test_tensor_2d(devs[di], m, k, a);
            fleet_tensor *tb = test_tensor_2d(devs[di], k, n, b);
            fleet_tensor *tc = test_tensor_2d(devs[di], m, n, NULL);
            ASSERT_OK(fleet_matmul(ta, tb, tc));
            check_out(tc, want, m * n, 1e-5, 2e-6 * sqrt((double)k) * 4);
            ASSERT_OK(fleet_tensor_release(ta));
            ASSERT_OK(fleet_tensor_release(tb));
            ASSERT_OK(fleet_tensor_release(tc));
            free(a);
            free(b);
            free(want);
        }
}

/* Empty tensors: ops on them succeed and touch nothing; a product over an
 * empty inner dimension is all zeros. */
TEST(empty_shapes)
{
    find_devices();
    for (int di = 0; di < ndevs; di++) {
        int64_t e[2] = {0, 3};
        fleet_tensor *x = test_tensor_new(devs[di], 2, e), *y = test_tensor_new(devs[di], 2, e);
        ASSERT_TRUE(fleet_tensor_is_contiguous(x));
        ASSERT_OK(fleet_add(x, x, y));
        ASSERT_OK(fleet_gelu(x, y));
        float seven[6] = {7, 7, 7, 7, 7, 7}, zeros[6] = {0};
        fleet_tensor *a = test_tensor_2d(devs[di], 2, 0, NULL),
                      *b = test_tensor_2d(devs[di], 0, 3, NULL);
        fleet_tensor *c = test_tensor_2d(devs[di], 2, 3, seven);
        ASSERT_OK(fleet_matmul(a, b, c));
        check_out(c, zeros, 6, 0, 0);
        fleet_tensor *ts[] = {x, y, a, b, c};
        for (int i = 0; i < 5; i++)
            ASSERT_OK(fleet_tensor_release(ts[i]));
    }
}

/* ---- f16 / bf16 elementwise on cuda ---------------------------------------------- */

static uint16_t to_half(float f, fleet_dtype dt)
{
    if (dt == FLEET_DTYPE_F16) {
        _Float16 h = (_Float16)f;
        uint16_t bits;
        memcpy(&bits, &h, 2);
        return bits;
    }
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16); /* round to nearest even */
}

static float from_half(uint16_t bits, fleet_dtype dt)
{
    if (dt == FLEET_DTYPE_F16) {
        _Float16 h;
        memcpy(&h, &bits, 2);
        return (float)h;
    }
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

TEST(half_elementwise_on_cuda)
{
    find_devices();
    const int64_t n = 1000;
    /* refused on cpu, saying where they run */
    fleet_tensor *c;
    ASSERT_OK(fleet_tensor_create(devs[0], FLEET_DTYPE_F16, 1, &n, &c));
    ASSERT_REFUSED(fleet_relu(c, c), FLEET_ERR_UNSUPPORTED, "cuda");
    ASSERT_OK(fleet_tensor_release(c));
    if (ndevs < 2) {
        printf("half_elementwise_on_cuda: no cuda device, f16/bf16 run on cuda only\n");
        return;
    }
    fleet_device *dev = devs[1];
    const fleet_dtype dts[] = {FLEET_DTYPE_F16, FLEET_DTYPE_BF16};
    for (int t = 0; t < 2; t++) {
        fleet_dtype dt = dts[t];
        test_rng r = test_rng_make(9000 + (uint64_t)t);
        uint16_t hx[1000], hy[1000], hout[1000];
        float x[1000], y[1000], want[1000], got[1000];
        for (int64_t i = 0; i < n; i++) {
            hx[i] = to_half(2 * test_rng_float(&r), dt);
            hy[i] = to_half(2 * test_rng_float(&r), dt);
            x[i] = from_half(hx[i], dt); /* the exact values the GPU sees */
            y[i] = from_half(hy[i], dt);
        }
        fleet_tensor *tx, *ty, *to;
        ASSERT_OK(fleet_tensor_create(dev, dt, 1, &n, &tx));
        ASSERT_OK(fleet_tensor_create(dev, dt, 1, &n, &ty));
        ASSERT_OK(fleet_tensor_create(dev, dt, 1, &n, &to));
        ASSERT_OK(fleet_tensor_copy_from_host(tx, hx, sizeof hx));
        ASSERT_OK(fleet_tensor_copy_from_host(ty, hy, sizeof hy));
        ASSERT_OK(fleet_mul(tx, ty, to));
        ASSERT_OK(fleet_gelu(to, to));
        ASSERT_OK(fleet_tensor_copy_to_host(to, hout, sizeof hout));
        for (int64_t i = 0; i < n; i++) {
            double v = (double)x[i] * y[i];
            v = (double)from_half(to_half((float)v, dt), dt); /* rounded in between */
            want[i] = (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
            got[i] = from_half(hout[i], dt);
        }
        /* one rounding to 11 (f16) or 8 (bf16) mantissa bits */
        ASSERT_CLOSE(got, want, n, dt == FLEET_DTYPE_F16 ? 2e-3 : 1.6e-2, 1e-3);
        checks++;
        ASSERT_OK(fleet_tensor_release(tx));
        ASSERT_OK(fleet_tensor_release(ty));
        ASSERT_OK(fleet_tensor_release(to));

        /* matmul [24,40] @ [40,16], accumulated in f32, rounded once */
        enum { M = 24, K = 40, N = 16 };
        int64_t sa[2] = {M, K}, sb[2] = {K, N}, sc[2] = {M, N};
        uint16_t ha[M * K], hb[K * N], hc[M * N];
        float fa[M * K], fb[K * N], mw[M * N], mg[M * N];
        for (int i = 0; i < M * K; i++)
            fa[i] = from_half(ha[i] = to_half(test_rng_float(&r), dt), dt);
        for (int i = 0; i < K * N; i++)
            fb[i] = from_half(hb[i] = to_half(test_rng_float(&r), dt), dt);
        ref_matmul(fa, fb, NULL, mw, M, K, N);
        ASSERT_OK(fleet_tensor_create(dev, dt, 2, sa, &tx));
        ASSERT_OK(fleet_tensor_create(dev, dt, 2, sb, &ty));
        ASSERT_OK(fleet_tensor_create(dev, dt, 2, sc, &to));
        ASSERT_OK(fleet_tensor_copy_from_host(tx, ha, sizeof ha));
        ASSERT_OK(fleet_tensor_copy_from_host(ty, hb, sizeof hb));
        ASSERT_OK(fleet_matmul(tx, ty, to));
        ASSERT_OK(fleet_tensor_copy_to_host(to, hc, sizeof hc));
        for (int i = 0; i < M * N; i++)
            mg[i] = from_half(hc[i], dt);
        ASSERT_CLOSE(mg, mw, M * N, dt == FLEET_DTYPE_F16 ? 2e-3 : 1.6e-2, 2e-3);
        checks++;
        ASSERT_OK(fleet_tensor_release(tx));
        ASSERT_OK(fleet_tensor_release(ty));
        ASSERT_OK(fleet_tensor_release(to));

        /* linear in half: x[24,40] @ w[16,40]^T + bias[16], the bias in
         * cuBLASLt's epilogue in the same dtype */
        enum { O = 16 };
        int64_t sw[2] = {O, K}, sbias[1] = {O}, sy[2] = {M, O};
        uint16_t hw[O * K], hbias[O], hl[M * O];
        float fw[O * K], fbias[O], lw[M * O], lg[M * O];
        for (int i = 0; i < O * K; i++)
            fw[i] = from_half(hw[i] = to_half(test_rng_float(&r), dt), dt);
        for (int i = 0; i < O; i++)
            fbias[i] = from_half(hbias[i] = to_half(test_rng_float(&r), dt), dt);
        ref_linear(fa, fw, fbias, lw, M, K, O);
        fleet_tensor *tw, *tbias, *tyl;
        ASSERT_OK(fleet_tensor_create(dev, dt, 2, sa, &tx));
        ASSERT_OK(fleet_tensor_create(dev, dt, 2, sw, &tw));
        ASSERT_OK(fleet_tensor_create(dev, dt, 1, sbias, &tbias));
        ASSERT_OK(fleet_tensor_create(dev, dt, 2, sy, &tyl));
        ASSERT_OK(fleet_tensor_copy_from_host(tx, ha, sizeof ha));
        ASSERT_OK(fleet_tensor_copy_from_host(tw, hw, sizeof hw));
        ASSERT_OK(fleet_tensor_copy_from_host(tbias, hbias, sizeof hbias));
        ASSERT_OK(fleet_linear(tx, tw, tbias, tyl));
        ASSERT_OK(fleet_tensor_copy_to_host(tyl, hl, sizeof hl));
        for (int i = 0; i < M * O; i++)
            lg[i] = from_half(hl[i], dt);
        ASSERT_CLOSE(lg, lw, M * O, dt == FLEET_DTYPE_F16 ? 2e-3 : 1.6e-2, 2e-3);
        checks++;
        TEST_RELEASE(tx, tw, tbias, tyl);
    }
}

/* Batched, broadcast and transposed matmul, and linear with a bias: inputs
 * as views (transposed: column-major storage; sliced: a padded row stride)
 * against the reference applied matrix by matrix. */
typedef struct mm_case {
    int nda, ndb;
    int64_t ba[2], bb[2]; /* batch dims (leading) of a and b */
    int64_t m, k, n;
    layout la, lb;
} mm_case;

static const mm_case mm_cases[] = {
    {2, 2, {0}, {0}, 7, 13, 5, LAYOUT_TRANSPOSED, LAYOUT_CONTIGUOUS},
    {2, 2, {0}, {0}, 33, 65, 17, LAYOUT_CONTIGUOUS, LAYOUT_TRANSPOSED},
    {2, 2, {0}, {0}, 16, 24, 8, LAYOUT_TRANSPOSED, LAYOUT_TRANSPOSED},
    {3, 3, {4}, {4}, 9, 11, 6, LAYOUT_CONTIGUOUS, LAYOUT_CONTIGUOUS},   /* bmm */
    {3, 2, {5}, {0}, 8, 12, 3, LAYOUT_CONTIGUOUS, LAYOUT_TRANSPOSED},   /* broadcast b */
    {4, 4, {2, 3}, {1, 3}, 4, 6, 5, LAYOUT_SLICED, LAYOUT_CONTIGUOUS},  /* broadcast a dim */
    /* one row: the matrix-vector path (cpu: sgemv), every layout */
    {2, 2, {0}, {0}, 1, 37, 19, LAYOUT_CONTIGUOUS, LAYOUT_CONTIGUOUS},
    {2, 2, {0}, {0}, 1, 37, 19, LAYOUT_TRANSPOSED, LAYOUT_CONTIGUOUS},
    {2, 2, {0}, {0}, 1, 37, 19, LAYOUT_CONTIGUOUS, LAYOUT_TRANSPOSED},
    {2, 2, {0}, {0}, 1, 37, 19, LAYOUT_TRANSPOSED, LAYOUT_TRANSPOSED},
    {3, 2, {3}, {0}, 1, 20, 9, LAYOUT_SLICED, LAYOUT_SLICED},
};

/* element (i, j) of matrix `mat` (flattened batch index over `bshape`) of an
 * input view with `nb` batch dims broadcast to out's. */
static float mm_at(const input *in, int nb_in, int nb_out, const int64_t *bidx, int64_t i, int64_t j)
{
    const fleet__view *v = &in->hv;
    int64_t off = 0;
    for (int d = 0; d < nb_in; d++) {
        int od = d + (nb_out - nb_in);
        off += (v->shape[d] == 1 ? 0 : bidx[od]) * v->strides[d];
    }
    off += i * v->strides[v->ndim - 2] + j * v->strides[v->ndim - 1];
    return ((const float *)v->data)[off];
}

TEST(batched_and_transposed_matmul_match_reference)
{
    find_devices();
    for (int di = 0; di < ndevs; di++)
        for (size_t c = 0; c < sizeof mm_cases / sizeof mm_cases[0]; c++) {
            const mm_case *mc = &mm_cases[c];
            test_rng r = test_rng_make(7000 + c);
            int nba = mc->nda - 2, nbb = mc->ndb - 2, nbo = nba > nbb ? nba : nbb;
            int64_t sa[4], sb[4], so[4];
            for (int d = 0; d < nba; d++) sa[d] = mc->ba[d];
            for (int d = 0; d < nbb; d++) sb[d] = mc->bb[d];
            for (int d = 0; d < nbo; d++) {
                int da = d - (nbo - nba), db = d - (nbo - nbb);
                int64_t x = da >= 0 ? mc->ba[da] : 1, y = db >= 0 ? mc->bb[db] : 1;
                so[d] = x > y ? x : y;
            }
            sa[nba] = mc->m; sa[nba + 1] = mc->k;
            sb[nbb] = mc->k; sb[nbb + 1] = mc->n;
            so[nbo] = mc->m; so[nbo + 1] = mc->n;
            input a = make_input(devs[di], mc->nda, sa, mc->la, &r, 0);
            input b = make_input(devs[di], mc->ndb, sb, mc->lb, &r, 0);
            fleet_tensor *out = test_tensor_new(devs[di], nbo + 2, so);
            int64_t mats = 1;
            for (int d = 0; d < nbo; d++)
                mats *= so[d];
            int64_t n = mats * mc->m * mc->n;
            float *want = malloc(sizeof(float) * (size_t)n);
            int64_t bidx[4] = {0};
            for (int64_t q = 0; q < mats; q++) {
                for (int64_t i = 0; i < mc->m; i++)
                    for (int64_t j = 0; j < mc->n; j++) {
                        double acc = 0;
                        for (int64_t p = 0; p < mc->k; p++)
                            acc += (double)mm_at(&a, nba, nbo, bidx, i, p) *
                                   mm_at(&b, nbb, nbo, bidx, p, j);
                        want[(q * mc->m + i) * mc->n + j] = (float)acc;
                    }
                for (int d = nbo - 1; d >= 0 && ++bidx[d] == so[d]; d--)
                    bidx[d] = 0;
            }
            ASSERT_OK(fleet_matmul(a.view, b.view, out));
            check_out(out, want, n, 1e-5, 1e-5);
            free(want);
            ASSERT_OK(fleet_tensor_release(out));
            free_input(&a);
            free_input(&b);
        }
}

TEST(linear_matches_reference)
{
    find_devices();
    static const int64_t shapes[][4] = {{1, 1, 4, 3}, {2, 5, 64, 32}, {1, 7, 256, 128}};
    for (int di = 0; di < ndevs; di++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t bt = shapes[s][0], rows = shapes[s][1], in = shapes[s][2], outf = shapes[s][3];
            test_rng r = test_rng_make(8000 + s);
            int64_t xs[3] = {bt, rows, in}, ws[2] = {outf, in}, ys[3] = {bt, rows, outf};
            float *x = malloc(sizeof(float) * bt * rows * in), *w = malloc(sizeof(float) * outf * in);
            float bias[128], *want = malloc(sizeof(float) * bt * rows * outf);
            test_fill_random(x, bt * rows * in, &r);
            test_fill_random(w, outf * in, &r);
            test_fill_random(bias, outf, &r);
            ref_linear(x, w, bias, want, bt * rows, in, outf);
            fleet_tensor *tx = test_tensor_new(devs[di], 3, xs),
                          *tw = test_tensor_new(devs[di], 2, ws);
            fleet_tensor *tb = test_tensor_new(devs[di], 1, &outf),
                          *ty = test_tensor_new(devs[di], 3, ys);
            ASSERT_OK(fleet_tensor_copy_from_host(tx, x, sizeof(float) * bt * rows * in));
            ASSERT_OK(fleet_tensor_copy_from_host(tw, w, sizeof(float) * outf * in));
            ASSERT_OK(fleet_tensor_copy_from_host(tb, bias, sizeof(float) * outf));
            ASSERT_OK(fleet_linear(tx, tw, tb, ty));
            check_out(ty, want, bt * rows * outf, 1e-5, 2e-6 * sqrt((double)in) * 4);
            /* the same x as a transposed view (not contiguous): the batched
             * GEMM path, bias included */
            int64_t ps[3] = {bt, in, rows};
            float *xt = malloc(sizeof(float) * bt * rows * in);
            for (int64_t b = 0; b < bt; b++)
                for (int64_t i = 0; i < rows; i++)
                    for (int64_t p = 0; p < in; p++)
                        xt[(b * in + p) * rows + i] = x[(b * rows + i) * in + p];
            fleet_tensor *tp = test_tensor_new(devs[di], 3, ps), *xv;
            ASSERT_OK(fleet_tensor_copy_from_host(tp, xt, sizeof(float) * bt * rows * in));
            ASSERT_OK(fleet_tensor_transpose(tp, 1, 2, &xv));
            ASSERT_OK(fleet_linear(xv, tw, tb, ty));
            check_out(ty, want, bt * rows * outf, 1e-5, 2e-6 * sqrt((double)in) * 4);
            TEST_RELEASE(xv, tp);
            free(xt);
            ASSERT_STATUS(fleet_linear(tx, tx, tb, ty), FLEET_ERR_SHAPE_MISMATCH);
            fleet_tensor *ts[] = {tx, tw, tb, ty};
            for (int i = 0; i < 4; i++)
                ASSERT_OK(fleet_tensor_release(ts[i]));
            free(x);
            free(w);
            free(want);
        }
}

/* ---- row ops: softmax, layer norm, sum, mean ----------------------------------- */

/* A view's values gathered into a new contiguous host buffer. */
static float *gather(const input *in)
{
    int64_t n = 1;
    fleet__view c = {.ndim = in->hv.ndim};
    for (int d = in->hv.ndim - 1; d >= 0; d--) {
        c.shape[d] = in->hv.shape[d];
        c.strides[d] = n;
        n *= in->hv.shape[d];
    }
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    c.data = p;
    ref_elementwise(FLEET__EW_COPY, &c, &in->hv, NULL);
    return p;
}

/* shape as [outer, shape[dim], inner]. */
static void split_at(const shape_case *s, int dim, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < s->ndim; d++) {
        if (d < dim)
            *outer *= s->shape[d];
        else if (d > dim)
            *inner *= s->shape[d];
    }
    *n = s->shape[dim];
}

static const struct {
    shape_case s;
    int dim;
    layout lay;
} softmax_cases[] = {
    {{1, {1}}, 0, LAYOUT_CONTIGUOUS},          {{1, {7}}, -1, LAYOUT_CONTIGUOUS},
    {{2, {33, 1000}}, -1, LAYOUT_CONTIGUOUS},  {{3, {4, 33, 5}}, 1, LAYOUT_CONTIGUOUS},
    {{2, {9, 17}}, 0, LAYOUT_TRANSPOSED},      {{2, {9, 17}}, 1, LAYOUT_TRANSPOSED},
    {{2, {8, 22}}, -1, LAYOUT_SLICED},         {{4, {5, 3, 2, 4}}, 2, LAYOUT_PERMUTED},
    {{3, {3, 7, 1}}, -1, LAYOUT_CONTIGUOUS},   {{3, {2, 1000, 3}}, 1, LAYOUT_CONTIGUOUS},
};

TEST(softmax_matches_reference)
{
    find_devices();
    for (int di = 0; di < ndevs; di++)
        for (size_t c = 0; c < sizeof softmax_cases / sizeof softmax_cases[0]; c++) {
            const shape_case *s = &softmax_cases[c].s;
            int dim = softmax_cases[c].dim, d = dim < 0 ? dim + s->ndim : dim;
            test_rng r = test_rng_make(11000 + c);
            input x = make_input(devs[di], s->ndim, s->shape, softmax_cases[c].lay, &r, 0);
            float *xc = gather(&x);
            int64_t outer, n, inner;
            split_at(s, d, &outer, &n, &inner);
            float *want = malloc(sizeof(float) * (size_t)(outer * n * inner));
            fleet_tensor *out = test_tensor_new(devs[di], s->ndim, s->shape);
            ref_log_softmax(xc, want, outer, n, inner);
            ASSERT_OK(fleet_log_softmax(x.view, dim, out));
            check_out(out, want, outer * n * inner, 1e-5, 2e-6);
            ref_softmax(xc, want, outer, n, inner);
            ASSERT_OK(fleet_softmax(x.view, dim, out));
            check_out(out, want, outer * n * inner, 1e-5, 1e-6);
            if (softmax_cases[c].lay == LAYOUT_CONTIGUOUS) { /* in place */
                ASSERT_OK(fleet_softmax(x.view, dim, x.view));
                check_out(x.view, want, outer * n * inner, 1e-5, 1e-6);
            }
            ASSERT_OK(fleet_tensor_release(out));
            free(want);
            free(xc);
            free_input(&x);
        }
}

/* Large logits: subtracting the max keeps exp finite. */
TEST(softmax_is_stable_for_large_inputs)
{
    find_devices();
    for (int di = 0; di < ndevs; di++) {
        float x[4] = {1000.0f, 1001.0f, 1002.0f, -1000.0f}, want[4];
        ref_softmax(x, want, 1, 4, 1);
        fleet_tensor *t = test_tensor_2d(devs[di], 1, 4, x);
        ASSERT_OK(fleet_softmax(t, 1, t));
        check_out(t, want, 4, 1e-6, 1e-7);
        ASSERT_OK(fleet_tensor_release(t));
    }
}

static const struct {
    shape_case s;
    layout lay;
} layer_norm_cases[] = {
    {{1, {1}}, LAYOUT_CONTIGUOUS},         {{1, {7}}, LAYOUT_CONTIGUOUS},
    {{2, {33, 1000}}, LAYOUT_CONTIGUOUS},  {{3, {2, 5, 33}}, LAYOUT_SLICED},
    {{2, {9, 17}}, LAYOUT_TRANSPOSED},     {{4, {5, 3, 2, 4}}, LAYOUT_PERMUTED},
};

TEST(layer_norm_matches_reference)
{
    find_devices();
    const float eps = 1e-5f;
    for (int di = 0; di < ndevs; di++)
        for (size_t c = 0; c < sizeof layer_norm_cases / sizeof layer_norm_cases[0]; c++)
            for (int affine = 0; affine < 4; affine++) { /* bit 0: gamma, bit 1: beta */
                const shape_case *s = &layer_norm_cases[c].s;
                test_rng r = test_rng_make(12000 + c * 10 + (uint64_t)affine);
                input x = make_input(devs[di], s->ndim, s->shape, layer_norm_cases[c].lay, &r, 0);
                int64_t n = s->shape[s->ndim - 1], rows = fleet_tensor_numel(x.view) / n;
                float *g = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
                test_fill_random(g, n, &r);
                test_fill_random(b, n, &r);
                fleet_tensor *tg = test_tensor_new(devs[di], 1, &n),
                              *tb = test_tensor_new(devs[di], 1, &n);
                ASSERT_OK(fleet_tensor_copy_from_host(tg, g, sizeof(float) * (size_t)n));
                ASSERT_OK(fleet_tensor_copy_from_host(tb, b, sizeof(float) * (size_t)n));
                float *xc = gather(&x), *want = malloc(sizeof(float) * (size_t)(rows * n));
                ref_layer_norm(xc, affine & 1 ? g : NULL, affine & 2 ? b : NULL, eps, want,
                               rows, n);
                fleet_tensor *out = test_tensor_new(devs[di], s->ndim, s->shape);
                ASSERT_OK(fleet_layer_norm(x.view, affine & 1 ? tg : NULL, affine & 2 ? tb : NULL,
                                           eps, out));
                check_out(out, want, rows * n, 1e-5, 1e-5);
                if (layer_norm_cases[c].lay == LAYOUT_CONTIGUOUS) { /* in place */
                    ASSERT_OK(fleet_layer_norm(x.view, affine & 1 ? tg : NULL,
                                               affine & 2 ? tb : NULL, eps, x.view));
                    check_out(x.view, want, rows * n, 1e-5, 1e-5);
                }
                fleet_tensor *ts[] = {out, tg, tb};
                for (int i = 0; i < 3; i++)
                    ASSERT_OK(fleet_tensor_release(ts[i]));
                free(g);
                free(b);
                free(xc);
                free(want);
                free_input(&x);
            }
}

static const struct {
    shape_case s;
    int dim, keepdim;
    layout lay;
} reduce_cases[] = {
    {{1, {1}}, 0, 0, LAYOUT_CONTIGUOUS},           {{1, {1000}}, -1, 1, LAYOUT_CONTIGUOUS},
    {{1, {7}}, 0, 0, LAYOUT_CONTIGUOUS},           {{2, {33, 7}}, 0, 0, LAYOUT_CONTIGUOUS},
    {{3, {4, 33, 5}}, 1, 1, LAYOUT_CONTIGUOUS},    {{2, {9, 17}}, 1, 0, LAYOUT_TRANSPOSED},
    {{2, {9, 17}}, 0, 1, LAYOUT_TRANSPOSED},       {{4, {5, 3, 2, 4}}, 0, 1, LAYOUT_PERMUTED},
    {{4, {5, 3, 2, 4}}, -1, 0, LAYOUT_PERMUTED},   {{2, {8, 22}}, -1, 0, LAYOUT_SLICED},
    {{3, {2, 1000, 3}}, 1, 0, LAYOUT_CONTIGUOUS},  {{2, {33, 1000}}, -1, 1, LAYOUT_CONTIGUOUS},
};

TEST(sum_mean_and_max_match_reference)
{
    find_devices();
    for (int di = 0; di < ndevs; di++)
        for (size_t c = 0; c < sizeof reduce_cases / sizeof reduce_cases[0]; c++)
            for (int mean = 0; mean < 3; mean++) { /* sum, mean, max */
                const shape_case *s = &reduce_cases[c].s;
                int dim = reduce_cases[c].dim, d = dim < 0 ? dim + s->ndim : dim;
                int keepdim = reduce_cases[c].keepdim;
                test_rng r = test_rng_make(13000 + c * 2 + (uint64_t)mean);
                input x = make_input(devs[di], s->ndim, s->shape, reduce_cases[c].lay, &r, 0);
                int64_t outer, n, inner, oshape[4];
                split_at(s, d, &outer, &n, &inner);
                int ond = 0;
                for (int k = 0; k < s->ndim; k++)
                    if (k != d)
                        oshape[ond++] = s->shape[k];
                    else if (keepdim)
                        oshape[ond++] = 1;
                float *xc = gather(&x), *want = malloc(sizeof(float) * (size_t)(outer * inner));
                if (mean == 2)
                    ref_max(xc, want, outer, n, inner);
                else
                    ref_sum(xc, want, outer, n, inner, mean);
                fleet_tensor *out = test_tensor_new(devs[di], ond, oshape);
                ASSERT_EQ(fleet_tensor_ndim(out), keepdim ? s->ndim : s->ndim - 1);
                static fleet_status (*const fns[])(const fleet_tensor *, int, int,
                                                   fleet_tensor *) = {fleet_sum, fleet_mean,
                                                                      fleet_max};
                ASSERT_OK(fns[mean](x.view, dim, keepdim, out));
                /* float accumulation on the device: the error grows with n */
                check_out(out, want, outer * inner, 1e-5, 4e-7 * (double)(mean ? 1 : n));
                ASSERT_OK(fleet_tensor_release(out));
                free(xc);
                free(want);
                free_input(&x);
            }
}

/* Reducing an empty dimension: the sum is 0, the mean NaN, the max -inf;
 * empty rows are left alone. */
TEST(row_ops_on_empty_shapes)
{
    find_devices();
    for (int di = 0; di < ndevs; di++) {
        int64_t e[2] = {0, 3}, three = 3;
        fleet_tensor *x = test_tensor_new(devs[di], 2, e), *y = test_tensor_new(devs[di], 2, e);
        float seven[3] = {7, 7, 7}, zeros[3] = {0, 0, 0}, got[3];
        fleet_tensor *o = test_tensor_2d(devs[di], 1, 3, seven);
        ASSERT_OK(fleet_softmax(x, 0, y));
        ASSERT_OK(fleet_layer_norm(x, NULL, NULL, 1e-5f, y));
        ASSERT_OK(fleet_sum(x, 0, 1, o));
        check_out(o, zeros, 3, 0, 0);
        fleet_tensor *o1 = test_tensor_new(devs[di], 1, &three);
        ASSERT_OK(fleet_mean(x, 0, 0, o1));
        test_tensor_read(o1, got);
        for (int i = 0; i < 3; i++)
            ASSERT_TRUE(isnan(got[i]));
        ASSERT_OK(fleet_log_softmax(x, 0, y));
        ASSERT_OK(fleet_max(x, 0, 0, o1)); /* the max of nothing: -inf */
        test_tensor_read(o1, got);
        for (int i = 0; i < 3; i++)
            ASSERT_TRUE(isinf(got[i]) && got[i] < 0);
        fleet_tensor *ts[] = {x, y, o, o1};
        for (int i = 0; i < 4; i++)
            ASSERT_OK(fleet_tensor_release(ts[i]));
    }
}

/* f16/bf16 row ops on cuda: inputs rounded to the dtype, the reference run
 * on those exact values, the output rounded once. */
TEST(half_row_ops_on_cuda)
{
    find_devices();
    if (ndevs < 2) {
        printf("half_row_ops_on_cuda: no cuda device, f16/bf16 run on cuda only\n");
        return;
    }
    enum { R = 5, C = 300 };
    const int64_t shape[2] = {R, C}, c1 = C, r1 = R;
    const fleet_dtype dts[] = {FLEET_DTYPE_F16, FLEET_DTYPE_BF16};
    for (int t = 0; t < 2; t++) {
        fleet_dtype dt = dts[t];
        double tol = dt == FLEET_DTYPE_F16 ? 2e-3 : 1.6e-2;
        test_rng r = test_rng_make(14000 + (uint64_t)t);
        static uint16_t hx[R * C], hg[C], hb[C], hout[R * C];
        static float x[R * C], g[C], b[C], want[R * C], got[R * C];
        for (int i = 0; i < R * C; i++)
            x[i] = from_half(hx[i] = to_half(2 * test_rng_float(&r), dt), dt);
        for (int i = 0; i < C; i++) {
            g[i] = from_half(hg[i] = to_half(test_rng_float(&r), dt), dt);
            b[i] = from_half(hb[i] = to_half(test_rng_float(&r), dt), dt);
        }
        fleet_tensor *tx, *tg, *tb, *to, *ts;
        ASSERT_OK(fleet_tensor_create(devs[1], dt, 2, shape, &tx));
        ASSERT_OK(fleet_tensor_create(devs[1], dt, 1, &c1, &tg));
        ASSERT_OK(fleet_tensor_create(devs[1], dt, 1, &c1, &tb));
        ASSERT_OK(fleet_tensor_create(devs[1], dt, 2, shape, &to));
        ASSERT_OK(fleet_tensor_create(devs[1], dt, 1, &r1, &ts));
        ASSERT_OK(fleet_tensor_copy_from_host(tx, hx, sizeof hx));
        ASSERT_OK(fleet_tensor_copy_from_host(tg, hg, sizeof hg));
        ASSERT_OK(fleet_tensor_copy_from_host(tb, hb, sizeof hb));

        ASSERT_OK(fleet_softmax(tx, -1, to));
        ASSERT_OK(fleet_tensor_copy_to_host(to, hout, sizeof hout));
        ref_softmax(x, want, R, C, 1);
        for (int i = 0; i < R * C; i++)
            got[i] = from_half(hout[i], dt);
        ASSERT_CLOSE(got, want, R * C, tol, 1e-4);

        ASSERT_OK(fleet_layer_norm(tx, tg, tb, 1e-5f, to));
        ASSERT_OK(fleet_tensor_copy_to_host(to, hout, sizeof hout));
        ref_layer_norm(x, g, b, 1e-5, want, R, C);
        for (int i = 0; i < R * C; i++)
            got[i] = from_half(hout[i], dt);
        ASSERT_CLOSE(got, want, R * C, tol, tol);

        ASSERT_OK(fleet_mean(tx, 1, 0, ts));
        ASSERT_OK(fleet_tensor_copy_to_host(ts, hout, sizeof(uint16_t) * R));
        ref_sum(x, want, R, C, 1, 1);
        for (int i = 0; i < R; i++)
            got[i] = from_half(hout[i], dt);
        ASSERT_CLOSE(got, want, R, tol, 1e-3);
        checks += 3;
        fleet_tensor *rel[] = {tx, tg, tb, to, ts};
        for (int i = 0; i < 5; i++)
            ASSERT_OK(fleet_tensor_release(rel[i]));
    }
}

/* ---- embedding, concat, conv1d/conv2d -------------------------------------------- */

static fleet_tensor *tensor_from(fleet_device *dev, int ndim, const int64_t *shape, const float *host)
{
    fleet_tensor *t = test_tensor_new(dev, ndim, shape);
    if (host != NULL)
        ASSERT_OK(fleet_tensor_copy_from_host(t, host, fleet_tensor_nbytes(t)));
    return t;
}

/* Indices [3, 5] into a [11, 13] table, in range except -1, V and V + 100:
 * those rows come back as zeros. */
TEST(embedding_matches_reference)
{
    find_devices();
    enum { V = 11, D = 13, R = 3, C = 5 };
    const fleet_dtype dts[] = {FLEET_DTYPE_I32, FLEET_DTYPE_I64};
    for (int di = 0; di < ndevs; di++)
        for (int t = 0; t < 2; t++) {
            test_rng r = test_rng_make(11000 + (uint64_t)(di * 2 + t));
            float w[V * D], want[R * C * D];
            test_fill_random(w, V * D, &r);
            int64_t i64[R * C];
            int32_t i32[R * C];
            for (int i = 0; i < R * C; i++)
                i64[i] = (int64_t)(test_rng_float(&r) * 0.5f * V + 0.5f * V) % V;
            i64[2] = -1, i64[7] = V, i64[11] = V + 100;
            for (int i = 0; i < R * C; i++)
                i32[i] = (int32_t)i64[i];
            const void *idx = dts[t] == FLEET_DTYPE_I32 ? (const void *)i32 : (const void *)i64;
            ref_embedding(w, V, D, idx, dts[t], R * C, want);
            for (int j = 0; j < D; j++) /* the bad indices gave zero rows */
                ASSERT_TRUE(want[2 * D + j] == 0.0f && want[7 * D + j] == 0.0f &&
                            want[11 * D + j] == 0.0f);
            int64_t ws[2] = {V, D}, is[2] = {R, C}, os[3] = {R, C, D};
            fleet_tensor *tw = tensor_from(devs[di], 2, ws, w), *ti;
            ASSERT_OK(fleet_tensor_create(devs[di], dts[t], 2, is, &ti));
            ASSERT_OK(fleet_tensor_copy_from_host(ti, idx, fleet_tensor_nbytes(ti)));
            float sentinel[R * C * D];
            for (int i = 0; i < R * C * D; i++)
                sentinel[i] = 42.0f;
            fleet_tensor *to = tensor_from(devs[di], 3, os, sentinel);
            ASSERT_OK(fleet_embedding(tw, ti, to));
            check_out(to, want, R * C * D, 0, 0);
            ASSERT_OK(fleet_tensor_release(tw));
            ASSERT_OK(fleet_tensor_release(ti));
            ASSERT_OK(fleet_tensor_release(to));
        }
}

/* Three inputs of a 3-D shape along each dimension (and dim -1): one
 * contiguous, one a transposed view, one a sliced view. */
TEST(concat_matches_reference)
{
    find_devices();
    static const int64_t base[3] = {4, 5, 6}, along[3] = {2, 3, 4};
    static const layout lays[3] = {LAYOUT_CONTIGUOUS, LAYOUT_TRANSPOSED, LAYOUT_SLICED};
    for (int di = 0; di < ndevs; di++)
        for (int dim = -1; dim < 3; dim++) {
            int d = dim < 0 ? dim + 3 : dim;
            test_rng r = test_rng_make(12000 + (uint64_t)(di * 10 + d));
            input in[3];
            const fleet_tensor *views[3];
            const fleet__view *hvs[3];
            int64_t os[3] = {base[0], base[1], base[2]};
            os[d] = 0;
            for (int i = 0; i < 3; i++) {
                int64_t s[3] = {base[0], base[1], base[2]};
                s[d] = along[i];
                os[d] += along[i];
                in[i] = make_input(devs[di], 3, s, lays[i], &r, 0);
                views[i] = in[i].view;
                hvs[i] = &in[i].hv;
            }
            ASSERT_TRUE(!fleet_tensor_is_contiguous(in[1].view));
            int64_t n = os[0] * os[1] * os[2];
            float *want = malloc(sizeof(float) * (size_t)n);
            fleet__view wv = {.data = want, .ndim = 3,
                              .shape = {os[0], os[1], os[2]},
                              .strides = {os[1] * os[2], os[2], 1}};
            ref_concat(hvs, 3, d, &wv);
            fleet_tensor *out = test_tensor_new(devs[di], 3, os);
            ASSERT_OK(fleet_concat(views, 3, dim, out));
            check_out(out, want, n, 0, 0);
            free(want);
            ASSERT_OK(fleet_tensor_release(out));
            for (int i = 0; i < 3; i++)
                free_input(&in[i]);
        }
}

typedef struct conv_case {
    int sp; /* spatial dimensions */
    int64_t n, c, cout, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
    int bias;
} conv_case;

static const conv_case conv_cases[] = {
    /* conv1d: the Conv1d net's first layer, then stride 2, dilation 2, no bias */
    {1, 2, 1, 64, 1, 1024, 1, 3, 1, 1, 0, 1, 1, 1, 1},
    {1, 3, 5, 7, 1, 37, 1, 4, 1, 2, 0, 0, 1, 1, 1},
    {1, 2, 3, 4, 1, 29, 1, 3, 1, 1, 0, 2, 1, 2, 1},
    {1, 1, 6, 5, 1, 17, 1, 5, 1, 3, 0, 1, 1, 2, 0},
    /* conv2d */
    {2, 2, 3, 4, 9, 11, 3, 2, 2, 1, 1, 0, 1, 2, 1},
    {2, 1, 2, 3, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 0},
    {2, 3, 1, 2, 5, 6, 1, 1, 2, 3, 0, 0, 1, 1, 1},
    {2, 2, 4, 3, 8, 10, 2, 3, 1, 2, 2, 1, 2, 1, 1},
};

TEST(conv_matches_reference)
{
    find_devices();
    for (int di = 0; di < ndevs; di++)
        for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++) {
            const conv_case *k = &conv_cases[c];
            fleet__conv_geom g = {.n = k->n, .c = k->c, .cout = k->cout, .h = k->h, .w = k->w,
                                  .kh = k->kh, .kw = k->kw, .sh = k->sh, .sw = k->sw, .ph = k->ph,
                                  .pw = k->pw, .dh = k->dh, .dw = k->dw};
            g.oh = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
            g.ow = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
            int64_t nx = g.n * g.c * g.h * g.w, nw = g.cout * g.c * g.kh * g.kw;
            int64_t no = g.n * g.cout * g.oh * g.ow;
            test_rng r = test_rng_make(13000 + c);
            float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)nw);
            float *bias = malloc(sizeof(float) * (size_t)g.cout);
            float *want = malloc(sizeof(float) * (size_t)no);
            test_fill_random(x, nx, &r);
            test_fill_random(w, nw, &r);
            test_fill_random(bias, g.cout, &r);
            ref_conv2d(&g, x, w, k->bias ? bias : NULL, want);
            fleet_tensor *tx, *tw, *to, *tb = tensor_from(devs[di], 1, &g.cout, bias);
            if (k->sp == 1) {
                int64_t xs[3] = {g.n, g.c, g.w}, ws[3] = {g.cout, g.c, g.kw};
                int64_t os[3] = {g.n, g.cout, g.ow};
                tx = tensor_from(devs[di], 3, xs, x);
                tw = tensor_from(devs[di], 3, ws, w);
                to = tensor_from(devs[di], 3, os, NULL);
                ASSERT_OK(fleet_conv1d(tx, tw, k->bias ? tb : NULL, g.sw, g.pw, g.dw, to));
            } else {
                int64_t xs[4] = {g.n, g.c, g.h, g.w}, ws[4] = {g.cout, g.c, g.kh, g.kw};
                int64_t os[4] = {g.n, g.cout, g.oh, g.ow};
                tx = tensor_from(devs[di], 4, xs, x);
                tw = tensor_from(devs[di], 4, ws, w);
                to = tensor_from(devs[di], 4, os, NULL);
                ASSERT_OK(fleet_conv2d(tx, tw, k->bias ? tb : NULL, g.sh, g.sw, g.ph, g.pw, g.dh,
                                       g.dw, to));
            }
            int64_t kk = g.c * g.kh * g.kw;
            check_out(to, want, no, 1e-5, 2e-6 * sqrt((double)kk) * 4 + 1e-6);
            fleet_tensor *ts[] = {tx, tw, to, tb};
            for (int i = 0; i < 4; i++)
                ASSERT_OK(fleet_tensor_release(ts[i]));
            free(x);
            free(w);
            free(bias);
            free(want);
        }
}

/* Attention [batch 2, heads 3] with and without an additive causal mask, and
 * with k/v shared by every head (broadcast batch dimension). */
TEST(attention_matches_reference)
{
    find_devices();
    enum { B = 2, H = 3, LQ = 5, LK = 7, D = 8, DV = 4 };
    for (int di = 0; di < ndevs; di++)
        for (int variant = 0; variant < 3; variant++) {
            int masked = variant == 1, shared_kv = variant == 2;
            test_rng r = test_rng_make(9500 + (uint64_t)variant);
            int64_t hk = shared_kv ? 1 : H;
            static float q[B * H * LQ * D], k[B * H * LK * D], v[B * H * LK * DV];
            static float mask[LQ * LK], mask_full[B * H * LQ * LK], want[B * H * LQ * DV];
            static float kx[B * H * LK * D], vx[B * H * LK * DV];
            test_fill_random(q, B * H * LQ * D, &r);
            test_fill_random(k, B * hk * LK * D, &r);
            test_fill_random(v, B * hk * LK * DV, &r);
            for (int i = 0; i < LQ; i++)
                for (int j = 0; j < LK; j++)
                    mask[i * LK + j] = j > i + (LK - LQ) ? -1e9f : 0.0f;
            for (int bh = 0; bh < B * H; bh++) { /* expand for the reference */
                int src = shared_kv ? bh / H : bh;
                memcpy(kx + bh * LK * D, k + src * LK * D, sizeof(float) * LK * D);
                memcpy(vx + bh * LK * DV, v + src * LK * DV, sizeof(float) * LK * DV);
                memcpy(mask_full + bh * LQ * LK, mask, sizeof mask);
            }
            ref_attention(q, kx, vx, masked ? mask_full : NULL, B * H, LQ, LK, D, DV,
                          1.0 / sqrt((double)D), want);
            int64_t sq[4] = {B, H, LQ, D}, sk[4] = {B, hk, LK, D}, sv[4] = {B, hk, LK, DV};
            int64_t so[4] = {B, H, LQ, DV}, sm[2] = {LQ, LK};
            fleet_tensor *tq = test_tensor_new(devs[di], 4, sq),
                          *tk = test_tensor_new(devs[di], 4, sk);
            fleet_tensor *tv = test_tensor_new(devs[di], 4, sv),
                          *to = test_tensor_new(devs[di], 4, so);
            fleet_tensor *tm = test_tensor_new(devs[di], 2, sm);
            ASSERT_OK(fleet_tensor_copy_from_host(tq, q, fleet_tensor_nbytes(tq)));
            ASSERT_OK(fleet_tensor_copy_from_host(tk, k, fleet_tensor_nbytes(tk)));
            ASSERT_OK(fleet_tensor_copy_from_host(tv, v, fleet_tensor_nbytes(tv)));
            ASSERT_OK(fleet_tensor_copy_from_host(tm, mask, sizeof mask));
            ASSERT_OK(fleet_attention(tq, tk, tv, masked ? tm : NULL, 0.0f, to));
            check_out(to, want, B * H * LQ * DV, 1e-5, 1e-6);
            ASSERT_STATUS(fleet_attention(tq, tv, tk, NULL, 0.0f, to), FLEET_ERR_SHAPE_MISMATCH);
            fleet_tensor *ts[] = {tq, tk, tv, to, tm};
            for (int i = 0; i < 5; i++)
                ASSERT_OK(fleet_tensor_release(ts[i]));
        }
}

/* fleet_gather along each axis of a [4, 5, 6] tensor, f32 and i64, with
 * index tensors of 0, 1 and 2 dimensions, negative and out-of-range
 * indices, i32 and i64 indices. */
TEST(gather_matches_reference)
{
    find_devices();
    static const int64_t xs[3] = {4, 5, 6};
    static const int64_t idx_vals[6] = {2, -1, 0, 7, 3, -5};
    static const struct {
        int ndim;
        int64_t shape[2];
    } idx_shapes[] = {{0, {0}}, {1, {3}}, {2, {2, 3}}};
    for (int di = 0; di < ndevs; di++)
        for (int dt = 0; dt < 2; dt++)
            for (int axis = -1; axis < 3; axis++)
                for (size_t is = 0; is < sizeof idx_shapes / sizeof idx_shapes[0]; is++)
                    for (int it = 0; it < 2; it++) {
                        fleet_dtype xdt = dt ? FLEET_DTYPE_I64 : FLEET_DTYPE_F32;
                        fleet_dtype idt = it ? FLEET_DTYPE_I64 : FLEET_DTYPE_I32;
                        size_t es = fleet_dtype_size(xdt);
                        int d = axis < 0 ? axis + 3 : axis;
                        int64_t n = 1, outer = 1, inner = 1;
                        for (int k = 0; k < idx_shapes[is].ndim; k++)
                            n *= idx_shapes[is].shape[k];
                        for (int k = 0; k < d; k++)
                            outer *= xs[k];
                        for (int k = d + 1; k < 3; k++)
                            inner *= xs[k];
                        /* at most 6 x 30 elements out (axis 0, six indices) */
                        unsigned char xh[4 * 5 * 6 * 8], want[6 * 30 * 8], got[6 * 30 * 8];
                        for (int i = 0; i < 120; i++) {
                            int64_t v64 = i * 1000003LL - 7;
                            float vf = (float)i * 0.5f - 3.0f;
                            memcpy(xh + (size_t)i * es, dt ? (const void *)&v64 : &vf, es);
                        }
                        int32_t i32[6];
                        for (int i = 0; i < 6; i++)
                            i32[i] = (int32_t)idx_vals[i];
                        ref_gather(xh, es, outer, xs[d], inner, idx_vals, n, want);
                        fleet_tensor *x, *ix, *out;
                        ASSERT_OK(fleet_tensor_create(devs[di], xdt, 3, xs, &x));
                        ASSERT_OK(fleet_tensor_copy_from_host(x, xh, 120 * es));
                        ASSERT_OK(fleet_tensor_create(devs[di], idt, idx_shapes[is].ndim,
                                                      idx_shapes[is].shape, &ix));
                        ASSERT_OK(fleet_tensor_copy_from_host(ix, it ? (const void *)idx_vals : i32,
                                                              (size_t)n * fleet_dtype_size(idt)));
                        int64_t os[4];
                        int on = 0;
                        for (int k = 0; k < d; k++)
                            os[on++] = xs[k];
                        for (int k = 0; k < idx_shapes[is].ndim; k++)
                            os[on++] = idx_shapes[is].shape[k];
                        for (int k = d + 1; k < 3; k++)
                            os[on++] = xs[k];
                        ASSERT_OK(fleet_tensor_create(devs[di], xdt, on, os, &out));
                        ASSERT_OK(fleet_gather(x, ix, axis, out));
                        size_t bytes = (size_t)(outer * n * inner) * es;
                        ASSERT_OK(fleet_tensor_copy_to_host(out, got, bytes));
                        ASSERT_TRUE(memcmp(got, want, bytes) == 0);
                        checks++;
                        TEST_RELEASE(x, ix, out);
                    }
}

/* Grouped convolution with asymmetric padding (fleet_conv2d_ex), and max
 * and average pooling with padding, dilation, ceil mode and
 * count_include_pad, against the references. */
TEST(grouped_conv_and_pooling_match_reference)
{
    find_devices();
    static const struct {
        int64_t n, c, h, w, cout, kh, kw, groups;
        fleet_conv2d_params p;
    } convs[] = {
        {2, 6, 7, 9, 9, 3, 3, 3, {{1, 2}, {1, 0}, {0, 2}, {1, 1}, 3}},
        {1, 4, 5, 5, 4, 3, 3, 4, {{2, 2}, {1, 1}, {1, 1}, {1, 1}, 4}}, /* depthwise */
        {3, 2, 6, 4, 5, 2, 3, 1, {{1, 1}, {0, 2}, {1, 0}, {2, 1}, 1}},
    };
    static const struct {
        int64_t n, c, h, w;
        fleet_pool2d_params p;
    } pools[] = {
        {2, 3, 7, 8, {{3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 0, 0}},
        {1, 2, 7, 8, {{3, 2}, {2, 3}, {1, 0}, {0, 1}, {1, 1}, 1, 1}},
        {1, 2, 9, 9, {{2, 2}, {2, 2}, {0, 0}, {0, 0}, {2, 2}, 1, 0}},
        {2, 1, 5, 6, {{2, 3}, {3, 2}, {1, 1}, {1, 1}, {1, 1}, 1, 0}},
    };
    for (int di = 0; di < ndevs; di++) {
        for (size_t c = 0; c < sizeof convs / sizeof convs[0]; c++) {
            const fleet_conv2d_params *p = &convs[c].p;
            fleet__conv_geom g = {.n = convs[c].n, .c = convs[c].c, .h = convs[c].h,
                                  .w = convs[c].w, .cout = convs[c].cout, .kh = convs[c].kh,
                                  .kw = convs[c].kw, .sh = p->stride[0], .sw = p->stride[1],
                                  .ph = p->pad_begin[0], .pw = p->pad_begin[1],
                                  .dh = p->dilation[0], .dw = p->dilation[1]};
            g.oh = (g.h + p->pad_begin[0] + p->pad_end[0] - g.dh * (g.kh - 1) - 1) / g.sh + 1;
            g.ow = (g.w + p->pad_begin[1] + p->pad_end[1] - g.dw * (g.kw - 1) - 1) / g.sw + 1;
            int64_t cg = g.c / p->groups;
            int64_t xs[4] = {g.n, g.c, g.h, g.w}, ws[4] = {g.cout, cg, g.kh, g.kw};
            int64_t os[4] = {g.n, g.cout, g.oh, g.ow};
            int64_t nx = g.n * g.c * g.h * g.w, nw = g.cout * cg * g.kh * g.kw;
            int64_t no = g.n * g.cout * g.oh * g.ow;
            test_rng r = test_rng_make(17000 + c);
            float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)nw);
            float *bias = malloc(sizeof(float) * (size_t)g.cout);
            float *want = malloc(sizeof(float) * (size_t)no);
            test_fill_random(x, nx, &r);
            test_fill_random(w, nw, &r);
            test_fill_random(bias, g.cout, &r);
            ref_conv2d_groups(&g, p->groups, x, w, bias, want);
            fleet_tensor *tx = tensor_from(devs[di], 4, xs, x), *tw = tensor_from(devs[di], 4, ws, w);
            fleet_tensor *tb = tensor_from(devs[di], 1, &g.cout, bias);
            fleet_tensor *to = test_tensor_new(devs[di], 4, os);
            ASSERT_OK(fleet_conv2d_ex(tx, tw, tb, p, to));
            check_out(to, want, no, 1e-5, 1e-5);
            fleet_conv2d_params bad = *p;
            bad.groups = p->groups + 1;
            ASSERT_STATUS(fleet_conv2d_ex(tx, tw, tb, &bad, to), FLEET_ERR_SHAPE_MISMATCH);
            TEST_RELEASE(tx, tw, tb, to);
            free(x);
            free(w);
            free(bias);
            free(want);
        }
        for (size_t c = 0; c < sizeof pools / sizeof pools[0]; c++)
            for (int op = 0; op < 2; op++) {
                const fleet_pool2d_params *p = &pools[c].p;
                if (op == FLEET__POOL_AVG && p->count_include_pad &&
                    (p->dilation[0] != 1 || p->dilation[1] != 1))
                    continue;
                fleet__window win[2];
                int64_t o[2];
                for (int k = 0; k < 2; k++) {
                    win[k] = (fleet__window){.kernel = p->kernel[k], .stride = p->stride[k],
                                             .pad_begin = p->pad_begin[k],
                                             .pad_end = p->pad_end[k],
                                             .dilation = p->dilation[k],
                                             .ceil_mode = p->ceil_mode != 0};
                    ASSERT_OK(fleet__shape_window("t", k ? pools[c].w : pools[c].h, &win[k], &o[k]));
                }
                fleet__pool_args a = {
                    .n = pools[c].n, .c = pools[c].c, .h = pools[c].h, .w = pools[c].w,
                    .oh = o[0], .ow = o[1], .kh = p->kernel[0], .kw = p->kernel[1],
                    .sh = p->stride[0], .sw = p->stride[1], .ph = p->pad_begin[0],
                    .pw = p->pad_begin[1], .ph_end = p->pad_end[0], .pw_end = p->pad_end[1],
                    .dh = p->dilation[0], .dw = p->dilation[1],
                    .count_include_pad = p->count_include_pad};
                int64_t xs[4] = {a.n, a.c, a.h, a.w}, os[4] = {a.n, a.c, a.oh, a.ow};
                int64_t nx = a.n * a.c * a.h * a.w, no = a.n * a.c * a.oh * a.ow;
                test_rng r = test_rng_make(18000 + c * 2 + (uint64_t)op);
                float *x = malloc(sizeof(float) * (size_t)nx);
                float *want = malloc(sizeof(float) * (size_t)no);
                test_fill_random(x, nx, &r);
                ref_pool2d(op, &a, x, want);
                fleet_tensor *tx = tensor_from(devs[di], 4, xs, x);
                fleet_tensor *to = test_tensor_new(devs[di], 4, os);
                ASSERT_OK((op == FLEET__POOL_MAX ? fleet_max_pool2d : fleet_avg_pool2d)(tx, p, to));
                check_out(to, want, no, 1e-6, 1e-7);
                TEST_RELEASE(tx, to);
                free(x);
                free(want);
            }
    }
}

/* Prints the coverage, and fails when an elementwise op of the backend
 * interface has no row in this file's tables (each op exactly once). */
TEST(report_coverage)
{
    find_devices();
    int seen[FLEET__EW_COUNT_] = {0};
    for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; o++)
        seen[unary_ops[o].op]++;
    for (size_t o = 0; o < sizeof binary_ops / sizeof binary_ops[0]; o++)
        seen[binary_ops[o].op]++;
    seen[FLEET__EW_CAST]++;  /* casts_copies_and_where_on_every_dtype */
    seen[FLEET__EW_WHERE]++;
    for (int op = 0; op < FLEET__EW_COUNT_; op++)
        ASSERT_EQ(seen[op], 1);
    printf("backends:");
    for (int i = 0; i < ndevs; i++)
        printf(" %s", fleet_device_name(devs[i]));
    printf("\nops covered:");
    for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; o++)
        printf(" %s", unary_ops[o].name);
    for (size_t o = 0; o < sizeof binary_ops / sizeof binary_ops[0]; o++)
        printf(" %s", binary_ops[o].name);
    printf(" cast where (every dtype) softmax log_softmax layer_norm sum mean max");
    printf(" embedding (i32, i64, out-of-range) gather (every axis, negative indices) concat conv1d conv2d conv2d_ex (groups,"
           " asymmetric padding) max_pool2d avg_pool2d");
    printf(" matmul (batched, broadcast, transposed views) linear attention%s\nchecks run: %d\nlayouts:", ndevs > 1 ? " (f16/bf16: mul gelu matmul linear softmax layer_norm mean)" : "", checks);
    for (int l = 0; l < 4; l++)
        printf(" %s", layout_names[l]);
    printf("\n");
}

TEST_MAIN()
