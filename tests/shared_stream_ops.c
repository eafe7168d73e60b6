/* Threads that share one stream each get their own values.
 *
 * Op chains as a user writes them — fresh tensors, inputs copied in, a GEMM
 * (plain, with a transposed input view, with a long K that GEMM libraries
 * split), a bias added in place, ReLU and softmax in place, attention — read
 * back and compared with a double-precision reference, from threads that
 * submit to the same stream at the same time: eight threads on one acquired
 * stream, and 64 threads on the default pool (more threads than pool
 * streams, so most of them share). Every result is checked; the test fails
 * with the count of wrong results and the worst error. */
#include "test_util.h"

#define CHAIN_KINDS 4
static const char *const chain_names[CHAIN_KINDS] = {"matmul+bias+relu+softmax",
                                                     "linear, transposed input view",
                                                     "long-K matmul", "attention"};

static fleet_device *dev;

typedef struct tally {
    int results, wrong;
    double worst;
    int worst_kind;
} tally;

static int64_t pick(test_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(test_rng_next(r) % (uint64_t)(hi - lo + 1));
}

static float *random_floats(int64_t n, test_rng *r)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    ASSERT_TRUE(p != NULL);
    test_fill_random(p, n, r);
    return p;
}

static fleet_tensor *upload(int ndim, const int64_t *shape, const float *host)
{
    fleet_tensor *t = test_tensor_new(dev, ndim, shape);
    if (host != NULL)
        ASSERT_OK(fleet_tensor_copy_from_host(t, host, fleet_tensor_nbytes(t)));
    return t;
}

/* ||got - want|| / ||want|| */
static double normwise_error(const float *got, const double *want, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += want[i] * want[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void softmax_rows(double *x, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++) {
        double *p = x + r * n, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++)
            mx = p[j] > mx ? p[j] : mx;
        for (int64_t j = 0; j < n; j++)
            sum += (p[j] = exp(p[j] - mx));
        for (int64_t j = 0; j < n; j++)
            p[j] /= sum;
    }
}

/* c[m,n] = a[m,k] @ b[k,n], a and b addressed through strides. */
static void ref_gemm(const float *a, int64_t sam, int64_t sak, const float *b, int64_t sbk,
                     int64_t sbn, int64_t m, int64_t k, int64_t n, double *c)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += (double)a[i * sam + p * sak] * b[p * sbk + j * sbn];
            c[i * n + j] = acc;
        }
}

/* One chain; returns its normwise error. */
static double run_chain(int kind, test_rng *r)
{
    double err = 0;
    if (kind == 0 || kind == 2) {
        bool chain = kind == 0;
        int64_t m = chain ? pick(r, 1, 64) : pick(r, 1, 8);
        int64_t k = chain ? pick(r, 1, 96) : pick(r, 1024, 4096);
        int64_t n = chain ? pick(r, 2, 80) : pick(r, 8, 64);
        float *a = random_floats(m * k, r), *b = random_floats(k * n, r);
        float *bias = random_floats(n, r), *got = malloc(sizeof(float) * (size_t)(m * n));
        double *want = malloc(sizeof(double) * (size_t)(m * n));
        fleet_tensor *ta = upload(2, (int64_t[]){m, k}, a);
        fleet_tensor *tb = upload(2, (int64_t[]){k, n}, b);
        fleet_tensor *tbias = upload(1, (int64_t[]){n}, bias);
        fleet_tensor *tc = upload(2, (int64_t[]){m, n}, NULL);
        ASSERT_OK(fleet_matmul(ta, tb, tc));
        ref_gemm(a, k, 1, b, n, 1, m, k, n, want);
        if (chain) {
            ASSERT_OK(fleet_add(tc, tbias, tc));
            ASSERT_OK(fleet_relu(tc, tc));
            ASSERT_OK(fleet_softmax(tc, -1, tc));
            for (int64_t i = 0; i < m * n; i++) {
                double v = want[i] + bias[i % n];
                want[i] = v > 0 ? v : 0;
            }
            softmax_rows(want, m, n);
        }
        test_tensor_read(tc, got);
        err = normwise_error(got, want, m * n);
        TEST_RELEASE(ta, tb, tbias, tc);
        free(a), free(b), free(bias), free(got), free(want);
    } else if (kind == 1) {
        /* y[m,n] = x[m,k] @ w[n,k]^T + bias, x a transposed view of xs[k,m] */
        int64_t m = pick(r, 1, 64), k = pick(r, 1, 256), n = pick(r, 1, 96);
        float *xs = random_floats(k * m, r), *w = random_floats(n * k, r);
        float *bias = random_floats(n, r), *got = malloc(sizeof(float) * (size_t)(m * n));
        double *want = malloc(sizeof(double) * (size_t)(m * n));
        fleet_tensor *txs = upload(2, (int64_t[]){k, m}, xs), *tx = NULL;
        ASSERT_OK(fleet_tensor_transpose(txs, 0, 1, &tx));
        fleet_tensor *tw = upload(2, (int64_t[]){n, k}, w);
        fleet_tensor *tbias = upload(1, (int64_t[]){n}, bias);
        fleet_tensor *ty = upload(2, (int64_t[]){m, n}, NULL);
        ASSERT_OK(fleet_linear(tx, tw, tbias, ty));
        ref_gemm(xs, 1, m, w, 1, k, m, k, n, want);
        for (int64_t i = 0; i < m * n; i++)
            want[i] += bias[i % n];
        test_tensor_read(ty, got);
        err = normwise_error(got, want, m * n);
        TEST_RELEASE(txs, tx, tw, tbias, ty);
        free(xs), free(w), free(bias), free(got), free(want);
    } else {
        /* out[h,s,dv] = softmax(q k^T / sqrt(d)) v */
        int64_t h = pick(r, 1, 4), s = pick(r, 1, 32), s2 = pick(r, 1, 48);
        int64_t d = pick(r, 1, 32), dv = pick(r, 1, 32);
        float *q = random_floats(h * s * d, r), *kk = random_floats(h * s2 * d, r);
        float *v = random_floats(h * s2 * dv, r);
        float *got = malloc(sizeof(float) * (size_t)(h * s * dv));
        double *want = malloc(sizeof(double) * (size_t)(h * s * dv));
        double *p = malloc(sizeof(double) * (size_t)(s * s2));
        fleet_tensor *tq = upload(3, (int64_t[]){h, s, d}, q);
        fleet_tensor *tk = upload(3, (int64_t[]){h, s2, d}, kk);
        fleet_tensor *tv = upload(3, (int64_t[]){h, s2, dv}, v);
        fleet_tensor *to = upload(3, (int64_t[]){h, s, dv}, NULL);
        ASSERT_OK(fleet_attention(tq, tk, tv, NULL, 0.0f, to));
        for (int64_t hh = 0; hh < h; hh++) {
            ref_gemm(q + hh * s * d, d, 1, kk + hh * s2 * d, 1, d, s, d, s2, p);
            for (int64_t i = 0; i < s * s2; i++)
                p[i] /= sqrt((double)d);
            softmax_rows(p, s, s2);
            for (int64_t i = 0; i < s; i++)
                for (int64_t e = 0; e < dv; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < s2; j++)
                        acc += p[i * s2 + j] * v[(hh * s2 + j) * dv + e];
                    want[(hh * s + i) * dv + e] = acc;
                }
        }
        test_tensor_read(to, got);
        err = normwise_error(got, want, h * s * dv);
        TEST_RELEASE(tq, tk, tv, to);
        free(q), free(kk), free(v), free(got), free(want), free(p);
    }
    return err;
}

