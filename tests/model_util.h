/* tests/model_util.h — the three ready-made models with random weights, and
 * plain-C references (double accumulation) to check their outputs. */
#ifndef FLEET_TEST_MODEL_UTIL_H
#define FLEET_TEST_MODEL_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

typedef enum { TM_MLP, TM_CONV, TM_ENCODER } test_model_kind;

#define TM_MAX_WEIGHTS 32

typedef struct test_model {
    fleet_model *m;
    test_model_kind kind;
    int64_t widths[8];
    int n;                  /* widths (MLP) or channels (conv)  */
    int64_t kernel, length; /* conv                             */
    int64_t seq, d, heads, ff;
    float *w[TM_MAX_WEIGHTS]; /* host copies, in the order set   */
    int n_w;
    int64_t in_row, out_row; /* elements per batch row of x, y   */
} test_model;

/* Uniform(-1, 1) / sqrt(fan_in), as PyTorch initialises Linear/Conv. */
static inline float *tm_weight(test_model *tm, const char *name, int64_t n, int64_t fan_in,
                               test_rng *r, bool ones)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    ASSERT_TRUE(p != NULL);
    float scale = 1.0f / sqrtf((float)fan_in);
    for (int64_t i = 0; i < n; i++)
        p[i] = ones ? 1.0f + 0.1f * test_rng_float(r) : scale * test_rng_float(r);
    ASSERT_OK(fleet_model_set_weight(tm->m, name, p, sizeof(float) * (size_t)n));
    ASSERT_TRUE(tm->n_w < TM_MAX_WEIGHTS);
    tm->w[tm->n_w++] = p;
    return p;
}

static inline void tm_linear_weights(test_model *tm, const char *prefix, int64_t in, int64_t out,
                                     test_rng *r)
{
    char name[96];
    snprintf(name, sizeof name, "%s.weight", prefix);
    tm_weight(tm, name, in * out, in, r, false);
    snprintf(name, sizeof name, "%s.bias", prefix);
    tm_weight(tm, name, out, in, r, false);
}

static inline void test_model_mlp(fleet_device *dev, const int64_t *widths, int n, uint64_t seed,
                                  test_model *tm)
{
    memset(tm, 0, sizeof *tm);
    tm->kind = TM_MLP;
    tm->n = n;
    memcpy(tm->widths, widths, sizeof(int64_t) * (size_t)n);
    ASSERT_OK(fleet_model_build_mlp(dev, widths, n, &tm->m));
    test_rng r = test_rng_make(seed);
    for (int i = 0; i + 1 < n; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "layers.%d", i);
        tm_linear_weights(tm, prefix, widths[i], widths[i + 1], &r);
    }
    ASSERT_OK(fleet_model_finalize(tm->m));
    tm->in_row = widths[0];
    tm->out_row = widths[n - 1];
}

static inline void test_model_conv(fleet_device *dev, const int64_t *channels, int n,
                                   int64_t kernel, int64_t length, uint64_t seed, test_model *tm)
{
    memset(tm, 0, sizeof *tm);
    tm->kind = TM_CONV;
    tm->n = n;
    tm->kernel = kernel;
    tm->length = length;
    memcpy(tm->widths, channels, sizeof(int64_t) * (size_t)n);
    ASSERT_OK(fleet_model_build_conv1d_net(dev, channels, n, kernel, length, &tm->m));
    test_rng r = test_rng_make(seed);
    for (int i = 0; i + 1 < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "convs.%d.weight", i);
        tm_weight(tm, name, channels[i + 1] * channels[i] * kernel, channels[i] * kernel, &r, false);
        snprintf(name, sizeof name, "convs.%d.bias", i);
        tm_weight(tm, name, channels[i + 1], channels[i] * kernel, &r, false);
    }
    ASSERT_OK(fleet_model_finalize(tm->m));
    tm->in_row = channels[0] * length;
    tm->out_row = channels[n - 1] * length;
}

