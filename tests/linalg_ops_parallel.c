/* linalg_ops_parallel — VERIFICATION.md "Linalg Ops Parallel", linear-algebra
 * part: 2 and 4 threads, each on its own stream of the default device (cuda
 * when present), run LU solve, Cholesky, triangular solve (upper and lower),
 * QR and inverse on fresh random well-conditioned inputs of sizes 1, 3, 17
 * and 64, single and batched; every result is checked by its residual and
 * against the plain-C double-precision reference (tests/ref/ref_linalg.h).
 *
 * bmm and transposed-view matmul (the rest of the named check) are checked
 * the same way: residual against the product computed in double. */
#include "ref/ref_linalg.h"
#include "test_util.h"

static const int64_t kSizes[] = {1, 3, 17, 64};
#define REL_TOL 2e-4 /* residuals, relative (f32 solves of condition < ~10)  */
#define REF_TOL 1e-3 /* agreement with the reference, |got - want| <= tol (1 + |want|) */

typedef struct worker {
    fleet_device *dev;
    uint64_t seed;
    int rounds;
    int stream_id;
    int checks;
} worker;

static fleet_tensor *make(fleet_device *dev, int64_t batch, int64_t r, int64_t c, const float *host)
{
    int64_t shape[3] = {batch, r, c};
    fleet_tensor *t;
    /* batch 0 here means "no batch dimension": a plain matrix */
    if (batch == 0)
        t = test_tensor_new(dev, 2, shape + 1);
    else
        t = test_tensor_new(dev, 3, shape);
    if (host)
        ASSERT_OK(fleet_tensor_copy_from_host(t, host, fleet_tensor_nbytes(t)));
    return t;
}

static float *host_read(const fleet_tensor *t)
{
    float *p = malloc(fleet_tensor_nbytes(t) + sizeof(float));
    ASSERT_TRUE(p != NULL);
    test_tensor_read(t, p);
    return p;
}

/* ‖P Q - C‖_F / max(‖C‖_F, tiny), P [n,p], Q [p,k], C [n,k] (C NULL: identity). */
static double residual(const float *p, const float *q, const float *c, int64_t n, int64_t pp,
                       int64_t k, int trans_p)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t t = 0; t < pp; t++)
                s += (double)(trans_p ? p[t * n + i] : p[i * pp + t]) * q[t * k + j];
            double want = c ? c[i * k + j] : (i == j ? 1.0 : 0.0);
            num += (s - want) * (s - want);
            den += want * want;
        }
    return sqrt(num) / (den > 0 ? sqrt(den) : 1.0);
}

static void assert_near_ref(const float *got, const float *want, int64_t n, const char *what,
                            int64_t size)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= REF_TOL * (1 + fabs((double)want[i])))) {
            char m[256];
            snprintf(m, sizeof m, "%s (n=%" PRId64 "): element %" PRId64 " got %.7g, reference %.7g",
                     what, size, i, got[i], want[i]);
            test_fail_(__FILE__, __LINE__, m);
        }
}

static void assert_small(double r, double tol, const char *what, int64_t n)
{
    if (!(r <= tol)) {
        char m[256];
        snprintf(m, sizeof m, "%s (n=%" PRId64 "): residual %.3g > %.3g", what, n, r, tol);
        test_fail_(__FILE__, __LINE__, m);
    }
}

/* Diagonally dominant: |a_ii| > sum of the row's others. */
static void fill_dominant(float *a, int64_t n, test_rng *r)
{
    test_fill_random(a, n * n, r);
    for (int64_t i = 0; i < n; i++)
        a[i * n + i] += (a[i * n + i] >= 0 ? 1.0f : -1.0f) * (float)(n + 1);
}

