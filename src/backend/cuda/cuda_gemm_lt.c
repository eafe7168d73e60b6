/* backend/cuda/cuda_gemm_lt.c — row-major C = op(A) op(B) + bias (f32,
 * f16 or bf16 data; f32 accumulation) as
 * cuBLASLt's column-major D^T = op(B)^T op(A)^T with CUBLASLT_EPILOGUE_BIAS:
 * the bias, one value per row of D^T (a column of C), is added by the GEMM
 * kernel itself. Compute type CUBLAS_COMPUTE_32F: float32-accurate, no TF32.
 *
 * Each stream keeps the plans of the GEMMs it ran last: the matmul
 * descriptor, the three layouts and the algorithm cuBLASLt's heuristic chose,
 * keyed by everything they depend on (shape, leading dimensions, batch and
 * strides, transposes, dtype, epilogue, and the operands' alignment, which
 * the heuristic's choice is only valid for). A repeated GEMM sets the bias
 * pointer and calls cublasLtMatmul: no descriptor is built, no heuristic
 * asked (building them cost 1-3 µs per op). A shape cuBLASLt has no
 * algorithm for is remembered too, so its fallback costs nothing extra. The
 * plans are the stream's, used under its library lock: no lock of their own. */
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_gemm_lt.h"

#define LT_PLANS 16 /* per stream: a model's distinct GEMMs, a few of them */
#define LT_KEY_WORDS 12

typedef struct lt_plan {
    int64_t key[LT_KEY_WORDS];
    uint64_t last_use; /* 0: empty */
    bool supported;    /* false: no algorithm; the caller falls back */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} lt_plan;

struct fleet__cuda_lt {
    cublasLtHandle_t handle;
    uint64_t clock;
    lt_plan plans[LT_PLANS];
};

static fleet_status lt_status(cublasStatus_t s, const char *call)
{
    return fleet__cublas_status(s, call, __FILE__, __LINE__);
}

/* The largest power of two up to 256 that divides the address. */
static int64_t alignment(const void *p)
{
    uintptr_t a = (uintptr_t)p | 256u;
    return (int64_t)(a & -a);
}

static void plan_key(const fleet__gemm_args *g, int64_t key[LT_KEY_WORDS])
{
    int64_t flags = (int64_t)g->dtype | (int64_t)g->trans_a << 8 | (int64_t)g->trans_b << 9 |
                    (int64_t)g->relu << 10;
    /* Alignments of b, a, c (cuBLASLt's A, B, C/D), 1..256 bytes, a byte each. */
    int64_t align = alignment(g->b) | alignment(g->a) << 9 | alignment(g->c) << 18 |
                    alignment(g->bias) << 27;
    int64_t k[LT_KEY_WORDS] = {flags, align, g->m, g->n, g->k, g->lda, g->ldb, g->ldc,
                               g->batch, g->stride_a, g->stride_b, g->stride_c};
    memcpy(key, k, sizeof k);
}

static void plan_clear(lt_plan *p)
{
    if (p->lc)
        cublasLtMatrixLayoutDestroy(p->lc);
    if (p->la)
        cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb)
        cublasLtMatrixLayoutDestroy(p->lb);
    if (p->op)
        cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
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

/* Build p for g: descriptors, layouts and the heuristic's algorithm, or
 * p->supported = false when cuBLASLt has none. On failure p is left empty. */
static fleet_status plan_build(cublasLtHandle_t lt, size_t workspace_bytes,
                               const fleet__gemm_args *g, lt_plan *p)
{
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
    /* f32, f16 or bf16 data (and bias), accumulated and scaled in f32. */
    cudaDataType_t type = g->dtype == FLEET_DTYPE_F16    ? CUDA_R_16F
                          : g->dtype == FLEET_DTYPE_BF16 ? CUDA_R_16BF
                                                         : CUDA_R_32F;
    uint32_t align_a = (uint32_t)alignment(g->b), align_b = (uint32_t)alignment(g->a),
             align_c = (uint32_t)alignment(g->c);
    LT_STEP(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_STEP(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type,
                                           sizeof type));
    LT_STEP(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opb, sizeof opb));
    LT_STEP(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opa, sizeof opa));
    LT_STEP(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                           sizeof epi));
    LT_STEP(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias,
                                           sizeof g->bias));
    LT_STEP(layout(&p->lb, type, g->trans_b ? g->k : g->n, g->trans_b ? g->n : g->k, g->ldb,
                   g->batch, g->stride_b));
    LT_STEP(layout(&p->la, type, g->trans_a ? g->m : g->k, g->trans_a ? g->k : g->m, g->lda,
                   g->batch, g->stride_a));
    LT_STEP(layout(&p->lc, type, g->n, g->m, g->ldc, g->batch, g->stride_c));
    LT_STEP(cublasLtMatmulPreferenceCreate(&pref));
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &workspace_bytes, sizeof workspace_bytes));
    /* Only algorithms valid for these operands' alignment (the default
     * assumes 256 bytes, which a view at an offset does not have). */
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                 &align_a, sizeof align_a));
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                 &align_b, sizeof align_b));
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                 &align_c, sizeof align_c));
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                 &align_c, sizeof align_c));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    LT_STEP(cublasLtMatmulAlgoGetHeuristic(lt, p->op, p->lb, p->la, p->lc, p->lc, pref, 1,
                                           &result, &found));
