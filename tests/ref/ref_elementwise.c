/* tests/ref/ref_elementwise.c — reference elementwise ops and matmul in double. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/dtype.h"

#include "ref/ref.h"

static double apply(int op, double x, double y, double alpha, double beta)
{
    switch ((fleet__ew_op)op) {
    case FLEET__EW_COPY: case FLEET__EW_CAST: return x;
    case FLEET__EW_RELU: return x > 0 ? x : 0;
    case FLEET__EW_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case FLEET__EW_SILU: return x / (1.0 + exp(-x));
    case FLEET__EW_TANH: return tanh(x);
    case FLEET__EW_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case FLEET__EW_ERF: return erf(x);
    case FLEET__EW_EXP: return exp(x);
    case FLEET__EW_LOG: return log(x);
    case FLEET__EW_SQRT: return sqrt(x);
    case FLEET__EW_NEG: return -x;
    case FLEET__EW_ABS: return fabs(x);
    case FLEET__EW_RECIPROCAL: return 1.0 / x;
    case FLEET__EW_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    case FLEET__EW_LEAKY_RELU: return x >= 0 ? x : alpha * x;
    case FLEET__EW_CLIP: return x < alpha ? alpha : x > beta ? beta : x;
    case FLEET__EW_ADD: return x + y;
    case FLEET__EW_SUB: return x - y;
    case FLEET__EW_MUL: return x * y;
    case FLEET__EW_DIV: return x / y;
    case FLEET__EW_POW: return pow(x, y);
    case FLEET__EW_MAX: return isnan(x) || isnan(y) ? NAN : x > y ? x : y;
    case FLEET__EW_MIN: return isnan(x) || isnan(y) ? NAN : x < y ? x : y;
    case FLEET__EW_EQUAL: return x == y;
    case FLEET__EW_LESS: return x < y;
    case FLEET__EW_LESS_EQUAL: return x <= y;
    case FLEET__EW_GREATER: return x > y;
    case FLEET__EW_GREATER_EQUAL: return x >= y;
    case FLEET__EW_WHERE: case FLEET__EW_COUNT_: break;
    }
    return NAN;
}

static double get(const void *data, int64_t i, int dtype)
{
    switch (dtype) {
    case FLEET_DTYPE_F32: return ((const float *)data)[i];
    case FLEET_DTYPE_I32: return ((const int32_t *)data)[i];
    case FLEET_DTYPE_I64: return (double)((const int64_t *)data)[i];
    case FLEET_DTYPE_BOOL: return ((const unsigned char *)data)[i] != 0;
    }
    return NAN;
}

/* numpy's astype for the values it defines: truncation, 0 for NaN, bounds
 * saturated. */
static void put(void *data, int64_t i, int dtype, double v)
{
    switch (dtype) {
    case FLEET_DTYPE_F32: ((float *)data)[i] = (float)v; break;
    case FLEET_DTYPE_I32:
        ((int32_t *)data)[i] = isnan(v) ? 0 : v <= -2147483648.0 ? INT32_MIN
                               : v >= 2147483647.0 ? INT32_MAX : (int32_t)v;
        break;
    case FLEET_DTYPE_I64:
        ((int64_t *)data)[i] = isnan(v) ? 0 : v <= -9223372036854775808.0 ? INT64_MIN
                               : v >= 9223372036854774784.0 ? INT64_MAX : (int64_t)v;
        break;
    case FLEET_DTYPE_BOOL: ((unsigned char *)data)[i] = v != 0; break;
    }
}

void ref_elementwise_ex(int op, double alpha, double beta, int in_dtype, int out_dtype,
                        const fleet__view *out, const fleet__view *a, const fleet__view *b,
                        const fleet__view *c)
{
    int64_t n = 1;
    for (int d = 0; d < out->ndim; d++)
        n *= out->shape[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t rest = i, oo = 0, oa = 0, ob = 0, oc = 0;
        for (int d = out->ndim - 1; d >= 0; d--) {
            int64_t k = rest % out->shape[d];
            rest /= out->shape[d];
            oo += k * out->strides[d];
            oa += k * a->strides[d];
            if (b != NULL)
                ob += k * b->strides[d];
            if (c != NULL)
                oc += k * c->strides[d];
        }
        double x = get(a->data, oa, in_dtype);
        double y = b != NULL ? get(b->data, ob, in_dtype) : 0.0;
        double v = op == FLEET__EW_WHERE ? (get(c->data, oc, FLEET_DTYPE_BOOL) != 0 ? x : y)
                                         : apply(op, x, y, alpha, beta);
        if (op == FLEET__EW_COPY && in_dtype == FLEET_DTYPE_I64) /* exact, beyond 2^53 */
            ((int64_t *)out->data)[oo] = ((const int64_t *)a->data)[oa];
        else
            put(out->data, oo, out_dtype, v);
    }
}

void ref_elementwise(int op, const fleet__view *out, const fleet__view *a,
                     const fleet__view *b)
{
    ref_elementwise_ex(op, 0, 0, FLEET_DTYPE_F32, FLEET_DTYPE_F32, out, a, b, NULL);
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