static void check_solve(fleet_device *dev, int64_t batch, int64_t n, test_rng *r)
{
    int64_t bm = batch ? batch : 1, k = 1 + n % 3;
    float *a = malloc(sizeof(float) * bm * n * n), *b = malloc(sizeof(float) * bm * n * k);
    float *want = malloc(sizeof(float) * n * k);
    for (int64_t i = 0; i < bm; i++)
        fill_dominant(a + i * n * n, n, r);
    test_fill_random(b, bm * n * k, r);
    fleet_tensor *ta = make(dev, batch, n, n, a), *tb = make(dev, batch, n, k, b);
    fleet_tensor *tx = make(dev, batch, n, k, NULL);
    ASSERT_OK(fleet_linalg_solve(ta, tb, tx));
    float *x = host_read(tx);
    for (int64_t i = 0; i < bm; i++) {
        const float *ai = a + i * n * n, *bi = b + i * n * k, *xi = x + i * n * k;
        assert_small(residual(ai, xi, bi, n, n, k, 0), REL_TOL, "solve ||AX-B||/||B||", n);
        ASSERT_EQ(ref_linalg_solve(n, k, ai, bi, want), 0);
        assert_near_ref(xi, want, n * k, "solve vs reference", n);
    }
    fleet_tensor_release(ta), fleet_tensor_release(tb), fleet_tensor_release(tx);
    free(a), free(b), free(want), free(x);
}

static void check_inv(fleet_device *dev, int64_t batch, int64_t n, test_rng *r)
{
    int64_t bm = batch ? batch : 1;
    float *a = malloc(sizeof(float) * bm * n * n), *want = malloc(sizeof(float) * n * n);
    for (int64_t i = 0; i < bm; i++)
        fill_dominant(a + i * n * n, n, r);
    fleet_tensor *ta = make(dev, batch, n, n, a), *to = make(dev, batch, n, n, NULL);
    ASSERT_OK(fleet_linalg_inv(ta, to));
    float *x = host_read(to);
    for (int64_t i = 0; i < bm; i++) {
        const float *ai = a + i * n * n, *xi = x + i * n * n;
        assert_small(residual(ai, xi, NULL, n, n, n, 0), REL_TOL, "inv ||A inv(A) - I||/||I||", n);
        ASSERT_EQ(ref_linalg_inv(n, ai, want), 0);
        assert_near_ref(xi, want, n * n, "inv vs reference", n);
    }
    fleet_tensor_release(ta), fleet_tensor_release(to);
    free(a), free(want), free(x);
}

static void check_cholesky(fleet_device *dev, int64_t batch, int64_t n, test_rng *r)
{
    int64_t bm = batch ? batch : 1;
    float *a = malloc(sizeof(float) * bm * n * n), *g = malloc(sizeof(float) * n * n);
    float *want = malloc(sizeof(float) * n * n);
    for (int64_t i = 0; i < bm; i++) { /* A = G G^T + n I: SPD, well conditioned */
        test_fill_random(g, n * n, r);
        float *ai = a + i * n * n;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = 0; q < n; q++) {
                double s = p == q ? (double)n : 0.0;
                for (int64_t t = 0; t < n; t++)
                    s += (double)g[p * n + t] * g[q * n + t];
                ai[p * n + q] = (float)s;
            }
    }
    fleet_tensor *ta = make(dev, batch, n, n, a), *tl = make(dev, batch, n, n, NULL);
    ASSERT_OK(fleet_linalg_cholesky(ta, tl));
    float *l = host_read(tl);
    for (int64_t i = 0; i < bm; i++) {
        const float *ai = a + i * n * n, *li = l + i * n * n;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++)
                ASSERT_TRUE(li[p * n + q] == 0.0f); /* upper triangle zeroed */
        /* L L^T: residual(P = L, Q = L^T) with L^T built in g. */
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = 0; q < n; q++)
                g[p * n + q] = li[q * n + p];
        assert_small(residual(li, g, ai, n, n, n, 0), REL_TOL, "cholesky ||LL^T-A||/||A||", n);
        ASSERT_EQ(ref_linalg_cholesky(n, ai, want), 0);
        assert_near_ref(li, want, n * n, "cholesky vs reference", n);
    }
    fleet_tensor_release(ta), fleet_tensor_release(tl);
    free(a), free(g), free(want), free(l);
}

