/* tests/op_chains.h — op chains as a user writes them, checked against the
 * op references of tests/ref/ (header-only; shared_stream_ops and the soak
 * test).
 *
 *     double err;
 *     fleet_status st = op_chain_run(dev, kind, &rng, &err);  // kind < OP_CHAIN_KINDS
 *     // st FLEET_OK: err is the normwise error of the result
 *
 * Each chain makes fresh tensors, copies its inputs in, runs the ops on the
 * calling thread's current stream, reads the result back and releases
 * everything, also when a call fails (it then returns that call's status).
 * The kinds: a GEMM with a bias added, ReLU and softmax in place; a linear
 * with a transposed input view; a long-K GEMM (the shapes GEMM libraries
 * split); attention; conv1d with a bias. */
#ifndef FLEET_TEST_OP_CHAINS_H
#define FLEET_TEST_OP_CHAINS_H

#include "test_util.h"

#define OP_CHAIN_KINDS 5
/* float32 with K up to 4096 stays near 1e-6 normwise; a result computed from
 * other data is off by O(1). */
#define OP_CHAIN_TOLERANCE 1e-4

static const char *const op_chain_names[OP_CHAIN_KINDS] = {
    "matmul+bias+relu+softmax", "linear, transposed input view", "long-K matmul", "attention",
    "conv1d+bias"};

typedef struct op_chain {
    fleet_device *dev;
    fleet_tensor *t[8];
    int n;
    fleet_status st; /* the first failure */
    float *host[8];
    int nh;
} op_chain;

static inline int64_t op_chain_pick(test_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(test_rng_next(r) % (uint64_t)(hi - lo + 1));
}

static inline float *op_chain_floats(op_chain *c, int64_t n, test_rng *r)
{
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ASSERT_TRUE(p != NULL && c->nh < 8);
    if (r != NULL)
        test_fill_random(p, n, r);
    c->host[c->nh++] = p;
    return p;
}

/* A tensor of `shape` holding `host` (NULL: uninitialised); NULL after a failure. */
static inline fleet_tensor *op_chain_tensor(op_chain *c, int ndim, const int64_t *shape,
                                            const float *host)
{
    if (c->st != FLEET_OK)
        return NULL;
    fleet_tensor *t = NULL;
    c->st = fleet_tensor_create(c->dev, FLEET_DTYPE_F32, ndim, shape, &t);
    if (c->st != FLEET_OK)
        return NULL;
    ASSERT_TRUE(c->n < 8);
    c->t[c->n++] = t;
    if (host != NULL)
        c->st = fleet_tensor_copy_from_host(t, host, fleet_tensor_nbytes(t));
    return t;
}

/* Record a call's status (the first failure sticks; later calls are skipped). */
static inline bool op_chain_ok(op_chain *c, fleet_status st)
{
    if (c->st == FLEET_OK)
        c->st = st;
    return c->st == FLEET_OK;
}

static inline fleet_status op_chain_end(op_chain *c)
{
    for (int i = 0; i < c->n; i++)
        ASSERT_OK(fleet_tensor_release(c->t[i]));
    for (int i = 0; i < c->nh; i++)
        free(c->host[i]);
    return c->st;
}

/* Read `t` back and compare with want[n]. */
static inline void op_chain_check(op_chain *c, fleet_tensor *t, const float *want, int64_t n,
                                  double *err)
{
    if (c->st != FLEET_OK)
        return;
    float *got = op_chain_floats(c, n, NULL);
    if (op_chain_ok(c, fleet_tensor_copy_to_host(t, got, sizeof(float) * (size_t)n)))
        *err = test_normwise_error(got, want, n);
}

