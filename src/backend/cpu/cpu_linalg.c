/* backend/cpu/cpu_linalg.c — LU solve, Cholesky, triangular solve, QR and
 * inverse through the system LAPACK's Fortran symbols (Debian's liblapack
 * has no LAPACKE), one stream task per op that loops over the batch.
 *
 * Row-major vs column-major: a row-major n x n matrix A read column-major is
 * A^T. Where the algebra allows it that is used instead of a transposing
 * copy: getrf of A^T then getrs('T') solves A x = b; the inverse of A^T read
 * row-major is inv(A); potrf('U') of A^T (= A) leaves U with A^T = U^T U,
 * which read row-major is L = U^T. QR needs A itself, so it transposes.
 * Scratch (copies, pivots, tau, LAPACK work) is the op's workspace from the
 * caching allocator, so a task never allocates and cannot fail half-way. */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "backend/cpu/cpu_linalg.h"
#include "backend/cpu/cpu_stream.h"
#include "core/error.h"

_Static_assert(sizeof(fleet__linalg_args) <= FLEET__CPU_TASK_ARGS, "linalg args fit a task");

/* LAPACK, Fortran calling convention: everything by reference, plus the
 * hidden lengths of character arguments (gfortran's size_t) at the end. */
void sgetrf_(const int *m, const int *n, float *a, const int *lda, int *ipiv, int *info);
void sgetrs_(const char *trans, const int *n, const int *nrhs, const float *a, const int *lda,
             const int *ipiv, float *b, const int *ldb, int *info, size_t trans_len);
void sgetri_(const int *n, float *a, const int *lda, const int *ipiv, float *work,
             const int *lwork, int *info);
void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info,
             size_t uplo_len);
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda,
             const float *tau, float *work, const int *lwork, int *info);

/* Byte offsets of the scratch parts for one matrix (reused across the batch:
 * the task does one matrix at a time). */
typedef struct scratch_layout {
    size_t w;     /* float[m*n]: working copy of a                      */
    size_t bc;    /* float[n*k]: column-major right-hand sides (SOLVE)  */
    size_t ipiv;  /* int[n]                                             */
    size_t tau;   /* float[n] (QR)                                      */
    size_t work;  /* float[lwork]                                       */
    int lwork;
    size_t total;
} scratch_layout;

static size_t carve(size_t *off, size_t bytes)
{
    size_t at = *off;
    *off += (bytes + 63) & ~(size_t)63;
    return at;
}

static scratch_layout layout_for(const fleet__linalg_args *l)
{
    scratch_layout s = {0};
    size_t off = 0, m = (size_t)l->m, n = (size_t)l->n, k = (size_t)l->k;
    /* Any lwork >= n is valid for getri/geqrf/orgqr; 64 n lets blocked code block. */
    s.lwork = (int)(64 * n > 1 ? 64 * n : 1);
    switch (l->op) {
    case FLEET__LINALG_SOLVE:
        s.w = carve(&off, sizeof(float) * n * n);
        s.bc = carve(&off, sizeof(float) * n * k);
        s.ipiv = carve(&off, sizeof(int) * n);
        break;
    case FLEET__LINALG_INV:
        s.ipiv = carve(&off, sizeof(int) * n);
        s.work = carve(&off, sizeof(float) * (size_t)s.lwork);
        break;
    case FLEET__LINALG_QR:
        s.w = carve(&off, sizeof(float) * m * n);
        s.tau = carve(&off, sizeof(float) * n);
        s.work = carve(&off, sizeof(float) * (size_t)s.lwork);
        break;
    case FLEET__LINALG_CHOLESKY:
    case FLEET__LINALG_SOLVE_TRIANGULAR:
        break; /* in place in the output */
    }
    s.total = off;
    return s;
}

fleet_status fleet__cpu_linalg_workspace_size(void *stream, const fleet__linalg_args *args,
                                              size_t *bytes)
{
    (void)stream;
    if (args->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cpu backend: linalg supports f32 only");
    /* LAPACK indexes with int: every matrix must have fewer than 2^31 elements. */
    int64_t big = args->m > args->k ? args->m : args->k;
    if (args->m > INT_MAX || args->n > INT_MAX || args->k > INT_MAX || 64 * args->n > INT_MAX ||
        (args->n > 0 && big > INT_MAX / args->n))
        return fleet__error(FLEET_ERR_UNSUPPORTED,
                            "cpu backend: linalg matrices beyond 2^31-1 elements (LAPACK uses int)");
    *bytes = layout_for(args).total;
    return FLEET_OK;
}

/* Column-major cm[rows x cols] (ld rows) from row-major rm[rows][cols], and back. */
static void to_col_major(const float *rm, int64_t rows, int64_t cols, float *cm)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            cm[j * rows + i] = rm[i * cols + j];
}

