/* backend/cpu/cpu_conv.c — the gather (embedding), the range, convolution's im2col and
 * 2-D pooling (f32), plain loops on the stream's worker. The GEMM that
 * follows im2col is the ordinary cpu gemm. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "backend/cpu/cpu_conv.h"
#include "backend/cpu/cpu_stream.h"
#include "core/error.h"

_Static_assert(sizeof(fleet__gather_args) <= FLEET__CPU_TASK_ARGS, "gather args fit a task");
_Static_assert(sizeof(fleet__range_args) <= FLEET__CPU_TASK_ARGS, "range args fit a task");
_Static_assert(sizeof(fleet__im2col_args) <= FLEET__CPU_TASK_ARGS, "im2col args fit a task");
_Static_assert(sizeof(fleet__pool_args) <= FLEET__CPU_TASK_ARGS, "pool args fit a task");

static void gather_task(const void *p)
{
    const fleet__gather_args *e = p;
    size_t row = (size_t)(e->inner * e->elem_size);
    const unsigned char *x = e->x;
    unsigned char *out = e->out;
    for (int64_t r = 0; r < e->n; r++) {
        int64_t idx = e->index_dtype == FLEET_DTYPE_I32 ? ((const int32_t *)e->indices)[r]
                                                        : ((const int64_t *)e->indices)[r];
        if (idx < 0 && e->wrap_negative)
            idx += e->v;
        bool in = idx >= 0 && idx < e->v;
        for (int64_t o = 0; o < e->outer; o++) {
            unsigned char *dst = out + (size_t)(o * e->n + r) * row;
            if (in)
                memcpy(dst, x + (size_t)(o * e->v + idx) * row, row);
            else /* out of range: zeros, as a padding index would give */
                memset(dst, 0, row);
        }
    }
}

static void range_task(const void *p)
{
    const fleet__range_args *e = p;
    for (int64_t i = 0; i < e->n; i++) {
        uint64_t v = (uint64_t)e->istart + (uint64_t)i * (uint64_t)e->idelta;
        switch (e->dtype) {
        case FLEET_DTYPE_I64: ((int64_t *)e->out)[i] = (int64_t)v; break;
        case FLEET_DTYPE_I32: ((int32_t *)e->out)[i] = (int32_t)(uint32_t)v; break;
        default: ((float *)e->out)[i] = (float)(e->fstart + (double)i * e->fdelta); break;
        }
    }
}

fleet_status fleet__cpu_range(void *stream, const fleet__range_args *args)
{
    if (args->dtype != FLEET_DTYPE_F32 && args->dtype != FLEET_DTYPE_I32 &&
        args->dtype != FLEET_DTYPE_I64)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cpu backend: a range of %s",
                            fleet_dtype_name((fleet_dtype)args->dtype));
    if (args->n == 0)
        return FLEET_OK;
    return fleet__cpu_stream_submit(stream, range_task, args, sizeof *args);
}

fleet_status fleet__cpu_gather(void *stream, const fleet__gather_args *args)
{
    if (args->index_dtype != FLEET_DTYPE_I32 && args->index_dtype != FLEET_DTYPE_I64)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cpu backend: gather indices must be i32/i64");
    if (args->n == 0 || args->inner == 0 || args->outer == 0)
        return FLEET_OK;
    return fleet__cpu_stream_submit(stream, gather_task, args, sizeof *args);
}

static void im2col_task(const void *p)
{
    const fleet__im2col_args *a = p;
    const fleet__conv_geom *g = &a->g;
    const float *x = a->x;
    float *cols = a->cols;
    int64_t ohw = g->oh * g->ow;
    int64_t xs = a->x_image_stride != 0 ? a->x_image_stride : g->c * g->h * g->w;
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t c = 0; c < g->c; c++) {
            const float *img = x + b * xs + c * g->h * g->w;
            for (int64_t i = 0; i < g->kh; i++)
                for (int64_t j = 0; j < g->kw; j++) {
                    float *row = cols + ((b * g->c + c) * g->kh * g->kw + i * g->kw + j) * ohw;
                    for (int64_t oy = 0; oy < g->oh; oy++) {
                        int64_t iy = oy * g->sh - g->ph + i * g->dh;
                        for (int64_t ox = 0; ox < g->ow; ox++) {
                            int64_t ix = ox * g->sw - g->pw + j * g->dw;
                            bool in = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
                            row[oy * g->ow + ox] = in ? img[iy * g->w + ix] : 0.0f;
                        }
                    }
                }
        }
}

fleet_status fleet__cpu_im2col(void *stream, const fleet__im2col_args *args)
{
    if (args->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cpu backend: im2col supports f32 only");
    const fleet__conv_geom *g = &args->g;
    if (g->n == 0 || g->c == 0 || g->kh * g->kw == 0 || g->oh * g->ow == 0)
        return FLEET_OK;
    return fleet__cpu_stream_submit(stream, im2col_task, args, sizeof *args);
}

static void pool_task(const void *p)
{
    const fleet__pool_args *a = p;
    const float *x = a->x;
    float *out = a->out;
    for (int64_t nc = 0; nc < a->n * a->c; nc++) {
        const float *img = x + nc * a->h * a->w;
        float *o = out + nc * a->oh * a->ow;
        for (int64_t oy = 0; oy < a->oh; oy++)
            for (int64_t ox = 0; ox < a->ow; ox++) {
                int64_t y0 = oy * a->sh - a->ph, x0 = ox * a->sw - a->pw;
                float best = -INFINITY;
                double sum = 0.0;
                int64_t count = 0;
                for (int64_t i = 0; i < a->kh; i++) {
                    int64_t iy = y0 + i * a->dh;
                    if (iy < 0 || iy >= a->h)
                        continue;
                    for (int64_t j = 0; j < a->kw; j++) {
                        int64_t ix = x0 + j * a->dw;
                        if (ix < 0 || ix >= a->w)
                            continue;
                        float v = img[iy * a->w + ix];
                        best = v > best || isnan(v) ? v : best;
                        sum += v;
                        count++;
                    }
                }
                if (a->op == FLEET__POOL_MAX) {
                    o[oy * a->ow + ox] = best;
                    continue;
                }
                if (a->count_include_pad) { /* the window clipped to the padded extent */
                    int64_t y1 = y0 + a->kh < a->h + a->ph_end ? y0 + a->kh : a->h + a->ph_end;
                    int64_t x1 = x0 + a->kw < a->w + a->pw_end ? x0 + a->kw : a->w + a->pw_end;
                    count = (y1 - y0) * (x1 - x0);
                }
                o[oy * a->ow + ox] = count > 0 ? (float)(sum / (double)count) : 0.0f;
            }
    }
}

fleet_status fleet__cpu_pool2d(void *stream, const fleet__pool_args *args)
{
    if (args->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cpu backend: pooling supports f32 only");
    if (args->n * args->c * args->oh * args->ow == 0)
        return FLEET_OK;
    return fleet__cpu_stream_submit(stream, pool_task, args, sizeof *args);
}