static inline fleet_status op_chain_run(fleet_device *dev, int kind, test_rng *r, double *err)
{
    op_chain c = {.dev = dev};
    *err = INFINITY;
    if (kind == 0 || kind == 2) {
        bool chain = kind == 0;
        int64_t m = chain ? op_chain_pick(r, 1, 64) : op_chain_pick(r, 1, 8);
        int64_t k = chain ? op_chain_pick(r, 1, 96) : op_chain_pick(r, 1024, 4096);
        int64_t n = chain ? op_chain_pick(r, 2, 80) : op_chain_pick(r, 8, 64);
        float *a = op_chain_floats(&c, m * k, r), *b = op_chain_floats(&c, k * n, r);
        float *bias = op_chain_floats(&c, n, r);
        fleet_tensor *ta = op_chain_tensor(&c, 2, (int64_t[]){m, k}, a);
        fleet_tensor *tb = op_chain_tensor(&c, 2, (int64_t[]){k, n}, b);
        fleet_tensor *tbias = op_chain_tensor(&c, 1, (int64_t[]){n}, bias);
        fleet_tensor *tc = op_chain_tensor(&c, 2, (int64_t[]){m, n}, NULL);
        if (op_chain_ok(&c, fleet_matmul(ta, tb, tc)) && chain &&
            op_chain_ok(&c, fleet_add(tc, tbias, tc)) && op_chain_ok(&c, fleet_relu(tc, tc)))
            op_chain_ok(&c, fleet_softmax(tc, -1, tc));
        float *want = op_chain_floats(&c, m * n, NULL);
        ref_matmul(a, b, chain ? bias : NULL, want, m, k, n);
        if (chain) {
            for (int64_t i = 0; i < m * n; i++)
                want[i] = want[i] > 0 ? want[i] : 0;
            ref_softmax(want, want, m, n, 1);
        }
        op_chain_check(&c, tc, want, m * n, err);
    } else if (kind == 1) {
        /* y[m,n] = x[m,k] @ w[n,k]^T + bias, x a transposed view of xs[k,m] */
        int64_t m = op_chain_pick(r, 1, 64), k = op_chain_pick(r, 1, 256), n = op_chain_pick(r, 1, 96);
        float *xs = op_chain_floats(&c, k * m, r), *w = op_chain_floats(&c, n * k, r);
        float *bias = op_chain_floats(&c, n, r);
        fleet_tensor *txs = op_chain_tensor(&c, 2, (int64_t[]){k, m}, xs), *tx = NULL;
        if (c.st == FLEET_OK && op_chain_ok(&c, fleet_tensor_transpose(txs, 0, 1, &tx)))
            c.t[c.n++] = tx;
        fleet_tensor *tw = op_chain_tensor(&c, 2, (int64_t[]){n, k}, w);
        fleet_tensor *tbias = op_chain_tensor(&c, 1, (int64_t[]){n}, bias);
        fleet_tensor *ty = op_chain_tensor(&c, 2, (int64_t[]){m, n}, NULL);
        if (c.st == FLEET_OK)
            op_chain_ok(&c, fleet_linear(tx, tw, tbias, ty));
        float *x = op_chain_floats(&c, m * k, NULL), *want = op_chain_floats(&c, m * n, NULL);
        for (int64_t i = 0; i < m; i++)
            for (int64_t p = 0; p < k; p++)
                x[i * k + p] = xs[p * m + i];
        ref_linear(x, w, bias, want, m, k, n);
        op_chain_check(&c, ty, want, m * n, err);
    } else if (kind == 3) {
        /* out[h,s,dv] = softmax(q k^T / sqrt(d)) v */
        int64_t h = op_chain_pick(r, 1, 4), s = op_chain_pick(r, 1, 32), s2 = op_chain_pick(r, 1, 48);
        int64_t d = op_chain_pick(r, 1, 32), dv = op_chain_pick(r, 1, 32);
        float *q = op_chain_floats(&c, h * s * d, r), *kk = op_chain_floats(&c, h * s2 * d, r);
        float *v = op_chain_floats(&c, h * s2 * dv, r);
        fleet_tensor *tq = op_chain_tensor(&c, 3, (int64_t[]){h, s, d}, q);
        fleet_tensor *tk = op_chain_tensor(&c, 3, (int64_t[]){h, s2, d}, kk);
        fleet_tensor *tv = op_chain_tensor(&c, 3, (int64_t[]){h, s2, dv}, v);
        fleet_tensor *to = op_chain_tensor(&c, 3, (int64_t[]){h, s, dv}, NULL);
        if (c.st == FLEET_OK)
            op_chain_ok(&c, fleet_attention(tq, tk, tv, NULL, 0.0f, to));
        float *want = op_chain_floats(&c, h * s * dv, NULL);
        ref_attention(q, kk, v, NULL, h, s, s2, d, dv, 1.0 / sqrt((double)d), want);
        op_chain_check(&c, to, want, h * s * dv, err);
    } else {
        /* y[b,o,l] = bias[o] + sum_c,k w[o,c,k] x[b,c,l+k-pad] */
        int64_t B = op_chain_pick(r, 1, 3), C = op_chain_pick(r, 1, 8), L = op_chain_pick(r, 4, 96);
        int64_t O = op_chain_pick(r, 1, 8), K = 1 + 2 * op_chain_pick(r, 0, 2), pad = K / 2;
        float *x = op_chain_floats(&c, B * C * L, r), *w = op_chain_floats(&c, O * C * K, r);
        float *bias = op_chain_floats(&c, O, r);
        fleet_tensor *tx = op_chain_tensor(&c, 3, (int64_t[]){B, C, L}, x);
        fleet_tensor *tw = op_chain_tensor(&c, 3, (int64_t[]){O, C, K}, w);
        fleet_tensor *tb = op_chain_tensor(&c, 1, (int64_t[]){O}, bias);
        fleet_tensor *ty = op_chain_tensor(&c, 3, (int64_t[]){B, O, L}, NULL);
        if (c.st == FLEET_OK)
            op_chain_ok(&c, fleet_conv1d(tx, tw, tb, 1, pad, 1, ty));
        float *want = op_chain_floats(&c, B * O * L, NULL);
        fleet__conv_geom g = {.n = B, .c = C, .h = 1, .w = L, .cout = O, .kh = 1, .kw = K,
                              .sh = 1, .sw = 1, .pw = pad, .dh = 1, .dw = 1, .oh = 1, .ow = L};
        ref_conv2d(&g, x, w, bias, want);
        op_chain_check(&c, ty, want, B * O * L, err);
    }
    return op_chain_end(&c);
}

#endif /* FLEET_TEST_OP_CHAINS_H */