static inline void test_model_encoder(fleet_device *dev, int64_t seq, int64_t d, int64_t heads,
                                      int64_t ff, uint64_t seed, test_model *tm)
{
    memset(tm, 0, sizeof *tm);
    tm->kind = TM_ENCODER;
    tm->seq = seq;
    tm->d = d;
    tm->heads = heads;
    tm->ff = ff;
    ASSERT_OK(fleet_model_build_encoder_block(dev, seq, d, heads, ff, &tm->m));
    test_rng r = test_rng_make(seed);
    /* order: q, k, v, out (w, b each), linear1, linear2, norm1, norm2 (w, b) */
    tm_linear_weights(tm, "self_attn.q_proj", d, d, &r);
    tm_linear_weights(tm, "self_attn.k_proj", d, d, &r);
    tm_linear_weights(tm, "self_attn.v_proj", d, d, &r);
    tm_linear_weights(tm, "self_attn.out_proj", d, d, &r);
    tm_linear_weights(tm, "linear1", d, ff, &r);
    tm_linear_weights(tm, "linear2", ff, d, &r);
    tm_weight(tm, "norm1.weight", d, 1, &r, true);
    tm_weight(tm, "norm1.bias", d, d, &r, false);
    tm_weight(tm, "norm2.weight", d, 1, &r, true);
    tm_weight(tm, "norm2.bias", d, d, &r, false);
    ASSERT_OK(fleet_model_finalize(tm->m));
    tm->in_row = seq * d;
    tm->out_row = seq * d;
}

static inline void test_model_free(test_model *tm)
{
    ASSERT_OK(fleet_model_destroy(tm->m));
    for (int i = 0; i < tm->n_w; i++)
        free(tm->w[i]);
    tm->n_w = 0;
}

/* ---- references ---------------------------------------------------------------- */

/* y[rows, out] = x[rows, in] @ w[out, in]^T + b */
static inline void tm_ref_linear(const double *x, int64_t rows, int64_t in, const float *w,
                                 const float *b, int64_t out, double *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b[o];
            for (int64_t i = 0; i < in; i++)
                acc += x[r * in + i] * (double)w[o * in + i];
            y[r * out + o] = acc;
        }
}

static inline void tm_ref_layer_norm(double *x, int64_t rows, int64_t d, const float *g,
                                     const float *b)
{
    for (int64_t r = 0; r < rows; r++) {
        double *p = x + r * d, mean = 0, var = 0;
        for (int64_t i = 0; i < d; i++)
            mean += p[i];
        mean /= (double)d;
        for (int64_t i = 0; i < d; i++)
            var += (p[i] - mean) * (p[i] - mean);
        var /= (double)d;
        for (int64_t i = 0; i < d; i++)
            p[i] = (p[i] - mean) / sqrt(var + 1e-5) * g[i] + b[i];
    }
}

static inline void tm_ref_encoder_row(const test_model *tm, const float *xf, double *y)
{
    int64_t S = tm->seq, D = tm->d, H = tm->heads, F = tm->ff, dh = D / H;
    double *x = malloc(sizeof(double) * (size_t)(S * D * 6 + S * F + S));
    double *q = x + S * D, *k = q + S * D, *v = k + S * D, *ctx = v + S * D, *a = ctx + S * D;
    double *f = a + S * D, *p = f + S * F;
    for (int64_t i = 0; i < S * D; i++)
        x[i] = xf[i];
    tm_ref_linear(x, S, D, tm->w[0], tm->w[1], D, q);
    tm_ref_linear(x, S, D, tm->w[2], tm->w[3], D, k);
    tm_ref_linear(x, S, D, tm->w[4], tm->w[5], D, v);
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < S; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < S; j++) {
                double s = 0;
                for (int64_t e = 0; e < dh; e++)
                    s += q[i * D + h * dh + e] * k[j * D + h * dh + e];
                p[j] = s / sqrt((double)dh);
                mx = p[j] > mx ? p[j] : mx;
            }
            for (int64_t j = 0; j < S; j++)
                sum += (p[j] = exp(p[j] - mx));
            for (int64_t e = 0; e < dh; e++) {
                double acc = 0;
                for (int64_t j = 0; j < S; j++)
                    acc += p[j] / sum * v[j * D + h * dh + e];
                ctx[i * D + h * dh + e] = acc;
            }
        }
    tm_ref_linear(ctx, S, D, tm->w[6], tm->w[7], D, a);
    for (int64_t i = 0; i < S * D; i++)
        a[i] += x[i];
    tm_ref_layer_norm(a, S, D, tm->w[12], tm->w[13]);
    tm_ref_linear(a, S, D, tm->w[8], tm->w[9], F, f);
    for (int64_t i = 0; i < S * F; i++)
        f[i] = 0.5 * f[i] * (1.0 + erf(f[i] / sqrt(2.0)));
    tm_ref_linear(f, S, F, tm->w[10], tm->w[11], D, y);
    for (int64_t i = 0; i < S * D; i++)
        y[i] += a[i];
    tm_ref_layer_norm(y, S, D, tm->w[14], tm->w[15]);
    free(x);
}

