/* tests/model_util.h — the three ready-made models with random weights, and
 * their references, composed of the op references of tests/ref/. */
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

/* The models' references are built from the op references of tests/ref/
 * (double accumulation inside each op, f32 between ops, as fleet runs them),
 * one batch row at a time: every model here treats rows independently. */

static inline void tm_relu(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] < 0 ? 0 : x[i];
}

static inline void tm_add(float *acc, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        acc[i] += x[i];
}

/* One head's columns [S, dh] out of a [S, D] row-major activation, and back. */
static inline void tm_head(float *dst, const float *src, int64_t s, int64_t d, int64_t dh,
                           int64_t h, int to_head)
{
    for (int64_t i = 0; i < s; i++)
        for (int64_t e = 0; e < dh; e++) {
            if (to_head)
                dst[i * dh + e] = src[i * d + h * dh + e];
            else
                dst[i * d + h * dh + e] = src[i * dh + e];
        }
}

/* Post-norm encoder layer: y = LN(a + FF(a)), a = LN(x + MHA(x)). */
static inline void tm_ref_encoder_row(const test_model *tm, const float *x, float *y)
{
    int64_t S = tm->seq, D = tm->d, H = tm->heads, F = tm->ff, dh = D / H;
    float *q = malloc(sizeof(float) * (size_t)(S * D * 5 + S * F + S * dh * 4));
    float *k = q + S * D, *v = k + S * D, *ctx = v + S * D, *a = ctx + S * D, *f = a + S * D;
    float *qh = f + S * F, *kh = qh + S * dh, *vh = kh + S * dh, *ch = vh + S * dh;
    ref_linear(x, tm->w[0], tm->w[1], q, S, D, D);
    ref_linear(x, tm->w[2], tm->w[3], k, S, D, D);
    ref_linear(x, tm->w[4], tm->w[5], v, S, D, D);
    for (int64_t h = 0; h < H; h++) {
        tm_head(qh, q, S, D, dh, h, 1);
        tm_head(kh, k, S, D, dh, h, 1);
        tm_head(vh, v, S, D, dh, h, 1);
        ref_attention(qh, kh, vh, NULL, 1, S, S, dh, dh, 1.0 / sqrt((double)dh), ch);
        tm_head(ctx, ch, S, D, dh, h, 0);
    }
    ref_linear(ctx, tm->w[6], tm->w[7], a, S, D, D);
    tm_add(a, x, S * D);
    ref_layer_norm(a, tm->w[12], tm->w[13], 1e-5, a, S, D);
    ref_linear(a, tm->w[8], tm->w[9], f, S, D, F);
    for (int64_t i = 0; i < S * F; i++)
        f[i] = (float)(0.5 * f[i] * (1.0 + erf(f[i] / sqrt(2.0))));
    ref_linear(f, tm->w[10], tm->w[11], y, S, F, D);
    tm_add(y, a, S * D);
    ref_layer_norm(y, tm->w[14], tm->w[15], 1e-5, y, S, D);
    free(q);
}

/* Same-padded conv1d layers, relu between them. */
static inline void tm_ref_conv_row(const test_model *tm, const float *x, float *y)
{
    int64_t L = tm->length, K = tm->kernel, maxc = 0;
    for (int i = 0; i < tm->n; i++)
        maxc = tm->widths[i] > maxc ? tm->widths[i] : maxc;
    float *cur = malloc(sizeof(float) * (size_t)(maxc * L));
    float *nxt = malloc(sizeof(float) * (size_t)(maxc * L));
    memcpy(cur, x, sizeof(float) * (size_t)(tm->widths[0] * L));
    for (int layer = 0; layer + 1 < tm->n; layer++) {
        fleet__conv_geom g = {.n = 1, .c = tm->widths[layer], .h = 1, .w = L,
                              .cout = tm->widths[layer + 1], .kh = 1, .kw = K, .sh = 1, .sw = 1,
                              .ph = 0, .pw = K / 2, .dh = 1, .dw = 1, .oh = 1, .ow = L};
        ref_conv2d(&g, cur, tm->w[2 * layer], tm->w[2 * layer + 1], nxt);
        if (layer + 2 < tm->n)
            tm_relu(nxt, g.cout * L);
        float *t = cur;
        cur = nxt;
        nxt = t;
    }
    memcpy(y, cur, sizeof(float) * (size_t)tm->out_row);
    free(cur);
    free(nxt);
}

/* Linear layers, relu between them. */
static inline void tm_ref_mlp_row(const test_model *tm, const float *x, float *y)
{
    int64_t maxw = 0;
    for (int i = 0; i < tm->n; i++)
        maxw = tm->widths[i] > maxw ? tm->widths[i] : maxw;
    float *cur = malloc(sizeof(float) * (size_t)maxw), *nxt = malloc(sizeof(float) * (size_t)maxw);
    memcpy(cur, x, sizeof(float) * (size_t)tm->widths[0]);
    for (int layer = 0; layer + 1 < tm->n; layer++) {
        ref_linear(cur, tm->w[2 * layer], tm->w[2 * layer + 1], nxt, 1, tm->widths[layer],
                   tm->widths[layer + 1]);
        if (layer + 2 < tm->n)
            tm_relu(nxt, tm->widths[layer + 1]);
        float *t = cur;
        cur = nxt;
        nxt = t;
    }
    memcpy(y, cur, sizeof(float) * (size_t)tm->out_row);
    free(cur);
    free(nxt);
}

/* y[batch, out_row] for x[batch, in_row]. */
static inline void test_model_reference(const test_model *tm, const float *x, int64_t batch,
                                        float *y)
{
    for (int64_t b = 0; b < batch; b++) {
        const float *xr = x + b * tm->in_row;
        float *yr = y + b * tm->out_row;
        if (tm->kind == TM_MLP)
            tm_ref_mlp_row(tm, xr, yr);
        else if (tm->kind == TM_CONV)
            tm_ref_conv_row(tm, xr, yr);
        else
            tm_ref_encoder_row(tm, xr, yr);
    }
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