/* float32 with K up to 4096 stays near 1e-6 normwise; a result computed from
 * another thread's data is off by O(1). */
#define CHAIN_TOLERANCE 1e-4

typedef struct worker {
    int index, chains;
    fleet_stream *shared; /* NULL: the thread's own binding */
    pthread_barrier_t *bound; /* all threads hold their binding at once */
    tally t;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    test_rng r = test_rng_make(1000 + (uint64_t)w->index);
    if (w->shared != NULL) {
        ASSERT_OK(fleet_stream_set_current(w->shared));
    } else {
        fleet_stream *s;
        ASSERT_OK(fleet_stream_current(dev, &s));
    }
    pthread_barrier_wait(w->bound);
    for (int c = 0; c < w->chains; c++) {
        int kind = (int)(test_rng_next(&r) % CHAIN_KINDS);
        double err = run_chain(kind, &r);
        w->t.results++;
        if (!(err <= CHAIN_TOLERANCE)) {
            if (w->t.wrong < 3)
                printf("  thread %d chain %d (%s): normwise error %.3g\n", w->index, c,
                       chain_names[kind], err);
            w->t.wrong++;
        }
        if (!(err <= w->t.worst)) {
            w->t.worst = err;
            w->t.worst_kind = kind;
        }
    }
    if (w->shared != NULL)
        ASSERT_OK(fleet_stream_reset_current(dev));
    return NULL;
}

static void run_workers(int threads, int chains, fleet_stream *shared)
{
    worker *w = calloc((size_t)threads, sizeof *w);
    ASSERT_TRUE(w != NULL);
    pthread_barrier_t bound;
    pthread_barrier_init(&bound, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++)
        w[i] = (worker){.index = i, .chains = chains, .shared = shared, .bound = &bound};
    test_run_threads(threads, worker_main, w, sizeof w[0]);
    pthread_barrier_destroy(&bound);
    tally all = {0};
    for (int i = 0; i < threads; i++) {
        all.results += w[i].t.results;
        all.wrong += w[i].t.wrong;
        if (w[i].t.worst > all.worst) {
            all.worst = w[i].t.worst;
            all.worst_kind = w[i].t.worst_kind;
        }
    }
    printf("  %d threads: %d results, %d wrong, worst normwise error %.3g (%s)\n", threads,
           all.results, all.wrong, all.worst, chain_names[all.worst_kind]);
    ASSERT_EQ(all.results, threads * chains);
    ASSERT_EQ(all.wrong, 0);
    free(w);
}

TEST(threads_sharing_one_acquired_stream_get_their_own_values)
{
    fleet_stream *s = NULL;
    ASSERT_OK(fleet_stream_acquire(dev, &s));
    run_workers(8, test_scaled(40), s);
    ASSERT_OK(fleet_stream_release(s));
}

TEST(more_threads_than_pool_streams_get_their_own_values)
{
    fleet_stream_pool_stats before = test_pool_stats(dev);
    run_workers(64, test_scaled(48), NULL);
    fleet_stream_pool_stats after = test_pool_stats(dev);
    /* 64 threads over the pool's streams: most of them shared one */
    ASSERT_GE(after.shared_total - before.shared_total, (uint64_t)(64 - before.pool_slots));
}

int main(int argc, char **argv)
{
    ASSERT_OK(fleet_device_default(&dev));
    printf("device %s\n", fleet_device_name(dev));
    return test_main(argc, argv);
}
