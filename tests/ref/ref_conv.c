/* tests/ref/ref_conv.c — plain-C references for the gather, concatenation and
 * convolution ops: direct loops, double accumulation, host memory. */
#include <math.h>
#include <string.h>

#include "fleet/tensor.h"
#include "ref/ref.h"

void ref_embedding(const float *w, int64_t v, int64_t d, const void *idx, int index_dtype,
                   int64_t n, float *out)
{
    for (int64_t r = 0; r < n; r++) {
        int64_t i = index_dtype == FLEET_DTYPE_I32 ? ((const int32_t *)idx)[r]
                                                   : ((const int64_t *)idx)[r];
        for (int64_t j = 0; j < d; j++)
            out[r * d + j] = i >= 0 && i < v ? w[i * d + j] : 0.0f;
    }
}

/* Element offset of linear index `lin` (row-major over v's shape) in v. */
static int64_t offset_of(const fleet__view *v, int64_t lin)
{
    int64_t off = 0;
    for (int d = v->ndim - 1; d >= 0; d--) {
        off += (lin % v->shape[d]) * v->strides[d];
        lin /= v->shape[d];
    }
    return off;
}

void ref_concat(const fleet__view *const *inputs, int n, int dim, const fleet__view *out)
{
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        const fleet__view *x = inputs[i];
        int64_t count = 1;
        for (int d = 0; d < x->ndim; d++)
            count *= x->shape[d];
        for (int64_t lin = 0; lin < count; lin++) {
            /* the same multi-index in out, shifted by `at` along dim */
            int64_t rem = lin, off = 0;
            for (int d = x->ndim - 1; d >= 0; d--) {
                int64_t k = rem % x->shape[d];
                rem /= x->shape[d];
                off += (d == dim ? k + at : k) * out->strides[d];
            }
            ((float *)out->data)[off] = ((const float *)x->data)[offset_of(x, lin)];
        }
        at += x->shape[dim];
    }
}

void ref_conv2d_groups(const fleet__conv_geom *g, int64_t groups, const float *x,
                       const float *wt, const float *bias, float *out)
{
    int64_t cg = g->c / groups, og = g->cout / groups; /* per group */
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t co = 0; co < g->cout; co++)
            for (int64_t oy = 0; oy < g->oh; oy++)
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    double acc = bias != NULL ? bias[co] : 0.0;
                    int64_t c0 = co / og * cg;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t i = 0; i < g->kh; i++)
                            for (int64_t j = 0; j < g->kw; j++) {
                                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                                int64_t ix = ox * g->sw - g->pw + j * g->dw;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                acc += (double)x[((b * g->c + c0 + c) * g->h + iy) * g->w + ix] *
                                       wt[((co * cg + c) * g->kh + i) * g->kw + j];
                            }
                    out[((b * g->cout + co) * g->oh + oy) * g->ow + ox] = (float)acc;
                }
}

void ref_conv2d(const fleet__conv_geom *g, const float *x, const float *wt,
                const float *bias, float *out)
{
    ref_conv2d_groups(g, 1, x, wt, bias, out);
}

void ref_pool2d(int op, const fleet__pool_args *a, const float *x, float *out)
{
    for (int64_t nc = 0; nc < a->n * a->c; nc++)
        for (int64_t oy = 0; oy < a->oh; oy++)
            for (int64_t ox = 0; ox < a->ow; ox++) {
                double best = -INFINITY, sum = 0;
                int64_t inside = 0, padded = 0;
                for (int64_t i = 0; i < a->kh; i++)
                    for (int64_t j = 0; j < a->kw; j++) {
                        int64_t iy = oy * a->sh - a->ph + i * a->dh;
                        int64_t ix = ox * a->sw - a->pw + j * a->dw;
                        /* positions in the padded extent count for count_include_pad */
                        if (iy < a->h + a->ph_end && ix < a->w + a->pw_end)
                            padded++;
                        if (iy < 0 || iy >= a->h || ix < 0 || ix >= a->w)
                            continue;
                        double v = x[(nc * a->h + iy) * a->w + ix];
                        best = isnan(v) || v > best ? v : best;
                        sum += v;
                        inside++;
                    }
                double r = op == FLEET__POOL_MAX ? best
                           : a->count_include_pad ? (padded > 0 ? sum / (double)padded : 0)
                                                  : (inside > 0 ? sum / (double)inside : 0);
                out[(nc * a->oh + oy) * a->ow + ox] = (float)r;
            }
}

void ref_gather(const void *x, size_t elem_size, int64_t outer, int64_t v, int64_t inner,
                const int64_t *indices, int64_t n, void *out)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t r = 0; r < n; r++) {
            int64_t idx = indices[r] < 0 ? indices[r] + v : indices[r];
            unsigned char *dst = (unsigned char *)out + (size_t)((o * n + r) * inner) * elem_size;
            if (idx < 0 || idx >= v)
                memset(dst, 0, (size_t)inner * elem_size);
            else
                memcpy(dst, (const unsigned char *)x + (size_t)((o * v + idx) * inner) * elem_size,
                       (size_t)inner * elem_size);
        }
}