static void from_col_major(const float *cm, int64_t rows, int64_t cols, float *rm)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            rm[i * cols + j] = cm[j * rows + i];
}

/* One matrix of the batch; returns its info (see linalg_args.h), or a
 * negative LAPACK argument error (a bug here; ops/ reports it as internal). */
static int run_one(const fleet__linalg_args *l, const scratch_layout *s, int64_t i)
{
    char *ws = l->workspace;
    /* The scratch offsets are aligned for their types (scratch_layout). */
    float *w = (void *)(ws + s->w), *bc = (void *)(ws + s->bc), *tau = (void *)(ws + s->tau);
    float *work = (void *)(ws + s->work);
    int *ipiv = (void *)(ws + s->ipiv);
    int m = (int)l->m, n = (int)l->n, k = (int)l->k, info = 0;
    const float *a = (const float *)l->a + i * l->m * l->n;
    const float *b = l->b != NULL ? (const float *)l->b + i * l->n * l->k : NULL;
    switch (l->op) {
    case FLEET__LINALG_SOLVE: {
        FLEET_ASSERT(b != NULL); /* ops/linalg.c passes b for solves */
        float *x = (float *)l->x + i * l->n * l->k;
        memcpy(w, a, sizeof(float) * (size_t)n * (size_t)n); /* A^T, column-major */
        sgetrf_(&n, &n, w, &n, ipiv, &info);
        if (info != 0)
            return info;
        to_col_major(b, n, k, bc);
        sgetrs_("T", &n, &k, w, &n, ipiv, bc, &n, &info, 1);
        if (info == 0)
            from_col_major(bc, n, k, x);
        return info;
    }
    case FLEET__LINALG_INV: {
        float *x = (float *)l->x + i * l->n * l->n;
        memcpy(x, a, sizeof(float) * (size_t)n * (size_t)n);
        sgetrf_(&n, &n, x, &n, ipiv, &info);
        if (info != 0)
            return info;
        sgetri_(&n, x, &n, ipiv, work, &s->lwork, &info);
        return info;
    }
    case FLEET__LINALG_CHOLESKY: {
        float *x = (float *)l->x + i * l->n * l->n;
        memcpy(x, a, sizeof(float) * (size_t)n * (size_t)n);
        spotrf_("U", &n, x, &n, &info, 1);
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = r + 1; c < n; c++)
                x[r * n + c] = 0.0f;
        return info;
    }
    case FLEET__LINALG_SOLVE_TRIANGULAR: {
        FLEET_ASSERT(b != NULL); /* ops/linalg.c passes b for solves */
        float *x = (float *)l->x + i * l->n * l->k;
        for (int d = 0; d < n; d++) /* what strtrs checks before it solves */
            if (a[(int64_t)d * n + d] == 0.0f)
                return d + 1;
        memcpy(x, b, sizeof(float) * (size_t)n * (size_t)k);
        cblas_strsm(CblasRowMajor, CblasLeft, l->upper ? CblasUpper : CblasLower, CblasNoTrans,
                    CblasNonUnit, n, k, 1.0f, a, n, x, k);
        return 0;
    }
    case FLEET__LINALG_QR: {
        float *q = (float *)l->x + i * l->m * l->n, *r = (float *)l->r + i * l->n * l->n;
        to_col_major(a, m, n, w);
        sgeqrf_(&m, &n, w, &m, tau, work, &s->lwork, &info);
        if (info != 0)
            return info;
        for (int64_t rr = 0; rr < n; rr++)
            for (int64_t c = 0; c < n; c++)
                r[rr * n + c] = rr <= c ? w[c * m + rr] : 0.0f;
        sorgqr_(&m, &n, &n, w, &m, tau, work, &s->lwork, &info);
        if (info == 0)
            from_col_major(w, m, n, q);
        return info;
    }
    }
    return -1000; /* unknown op */
}

static void linalg_task(const void *p)
{
    const fleet__linalg_args *l = p;
    scratch_layout s = layout_for(l);
    for (int64_t i = 0; i < l->batch; i++)
        l->info[i] = run_one(l, &s, i);
}

fleet_status fleet__cpu_linalg(void *stream, const fleet__linalg_args *args)
{
    size_t need = 0;
    fleet_status st = fleet__cpu_linalg_workspace_size(stream, args, &need);
    if (st != FLEET_OK)
        return st;
    FLEET_ASSERT(args->workspace_bytes >= need && (need == 0 || args->workspace != NULL));
    bool has_rhs = args->op == FLEET__LINALG_SOLVE || args->op == FLEET__LINALG_SOLVE_TRIANGULAR;
    if (args->batch == 0 || args->n == 0 || (has_rhs && args->k == 0))
        return FLEET_OK; /* nothing to do; info stays as the caller set it */
    return fleet__cpu_stream_submit(stream, linalg_task, args, sizeof *args);
}
