/* backend/cuda/cuda_gemm_lt.c — row-major C = op(A) op(B) + bias (f32,
 * f16 or bf16 data; f32 accumulation) as
 * cuBLASLt's column-major D^T = op(B)^T op(A)^T with CUBLASLT_EPILOGUE_BIAS:
 * the bias, one value per row of D^T (a column of C), is added by the GEMM
 * kernel itself. Compute type CUBLAS_COMPUTE_32F: float32-accurate, no TF32.
 * Descriptors are built per call (a few µs of host time; caching them per
 * shape is left to the performance work). */
#include <cublasLt.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_gemm_lt.h"

static fleet_status lt_status(cublasStatus_t s, const char *call)
{
    return fleet__cublas_status(s, call, __FILE__, __LINE__);
}

/* The stream's cuBLASLt handle, created on first use (the caller holds the
 * stream's library lock, so there is no race to create it). */
static fleet_status handle(fleet_atomic_ptr *slot, cublasLtHandle_t *out)
{
    cublasLtHandle_t h = fleet_atomic_load_relaxed(slot);
    if (h == NULL) {
        cublasStatus_t s = cublasLtCreate(&h);
        if (s != CUBLAS_STATUS_SUCCESS)
            return lt_status(s, "cublasLtCreate");
        fleet_atomic_store_release(slot, (void *)h);
    }
    *out = h;
    return FLEET_OK;
}

/* A column-major layout of `rows` x `cols`, leading dimension ld, batched. */
static cublasStatus_t layout(cublasLtMatrixLayout_t *l, cudaDataType_t type, int64_t rows,
                             int64_t cols, int64_t ld, int64_t batch, int64_t stride)
{
    cublasStatus_t s = cublasLtMatrixLayoutCreate(l, type, (uint64_t)rows, (uint64_t)cols, ld);
    if (s != CUBLAS_STATUS_SUCCESS || batch == 1)
        return s;
    int32_t count = (int32_t)batch;
    s = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                             &stride, sizeof stride);
    return s;
}

fleet_status fleet__cuda_gemm_bias_lt(fleet_atomic_ptr *lt_slot, cudaStream_t stream,
                                      void *workspace, size_t workspace_bytes,
                                      const fleet__gemm_args *g, bool *fused)
{
    *fused = false;
    cublasLtHandle_t lt = NULL;
    fleet_status st = handle(lt_slot, &lt);
    if (st != FLEET_OK)
        return st;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t lb = NULL, la = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    const char *call = "";
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
/* Run one step unless an earlier one failed, remembering its name. */
#define LT_STEP(expr)                                                                    \
    do {                                                                                 \
        if (s == CUBLAS_STATUS_SUCCESS) {                                                \
            call = #expr;                                                                \
            s = (expr);                                                                  \
        }                                                                                \
    } while (0)
    /* First operand of the column-major product is B (row-major [k,n], or
     * [n,k] when transposed), the second is A. */
    cublasOperation_t opb = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opa = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtEpilogue_t epi = g->relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    const void *bias = g->bias;
    /* f32, f16 or bf16 data (and bias), accumulated and scaled in f32. */
    cudaDataType_t type = g->dtype == FLEET_DTYPE_F16    ? CUDA_R_16F
                          : g->dtype == FLEET_DTYPE_BF16 ? CUDA_R_16BF
                                                         : CUDA_R_32F;
    LT_STEP(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type,
                                           sizeof type));
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opb, sizeof opb));
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opa, sizeof opa));
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                           sizeof bias));
    LT_STEP(layout(&lb, type, g->trans_b ? g->k : g->n, g->trans_b ? g->n : g->k, g->ldb, g->batch,
                   g->stride_b));
    LT_STEP(layout(&la, type, g->trans_a ? g->m : g->k, g->trans_a ? g->k : g->m, g->lda, g->batch,
                   g->stride_a));
    LT_STEP(layout(&lc, type, g->n, g->m, g->ldc, g->batch, g->stride_c));
    LT_STEP(cublasLtMatmulPreferenceCreate(&pref));
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &workspace_bytes, sizeof workspace_bytes));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    LT_STEP(cublasLtMatmulAlgoGetHeuristic(lt, op, lb, la, lc, lc, pref, 1, &result, &found));
    if (found > 0) {
        LT_STEP(cublasLtMatmul(lt, op, &g->alpha, g->b, lb, g->a, la, &g->beta, g->c, lc, g->c,
                               lc, &result.algo, workspace, workspace_bytes, stream));
        *fused = s == CUBLAS_STATUS_SUCCESS;
    }
#undef LT_STEP
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (lc)
        cublasLtMatrixLayoutDestroy(lc);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (lb)
        cublasLtMatrixLayoutDestroy(lb);
    if (op)
        cublasLtMatmulDescDestroy(op);
    /* No algorithm (or the shape is not supported) is not an error: the
     * caller falls back to a bias kernel and a plain GEMM. */
    if (s == CUBLAS_STATUS_NOT_SUPPORTED)
        return FLEET_OK;
    return s == CUBLAS_STATUS_SUCCESS ? FLEET_OK : lt_status(s, call);
}

void fleet__cuda_lt_destroy(void *lt)
{
    if (lt != NULL)
        cublasLtDestroy((cublasLtHandle_t)lt);
}
