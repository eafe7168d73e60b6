/* tests/ref/ref_elementwise.c — reference elementwise ops and matmul in double. */
#include <math.h>
#include <stddef.h>

#include "ref/ref.h"

static double apply(int op, double x, double y)
{
    switch ((fleet__ew_op)op) {
    case FLEET__EW_COPY: return x;
    case FLEET__EW_RELU: return x > 0 ? x : 0;
    case FLEET__EW_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case FLEET__EW_SILU: return x / (1.0 + exp(-x));
    case FLEET__EW_TANH: return tanh(x);
    case FLEET__EW_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case FLEET__EW_ADD: return x + y;
    case FLEET__EW_SUB: return x - y;
    case FLEET__EW_MUL: return x * y;
    case FLEET__EW_DIV: return x / y;
    case FLEET__EW_COUNT_: break;
    }
    return NAN;
}

void ref_elementwise(int op, const fleet__view *out, const fleet__view *a,
                     const fleet__view *b)
{
    int64_t n = 1;
    for (int d = 0; d < out->ndim; d++)
        n *= out->shape[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t rest = i, oo = 0, oa = 0, ob = 0;
        for (int d = out->ndim - 1; d >= 0; d--) {
            int64_t k = rest % out->shape[d];
            rest /= out->shape[d];
            oo += k * out->strides[d];
            oa += k * a->strides[d];
            if (b != NULL)
                ob += k * b->strides[d];
        }
        double x = ((const float *)a->data)[oa];
        double y = b != NULL ? ((const float *)b->data)[ob] : 0.0;
        ((float *)out->data)[oo] = (float)apply(op, x, y);
    }
}

/* c[m,n] = a[m,k] @ B (+ bias[n]), B's element (p, j) at b[p * sbk + j * sbn]. */
static void gemm(const float *a, const float *b, int64_t sbk, int64_t sbn, const float *bias,
                 float *c, int64_t m, int64_t k, int64_t n)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = bias != NULL ? bias[j] : 0.0;
            for (int64_t p = 0; p < k; p++)
                acc += (double)a[i * k + p] * b[p * sbk + j * sbn];
            c[i * n + j] = (float)acc;
        }
}

void ref_matmul(const float *a, const float *b, const float *bias, float *c, int64_t m,
                int64_t k, int64_t n)
{
    gemm(a, b, n, 1, bias, c, m, k, n);
}

void ref_linear(const float *x, const float *w, const float *bias, float *y, int64_t m,
                int64_t k, int64_t n)
{
    gemm(x, w, 1, k, bias, y, m, k, n); /* w[n,k]: element (p, j) of w^T at w[j * k + p] */
}