static void check_triangular(fleet_device *dev, int64_t batch, int64_t n, int upper, test_rng *r)
{
    int64_t bm = batch ? batch : 1, k = 1 + (n + 1) % 3;
    float *a = malloc(sizeof(float) * bm * n * n), *b = malloc(sizeof(float) * bm * n * k);
    float *tri = malloc(sizeof(float) * n * n), *want = malloc(sizeof(float) * n * k);
    /* The other triangle holds garbage: the op must not read it. */
    test_fill_random(a, bm * n * n, r);
    for (int64_t i = 0; i < bm; i++)
        for (int64_t p = 0; p < n; p++) {
            float *d = &a[i * n * n + p * n + p];
            *d = (*d >= 0 ? 1.0f : -1.0f) * (1.5f + fabsf(*d));
            for (int64_t q = 0; q < n; q++)
                if ((upper && q > p) || (!upper && q < p))
                    a[i * n * n + p * n + q] /= (float)n;
                else if (q != p)
                    a[i * n * n + p * n + q] = 1e6f;
        }
    test_fill_random(b, bm * n * k, r);
    fleet_tensor *ta = make(dev, batch, n, n, a), *tb = make(dev, batch, n, k, b);
    fleet_tensor *tx = make(dev, batch, n, k, NULL);
    ASSERT_OK(fleet_linalg_solve_triangular(ta, tb, upper, tx));
    float *x = host_read(tx);
    for (int64_t i = 0; i < bm; i++) {
        const float *ai = a + i * n * n, *bi = b + i * n * k, *xi = x + i * n * k;
        for (int64_t p = 0; p < n; p++) /* the triangle alone, for the residual */
            for (int64_t q = 0; q < n; q++)
                tri[p * n + q] = (upper ? q >= p : q <= p) ? ai[p * n + q] : 0.0f;
        assert_small(residual(tri, xi, bi, n, n, k, 0), REL_TOL,
                     upper ? "solve_triangular upper ||AX-B||" : "solve_triangular lower ||AX-B||", n);
        ASSERT_EQ(ref_linalg_solve_triangular(n, k, ai, bi, upper, want), 0);
        assert_near_ref(xi, want, n * k, "solve_triangular vs reference", n);
    }
    fleet_tensor_release(ta), fleet_tensor_release(tb), fleet_tensor_release(tx);
    free(a), free(b), free(tri), free(want), free(x);
}

/* Make R's diagonal non-negative (flip R's row j and Q's column j together),
 * so LAPACK's and Gram–Schmidt's factors can be compared. */
static void normalize_qr(float *q, float *r, int64_t m, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        if (r[j * n + j] < 0) {
            for (int64_t c = 0; c < n; c++)
                r[j * n + c] = -r[j * n + c];
            for (int64_t i = 0; i < m; i++)
                q[i * n + j] = -q[i * n + j];
        }
}

static void check_qr(fleet_device *dev, int64_t batch, int64_t n, test_rng *r)
{
    int64_t bm = batch ? batch : 1, m = n + (n % 2 ? 2 : 0); /* tall for odd n */
    float *a = malloc(sizeof(float) * bm * m * n);
    float *wq = malloc(sizeof(float) * m * n), *wr = malloc(sizeof(float) * n * n);
    test_fill_random(a, bm * m * n, r);
    for (int64_t i = 0; i < bm; i++) /* keep the columns well apart */
        for (int64_t j = 0; j < n; j++)
            a[i * m * n + j * n + j] += 3.0f;
    fleet_tensor *ta = make(dev, batch, m, n, a), *tq = make(dev, batch, m, n, NULL);
    fleet_tensor *tr = make(dev, batch, n, n, NULL);
    ASSERT_OK(fleet_linalg_qr(ta, tq, tr));
    float *q = host_read(tq), *rr = host_read(tr);
    for (int64_t i = 0; i < bm; i++) {
        const float *ai = a + i * m * n;
        float *qi = q + i * m * n, *ri = rr + i * n * n;
        for (int64_t p = 0; p < n; p++)
            for (int64_t c = 0; c < p; c++)
                ASSERT_TRUE(ri[p * n + c] == 0.0f); /* R upper triangular */
        assert_small(residual(qi, ri, ai, m, n, n, 0), REL_TOL, "qr ||QR-A||/||A||", n);
        /* Q^T Q = I: P = Q read transposed ([n, m]), Q = Q. */
        assert_small(residual(qi, qi, NULL, n, m, n, 1), REL_TOL, "qr ||Q^TQ-I||/||I||", n);
        ASSERT_EQ(ref_linalg_qr(m, n, ai, wq, wr), 0);
        normalize_qr(qi, ri, m, n);
        assert_near_ref(qi, wq, m * n, "qr Q vs reference", n);
        assert_near_ref(ri, wr, n * n, "qr R vs reference", n);
    }
    fleet_tensor_release(ta), fleet_tensor_release(tq), fleet_tensor_release(tr);
    free(a), free(wq), free(wr), free(q), free(rr);
}

