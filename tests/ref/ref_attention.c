/* tests/ref/ref_attention.c — reference scaled dot-product attention in double. */
#include <math.h>
#include <stdlib.h>

#include "core/assert.h"
#include "ref/ref.h"

void ref_attention(const float *q, const float *k, const float *v, const float *mask,
                   int64_t batch, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                   double scale, float *out)
{
    double *p = malloc(sizeof(double) * (size_t)(lk > 0 ? lk : 1));
    FLEET_ASSERT(p != NULL); /* test-side reference: no way to report it */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < lq; i++) {
            const float *qi = q + (b * lq + i) * d;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < lk; j++) {
                const float *kj = k + (b * lk + j) * d;
                double s = 0;
                for (int64_t t = 0; t < d; t++)
                    s += (double)qi[t] * kj[t];
                p[j] = s * scale + (mask != NULL ? mask[(b * lq + i) * lk + j] : 0.0);
                mx = p[j] > mx ? p[j] : mx;
            }
            for (int64_t j = 0; j < lk; j++)
                sum += (p[j] = exp(p[j] - mx));
            for (int64_t c = 0; c < dv; c++) {
                double acc = 0;
                for (int64_t j = 0; j < lk; j++)
                    acc += p[j] / sum * v[(b * lk + j) * dv + c];
                out[(b * lq + i) * dv + c] = (float)acc;
            }
        }
    free(p);
}
