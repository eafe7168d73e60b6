/* backend_ops — every op, on every backend present, on fresh random inputs
 * of several shapes (odd sizes, broadcasting, transposed, sliced and
 * permuted views), against the plain-C reference in src/ops/ref*.c with a
 * per-op tolerance. Prints the ops it covered. (ggml's test-backend-ops.) */
#include "harness.h"
#include "ops/ref.h"
#include "test_util.h"

static int ndevs;
static fleet_device *devs[2];
static int checks;

static void find_devices(void)
{
    ndevs = 0;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &devs[ndevs++]));
    int n = 0;
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &n));
    if (n > 0)
        ASSERT_OK(fleet_device_get(FLEET_BACKEND_CUDA, 0, &devs[ndevs++]));
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

static input make_input(fleet_device *dev, int ndim, const int64_t *shape, layout lay,
                        test_rng *r, int positive_denominator)
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
        if (positive_denominator) /* keep |b| >= 0.5 for division */
            v = v < 0 ? v - 0.5f : v + 0.5f;
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

static const struct {
    const char *name;
    int op;
    unary_fn fn;
    double rtol, atol;
} unary_ops[] = {
    {"copy", FLEET__EW_COPY, fleet_copy, 0, 0},
    {"relu", FLEET__EW_RELU, fleet_relu, 0, 0},
    {"gelu", FLEET__EW_GELU, fleet_gelu, 2e-6, 2e-6},
    {"silu", FLEET__EW_SILU, fleet_silu, 2e-6, 2e-6},
    {"tanh", FLEET__EW_TANH, fleet_tanh, 2e-6, 2e-6},
    {"sigmoid", FLEET__EW_SIGMOID, fleet_sigmoid, 2e-6, 2e-6},
};