/* bmm: [batch, n, p] @ [batch, p, k]; and a^T @ b through a transposed view
 * of a (column-major storage, no copy). */
static void check_bmm_and_transposed(fleet_device *dev, int64_t batch, int64_t n, test_rng *r)
{
    int64_t bt = batch > 0 ? batch : 1, p = n + 2, k = n + 1;
    float *a = malloc(sizeof(float) * bt * n * p), *b = malloc(sizeof(float) * bt * p * k);
    test_fill_random(a, bt * n * p, r);
    test_fill_random(b, bt * p * k, r);
    fleet_tensor *ta = make(dev, bt, n, p, a), *tb = make(dev, bt, p, k, b);
    fleet_tensor *tc = make(dev, bt, n, k, NULL);
    ASSERT_OK(fleet_matmul(ta, tb, tc));
    float *c = host_read(tc);
    for (int64_t i = 0; i < bt; i++)
        assert_small(residual(a + i * n * p, b + i * p * k, c + i * n * k, n, p, k, 0), 1e-5,
                     "bmm", n);
    /* a^T [p, n] as a view of the first matrix of a, times c's first [n, k] */
    fleet_tensor *a0, *a0t, *c0, *out;
    ASSERT_OK(fleet_tensor_slice(ta, 0, 0, 1, &a0));
    int64_t s2[2] = {n, p}, so[2] = {p, k};
    fleet_tensor *a0m;
    ASSERT_OK(fleet_tensor_reshape(a0, 2, s2, &a0m));
    ASSERT_OK(fleet_tensor_transpose(a0m, 0, 1, &a0t));
    ASSERT_OK(fleet_tensor_slice(tc, 0, 0, 1, &c0));
    fleet_tensor *c0m;
    ASSERT_OK(fleet_tensor_reshape(c0, 2, (int64_t[2]){n, k}, &c0m));
    out = test_tensor_new(dev, 2, so);
    ASSERT_OK(fleet_matmul(a0t, c0m, out));
    float *o = host_read(out);
    assert_small(residual(a, c, o, p, n, k, 1), 1e-5, "transposed-view matmul", n);
    fleet_tensor *ts[] = {ta, tb, tc, a0, a0m, a0t, c0, c0m, out};
    for (int i = 0; i < 9; i++)
        fleet_tensor_release(ts[i]);
    free(a), free(b), free(c), free(o);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    test_rng r = test_rng_make(w->seed);
    w->stream_id = test_current_stream_id(w->dev);
    for (int round = 0; round < w->rounds; round++)
        for (size_t s = 0; s < sizeof kSizes / sizeof kSizes[0]; s++) {
            int64_t n = kSizes[s];
            int64_t batch = (round + (int)s) % 2 ? 3 : 0; /* batched or a plain matrix */
            check_solve(w->dev, batch, n, &r);
            check_cholesky(w->dev, batch, n, &r);
            check_triangular(w->dev, batch, n, 1, &r);
            check_triangular(w->dev, batch, n, 0, &r);
            check_qr(w->dev, batch, n, &r);
            check_inv(w->dev, batch, n, &r);
            check_bmm_and_transposed(w->dev, batch, n, &r);
            w->checks += 7;
        }
    return NULL;
}

static void run_threads(int n)
{
    fleet_device *dev;
    ASSERT_OK(fleet_device_default(&dev));
    worker w[4] = {{0}};
    int rounds = test_scaled(test_env_int("FLEET_LINALG_ROUNDS", 3));
    for (int i = 0; i < n; i++)
        w[i] = (worker){.dev = dev, .seed = 1000 + (uint64_t)(n * 10 + i), .rounds = rounds};
    test_run_threads(n, worker_main, w, sizeof w[0]);
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(w[i].checks, rounds * 4 * 7);
        for (int j = 0; j < i; j++) /* each thread had a stream of its own */
            ASSERT_NE(w[i].stream_id, w[j].stream_id);
    }
    printf("  %d threads x %d rounds x 28 checked linalg and matmul ops on %s\n", n, rounds,
           fleet_device_name(dev));
}

TEST(linalg_2_threads) { run_threads(2); }
TEST(linalg_4_threads) { run_threads(4); }

TEST_MAIN()
