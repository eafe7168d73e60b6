/* ops/conv.c — fleet_conv1d and fleet_conv2d as im2col + GEMM.
 *
 * For each image b, im2col lays the receptive fields out as the columns of
 * cols[b] [Cin*KH*KW, OH*OW] (zeros in the padding), so that
 *     out[b] [Cout, OH*OW] = weight [Cout, Cin*KH*KW] @ cols[b]
 * is one strided-batched GEMM over the images (weight's batch stride 0). The
 * bias runs along out's rows, while the GEMM's fused bias runs along its
 * columns, so it is added afterwards with a broadcasting fleet_add of a
 * [Cout, 1(, 1)] view. A conv1d is a conv2d with H = KH = 1.
 *
 * cols comes from the caching allocator on the caller's stream (or, for the
 * model runtime, from scratch space the caller planned) and goes back
 * right after the submission: stream-ordered reuse keeps it alive until the
 * GEMM that reads it ran. It is at most COLS_BUDGET bytes; larger batches
 * run in chunks of images through the same buffer (the stream orders the
 * chunks). */

#include "core/error.h"
#include "ops/ops_internal.h"

#define COLS_BUDGET ((size_t)256 << 20)
#define PARAM_MAX ((int64_t)INT32_MAX)

/* Bytes of cols for `n` images of `per_image` bytes: all of them, or as many
 * as fit in COLS_BUDGET (at least one). */
static size_t cols_bytes(size_t per_image, int64_t n, int64_t *chunk)
{
    *chunk = n;
    if (per_image > 0 && (size_t)n > COLS_BUDGET / per_image)
        *chunk = COLS_BUDGET / per_image > 0 ? (int64_t)(COLS_BUDGET / per_image) : 1;
    return per_image * (size_t)*chunk;
}

size_t fleet__conv_workspace_bytes(const fleet__conv_params *p, const fleet_tensor *x,
                                   const fleet_tensor *w, const fleet_tensor *out)
{
    /* one group's columns at a time: Cin/groups = weight's input channels */
    size_t per_image = sizeof(float) * (size_t)w->shape[1];
    for (int k = 0; k < p->sp; k++)
        per_image *= (size_t)w->shape[2 + k] * (size_t)out->shape[2 + k];
    int64_t chunk;
    return cols_bytes(per_image, x->shape[0], &chunk);
}

/* The checks of the public convolutions, then the entry. pad_end: the
 * padding after each spatial dimension (p->pad is before). */
static fleet_status conv(const char *fn, const fleet__conv_params *p, const int64_t *pad_end,
                         const fleet_tensor *x_h, const fleet_tensor *w_h,
                         const fleet_tensor *bias_h, fleet_tensor *out_h)
{
    const fleet_tensor *ts[] = {x_h, w_h, out_h, bias_h};
    static const char *const names[] = {"x", "weight", "out", "bias"};
    int nt = bias_h != NULL ? 4 : 3, sp = p->sp;
    fleet_status st = fleet__op_enter_all(fn, ts, names, nt);
    if (st != FLEET_OK)
        return st;
    const fleet_tensor *x = ts[0], *w = ts[1], *bias = bias_h != NULL ? ts[3] : NULL;
    fleet_tensor *out = (fleet_tensor *)ts[2];
    fleet__window win[2];
    for (int k = 0; k < sp; k++)
        win[k] = (fleet__window){.stride = p->stride[k], .pad_begin = p->pad[k],
                                 .pad_end = pad_end[k], .dilation = p->dil[k]};
    fleet__dims dx = FLEET__DIMS(x), dw = FLEET__DIMS(w), got = FLEET__DIMS(out), want;
    fleet__dims db = bias != NULL ? FLEET__DIMS(bias) : dw;
    if ((st = fleet__shape_conv(fn, sp, &dx, &dw, bias != NULL ? &db : NULL, win, p->groups,
                                &want)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &want,
                                  sp == 2 ? "[N, Cout, OH, OW]" : "[N, Cout, Lout]")) != FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, nt, FLEET__OP_CONTIGUOUS)) != FLEET_OK)
        return st;
    if (fleet__overlaps(out, x) || fleet__overlaps(out, w) ||
        (bias != NULL && fleet__overlaps(out, bias)))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps an input", fn);
    return fleet__op_conv(&call, p, x, w, bias, NULL, 0, out);
}

