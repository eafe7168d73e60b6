/* tests/ref/ref_linalg.c — the plain-C references of fleet/linalg.h (see
 * ref_linalg.h): textbook algorithms, double precision throughout, no
 * blocking and no tricks, so that they are easy to trust. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_linalg.h"

int ref_linalg_solve(int64_t n, int64_t k, const float *a, const float *b, float *x)
{
    /* Augmented [A | B] in double, eliminated in place. */
    int64_t w = n + k;
    double *m = malloc(sizeof(double) * (size_t)(n * w > 0 ? n * w : 1));
    if (m == NULL)
        abort();
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < n; j++)
            m[i * w + j] = a[i * n + j];
        for (int64_t j = 0; j < k; j++)
            m[i * w + n + j] = b[i * k + j];
    }
    int failed = 0;
    for (int64_t c = 0; c < n && !failed; c++) {
        int64_t p = c;
        for (int64_t i = c + 1; i < n; i++)
            if (fabs(m[i * w + c]) > fabs(m[p * w + c]))
                p = i;
        if (m[p * w + c] == 0.0) {
            failed = (int)c + 1;
            break;
        }
        if (p != c)
            for (int64_t j = 0; j < w; j++) {
                double t = m[c * w + j];
                m[c * w + j] = m[p * w + j];
                m[p * w + j] = t;
            }
        for (int64_t i = c + 1; i < n; i++) {
            double f = m[i * w + c] / m[c * w + c];
            for (int64_t j = c; j < w; j++)
                m[i * w + j] -= f * m[c * w + j];
        }
    }
    if (!failed)
        for (int64_t j = 0; j < k; j++)
            for (int64_t i = n - 1; i >= 0; i--) {
                double s = m[i * w + n + j];
                for (int64_t c = i + 1; c < n; c++)
                    s -= m[i * w + c] * m[c * w + n + j];
                m[i * w + n + j] = s / m[i * w + i];
                x[i * k + j] = (float)m[i * w + n + j];
            }
    free(m);
    return failed;
}

int ref_linalg_cholesky(int64_t n, const float *a, float *l)
{
    double *d = calloc((size_t)(n * n > 0 ? n * n : 1), sizeof(double));
    if (d == NULL)
        abort();
    int failed = 0;
    for (int64_t i = 0; i < n && !failed; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = a[i * n + j];
            for (int64_t p = 0; p < j; p++)
                s -= d[i * n + p] * d[j * n + p];
            if (i == j) {
                if (!(s > 0.0)) {
                    failed = (int)i + 1;
                    break;
                }
                d[i * n + i] = sqrt(s);
            } else {
                d[i * n + j] = s / d[j * n + j];
            }
        }
    for (int64_t i = 0; i < n * n; i++)
        l[i] = (float)d[i];
    free(d);
    return failed;
}

int ref_linalg_solve_triangular(int64_t n, int64_t k, const float *a, const float *b,
                                int upper, float *x)
{
    for (int64_t i = 0; i < n; i++)
        if (a[i * n + i] == 0.0f)
            return (int)i + 1;
    double *y = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (y == NULL)
        abort();
    for (int64_t j = 0; j < k; j++) {
        for (int64_t t = 0; t < n; t++) {
            int64_t i = upper ? n - 1 - t : t; /* back or forward substitution */
            double s = b[i * k + j];
            if (upper)
                for (int64_t c = i + 1; c < n; c++)
                    s -= (double)a[i * n + c] * y[c];
            else
                for (int64_t c = 0; c < i; c++)
                    s -= (double)a[i * n + c] * y[c];
            y[i] = s / a[i * n + i];
        }
        for (int64_t i = 0; i < n; i++)
            x[i * k + j] = (float)y[i];
    }
    free(y);
    return 0;
}

int ref_linalg_qr(int64_t m, int64_t n, const float *a, float *q, float *r)
{
    double *v = malloc(sizeof(double) * (size_t)(m * n > 0 ? m * n : 1)); /* columns, m each */
    if (v == NULL)
        abort();
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            v[j * m + i] = a[i * n + j];
    memset(r, 0, sizeof(float) * (size_t)(n * n));
    int failed = 0;
    for (int64_t j = 0; j < n; j++) {
        double norm = 0;
        for (int64_t i = 0; i < m; i++)
            norm += v[j * m + i] * v[j * m + i];
        norm = sqrt(norm);
        r[j * n + j] = (float)norm;
        if (norm == 0.0) {
            if (!failed)
                failed = (int)j + 1;
        } else {
            for (int64_t i = 0; i < m; i++)
                v[j * m + i] /= norm;
        }
        for (int64_t c = j + 1; c < n; c++) { /* modified: project the updated columns */
            double dot = 0;
            for (int64_t i = 0; i < m; i++)
                dot += v[j * m + i] * v[c * m + i];
            r[j * n + c] = (float)dot;
            for (int64_t i = 0; i < m; i++)
                v[c * m + i] -= dot * v[j * m + i];
        }
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            q[i * n + j] = (float)v[j * m + i];
    free(v);
    return failed;
}

int ref_linalg_inv(int64_t n, const float *a, float *out)
{
    float *eye = calloc((size_t)(n * n > 0 ? n * n : 1), sizeof(float));
    if (eye == NULL)
        abort();
    for (int64_t i = 0; i < n; i++)
        eye[i * n + i] = 1.0f;
    int rc = ref_linalg_solve(n, n, a, eye, out);
    free(eye);
    return rc;
}
