/* backend/cpu/cpu_kernels.c — GEMM through BLAS (OpenBLAS, linked by its
 * own name where it is installed, else the system BLAS), and copies. Each
 * entry point copies its arguments into a stream task. A product with one
 * row is a matrix-vector product: OpenBLAS runs sgemm 5-6x slower than
 * sgemv there (bench/results/2026-12-03-cpu-kernel-libs). */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_stream.h"
#include "core/error.h"

_Static_assert(sizeof(fleet__gemm_args) <= FLEET__CPU_TASK_ARGS, "gemm args fit a task");

static fleet_status need_f32(fleet_dtype dtype, const char *kernel)
{
    if (dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cpu backend: %s supports f32 only", kernel);
    return FLEET_OK;
}

static void gemm_one(const fleet__gemm_args *g, const float *a, const float *b, float *c)
{
    float beta = g->beta;
    if (g->bias != NULL) {
        /* C = bias (broadcast over rows) + beta * C, then accumulate A@B. */
        const float *bias = g->bias;
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++)
                c[i * g->ldc + j] = bias[j] + (beta != 0.0f ? beta * c[i * g->ldc + j] : 0.0f);
        beta = 1.0f;
    }
    if (g->k == 0) {
        if (g->bias == NULL)
            for (int64_t i = 0; i < g->m; i++)
                for (int64_t j = 0; j < g->n; j++)
                    c[i * g->ldc + j] = beta != 0.0f ? beta * c[i * g->ldc + j] : 0.0f;
        for (int64_t i = 0; g->relu && i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++)
                c[i * g->ldc + j] = c[i * g->ldc + j] > 0.0f ? c[i * g->ldc + j] : 0.0f;
        return;
    }
    if (g->m == 1) {
        /* c[1,N] = a[1,K] @ op(B): B's rows or columns against a (a's
         * elements lda apart when a is stored transposed, [K,1]) */
        int inc_a = g->trans_a ? (int)g->lda : 1;
        if (g->trans_b)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)g->n, (int)g->k, g->alpha, b,
                        (int)g->ldb, a, inc_a, beta, c, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)g->k, (int)g->n, g->alpha, b,
                        (int)g->ldb, a, inc_a, beta, c, 1);
    } else {
        cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans,
                    g->trans_b ? CblasTrans : CblasNoTrans, (int)g->m, (int)g->n, (int)g->k,
                    g->alpha,
                    a, (int)g->lda, b, (int)g->ldb, beta, c, (int)g->ldc);
    }
    if (g->relu)
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++)
                c[i * g->ldc + j] = c[i * g->ldc + j] > 0.0f ? c[i * g->ldc + j] : 0.0f;
}

static void gemm_task(const void *p)
{
    const fleet__gemm_args *g = p;
    for (int64_t i = 0; i < g->batch; i++)
        gemm_one(g, (const float *)g->a + i * g->stride_a, (const float *)g->b + i * g->stride_b,
                 (float *)g->c + i * g->stride_c);
}

fleet_status fleet__cpu_gemm(void *stream, const fleet__gemm_args *args)
{
    fleet_status st = need_f32(args->dtype, "gemm");
    if (st != FLEET_OK)
        return st;
    if (args->m > INT32_MAX || args->n > INT32_MAX || args->k > INT32_MAX ||
        args->lda > INT32_MAX || args->ldb > INT32_MAX || args->ldc > INT32_MAX)
        return fleet__error(FLEET_ERR_UNSUPPORTED,
                            "cpu backend: gemm dimensions beyond 2^31-1 (BLAS uses int)");
    if (args->m == 0 || args->n == 0 || args->batch == 0)
        return FLEET_OK;
    return fleet__cpu_stream_submit(stream, gemm_task, args, sizeof *args);
}

typedef struct copy_args {
    void *dst;
    const void *src;
    size_t bytes;
} copy_args;

static void copy_task(const void *p)
{
    const copy_args *c = p;
    memmove(c->dst, c->src, c->bytes);
}

fleet_status fleet__cpu_copy(void *stream, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0)
        return FLEET_OK;
    copy_args c = {dst, src, bytes};
    return fleet__cpu_stream_submit(stream, copy_task, &c, sizeof c);
}

static char kernels_text[256];

const char *fleet__cpu_kernels(void)
{
    return kernels_text[0] ? kernels_text : "unknown (before init)";
}

/* What BLAS this process runs on: OpenBLAS says so (looked up at run time,
 * so a system BLAS chosen by update-alternatives is named right too). */
static void describe_blas(void)
{
    const char *(*config)(void);
    int (*threads)(void);
    *(void **)&config = dlsym(RTLD_DEFAULT, "openblas_get_config");
    *(void **)&threads = dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    if (config == NULL) {
        snprintf(kernels_text, sizeof kernels_text,
                 "a BLAS that is not OpenBLAS (libblas.so.3, likely the reference BLAS, ~20x "
                 "slower: install libopenblas-dev and rebuild)");
        return;
    }
    int n = threads != NULL ? threads() : 1;
    snprintf(kernels_text, sizeof kernels_text, "%s; %d thread%s per call", config(), n,
             n == 1 ? "" : "s");
}

void fleet__cpu_blas_single_threaded(void)
{
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    /* Looked up at run time: the system BLAS may be netlib's (no threads) or
     * OpenBLAS, chosen by update-alternatives after fleet was built. */
    void (*set_threads)(int);
    *(void **)&set_threads = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (set_threads != NULL && (env == NULL || *env == '\0'))
        set_threads(1);
    describe_blas();
}
