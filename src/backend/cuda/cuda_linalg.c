/* backend/cuda/cuda_linalg.c — LU solve, Cholesky, triangular solve, QR and
 * inverse with cuSOLVER's dense API and cuBLAS strsm, one matrix of the
 * batch after the other on the caller's stream (the calls are asynchronous;
 * scratch is reused across the batch because the stream orders them).
 *
 * Row-major vs column-major, as on cpu: a row-major matrix read column-major
 * is its transpose. getrf of A^T then getrs(T) solves A x = b (b and x are
 * transposed by a kernel); getrf of A^T then getrs(N) against I gives
 * inv(A^T) = inv(A)^T, which read row-major is inv(A); potrf(UPPER) of
 * A^T = A leaves U with A = U^T U, which read row-major is L; strsm solves
 * the row-major A x = b as the column-major x^T A^T = b^T (right side, the
 * opposite triangle); QR transposes A into column-major and Q back.
 *
 * Workspace (one allocation from the caching allocator, see ops/linalg.c),
 * in 256-byte aligned parts:
 *   info   int[batch + 1]  per-matrix status; the last one is a sink for the
 *                          status of getrs/orgqr, which would overwrite it
 *   ipiv   int[n]          SOLVE, INV
 *   w      float[m * n]    SOLVE, INV: copy of a; QR: a column-major, then Q
 *   bc     float[n * k]    SOLVE: column-major right-hand sides
 *   tau    float[n]        QR
 *   work   float[lwork]    cuSOLVER's scratch (its _bufferSize)          */
#include <limits.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_linalg.h"
#include "backend/cuda/linalg_kernels.h"

fleet_status fleet__cusolver_status(cusolverStatus_t s, const char *call, const char *file, int line)
{
    const char *name;
    switch (s) {
    case CUSOLVER_STATUS_NOT_INITIALIZED: name = "CUSOLVER_STATUS_NOT_INITIALIZED"; break;
    case CUSOLVER_STATUS_ALLOC_FAILED: name = "CUSOLVER_STATUS_ALLOC_FAILED"; break;
    case CUSOLVER_STATUS_INVALID_VALUE: name = "CUSOLVER_STATUS_INVALID_VALUE"; break;
    case CUSOLVER_STATUS_ARCH_MISMATCH: name = "CUSOLVER_STATUS_ARCH_MISMATCH"; break;
    case CUSOLVER_STATUS_EXECUTION_FAILED: name = "CUSOLVER_STATUS_EXECUTION_FAILED"; break;
    case CUSOLVER_STATUS_INTERNAL_ERROR: name = "CUSOLVER_STATUS_INTERNAL_ERROR"; break;
    case CUSOLVER_STATUS_NOT_SUPPORTED: name = "CUSOLVER_STATUS_NOT_SUPPORTED"; break;
    case CUSOLVER_STATUS_INVALID_WORKSPACE: name = "CUSOLVER_STATUS_INVALID_WORKSPACE"; break;
    default: name = "cusolverStatus"; break;
    }
    fleet_status st = s == CUSOLVER_STATUS_ALLOC_FAILED ? FLEET_ERR_OUT_OF_MEMORY : FLEET_ERR_BACKEND;
    return fleet__error(st, "%s failed: %s (%d) at %s:%d", call, name, (int)s, file, line);
}

fleet_status fleet__cuda_solver_create(cudaStream_t stream, cusolverDnHandle_t *out)
{
    cusolverDnHandle_t h = NULL;
    FLEET_CUSOLVER_TRY(cusolverDnCreate(&h));
    cusolverStatus_t s = cusolverDnSetStream(h, stream);
    if (s != CUSOLVER_STATUS_SUCCESS) {
        cusolverDnDestroy(h);
        return fleet__cusolver_status(s, "cusolverDnSetStream", __FILE__, __LINE__);
    }
    *out = h;
    return FLEET_OK;
}

void fleet__cuda_solver_destroy(cusolverDnHandle_t handle)
{
    if (handle != NULL)
        cusolverDnDestroy(handle);
}

typedef struct scratch_layout {
    size_t info, ipiv, w, bc, tau, work, total;
    int lwork; /* floats */
} scratch_layout;

static size_t carve(size_t *off, size_t bytes)
{
    size_t at = *off;
    *off += (bytes + 255) & ~(size_t)255;
    return at;
}

