/* model/zoo.c — ready-made models: MLP, Conv1d net, transformer encoder
 * block, built through the public builder API with PyTorch's weight names. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "fleet/model.h"

#define B FLEET_DIM_BATCH
#define TRY(call)                                                              \
    do {                                                                       \
        if ((st = (call)) != FLEET_OK)                                         \
            goto fail;                                                         \
    } while (0)

static fleet_status weight(fleet_model *m, const char *prefix, const char *leaf, int ndim,
                           const int64_t *shape, fleet_value *out)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", prefix, leaf);
    return fleet_model_weight(m, name, FLEET_DTYPE_F32, ndim, shape, out);
}

/* A Linear's weight [out, in] and bias [out] under `prefix`, applied to x. */
static fleet_status linear(fleet_model *m, const char *prefix, fleet_value x, int64_t in,
                           int64_t out, fleet_value *y)
{
    int64_t ws[2] = {out, in}, bs[1] = {out};
    fleet_value w, b;
    fleet_status st;
    if ((st = weight(m, prefix, "weight", 2, ws, &w)) != FLEET_OK ||
        (st = weight(m, prefix, "bias", 1, bs, &b)) != FLEET_OK)
        return st;
    return fleet_model_linear(m, x, w, b, y);
}

static fleet_status check_sizes(const char *fn, const int64_t *v, int n, int min_n)
{
    FLEET_CHECK_ARG(v != NULL, FLEET_ERR_NULL_POINTER, "%s: sizes is NULL", fn);
    FLEET_CHECK_ARG(n >= min_n && n <= 64, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: %d sizes (expected %d..64)", fn, n, min_n);
    for (int i = 0; i < n; i++)
        FLEET_CHECK_ARG(v[i] >= 1 && v[i] <= (1 << 20), FLEET_ERR_INVALID_ARGUMENT,
                        "%s: size %lld at %d is outside 1..2^20", fn, (long long)v[i], i);
    return FLEET_OK;
}

fleet_status fleet_model_build_mlp(fleet_device *device, const int64_t *widths, int n,
                                   fleet_model **out)
{
    static const char fn[] = "fleet_model_build_mlp";
    fleet_status st = check_sizes(fn, widths, n, 2);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    fleet_model *m;
    if ((st = fleet_model_create(device, &m)) != FLEET_OK)
        return st;
    int64_t xs[2] = {B, widths[0]};
    fleet_value h;
    TRY(fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &h));
    for (int i = 0; i + 1 < n; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "layers.%d", i);
        TRY(linear(m, prefix, h, widths[i], widths[i + 1], &h));
        if (i + 2 < n)
            TRY(fleet_model_relu(m, h, &h));
    }
    TRY(fleet_model_output(m, "y", h));
    *out = m;
    return FLEET_OK;
fail:
    fleet_model_destroy(m);
    return fleet__error_prefix(st, fn);
}

fleet_status fleet_model_build_conv1d_net(fleet_device *device, const int64_t *channels, int n,
                                          int64_t kernel, int64_t length, fleet_model **out)
{
    static const char fn[] = "fleet_model_build_conv1d_net";
    fleet_status st = check_sizes(fn, channels, n, 2);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    FLEET_CHECK_ARG(kernel >= 1 && kernel % 2 == 1 && kernel <= 1024 && length >= 1 &&
                        length <= (1 << 24),
                    FLEET_ERR_INVALID_ARGUMENT,
                    "%s: kernel %lld must be odd in 1..1023, length %lld in 1..2^24", fn,
                    (long long)kernel, (long long)length);
    fleet_model *m;
    if ((st = fleet_model_create(device, &m)) != FLEET_OK)
        return st;
    int64_t xs[3] = {B, channels[0], length};
    fleet_value h;
    TRY(fleet_model_input(m, "x", FLEET_DTYPE_F32, 3, xs, &h));
    for (int i = 0; i + 1 < n; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "convs.%d", i);
        int64_t ws[3] = {channels[i + 1], channels[i], kernel}, bs[1] = {channels[i + 1]};
        fleet_value w, b;
        TRY(weight(m, prefix, "weight", 3, ws, &w));
        TRY(weight(m, prefix, "bias", 1, bs, &b));
        TRY(fleet_model_conv1d(m, h, w, b, 1, kernel / 2, 1, &h));
        if (i + 2 < n)
            TRY(fleet_model_relu(m, h, &h));
    }
    TRY(fleet_model_output(m, "y", h));
    *out = m;
    return FLEET_OK;
fail:
    fleet_model_destroy(m);
    return fleet__error_prefix(st, fn);
}

/* [B, S, D] -> [B, heads, S, D/heads] (a view). */
static fleet_status split_heads(fleet_model *m, fleet_value x, int64_t seq, int64_t heads,
                                int64_t dh, fleet_value *out)
{
    int64_t s4[4] = {B, seq, heads, dh};
    static const int perm[4] = {0, 2, 1, 3};
    fleet_value r;
    fleet_status st = fleet_model_reshape(m, x, 4, s4, &r);
    return st == FLEET_OK ? fleet_model_permute(m, r, perm, out) : st;
}