fleet_status fleet__op_conv(const fleet__op_call *call, const fleet__conv_params *p,
                            const fleet_tensor *x, const fleet_tensor *w, const fleet_tensor *bias,
                            void *ws, size_t ws_bytes, fleet_tensor *out)
{
    const char *fn = call->fn;
    int sp = p->sp;
    fleet_status st = fleet__backend_require(fn, call->device, FLEET__CAN_IM2COL);
    if (st != FLEET_OK)
        return st;
    const int64_t *o = out->shape + 2;
    int64_t groups = p->groups, cin = x->shape[1], cout = w->shape[0];
    fleet__conv_geom g = {
        .n = x->shape[0], .c = cin / groups, .cout = cout / groups,
        .h = sp == 2 ? x->shape[2] : 1, .w = x->shape[1 + sp],
        .kh = sp == 2 ? w->shape[2] : 1, .kw = w->shape[1 + sp],
        .sh = sp == 2 ? p->stride[0] : 1, .sw = p->stride[sp - 1],
        .ph = sp == 2 ? p->pad[0] : 0, .pw = p->pad[sp - 1],
        .dh = sp == 2 ? p->dil[0] : 1, .dw = p->dil[sp - 1],
        .oh = sp == 2 ? o[0] : 1, .ow = o[sp - 1],
    };
    int64_t ckk = g.c * g.kh * g.kw, ohw = g.oh * g.ow, hw = g.h * g.w;
    if (ckk > PARAM_MAX || ohw > PARAM_MAX || g.cout > PARAM_MAX)
        return fleet__error(FLEET_ERR_UNSUPPORTED,
                            "%s: GEMM sizes beyond 2^31-1 (Cin*KH*KW %lld, OH*OW %lld)", fn,
                            (long long)ckk, (long long)ohw);
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;

    size_t per_image = sizeof(float) * (size_t)ckk * (size_t)ohw;
    int64_t chunk;
    size_t need = cols_bytes(per_image, g.n, &chunk);
    fleet_allocation cols = {0};
    if (ws != NULL) {
        FLEET_CHECK_ARG(ws_bytes >= need, FLEET_ERR_INTERNAL,
                        "%s: workspace of %zu bytes, %zu needed", fn, ws_bytes, need);
        cols.ptr = ws;
    } else if (per_image > 0) {
        if ((st = fleet_memory_alloc(call->stream, per_image * (size_t)chunk, &cols)) != FLEET_OK)
            return fleet__error_prefix(st, fn);
    }
    const float *xd = fleet_tensor_data(x), *wd = fleet_tensor_data(w);
    float *od = fleet_tensor_data(out);
    /* per chunk of images, per group: its channels' columns (the stream
     * orders the reuse of the one buffer), then its GEMM into its output
     * channels */
    for (int64_t b0 = 0; b0 < g.n && st == FLEET_OK; b0 += chunk) {
        int64_t cnt = g.n - b0 < chunk ? g.n - b0 : chunk;
        for (int64_t gi = 0; gi < groups && st == FLEET_OK; gi++) {
            if (cols.ptr != NULL) {
                fleet__im2col_args ia = {.dtype = (int)x->dtype, .g = g,
                                         .x = xd + b0 * cin * hw + gi * g.c * hw,
                                         .x_image_stride = cin * hw, .cols = cols.ptr};
                ia.g.n = cnt;
                st = fleet__backend_im2col(call->device, call->native, &ia);
            }
            fleet__gemm_args ga = {
                .dtype = out->dtype, .m = g.cout, .n = ohw, .k = ckk,
                .a = wd + gi * g.cout * ckk, .lda = ckk > 0 ? ckk : 1, .b = cols.ptr,
                .ldb = ohw, .c = od + b0 * cout * ohw + gi * g.cout * ohw, .ldc = ohw,
                .alpha = 1.0f, .beta = 0.0f, .batch = cnt, .stride_a = 0,
                .stride_b = ckk * ohw, .stride_c = cout * ohw,
            };
            if (st == FLEET_OK)
                st = fleet__backend_gemm(call->device, call->native, &ga);
        }
    }
    if (cols.ptr != NULL && ws == NULL) {
        fleet_status fst = fleet_memory_free(&cols); /* stream-ordered: safe at once */
        FLEET_ASSERT(fst == FLEET_OK);
    }
    if (st != FLEET_OK || bias == NULL)
        return st; /* a backend failure mid-way: out is then unspecified */
    fleet_tensor bv = *bias; /* [Cout, 1(, 1)]: broadcast over out's positions */
    bv.ndim = 1 + sp;
    for (int k = 1; k <= sp; k++) {
        bv.shape[k] = 1;
        bv.strides[k] = 1;
    }
    return fleet__op_elementwise(call, FLEET__EW_ADD, out, &bv, out);
}

fleet_status fleet_conv1d(const fleet_tensor *x, const fleet_tensor *weight,
                          const fleet_tensor *bias, int64_t stride, int64_t padding,
                          int64_t dilation, fleet_tensor *out)
{
    fleet__conv_params p = {.sp = 1, .stride = {stride}, .pad = {padding}, .dil = {dilation},
                            .groups = 1};
    return conv("fleet_conv1d", &p, &padding, x, weight, bias, out);
}

fleet_status fleet_conv2d(const fleet_tensor *x, const fleet_tensor *weight,
                          const fleet_tensor *bias, int64_t stride_h, int64_t stride_w,
                          int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w,
                          fleet_tensor *out)
{
    fleet__conv_params p = {.sp = 2, .stride = {stride_h, stride_w}, .pad = {pad_h, pad_w},
                            .dil = {dil_h, dil_w}, .groups = 1};
    return conv("fleet_conv2d", &p, p.pad, x, weight, bias, out);
}

fleet_status fleet_conv2d_ex(const fleet_tensor *x, const fleet_tensor *weight,
                             const fleet_tensor *bias, const fleet_conv2d_params *params,
                             fleet_tensor *out)
{
    static const char fn[] = "fleet_conv2d_ex";
    FLEET_CHECK_ARG(params != NULL, FLEET_ERR_NULL_POINTER, "%s: params is NULL", fn);
    FLEET_CHECK_ARG(params->groups >= 1 && params->groups <= PARAM_MAX,
                    FLEET_ERR_INVALID_ARGUMENT, "%s: groups %lld must be in 1..2^31-1", fn,
                    (long long)params->groups);
    fleet__conv_params p = {.sp = 2, .groups = params->groups};
    for (int k = 0; k < 2; k++) {
        p.stride[k] = params->stride[k];
        p.pad[k] = params->pad_begin[k];
        p.dil[k] = params->dilation[k];
    }
    return conv(fn, &p, params->pad_end, x, weight, bias, out);
}