static const struct {
    const char *name;
    int op;
    binary_fn fn;
    double rtol, atol;
} binary_ops[] = {
    {"add", FLEET__EW_ADD, fleet_add, 1e-7, 0},
    {"sub", FLEET__EW_SUB, fleet_sub, 1e-7, 0},
    {"mul", FLEET__EW_MUL, fleet_mul, 1e-7, 0},
    {"div", FLEET__EW_DIV, fleet_div, 2e-7, 0},
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

TEST(elementwise_ops_match_reference)
{
    find_devices();
    for (int di = 0; di < ndevs; di++) {
        fleet_device *dev = devs[di];
        for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; o++)
            for (size_t c = 0; c < sizeof unary_cases / sizeof unary_cases[0]; c++) {
                const shape_case *s = &unary_cases[c].s;
                test_rng r = test_rng_make(o * 100 + c);
                input x = make_input(dev, s->ndim, s->shape, unary_cases[c].lay, &r, 0);
                fleet_tensor *out = test_tensor_new(dev, s->ndim, s->shape);
                int64_t n = fleet_tensor_numel(out);
                float *want = malloc(sizeof(float) * (size_t)n);
                fleet__view wv = {.data = want, .ndim = s->ndim};
                for (int d = s->ndim - 1, st = 1; d >= 0; st *= (int)s->shape[d], d--) {
                    wv.shape[d] = s->shape[d];
                    wv.strides[d] = st;
                }
                fleet__ref_elementwise(unary_ops[o].op, &wv, &x.hv, NULL);
                ASSERT_OK(unary_ops[o].fn(x.view, out));
                check_out(out, want, n, unary_ops[o].rtol, unary_ops[o].atol);
                free(want);
                ASSERT_OK(fleet_tensor_release(out));
                free_input(&x);
            }
        for (size_t o = 0; o < sizeof binary_ops / sizeof binary_ops[0]; o++)
            for (size_t c = 0; c < sizeof binary_cases / sizeof binary_cases[0]; c++) {
                test_rng r = test_rng_make(1000 + o * 100 + c);
                input a = make_input(dev, binary_cases[c].a.ndim, binary_cases[c].a.shape,
                                     binary_cases[c].la, &r, 0);
                input b = make_input(dev, binary_cases[c].b.ndim, binary_cases[c].b.shape,
                                     binary_cases[c].lb, &r, binary_ops[o].op == FLEET__EW_DIV);
                const shape_case *so = &binary_cases[c].out;
                fleet_tensor *out = test_tensor_new(dev, so->ndim, so->shape);
                int64_t n = fleet_tensor_numel(out);
                float *want = malloc(sizeof(float) * (size_t)n);
                fleet__view wv = {.data = want, .ndim = so->ndim};
                for (int d = so->ndim - 1, st = 1; d >= 0; st *= (int)so->shape[d], d--) {
                    wv.shape[d] = so->shape[d];
                    wv.strides[d] = st;
                }
                fleet__view av = broadcast_host(&a.hv, so->ndim, so->shape);
                fleet__view bv = broadcast_host(&b.hv, so->ndim, so->shape);
                fleet__ref_elementwise(binary_ops[o].op, &wv, &av, &bv);
                ASSERT_OK(binary_ops[o].fn(a.view, b.view, out));
                check_out(out, want, n, binary_ops[o].rtol, binary_ops[o].atol);
                /* in place: out = a op b written over a contiguous a */
                if (binary_cases[c].la == LAYOUT_CONTIGUOUS && same_dims(a.view, out)) {
                    ASSERT_OK(binary_ops[o].fn(a.view, b.view, a.view));
                    check_out(a.view, want, n, binary_ops[o].rtol, binary_ops[o].atol);
                }
                free(want);
                ASSERT_OK(fleet_tensor_release(out));
                free_input(&a);
                free_input(&b);
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
            fleet__ref_matmul(a, b, NULL, want, m, k, n);
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
        fleet_tensor *a = test_tensor_2d(devs[di], 2, 0, NULL), *b = test_tensor_2d(devs[di], 0, 3, NULL);
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
    ASSERT_STATUS(fleet_relu(c, c), FLEET_ERR_UNSUPPORTED);
    ASSERT_STR_CONTAINS(fleet_last_error(), "cuda");
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
        fleet__ref_matmul(fa, fb, NULL, mw, M, K, N);
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
            for (int64_t i = 0; i < bt * rows; i++)
                for (int64_t o = 0; o < outf; o++) {
                    double acc = bias[o];
                    for (int64_t p = 0; p < in; p++)
                        acc += (double)x[i * in + p] * w[o * in + p];
                    want[i * outf + o] = (float)acc;
                }
            fleet_tensor *tx = test_tensor_new(devs[di], 3, xs), *tw = test_tensor_new(devs[di], 2, ws);
            fleet_tensor *tb = test_tensor_new(devs[di], 1, &outf), *ty = test_tensor_new(devs[di], 3, ys);
            ASSERT_OK(fleet_tensor_copy_from_host(tx, x, sizeof(float) * bt * rows * in));
            ASSERT_OK(fleet_tensor_copy_from_host(tw, w, sizeof(float) * outf * in));
            ASSERT_OK(fleet_tensor_copy_from_host(tb, bias, sizeof(float) * outf));
            ASSERT_OK(fleet_linear(tx, tw, tb, ty));
            check_out(ty, want, bt * rows * outf, 1e-5, 2e-6 * sqrt((double)in) * 4);
            ASSERT_STATUS(fleet_linear(tx, tx, tb, ty), FLEET_ERR_SHAPE_MISMATCH);
            fleet_tensor *ts[] = {tx, tw, tb, ty};
            for (int i = 0; i < 4; i++)
                ASSERT_OK(fleet_tensor_release(ts[i]));
            free(x);
            free(w);
            free(want);
        }
}

TEST(report_coverage)
{
    find_devices();
    printf("backends:");
    for (int i = 0; i < ndevs; i++)
        printf(" %s", fleet_device_name(devs[i]));
    printf("\nops covered:");
    for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; o++)
        printf(" %s", unary_ops[o].name);
    for (size_t o = 0; o < sizeof binary_ops / sizeof binary_ops[0]; o++)
        printf(" %s", binary_ops[o].name);
    printf(" matmul (batched, broadcast, transposed views) linear%s\nchecks run: %d\nlayouts:", ndevs > 1 ? " (f16/bf16: mul gelu matmul)" : "", checks);
    for (int l = 0; l < 4; l++)
        printf(" %s", layout_names[l]);
    printf("\n");
}

TEST_MAIN()
