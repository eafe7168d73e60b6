/* backend/cpu/cpu_rowwise.c — softmax, log-softmax, layer norm, sum, mean
 * and max along one dimension (f32), one stream task per call.
 *
 * The ops layer hands over the row starts as a coalesced view; the task walks
 * them with an odometer and runs one row at a time. Sums accumulate in double
 * (a float sum of a 1000-wide row loses digits the reference keeps), and
 * layer norm takes the variance in a second pass around the mean, which
 * avoids the cancellation of E[x^2] - E[x]^2. In place (out == x, the same
 * view) works because each element is read before it is written. */
#include <math.h>

#include "backend/cpu/cpu_rowwise.h"
#include "backend/cpu/cpu_stream.h"
#include "backend/cpu/vmath.h"
#include "core/error.h"

_Static_assert(sizeof(fleet__rowwise_args) <= FLEET__CPU_TASK_ARGS, "rowwise args fit a task");

/* A contiguous row's sum in double, four partial sums (the dependency of
 * one running sum is what bounded the loop). */
static double sum_contiguous(int64_t n, const float *x)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++)
        s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

/* A contiguous row (attention's rows are): the exponentials in a loop that
 * vectorises (cpu/vmath.h), built for AVX2 and baseline like the
 * elementwise rows. NaN behaves as in the strided loop: ignored by the max,
 * then it makes the sum and every output NaN. */
static inline __attribute__((always_inline)) void softmax_body(int64_t n, const float *x, float *o)
{
    float m0 = -INFINITY, m1 = -INFINITY;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
        m0 = x[i] > m0 ? x[i] : m0;
        m1 = x[i + 1] > m1 ? x[i + 1] : m1;
    }
    for (; i < n; i++)
        m0 = x[i] > m0 ? x[i] : m0;
    float max = m1 > m0 ? m1 : m0;
    for (i = 0; i < n; i++)
        o[i] = fleet__vexpf(x[i] - max);
    float inv = (float)(1.0 / sum_contiguous(n, o));
    for (i = 0; i < n; i++)
        o[i] *= inv;
}

static FLEET__AVX2 void softmax_avx2(int64_t n, const float *x, float *o)
{
    softmax_body(n, x, o);
}

static void softmax_contiguous(int64_t n, const float *x, float *o)
{
    if (fleet__cpu_avx2())
        softmax_avx2(n, x, o);
    else
        softmax_body(n, x, o);
}

static void softmax_row(int64_t n, const float *x, int64_t sx, float *o, int64_t so)
{
    if (sx == 1 && so == 1) {
        softmax_contiguous(n, x, o);
        return;
    }
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        max = x[i * sx] > max ? x[i * sx] : max;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float e = fleet__vexpf(x[i * sx] - max);
        o[i * so] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        o[i * so] *= inv;
}

static void log_softmax_row(int64_t n, const float *x, int64_t sx, float *o, int64_t so)
{
    if (n == 0)
        return;
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        max = x[i * sx] > max ? x[i * sx] : max;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += exp((double)x[i * sx] - max);
    float shift = max + (float)log(sum > 0.0 ? sum : 1.0); /* sum >= 1 unless NaN */
    for (int64_t i = 0; i < n; i++)
        o[i * so] = x[i * sx] - shift;
}

static float max_row(int64_t n, const float *x, int64_t sx)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i * sx];
        if (isnan(v))
            return v;
        max = v > max ? v : max;
    }
    return max;
}

static void layer_norm_row(const fleet__rowwise_args *a, const float *x, float *o)
{
    int64_t n = a->n, sx = a->x_stride, so = a->out_stride;
    const float *g = a->gamma, *b = a->beta;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += x[i * sx];
    double mean = sum / (double)n, sq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i * sx] - mean;
        sq += d * d;
    }
    double rstd = 1.0 / sqrt(sq / (double)n + (double)a->eps);
    for (int64_t i = 0; i < n; i++) {
        double y = (x[i * sx] - mean) * rstd;
        if (g != NULL)
            y *= g[i * a->gamma_stride];
        if (b != NULL)
            y += b[i * a->beta_stride];
        o[i * so] = (float)y;
    }
}

static float sum_row(int64_t n, const float *x, int64_t sx, int mean)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += x[i * sx];
    return (float)(mean ? sum / (double)n : sum);
}

static void rowwise_task(const void *p)
{
    const fleet__rowwise_args *a = p;
    const fleet__view *vx = &a->x, *vo = &a->out;
    int64_t rows = 1;
    for (int d = 0; d < vo->ndim; d++)
        rows *= vo->shape[d];
    int64_t idx[FLEET__VIEW_MAX_DIMS] = {0};
    int64_t ox = 0, oo = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = (const float *)vx->data + ox;
        float *o = (float *)vo->data + oo;
        switch ((fleet__row_op)a->op) {
        case FLEET__ROW_SOFTMAX: softmax_row(a->n, x, a->x_stride, o, a->out_stride); break;
        case FLEET__ROW_LAYER_NORM: layer_norm_row(a, x, o); break;
        case FLEET__ROW_SUM: *o = sum_row(a->n, x, a->x_stride, 0); break;
        case FLEET__ROW_MEAN: *o = sum_row(a->n, x, a->x_stride, 1); break;
        case FLEET__ROW_MAX: *o = max_row(a->n, x, a->x_stride); break;
        case FLEET__ROW_LOG_SOFTMAX:
            log_softmax_row(a->n, x, a->x_stride, o, a->out_stride);
            break;
        }
        for (int d = vo->ndim - 1; d >= 0; d--) { /* odometer over the row starts */
            ox += vx->strides[d];
            oo += vo->strides[d];
            if (++idx[d] < vo->shape[d])
                break;
            ox -= vx->strides[d] * vo->shape[d];
            oo -= vo->strides[d] * vo->shape[d];
            idx[d] = 0;
        }
    }
}

fleet_status fleet__cpu_rowwise(void *stream, const fleet__rowwise_args *args)
{
    if (args->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cpu backend: row ops support f32 only");
    for (int d = 0; d < args->out.ndim; d++)
        if (args->out.shape[d] == 0)
            return FLEET_OK;
    return fleet__cpu_stream_submit(stream, rowwise_task, args, sizeof *args);
}