static fleet_status layout_for(cusolverDnHandle_t h, const fleet__linalg_args *l,
                               scratch_layout *s)
{
    int m = (int)l->m, n = (int)l->n;
    int lwork = 0, lwork2 = 0;
    float *x = l->x; /* the _bufferSize queries take a matrix pointer they do not read */
    switch (l->op) {
    case FLEET__LINALG_SOLVE:
    case FLEET__LINALG_INV:
        FLEET_CUSOLVER_TRY(cusolverDnSgetrf_bufferSize(h, n, n, x, n, &lwork));
        break;
    case FLEET__LINALG_CHOLESKY:
        FLEET_CUSOLVER_TRY(cusolverDnSpotrf_bufferSize(h, CUBLAS_FILL_MODE_UPPER, n, x, n, &lwork));
        break;
    case FLEET__LINALG_QR:
        FLEET_CUSOLVER_TRY(cusolverDnSgeqrf_bufferSize(h, m, n, x, m, &lwork));
        FLEET_CUSOLVER_TRY(cusolverDnSorgqr_bufferSize(h, m, n, n, x, m, l->r, &lwork2));
        if (lwork2 > lwork)
            lwork = lwork2;
        break;
    case FLEET__LINALG_SOLVE_TRIANGULAR:
        break;
    }
    size_t off = 0, mm = (size_t)l->m, nn = (size_t)l->n, kk = (size_t)l->k;
    *s = (scratch_layout){0};
    s->lwork = lwork > 0 ? lwork : 1;
    s->info = carve(&off, sizeof(int) * ((size_t)l->batch + 1));
    switch (l->op) {
    case FLEET__LINALG_SOLVE:
        s->bc = carve(&off, sizeof(float) * nn * kk);
        /* fall through */
    case FLEET__LINALG_INV:
        s->ipiv = carve(&off, sizeof(int) * nn);
        s->w = carve(&off, sizeof(float) * nn * nn);
        s->work = carve(&off, sizeof(float) * (size_t)s->lwork);
        break;
    case FLEET__LINALG_CHOLESKY:
        s->work = carve(&off, sizeof(float) * (size_t)s->lwork);
        break;
    case FLEET__LINALG_QR:
        s->w = carve(&off, sizeof(float) * mm * nn);
        s->tau = carve(&off, sizeof(float) * nn);
        s->work = carve(&off, sizeof(float) * (size_t)s->lwork);
        break;
    case FLEET__LINALG_SOLVE_TRIANGULAR:
        break;
    }
    s->total = off;
    return FLEET_OK;
}