static inline void tm_ref_conv_row(const test_model *tm, const float *xf, double *y)
{
    int64_t L = tm->length, K = tm->kernel, pad = K / 2, maxc = 0;
    for (int i = 0; i < tm->n; i++)
        maxc = tm->widths[i] > maxc ? tm->widths[i] : maxc;
    double *cur = malloc(sizeof(double) * (size_t)(maxc * L)), *nxt = malloc(sizeof(double) * (size_t)(maxc * L));
    for (int64_t i = 0; i < tm->widths[0] * L; i++)
        cur[i] = xf[i];
    for (int layer = 0; layer + 1 < tm->n; layer++) {
        int64_t ci = tm->widths[layer], co = tm->widths[layer + 1];
        const float *w = tm->w[2 * layer], *b = tm->w[2 * layer + 1];
        for (int64_t o = 0; o < co; o++)
            for (int64_t l = 0; l < L; l++) {
                double acc = b[o];
                for (int64_t c = 0; c < ci; c++)
                    for (int64_t kk = 0; kk < K; kk++) {
                        int64_t pos = l + kk - pad;
                        if (pos >= 0 && pos < L)
                            acc += (double)w[(o * ci + c) * K + kk] * cur[c * L + pos];
                    }
                nxt[o * L + l] = layer + 2 < tm->n && acc < 0 ? 0 : acc;
            }
        double *t = cur;
        cur = nxt;
        nxt = t;
    }
    memcpy(y, cur, sizeof(double) * (size_t)tm->out_row);
    free(cur);
    free(nxt);
}

static inline void tm_ref_mlp_row(const test_model *tm, const float *xf, double *y)
{
    int64_t maxw = 0;
    for (int i = 0; i < tm->n; i++)
        maxw = tm->widths[i] > maxw ? tm->widths[i] : maxw;
    double *cur = malloc(sizeof(double) * (size_t)maxw), *nxt = malloc(sizeof(double) * (size_t)maxw);
    for (int64_t i = 0; i < tm->widths[0]; i++)
        cur[i] = xf[i];
    for (int layer = 0; layer + 1 < tm->n; layer++) {
        tm_ref_linear(cur, 1, tm->widths[layer], tm->w[2 * layer], tm->w[2 * layer + 1],
                      tm->widths[layer + 1], nxt);
        if (layer + 2 < tm->n)
            for (int64_t i = 0; i < tm->widths[layer + 1]; i++)
                nxt[i] = nxt[i] < 0 ? 0 : nxt[i];
        double *t = cur;
        cur = nxt;
        nxt = t;
    }
    memcpy(y, cur, sizeof(double) * (size_t)tm->out_row);
    free(cur);
    free(nxt);
}

/* y[batch, out_row] for x[batch, in_row]: every model here treats batch rows
 * independently. */
static inline void test_model_reference(const test_model *tm, const float *x, int64_t batch,
                                        float *y)
{
    double *row = malloc(sizeof(double) * (size_t)tm->out_row);
    for (int64_t b = 0; b < batch; b++) {
        const float *xr = x + b * tm->in_row;
        if (tm->kind == TM_MLP)
            tm_ref_mlp_row(tm, xr, row);
        else if (tm->kind == TM_CONV)
            tm_ref_conv_row(tm, xr, row);
        else
            tm_ref_encoder_row(tm, xr, row);
        for (int64_t i = 0; i < tm->out_row; i++)
            y[b * tm->out_row + i] = (float)row[i];
    }
    free(row);
}

/* Run tm on host x[batch, ...] and read y back (the calling thread's stream). */
static inline void test_model_run(const test_model *tm, fleet_device *dev, const float *x,
                                  int64_t batch, float *y)
{
    int64_t xs[FLEET_MAX_DIMS], ys[FLEET_MAX_DIMS];
    int xn, yn;
    ASSERT_OK(fleet_model_input_shape(tm->m, 0, batch, &xn, xs));
    ASSERT_OK(fleet_model_output_shape(tm->m, 0, batch, &yn, ys));
    fleet_tensor *tx, *ty;
    ASSERT_OK(fleet_tensor_create(dev, FLEET_DTYPE_F32, xn, xs, &tx));
    ASSERT_OK(fleet_tensor_create(dev, FLEET_DTYPE_F32, yn, ys, &ty));
    ASSERT_OK(fleet_tensor_copy_from_host(tx, x, sizeof(float) * (size_t)(batch * tm->in_row)));
    const fleet_tensor *in[1] = {tx};
    fleet_tensor *out[1] = {ty};
    ASSERT_OK(fleet_model_run(tm->m, in, 1, out, 1));
    ASSERT_OK(fleet_tensor_copy_to_host(ty, y, sizeof(float) * (size_t)(batch * tm->out_row)));
    ASSERT_OK(fleet_tensor_release(tx));
    ASSERT_OK(fleet_tensor_release(ty));
}

#endif /* FLEET_TEST_MODEL_UTIL_H */
