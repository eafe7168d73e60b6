/* tests/ref/ref_rowwise.c — reference softmax, layer norm, sum and mean in double,
 * over contiguous host buffers seen as [outer, n, inner] (the op's dimension
 * in the middle). */
#include <math.h>

#include "ref/ref.h"

void ref_softmax(const float *x, float *out, int64_t outer, int64_t n, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *xr = x + o * n * inner + j;
            float *yr = out + o * n * inner + j;
            double max = -INFINITY, sum = 0;
            for (int64_t i = 0; i < n; i++)
                max = fmax(max, xr[i * inner]);
            for (int64_t i = 0; i < n; i++)
                sum += exp(xr[i * inner] - max);
            for (int64_t i = 0; i < n; i++)
                yr[i * inner] = (float)(exp(xr[i * inner] - max) / sum);
        }
}

void ref_layer_norm(const float *x, const float *gamma, const float *beta, double eps,
                    float *out, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; i++)
            mean += xr[i];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++)
            var += (xr[i] - mean) * (xr[i] - mean);
        var /= (double)n;
        for (int64_t i = 0; i < n; i++) {
            double y = (xr[i] - mean) / sqrt(var + eps);
            out[r * n + i] = (float)(y * (gamma ? gamma[i] : 1.0) + (beta ? beta[i] : 0.0));
        }
    }
}

void ref_sum(const float *x, float *out, int64_t outer, int64_t n, int64_t inner, int mean)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double sum = 0;
            for (int64_t i = 0; i < n; i++)
                sum += x[(o * n + i) * inner + j];
            out[o * inner + j] = (float)(mean ? sum / (double)n : sum);
        }
}

void ref_log_softmax(const float *x, float *out, int64_t outer, int64_t n, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *xr = x + o * n * inner + j;
            double max = -INFINITY, sum = 0;
            for (int64_t i = 0; i < n; i++)
                max = fmax(max, xr[i * inner]);
            for (int64_t i = 0; i < n; i++)
                sum += exp(xr[i * inner] - max);
            for (int64_t i = 0; i < n; i++)
                out[o * n * inner + j + i * inner] = (float)(xr[i * inner] - max - log(sum));
        }
}

void ref_max(const float *x, float *out, int64_t outer, int64_t n, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double max = -INFINITY;
            for (int64_t i = 0; i < n; i++) {
                double v = x[(o * n + i) * inner + j];
                max = isnan(v) || isnan(max) ? NAN : v > max ? v : max;
            }
            out[o * inner + j] = (float)max;
        }
}