static fleet_status check_sizes(const fleet__linalg_args *l)
{
    if (l->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cuda backend: linalg supports f32 only");
    int64_t big = l->m > l->k ? l->m : l->k;
    if (l->m > INT_MAX || l->n > INT_MAX || l->k > INT_MAX || l->batch >= INT_MAX ||
        (l->n > 0 && big > INT_MAX / l->n))
        return fleet__error(FLEET_ERR_UNSUPPORTED,
                            "cuda backend: linalg matrices beyond 2^31-1 elements (cuSOLVER uses int)");
    return FLEET_OK;
}

fleet_status fleet__cuda_linalg_workspace_size(cusolverDnHandle_t solver,
                                               const fleet__linalg_args *args, size_t *bytes)
{
    fleet_status st = check_sizes(args);
    scratch_layout s;
    if (st == FLEET_OK)
        st = layout_for(solver, args, &s);
    if (st == FLEET_OK)
        *bytes = s.total;
    return st;
}

#define KERNEL_TRY(call) FLEET_CUDA_TRY((cudaError_t)(call))

fleet_status fleet__cuda_linalg(cudaStream_t stream, cublasHandle_t blas, cusolverDnHandle_t h,
                                const fleet__linalg_args *l)
{
    fleet_status st = check_sizes(l);
    scratch_layout s;
    if (st == FLEET_OK)
        st = layout_for(h, l, &s);
    if (st != FLEET_OK)
        return st;
    FLEET_ASSERT(l->workspace_bytes >= s.total && l->workspace != NULL);
    bool has_rhs = l->op == FLEET__LINALG_SOLVE || l->op == FLEET__LINALG_SOLVE_TRIANGULAR;
    if (l->batch == 0 || l->n == 0 || (has_rhs && l->k == 0))
        return FLEET_OK;
    char *ws = l->workspace;
    /* The scratch offsets are aligned for their types (scratch_layout). */
    int *info = (void *)(ws + s.info), *sink = info + l->batch, *ipiv = (void *)(ws + s.ipiv);
    float *w = (void *)(ws + s.w), *bc = (void *)(ws + s.bc), *tau = (void *)(ws + s.tau);
    float *work = (void *)(ws + s.work);
    int m = (int)l->m, n = (int)l->n, k = (int)l->k;
    size_t mat_bytes = sizeof(float) * (size_t)n * (size_t)n;
    void *sp = (void *)stream;
    const float one = 1.0f;

    switch (l->op) {
    case FLEET__LINALG_SOLVE:
        for (int64_t i = 0; i < l->batch; i++) {
            const float *a = (const float *)l->a + i * n * n;
            const float *b = (const float *)l->b + i * n * k;
            float *x = (float *)l->x + i * n * k;
            FLEET_CUDA_TRY(cudaMemcpyAsync(w, a, mat_bytes, cudaMemcpyDeviceToDevice, stream));
            FLEET_CUSOLVER_TRY(cusolverDnSgetrf(h, n, n, w, n, work, ipiv, info + i));
            KERNEL_TRY(fleet__cuda_transpose_f32(sp, 1, n, k, b, bc));
            FLEET_CUSOLVER_TRY(cusolverDnSgetrs(h, CUBLAS_OP_T, n, k, w, n, ipiv, bc, n, sink));
            KERNEL_TRY(fleet__cuda_transpose_f32(sp, 1, k, n, bc, x));
        }
        break;
    case FLEET__LINALG_INV:
        KERNEL_TRY(fleet__cuda_eye_f32(sp, l->batch, n, l->x));
        for (int64_t i = 0; i < l->batch; i++) {
            const float *a = (const float *)l->a + i * n * n;
            float *x = (float *)l->x + i * n * n;
            FLEET_CUDA_TRY(cudaMemcpyAsync(w, a, mat_bytes, cudaMemcpyDeviceToDevice, stream));
            FLEET_CUSOLVER_TRY(cusolverDnSgetrf(h, n, n, w, n, work, ipiv, info + i));
            FLEET_CUSOLVER_TRY(cusolverDnSgetrs(h, CUBLAS_OP_N, n, n, w, n, ipiv, x, n, sink));
        }
        break;
    case FLEET__LINALG_CHOLESKY:
        FLEET_CUDA_TRY(cudaMemcpyAsync(l->x, l->a, mat_bytes * (size_t)l->batch,
                                       cudaMemcpyDeviceToDevice, stream));
        for (int64_t i = 0; i < l->batch; i++) {
            float *x = (float *)l->x + i * n * n;
            FLEET_CUSOLVER_TRY(cusolverDnSpotrf(h, CUBLAS_FILL_MODE_UPPER, n, x, n, work, s.lwork,
                                                info + i));
        }
        KERNEL_TRY(fleet__cuda_zero_upper_f32(sp, l->batch, n, l->x));
        break;
    case FLEET__LINALG_SOLVE_TRIANGULAR:
        FLEET_ASSERT(blas != NULL);
        KERNEL_TRY(fleet__cuda_diag_zero_info_f32(sp, l->batch, n, l->a, info));
        FLEET_CUDA_TRY(cudaMemcpyAsync(l->x, l->b, sizeof(float) * (size_t)n * (size_t)k *
                                       (size_t)l->batch, cudaMemcpyDeviceToDevice, stream));
        for (int64_t i = 0; i < l->batch; i++) {
            const float *a = (const float *)l->a + i * n * n;
            float *x = (float *)l->x + i * n * k;
            FLEET_CUBLAS_TRY(cublasStrsm(blas, CUBLAS_SIDE_RIGHT,
                                         l->upper ? CUBLAS_FILL_MODE_LOWER : CUBLAS_FILL_MODE_UPPER,
                                         CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, k, n, &one, a, n, x, k));
        }
        break;
    case FLEET__LINALG_QR:
        for (int64_t i = 0; i < l->batch; i++) {
            const float *a = (const float *)l->a + i * m * n;
            float *q = (float *)l->x + i * m * n, *r = (float *)l->r + i * n * n;
            KERNEL_TRY(fleet__cuda_transpose_f32(sp, 1, m, n, a, w));
            FLEET_CUSOLVER_TRY(cusolverDnSgeqrf(h, m, n, w, m, tau, work, s.lwork, info + i));
            KERNEL_TRY(fleet__cuda_qr_r_f32(sp, m, n, w, r));
            FLEET_CUSOLVER_TRY(cusolverDnSorgqr(h, m, n, n, w, m, tau, work, s.lwork, sink));
            KERNEL_TRY(fleet__cuda_transpose_f32(sp, 1, n, m, w, q));
        }
        break;
    }
    FLEET_CUDA_TRY(cudaMemcpyAsync(l->info, info, sizeof(int) * (size_t)l->batch,
                                   cudaMemcpyDeviceToHost, stream));
    return FLEET_OK;
}