#undef LT_STEP
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (s == CUBLAS_STATUS_SUCCESS && found > 0) {
        p->algo = result.algo;
        p->supported = true;
        return FLEET_OK;
    }
    /* No algorithm (or the shape is not supported) is not an error: the
     * plan says so and the caller falls back to a bias kernel and a GEMM. */
    if (s == CUBLAS_STATUS_SUCCESS || s == CUBLAS_STATUS_NOT_SUPPORTED) {
        plan_clear(p);
        return FLEET_OK;
    }
    plan_clear(p);
    return lt_status(s, call);
}

/* The stream's cuBLASLt state, created on first use (the caller holds the
 * stream's library lock, so there is no race to create it). */
static fleet_status lt_state(fleet_atomic_ptr *slot, fleet__cuda_lt **out)
{
    fleet__cuda_lt *lt = fleet_atomic_load_relaxed(slot);
    if (lt == NULL) {
        if ((lt = calloc(1, sizeof *lt)) == NULL)
            return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cuBLASLt plans: out of host memory");
        cublasStatus_t s = cublasLtCreate(&lt->handle);
        if (s != CUBLAS_STATUS_SUCCESS) {
            free(lt);
            return lt_status(s, "cublasLtCreate");
        }
        fleet_atomic_store_release(slot, lt);
    }
    *out = lt;
    return FLEET_OK;
}

/* g's plan, found or built in the least recently used slot. */
static fleet_status plan_for(fleet__cuda_lt *lt, size_t workspace_bytes,
                             const fleet__gemm_args *g, lt_plan **out)
{
    int64_t key[LT_KEY_WORDS];
    plan_key(g, key);
    lt_plan *victim = &lt->plans[0];
    for (int i = 0; i < LT_PLANS; i++) {
        lt_plan *p = &lt->plans[i];
        if (p->last_use != 0 && memcmp(p->key, key, sizeof key) == 0) {
            p->last_use = ++lt->clock;
            *out = p;
            return FLEET_OK;
        }
        if (p->last_use < victim->last_use)
            victim = p;
    }
    plan_clear(victim);
    fleet_status st = plan_build(lt->handle, workspace_bytes, g, victim);
    if (st != FLEET_OK)
        return st;
    memcpy(victim->key, key, sizeof key);
    victim->last_use = ++lt->clock;
    *out = victim;
    return FLEET_OK;
}

fleet_status fleet__cuda_gemm_bias_lt(fleet_atomic_ptr *lt_slot, cudaStream_t stream,
                                      void *workspace, size_t workspace_bytes,
                                      const fleet__gemm_args *g, bool *fused)
{
    *fused = false;
    fleet__cuda_lt *lt = NULL;
    lt_plan *p = NULL;
    fleet_status st = lt_state(lt_slot, &lt);
    if (st != FLEET_OK || lt == NULL) /* (lt is set whenever st is FLEET_OK) */
        return st;
    if ((st = plan_for(lt, workspace_bytes, g, &p)) != FLEET_OK || p == NULL || !p->supported)
        return st;
    cublasStatus_t s = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &g->bias, sizeof g->bias);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmul(lt->handle, p->op, &g->alpha, g->b, p->lb, g->a, p->la, &g->beta, g->c,
                           p->lc, g->c, p->lc, &p->algo, workspace, workspace_bytes, stream);
    if (s == CUBLAS_STATUS_SUCCESS) {
        *fused = true;
        return FLEET_OK;
    }
    if (s == CUBLAS_STATUS_NOT_SUPPORTED) { /* nothing launched: remember, fall back */
        int64_t key[LT_KEY_WORDS];
        memcpy(key, p->key, sizeof key);
        plan_clear(p);
        memcpy(p->key, key, sizeof key);
        p->last_use = ++lt->clock;
        return FLEET_OK;
    }
    return lt_status(s, "cublasLtMatmul");
}

void fleet__cuda_lt_destroy(void *state)
{
    fleet__cuda_lt *lt = state;
    if (lt == NULL)
        return;
    for (int i = 0; i < LT_PLANS; i++)
        plan_clear(&lt->plans[i]);
    cublasLtDestroy(lt->handle);
    free(lt);
}