static fleet_status layer_norm(fleet_model *m, const char *prefix, fleet_value x, int64_t d,
                               float eps, fleet_value *out)
{
    int64_t s[1] = {d};
    fleet_value g, b;
    fleet_status st;
    if ((st = weight(m, prefix, "weight", 1, s, &g)) != FLEET_OK ||
        (st = weight(m, prefix, "bias", 1, s, &b)) != FLEET_OK)
        return st;
    return fleet_model_layer_norm(m, x, g, b, eps, out);
}

fleet_status fleet_model_add_encoder_block(fleet_model *m, const char *prefix, fleet_value x,
                                           fleet_value mask, const fleet_encoder_params *p,
                                           fleet_value *out)
{
    static const char fn[] = "fleet_model_add_encoder_block";
    FLEET_CHECK_ARG(p != NULL && prefix != NULL && out != NULL, FLEET_ERR_NULL_POINTER,
                    "%s: NULL argument", fn);
    const int64_t sizes[4] = {p->seq, p->d_model, p->heads, p->ff};
    fleet_status st = check_sizes(fn, sizes, 4, 4);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(p->d_model % p->heads == 0, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: d_model %lld is not divisible by heads %lld", fn,
                    (long long)p->d_model, (long long)p->heads);
    FLEET_CHECK_ARG(p->eps >= 0.0f && strlen(prefix) < 80, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: eps below 0 or a prefix of 80 bytes or more", fn);
    int64_t d = p->d_model, dh = d / p->heads, xs[3] = {B, p->seq, d};
    static const int merge[4] = {0, 2, 1, 3};
    char n[128];
#define NAME(leaf) (snprintf(n, sizeof n, "%s%s", prefix, leaf), n)
    fleet_value q, k, v, qh, kh, vh, ctx, ctx_t, ctx_m, attn, a, h, f, g, f2, r;
    TRY(linear(m, NAME("self_attn.q_proj"), x, d, d, &q));
    TRY(linear(m, NAME("self_attn.k_proj"), x, d, d, &k));
    TRY(linear(m, NAME("self_attn.v_proj"), x, d, d, &v));
    TRY(split_heads(m, q, p->seq, p->heads, dh, &qh));
    TRY(split_heads(m, k, p->seq, p->heads, dh, &kh));
    TRY(split_heads(m, v, p->seq, p->heads, dh, &vh));
    TRY(fleet_model_attention_masked(m, qh, kh, vh, mask, 0.0f, &ctx)); /* [B, H, S, dh] */
    TRY(fleet_model_permute(m, ctx, merge, &ctx_t));                      /* [B, S, H, dh] */
    TRY(fleet_model_reshape(m, ctx_t, 3, xs, &ctx_m));                    /* a copy        */
    TRY(linear(m, NAME("self_attn.out_proj"), ctx_m, d, d, &attn));
    TRY(fleet_model_add(m, x, attn, &a));
    TRY(layer_norm(m, NAME("norm1"), a, d, p->eps, &h));
    TRY(linear(m, NAME("linear1"), h, d, p->ff, &f));
    TRY(fleet_model_gelu(m, f, &g));
    TRY(linear(m, NAME("linear2"), g, p->ff, d, &f2));
    TRY(fleet_model_add(m, h, f2, &r));
    TRY(layer_norm(m, NAME("norm2"), r, d, p->eps, out));
#undef NAME
    return FLEET_OK;
fail:
    return fleet__error_prefix(st, fn);
}

fleet_status fleet_model_build_encoder_block(fleet_device *device, int64_t seq, int64_t d_model,
                                             int64_t heads, int64_t ff, fleet_model **out)
{
    static const char fn[] = "fleet_model_build_encoder_block";
    const int64_t sizes[4] = {seq, d_model, heads, ff};
    fleet_status st = check_sizes(fn, sizes, 4, 4);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    FLEET_CHECK_ARG(d_model % heads == 0, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: d_model %lld is not divisible by heads %lld", fn, (long long)d_model,
                    (long long)heads);
    fleet_model *m;
    if ((st = fleet_model_create(device, &m)) != FLEET_OK)
        return st;
    int64_t xs[3] = {B, seq, d_model};
    fleet_encoder_params p = {.seq = seq, .d_model = d_model, .heads = heads, .ff = ff,
                              .eps = 1e-5f};
    fleet_value x, y;
    TRY(fleet_model_input(m, "x", FLEET_DTYPE_F32, 3, xs, &x));
    TRY(fleet_model_add_encoder_block(m, "", x, FLEET_NO_VALUE, &p, &y));
    TRY(fleet_model_output(m, "y", y));
    *out = m;
    return FLEET_OK;
fail:
    fleet_model_destroy(m);
    return fleet__error_prefix(st, fn);
}
