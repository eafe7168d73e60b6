/* cpu_kernel_libs.c — which Debian-packaged CPU kernel library should fleet's
 * cpu backend call for linear/matmul and conv2d?
 *
 * Standalone C11 benchmark (no fleet headers).  Candidates:
 *   OpenBLAS 0.3.x  (libopenblas-dev, pthread flavour)   cblas_sgemm / cblas_sgemv
 *   BLIS 0.9        (libblis-dev, openmp flavour)        bli_sgemm / bli_sgemv (typed API)
 *   oneDNN 2.6      (libdnnl-dev)                        dnnl_sgemm, matmul, inner_product,
 *                                                        convolution primitives
 * Every candidate runs one thread per calling thread (see set_one_thread()).
 * Every candidate's result is checked against a plain-C reference (double
 * accumulation); a candidate whose max abs error exceeds the tolerance is
 * reported WRONG and not timed.
 *
 * Timing: R rounds (BENCH_ROUNDS, default 7); in each round every candidate
 * of a row runs one timed batch of >= BENCH_MIN_MS ms (default 25), the
 * candidates interleaved and the starting candidate rotated each round; the
 * table shows the median over rounds (and min-max) of microseconds per op.
 *
 * Build/run: bench/cpu_kernel_libs.sh.  Why BLIS is declared by hand below:
 * blis.h carries BLIS's own cblas.h prototypes, which clash with OpenBLAS's
 * cblas.h in one translation unit; the .sh checks these declarations against
 * blis.h at build time (the BEGIN/END BLIS PROTOS block).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h> /* OpenBLAS: -I/usr/include/x86_64-linux-gnu/openblas-pthread */
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

/* BEGIN BLIS PROTOS */
#ifndef BLIS_H
typedef int64_t dim_t;  /* gint_t, BLIS_INT_TYPE_SIZE 64 */
typedef int64_t inc_t;
typedef int trans_t;    /* enum; BLIS_NO_TRANSPOSE = 0 */
typedef int conj_t;     /* enum; BLIS_NO_CONJUGATE = 0 */
typedef int arch_t;
#define BLIS_NO_TRANSPOSE 0
#define BLIS_NO_CONJUGATE 0
#endif
void bli_init(void);
void bli_thread_set_num_threads(dim_t value);
char *bli_info_get_version_str(void);
arch_t bli_arch_query_id(void);
char *bli_arch_string(arch_t id);
void bli_sgemm(trans_t transa, trans_t transb, dim_t m, dim_t n, dim_t k,
               float *alpha, float *a, inc_t rs_a, inc_t cs_a, float *b,
               inc_t rs_b, inc_t cs_b, float *beta, float *c, inc_t rs_c,
               inc_t cs_c);
void bli_sgemv(trans_t transa, conj_t conjx, dim_t m, dim_t n, float *alpha,
               float *a, inc_t rs_a, inc_t cs_a, float *x, inc_t incx,
               float *beta, float *y, inc_t incy);
/* END BLIS PROTOS */

#ifndef BUILD_INFO
#define BUILD_INFO "gcc ? (build flags unknown)"
#endif

#define MAXR 64
#define MAXC 16

static int g_rounds = 7;
static int g_no_pin; /* BENCH_NO_PIN=1: skip the thread-count API calls (to show the defaults) */
static double g_min_us = 25000.0;
static dnnl_engine_t g_eng;
static dnnl_stream_t g_stream;

#define DN(call)                                                            \
    do {                                                                    \
        dnnl_status_t st_ = (call);                                         \
        if (st_ != dnnl_success) {                                          \
            fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #call, \
                    dnnl_status2str(st_));                                  \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static void *xalloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64)) { perror("alloc"); exit(1); }
    memset(p, 0, n ? n : 64);
    return p;
}
static float *falloc(size_t n) { return xalloc(n * sizeof(float)); }

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static void frand(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(g_rng >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(const double *v, int n) {
    double t[MAXR];
    memcpy(t, v, n * sizeof(double));
    qsort(t, n, sizeof(double), cmp_dbl);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static int proc_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
    fclose(f);
    return n;
}

/* One thread per calling thread, for all three libraries.
 *  - OpenBLAS (pthread build): openblas_set_num_threads(1) is global; its
 *    worker pool is created at load time from OPENBLAS_NUM_THREADS, so the
 *    environment variable must be 1 too or (nproc-1) idle workers exist.
 *  - BLIS (openmp build): bli_thread_set_num_threads(1) is global.
 *  - oneDNN (OpenMP runtime, DNNL_CPU_RUNTIME=OMP): it asks
 *    omp_get_max_threads() of the *calling* thread, at primitive creation
 *    and at execution; omp_set_num_threads(1) sets the calling thread's ICV,
 *    so every thread that creates or executes primitives must call it (or
 *    OMP_NUM_THREADS=1 must be in the environment before libgomp loads).
 */
static void set_one_thread(void) {
    if (g_no_pin) return;
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    bli_thread_set_num_threads(1);
}

/* ------------------------------------------------------------------ */
/* candidates and the row runner                                       */

typedef struct cand cand_t;
struct cand {
    char name[64];
    void (*fn)(cand_t *);
    void (*check)(cand_t *); /* optional: produce plain output in out */
    void *ctx;
    float *out;
    int status; /* 0 ok, 1 wrong */
    double err;
    int iters;
    double samp[MAXR];
    double med, mn, mx;
    /* oneDNN one-time costs */
    int is_dnnl;
    double create_us, create_hit_us, reorder_us;
    char impl[96];
    char wfmt[96];
    int info_only; /* not counted for best */
};

static void run_row(const char *label, cand_t *c, int nc, const float *ref,
                    size_t n_out, double tol, double flops) {
    for (int i = 0; i < nc; i++) {
        cand_t *k = &c[i];
        memset(k->out, 0xff, n_out * sizeof(float)); /* NaN poison */
        if (k->check) k->check(k); else k->fn(k);
        double e = 0;
        for (size_t j = 0; j < n_out; j++) {
            double d = fabs((double)k->out[j] - (double)ref[j]);
            if (!(d <= e)) e = d; /* catches NaN */
        }
        k->err = e;
        k->status = (e <= tol) ? 0 : 1;
        if (k->status) {
            fprintf(stderr, "WRONG: %s %s max abs err %g (tol %g)\n", label,
                    k->name, e, tol);
            continue;
        }
        k->fn(k); /* warm */
        double t0 = now_us();
        k->fn(k);
        double t1 = now_us() - t0;
        int it = (int)ceil(g_min_us / (t1 > 0.05 ? t1 : 0.05));
        if (it < 2) it = 2;
        if (it > 1000000) it = 1000000;
        k->iters = it;
    }
    for (int r = 0; r < g_rounds; r++) {
        for (int jj = 0; jj < nc; jj++) {
            cand_t *k = &c[(jj + r) % nc];
            if (k->status) continue;
            double t0 = now_us();
            for (int it = 0; it < k->iters; it++) k->fn(k);
            k->samp[r] = (now_us() - t0) / k->iters;
        }
    }
    double best = 1e300;
    for (int i = 0; i < nc; i++) {
        cand_t *k = &c[i];
        if (k->status) continue;
        k->med = median(k->samp, g_rounds);
        k->mn = k->mx = k->samp[0];
        for (int r = 1; r < g_rounds; r++) {
            if (k->samp[r] < k->mn) k->mn = k->samp[r];
            if (k->samp[r] > k->mx) k->mx = k->samp[r];
        }
        if (!k->info_only && k->med < best) best = k->med;
    }
    for (int i = 0; i < nc; i++) {
        cand_t *k = &c[i];
        if (k->status) {
            printf("| %s | %s | WRONG | | | | %.3g |\n", label, k->name, k->err);
            continue;
        }
        char ratio[32];
        if (k->info_only) snprintf(ratio, sizeof ratio, "(info)");
        else snprintf(ratio, sizeof ratio, "%s%.2f", k->med == best ? "**" : "",
                      k->med / best);
        if (k->med == best && !k->info_only) strcat(ratio, "**");
        char gf[32];
        if (k->info_only) snprintf(gf, sizeof gf, "—");
        else snprintf(gf, sizeof gf, "%.1f", flops / k->med * 1e-3);
        printf("| %s | %s | %.1f | %.1f–%.1f | %s | %s | %.1e |\n", label,
               k->name, k->med, k->mn, k->mx, gf, ratio, k->err);
    }
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* oneDNN helpers                                                      */

static void md_str(const dnnl_memory_desc_t *md, char *buf, size_t n) {
    if (md->format_kind != dnnl_blocked) {
        snprintf(buf, n, "%s", dnnl_fmt_kind2str(md->format_kind));
        return;
    }
    int nd = md->ndims, ord[DNNL_MAX_NDIMS];
    for (int i = 0; i < nd; i++) ord[i] = i;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    for (int i = 0; i < nd; i++) /* sort dims by descending stride */
        for (int j = i + 1; j < nd; j++)
            if (b->strides[ord[j]] > b->strides[ord[i]] ||
                (b->strides[ord[j]] == b->strides[ord[i]] && ord[j] < ord[i])) {
                int t = ord[i]; ord[i] = ord[j]; ord[j] = t;
            }
    size_t p = 0;
    for (int i = 0; i < nd && p + 1 < n; i++) {
        int d = ord[i], blocked = 0;
        for (int j = 0; j < b->inner_nblks; j++) if (b->inner_idxs[j] == d) blocked = 1;
        buf[p++] = (char)((blocked ? 'A' : 'a') + d);
    }
    buf[p] = 0;
    for (int j = 0; j < b->inner_nblks; j++)
        p += snprintf(buf + p, p < n ? n - p : 0, "%d%c", (int)b->inner_blks[j],
                      'a' + (int)b->inner_idxs[j]);
}

typedef struct {
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd;
} prim_t;

typedef dnnl_status_t (*desc_init_fn)(void *desc, const void *arg);

/* Create pd + primitive from an op descriptor (already initialised). */
static prim_t prim_make(const void *op_desc) {
    prim_t p;
    DN(dnnl_primitive_desc_create(&p.pd, op_desc, NULL, g_eng, NULL));
    DN(dnnl_primitive_create(&p.prim, p.pd));
    return p;
}
static void prim_free(prim_t p) {
    dnnl_primitive_destroy(p.prim);
    dnnl_primitive_desc_destroy(p.pd);
}

/* Times creation: cold (primitive cache off) median of 3, then cache hit. */
static prim_t prim_make_timed(const void *op_desc, double *cold_us, double *hit_us) {
    double t[3];
    prim_t p = {0};
    DN(dnnl_set_primitive_cache_capacity(0));
    for (int i = 0; i < 3; i++) {
        if (i) prim_free(p);
        double t0 = now_us();
        p = prim_make(op_desc);
        t[i] = now_us() - t0;
    }
    *cold_us = median(t, 3);
    DN(dnnl_set_primitive_cache_capacity(1024));
    prim_t q = prim_make(op_desc); /* fills cache */
    prim_free(q);
    double t0 = now_us();
    q = prim_make(op_desc);
    *hit_us = now_us() - t0;
    prim_free(q);
    DN(dnnl_set_primitive_cache_capacity(0));
    return p;
}

static void impl_str(const_dnnl_primitive_desc_t pd, char *buf, size_t n) {
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s)
        snprintf(buf, n, "%s", s);
    else
        snprintf(buf, n, "?");
}

/* reorder src (user layout) -> new memory of dst_md; returns new memory. */
static dnnl_memory_t reorder_once(dnnl_memory_t src, const dnnl_memory_desc_t *dst_md,
                                  dnnl_stream_t s, double *us) {
    const dnnl_memory_desc_t *smd;
    DN(dnnl_memory_get_memory_desc(src, &smd));
    double t0 = now_us();
    dnnl_memory_t dst;
    DN(dnnl_memory_create(&dst, dst_md, g_eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t r;
    DN(dnnl_reorder_primitive_desc_create(&rpd, smd, g_eng, dst_md, g_eng, NULL));
    DN(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    DN(dnnl_primitive_execute(r, s, 2, a));
    DN(dnnl_stream_wait(s));
    if (us) *us = now_us() - t0;
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    return dst;
}

static dnnl_memory_t mem_user(int nd, const dnnl_dim_t *dims, dnnl_format_tag_t tag,
                              const void *ptr) {
    dnnl_memory_desc_t md;
    dnnl_memory_t m;
    DN(dnnl_memory_desc_init_by_tag(&md, nd, dims, dnnl_f32, tag));
    DN(dnnl_memory_create(&m, &md, g_eng, (void *)ptr));
    return m;
}

/* ------------------------------------------------------------------ */
/* linear: y[M,N] = x[M,K] W[N,K]^T + b                                */

typedef struct {
    int M, K, N;
    const float *x, *W, *b;
    float *y;
    /* oneDNN */
    int kind; /* 0 matmul, 1 inner product */
    prim_t p;
    dnnl_memory_t msrc, mwei, mbias, mdst;
    dnnl_stream_t stream;
    float *wt; /* transposed copy for matmul W=ab */
} lin_t;

static void fill_bias_rows(float *y, const float *b, int M, int N) {
    for (int m = 0; m < M; m++) memcpy(y + (size_t)m * N, b, N * sizeof(float));
}

static void lin_ob_gemm(cand_t *c) {
    lin_t *L = c->ctx;
    fill_bias_rows(L->y, L->b, L->M, L->N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L->M, L->N, L->K, 1.0f,
                L->x, L->K, L->W, L->K, 1.0f, L->y, L->N);
}
static void lin_ob_gemv(cand_t *c) {
    lin_t *L = c->ctx;
    fill_bias_rows(L->y, L->b, L->M, L->N);
    for (int m = 0; m < L->M; m++)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, L->N, L->K, 1.0f, L->W, L->K,
                    L->x + (size_t)m * L->K, 1, 1.0f, L->y + (size_t)m * L->N, 1);
}
static void lin_blis_gemm(cand_t *c) {
    lin_t *L = c->ctx;
    float one = 1.0f;
    fill_bias_rows(L->y, L->b, L->M, L->N);
    /* B[k][n] = W[n*K+k]: row stride 1, column stride K — no transpose copy */
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, L->M, L->N, L->K, &one,
              (float *)L->x, L->K, 1, (float *)L->W, 1, L->K, &one, L->y, L->N, 1);
}
static void lin_blis_gemv(cand_t *c) {
    lin_t *L = c->ctx;
    float one = 1.0f;
    fill_bias_rows(L->y, L->b, L->M, L->N);
    for (int m = 0; m < L->M; m++)
        bli_sgemv(BLIS_NO_TRANSPOSE, BLIS_NO_CONJUGATE, L->N, L->K, &one,
                  (float *)L->W, L->K, 1, (float *)L->x + (size_t)m * L->K, 1, &one,
                  L->y + (size_t)m * L->N, 1);
}
static void lin_dnnl_sgemm(cand_t *c) {
    lin_t *L = c->ctx;
    fill_bias_rows(L->y, L->b, L->M, L->N);
    dnnl_sgemm('N', 'T', L->M, L->N, L->K, 1.0f, L->x, L->K, L->W, L->K, 1.0f,
               L->y, L->N);
}
static void lin_dnnl_prim(cand_t *c) {
    lin_t *L = c->ctx;
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, L->msrc},
                            {DNNL_ARG_WEIGHTS, L->mwei},
                            {DNNL_ARG_BIAS, L->mbias},
                            {DNNL_ARG_DST, L->mdst}};
    DN(dnnl_primitive_execute(L->p.prim, L->stream, 4, a));
    DN(dnnl_stream_wait(L->stream));
}

enum { MM_ANY, MM_BA, MM_AB, IP_ANY, IP_OI };
static const char *dnnl_lin_names[] = {
    "oneDNN matmul, W any (reordered once)", "oneDNN matmul, W ba (as stored)",
    "oneDNN matmul, W ab (transposed copy)", "oneDNN inner_product, W any (reordered once)",
    "oneDNN inner_product, W oi (as stored)"};

/* Build a oneDNN linear (matmul or inner product) into L; timings to c. */
static void dnnl_lin_setup(lin_t *L, int variant, dnnl_stream_t s, double *create_us,
                           double *hit_us, double *reorder_us, char *impl, size_t nimpl,
                           char *wfmt, size_t nwfmt) {
    int M = L->M, K = L->K, N = L->N;
    L->stream = s;
    L->wt = NULL;
    double reo = 0;
    dnnl_memory_desc_t src_md, w_md, b_md, dst_md, wuser_md;
    const void *wuser_ptr = L->W;
    if (variant <= MM_AB) {
        L->kind = 0;
        dnnl_dims_t sd = {M, K}, wd = {K, N}, bd = {1, N}, dd = {M, N};
        dnnl_format_tag_t wt = variant == MM_ANY ? dnnl_format_tag_any
                               : variant == MM_BA ? dnnl_ba : dnnl_ab;
        DN(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_f32, dnnl_ab));
        DN(dnnl_memory_desc_init_by_tag(&w_md, 2, wd, dnnl_f32, wt));
        DN(dnnl_memory_desc_init_by_tag(&b_md, 2, bd, dnnl_f32, dnnl_ab));
        DN(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_ab));
        if (variant == MM_AB) {
            double t0 = now_us();
            L->wt = falloc((size_t)K * N);
            for (int n = 0; n < N; n++)
                for (int k = 0; k < K; k++) L->wt[(size_t)k * N + n] = L->W[(size_t)n * K + k];
            reo = now_us() - t0;
            wuser_ptr = L->wt;
            DN(dnnl_memory_desc_init_by_tag(&wuser_md, 2, wd, dnnl_f32, dnnl_ab));
        } else {
            DN(dnnl_memory_desc_init_by_tag(&wuser_md, 2, wd, dnnl_f32, dnnl_ba));
        }
        dnnl_matmul_desc_t d;
        DN(dnnl_matmul_desc_init(&d, &src_md, &w_md, &b_md, &dst_md));
        L->p = create_us && hit_us ? prim_make_timed(&d, create_us, hit_us) : prim_make(&d);
        L->msrc = mem_user(2, sd, dnnl_ab, L->x);
        L->mbias = mem_user(2, bd, dnnl_ab, L->b);
        L->mdst = mem_user(2, dd, dnnl_ab, L->y);
    } else {
        L->kind = 1;
        dnnl_dims_t sd = {M, K}, wd = {N, K}, bd = {N}, dd = {M, N};
        DN(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_f32, dnnl_nc));
        DN(dnnl_memory_desc_init_by_tag(&w_md, 2, wd, dnnl_f32,
                                        variant == IP_ANY ? dnnl_format_tag_any : dnnl_oi));
        DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
        DN(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_nc));
        DN(dnnl_memory_desc_init_by_tag(&wuser_md, 2, wd, dnnl_f32, dnnl_oi));
        dnnl_inner_product_desc_t d;
        DN(dnnl_inner_product_forward_desc_init(&d, dnnl_forward_inference, &src_md,
                                                &w_md, &b_md, &dst_md));
        L->p = create_us && hit_us ? prim_make_timed(&d, create_us, hit_us) : prim_make(&d);
        L->msrc = mem_user(2, sd, dnnl_nc, L->x);
        L->mbias = mem_user(1, bd, dnnl_x, L->b);
        L->mdst = mem_user(2, dd, dnnl_nc, L->y);
    }
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(L->p.pd, dnnl_query_weights_md, 0);
    dnnl_memory_t wuser;
    DN(dnnl_memory_create(&wuser, &wuser_md, g_eng, (void *)wuser_ptr));
    if (dnnl_memory_desc_equal(want, &wuser_md)) {
        L->mwei = wuser;
    } else {
        double us;
        L->mwei = reorder_once(wuser, want, s, &us);
        reo += us;
        dnnl_memory_destroy(wuser);
    }
    if (reorder_us) *reorder_us = reo;
    if (impl) impl_str(L->p.pd, impl, nimpl);
    if (wfmt) md_str(want, wfmt, nwfmt);
}

static void dnnl_lin_free(lin_t *L) {
    prim_free(L->p);
    dnnl_memory_destroy(L->msrc);
    dnnl_memory_destroy(L->mwei);
    dnnl_memory_destroy(L->mbias);
    dnnl_memory_destroy(L->mdst);
    free(L->wt);
}

static void ref_linear(const float *x, const float *W, const float *b, float *y, int M,
                       int K, int N) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = b[n];
            const float *xr = x + (size_t)m * K, *wr = W + (size_t)n * K;
            for (int k = 0; k < K; k++) acc += (double)xr[k] * wr[k];
            y[(size_t)m * N + n] = (float)acc;
        }
}

typedef struct { char label[64]; cand_t c[MAXC]; int nc; } created_row_t;
static created_row_t g_created[64];
static int g_ncreated;

static void record_created(const char *label, cand_t *c, int nc) {
    if (g_ncreated >= 64) return;
    created_row_t *r = &g_created[g_ncreated++];
    snprintf(r->label, sizeof r->label, "%s", label);
    r->nc = 0;
    for (int i = 0; i < nc; i++)
        if (c[i].is_dnnl) r->c[r->nc++] = c[i];
}

static void bench_linear(int M, int K, int N) {
    float *x = falloc((size_t)M * K), *W = falloc((size_t)N * K), *b = falloc(N);
    float *ref = falloc((size_t)M * N);
    frand(x, (size_t)M * K);
    frand(W, (size_t)N * K);
    frand(b, N);
    ref_linear(x, W, b, ref, M, K, N);
    cand_t c[MAXC];
    lin_t L[MAXC];
    int nc = 0;
    memset(c, 0, sizeof c);
#define ADD(nm, f)                                                     \
    do {                                                               \
        L[nc] = (lin_t){.M = M, .K = K, .N = N, .x = x, .W = W, .b = b}; \
        L[nc].y = falloc((size_t)M * N);                               \
        c[nc].ctx = &L[nc];                                            \
        c[nc].out = L[nc].y;                                           \
        c[nc].fn = f;                                                  \
        snprintf(c[nc].name, sizeof c[nc].name, "%s", nm);             \
        nc++;                                                          \
    } while (0)
    ADD("OpenBLAS cblas_sgemm", lin_ob_gemm);
    if (M <= 4) ADD(M == 1 ? "OpenBLAS cblas_sgemv" : "OpenBLAS cblas_sgemv ×M", lin_ob_gemv);
    ADD("BLIS bli_sgemm", lin_blis_gemm);
    if (M <= 4) ADD(M == 1 ? "BLIS bli_sgemv" : "BLIS bli_sgemv ×M", lin_blis_gemv);
    ADD("oneDNN dnnl_sgemm", lin_dnnl_sgemm);
    for (int v = MM_ANY; v <= IP_OI; v++) {
        ADD(dnnl_lin_names[v], lin_dnnl_prim);
        cand_t *k = &c[nc - 1];
        k->is_dnnl = 1;
        dnnl_lin_setup(&L[nc - 1], v, g_stream, &k->create_us, &k->create_hit_us,
                       &k->reorder_us, k->impl, sizeof k->impl, k->wfmt, sizeof k->wfmt);
    }
#undef ADD
    char label[64];
    snprintf(label, sizeof label, "M=%d K=%d N=%d", M, K, N);
    run_row(label, c, nc, ref, (size_t)M * N, 1e-5 + 4e-6 * K, 2.0 * M * N * K);
    record_created(label, c, nc);
    for (int i = 0; i < nc; i++) {
        if (c[i].is_dnnl) dnnl_lin_free(&L[i]);
        free(L[i].y);
    }
    free(x); free(W); free(b); free(ref);
}

/* ------------------------------------------------------------------ */
/* conv2d NCHW                                                          */

typedef struct {
    int N, C, H, W, Co, k, s, p, Ho, Wo;
    const float *src, *wei, *bias;
    float *dst, *col;
    int gemm; /* 0 openblas, 1 blis, 2 dnnl_sgemm */
    /* oneDNN */
    prim_t pr;
    dnnl_memory_t msrc_user, mdst_user, msrc, mwei, mbias, mdst;
    dnnl_primitive_t r_src, r_dst; /* NULL when formats already plain */
    dnnl_primitive_desc_t r_src_pd, r_dst_pd;
} conv_t;

static void im2col(const float *src, int C, int H, int W, int k, int s, int p, int Ho,
                   int Wo, float *col) {
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                float *d = col + ((size_t)(c * k + kh) * k + kw) * Ho * Wo;
                for (int oh = 0; oh < Ho; oh++, d += Wo) {
                    int ih = oh * s - p + kh;
                    if (ih < 0 || ih >= H) { memset(d, 0, Wo * sizeof(float)); continue; }
                    const float *sr = src + ((size_t)c * H + ih) * W;
                    if (s == 1) {
                        int lo = p - kw, hi = W + p - kw; /* valid ow in [lo,hi) */
                        if (lo < 0) lo = 0;
                        if (hi > Wo) hi = Wo;
                        if (lo > 0) memset(d, 0, lo * sizeof(float));
                        if (hi > lo) memcpy(d + lo, sr + lo - p + kw, (hi - lo) * sizeof(float));
                        if (hi < Wo) memset(d + (hi > lo ? hi : lo), 0,
                                            (Wo - (hi > lo ? hi : lo)) * sizeof(float));
                    } else {
                        for (int ow = 0; ow < Wo; ow++) {
                            int iw = ow * s - p + kw;
                            d[ow] = (iw >= 0 && iw < W) ? sr[iw] : 0.0f;
                        }
                    }
                }
            }
}

static void conv_gemm(cand_t *c) {
    conv_t *V = c->ctx;
    int HWo = V->Ho * V->Wo, CKK = V->C * V->k * V->k;
    int direct = V->k == 1 && V->s == 1 && V->p == 0; /* 1x1/s1: input is the col matrix */
    float one = 1.0f;
    for (int n = 0; n < V->N; n++) {
        const float *in = V->src + (size_t)n * V->C * V->H * V->W;
        float *out = V->dst + (size_t)n * V->Co * HWo;
        const float *col = in;
        if (!direct) {
            im2col(in, V->C, V->H, V->W, V->k, V->s, V->p, V->Ho, V->Wo, V->col);
            col = V->col;
        }
        for (int co = 0; co < V->Co; co++) {
            float bv = V->bias[co], *o = out + (size_t)co * HWo;
            for (int i = 0; i < HWo; i++) o[i] = bv;
        }
        if (V->gemm == 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, V->Co, HWo, CKK, 1.0f,
                        V->wei, CKK, col, HWo, 1.0f, out, HWo);
        else if (V->gemm == 1)
            bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, V->Co, HWo, CKK, &one,
                      (float *)V->wei, CKK, 1, (float *)col, HWo, 1, &one, out, HWo, 1);
        else
            dnnl_sgemm('N', 'N', V->Co, HWo, CKK, 1.0f, V->wei, CKK, col, HWo, 1.0f, out,
                       HWo);
    }
}

static void im2col_only(cand_t *c) {
    conv_t *V = c->ctx;
    for (int n = 0; n < V->N; n++)
        im2col(V->src + (size_t)n * V->C * V->H * V->W, V->C, V->H, V->W, V->k, V->s, V->p,
               V->Ho, V->Wo, V->col);
}
static void im2col_only_check(cand_t *c) { conv_gemm(c); }

static void exec_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DN(dnnl_primitive_execute(r, g_stream, 2, a));
}
static void conv_dnnl_core(conv_t *V) {
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, V->msrc},
                            {DNNL_ARG_WEIGHTS, V->mwei},
                            {DNNL_ARG_BIAS, V->mbias},
                            {DNNL_ARG_DST, V->mdst}};
    DN(dnnl_primitive_execute(V->pr.prim, g_stream, 4, a));
}
static void conv_dnnl_only(cand_t *c) {
    conv_dnnl_core(c->ctx);
    DN(dnnl_stream_wait(g_stream));
}
static void conv_dnnl_full(cand_t *c) {
    conv_t *V = c->ctx;
    if (V->r_src) exec_reorder(V->r_src, V->msrc_user, V->msrc);
    conv_dnnl_core(V);
    if (V->r_dst) exec_reorder(V->r_dst, V->mdst, V->mdst_user);
    DN(dnnl_stream_wait(g_stream));
}
static void conv_dnnl_reorders(cand_t *c) {
    conv_t *V = c->ctx;
    if (V->r_src) exec_reorder(V->r_src, V->msrc_user, V->msrc);
    if (V->r_dst) exec_reorder(V->r_dst, V->mdst, V->mdst_user);
    DN(dnnl_stream_wait(g_stream));
}

/* any_act: src/dst "any" (else nchw); weights always "any". */
static void conv_dnnl_setup(conv_t *V, int any_act, cand_t *k) {
    dnnl_dims_t sd = {V->N, V->C, V->H, V->W}, wd = {V->Co, V->C, V->k, V->k},
                bd = {V->Co}, dd = {V->N, V->Co, V->Ho, V->Wo};
    dnnl_dims_t st = {V->s, V->s}, pl = {V->p, V->p}, pr = {V->p, V->p};
    dnnl_memory_desc_t s_md, w_md, b_md, d_md, s_user, w_user, d_user;
    dnnl_format_tag_t act = any_act ? dnnl_format_tag_any : dnnl_nchw;
    DN(dnnl_memory_desc_init_by_tag(&s_md, 4, sd, dnnl_f32, act));
    DN(dnnl_memory_desc_init_by_tag(&w_md, 4, wd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    DN(dnnl_memory_desc_init_by_tag(&d_md, 4, dd, dnnl_f32, act));
    DN(dnnl_memory_desc_init_by_tag(&s_user, 4, sd, dnnl_f32, dnnl_nchw));
    DN(dnnl_memory_desc_init_by_tag(&w_user, 4, wd, dnnl_f32, dnnl_oihw));
    DN(dnnl_memory_desc_init_by_tag(&d_user, 4, dd, dnnl_f32, dnnl_nchw));
    dnnl_convolution_desc_t d;
    DN(dnnl_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct,
                                          &s_md, &w_md, &b_md, &d_md, st, pl, pr));
    V->pr = prim_make_timed(&d, &k->create_us, &k->create_hit_us);
    impl_str(V->pr.pd, k->impl, sizeof k->impl);
    const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(V->pr.pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *ss = dnnl_primitive_desc_query_md(V->pr.pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *ds = dnnl_primitive_desc_query_md(V->pr.pd, dnnl_query_dst_md, 0);
    char a[24], b[24], e[24];
    md_str(ws, a, sizeof a);
    md_str(ss, b, sizeof b);
    md_str(ds, e, sizeof e);
    snprintf(k->wfmt, sizeof k->wfmt, "W %s src %s dst %s", a, b, e);
    dnnl_memory_t wu;
    DN(dnnl_memory_create(&wu, &w_user, g_eng, (void *)V->wei));
    if (dnnl_memory_desc_equal(ws, &w_user)) {
        V->mwei = wu;
        k->reorder_us = 0;
    } else {
        V->mwei = reorder_once(wu, ws, g_stream, &k->reorder_us);
        dnnl_memory_destroy(wu);
    }
    V->mbias = mem_user(1, bd, dnnl_x, V->bias);
    DN(dnnl_memory_create(&V->msrc_user, &s_user, g_eng, (void *)V->src));
    DN(dnnl_memory_create(&V->mdst_user, &d_user, g_eng, V->dst));
    V->r_src = V->r_dst = NULL;
    if (dnnl_memory_desc_equal(ss, &s_user)) {
        V->msrc = V->msrc_user;
    } else {
        DN(dnnl_memory_create(&V->msrc, ss, g_eng, DNNL_MEMORY_ALLOCATE));
        DN(dnnl_reorder_primitive_desc_create(&V->r_src_pd, &s_user, g_eng, ss, g_eng, NULL));
        DN(dnnl_primitive_create(&V->r_src, V->r_src_pd));
    }
    if (dnnl_memory_desc_equal(ds, &d_user)) {
        V->mdst = V->mdst_user;
    } else {
        DN(dnnl_memory_create(&V->mdst, ds, g_eng, DNNL_MEMORY_ALLOCATE));
        DN(dnnl_reorder_primitive_desc_create(&V->r_dst_pd, ds, g_eng, &d_user, g_eng, NULL));
        DN(dnnl_primitive_create(&V->r_dst, V->r_dst_pd));
    }
}

static void conv_dnnl_free(conv_t *V) {
    prim_free(V->pr);
    if (V->r_src) { dnnl_primitive_destroy(V->r_src); dnnl_primitive_desc_destroy(V->r_src_pd); dnnl_memory_destroy(V->msrc); }
    if (V->r_dst) { dnnl_primitive_destroy(V->r_dst); dnnl_primitive_desc_destroy(V->r_dst_pd); dnnl_memory_destroy(V->mdst); }
    dnnl_memory_destroy(V->msrc_user);
    dnnl_memory_destroy(V->mdst_user);
    dnnl_memory_destroy(V->mwei);
    dnnl_memory_destroy(V->mbias);
}

static void ref_conv(const conv_t *V, float *out) {
    int HWo = V->Ho * V->Wo;
    double *acc = xalloc(HWo * sizeof(double));
    for (int n = 0; n < V->N; n++)
        for (int co = 0; co < V->Co; co++) {
            for (int i = 0; i < HWo; i++) acc[i] = V->bias[co];
            for (int ci = 0; ci < V->C; ci++) {
                const float *in = V->src + ((size_t)n * V->C + ci) * V->H * V->W;
                for (int kh = 0; kh < V->k; kh++)
                    for (int kw = 0; kw < V->k; kw++) {
                        double w = V->wei[(((size_t)co * V->C + ci) * V->k + kh) * V->k + kw];
                        for (int oh = 0; oh < V->Ho; oh++) {
                            int ih = oh * V->s - V->p + kh;
                            if (ih < 0 || ih >= V->H) continue;
                            for (int ow = 0; ow < V->Wo; ow++) {
                                int iw = ow * V->s - V->p + kw;
                                if (iw < 0 || iw >= V->W) continue;
                                acc[oh * V->Wo + ow] += w * in[ih * V->W + iw];
                            }
                        }
                    }
            }
            float *o = out + ((size_t)n * V->Co + co) * HWo;
            for (int i = 0; i < HWo; i++) o[i] = (float)acc[i];
        }
    free(acc);
}

static void bench_conv(int N, int C, int H, int W, int Co, int k, int s, int p) {
    conv_t base = {.N = N, .C = C, .H = H, .W = W, .Co = Co, .k = k, .s = s, .p = p};
    base.Ho = (H + 2 * p - k) / s + 1;
    base.Wo = (W + 2 * p - k) / s + 1;
    size_t nsrc = (size_t)N * C * H * W, nw = (size_t)Co * C * k * k,
           ndst = (size_t)N * Co * base.Ho * base.Wo;
    float *src = falloc(nsrc), *wei = falloc(nw), *bias = falloc(Co), *ref = falloc(ndst);
    frand(src, nsrc);
    frand(wei, nw);
    frand(bias, Co);
    base.src = src; base.wei = wei; base.bias = bias;
    ref_conv(&base, ref);
    float *col = falloc((size_t)C * k * k * base.Ho * base.Wo);
    cand_t c[MAXC];
    conv_t V[MAXC];
    int nc = 0;
    memset(c, 0, sizeof c);
#define ADDC(nm, f)                                           \
    do {                                                      \
        V[nc] = base;                                         \
        V[nc].dst = falloc(ndst);                             \
        V[nc].col = col;                                      \
        c[nc].ctx = &V[nc];                                   \
        c[nc].out = V[nc].dst;                                \
        c[nc].fn = f;                                         \
        snprintf(c[nc].name, sizeof c[nc].name, "%s", nm);    \
        nc++;                                                 \
    } while (0)
    const char *pre = (k == 1 && s == 1 && p == 0) ? "direct(1x1)" : "im2col";
    char nm[64];
    snprintf(nm, sizeof nm, "%s + OpenBLAS sgemm", pre);
    ADDC(nm, conv_gemm); V[nc - 1].gemm = 0;
    snprintf(nm, sizeof nm, "%s + BLIS sgemm", pre);
    ADDC(nm, conv_gemm); V[nc - 1].gemm = 1;
    snprintf(nm, sizeof nm, "%s + oneDNN dnnl_sgemm", pre);
    ADDC(nm, conv_gemm); V[nc - 1].gemm = 2;
    ADDC("oneDNN conv, nchw src/dst, W any", conv_dnnl_full);
    c[nc - 1].is_dnnl = 1;
    conv_dnnl_setup(&V[nc - 1], 0, &c[nc - 1]);
    int any_i = nc;
    ADDC("oneDNN conv, src/dst any: incl. src+dst reorders", conv_dnnl_full);
    c[nc - 1].is_dnnl = 1;
    conv_dnnl_setup(&V[nc - 1], 1, &c[nc - 1]);
    /* conv only: shares the context above; checked through the full path */
    c[nc] = c[any_i];
    snprintf(c[nc].name, sizeof c[nc].name, "oneDNN conv, src/dst any: conv only");
    c[nc].fn = conv_dnnl_only;
    c[nc].check = conv_dnnl_full;
    c[nc].is_dnnl = 0; /* creation already recorded */
    int only_i = nc++;
    c[nc] = c[any_i];
    snprintf(c[nc].name, sizeof c[nc].name, "(src+dst reorders alone)");
    c[nc].fn = conv_dnnl_reorders;
    c[nc].check = conv_dnnl_full;
    c[nc].is_dnnl = 0;
    c[nc].info_only = 1;
    nc++;
    (void)only_i;
    if (strcmp(pre, "im2col") == 0) {
        ADDC("(im2col alone)", im2col_only);
        c[nc - 1].check = im2col_only_check;
        c[nc - 1].info_only = 1;
        V[nc - 1].gemm = 0;
    }
#undef ADDC
    char label[64];
    snprintf(label, sizeof label, "N=%d C=%d %dx%d → %d k%d s%d p%d", N, C, H, W, Co, k, s, p);
    double flops = 2.0 * N * Co * base.Ho * base.Wo * (double)C * k * k;
    run_row(label, c, nc, ref, ndst, 1e-5 + 4e-6 * C * k * k, flops);
    record_created(label, c, nc);
    for (int i = 0; i < nc; i++) {
        if (c[i].is_dnnl) conv_dnnl_free(&V[i]);
        if (i < nc && c[i].ctx == &V[i]) free(V[i].dst);
    }
    free(src); free(wei); free(bias); free(ref); free(col);
}

/* ------------------------------------------------------------------ */
/* two-thread MLP 512-1024-1024-512 at M=1                            */

enum { V_OB_GEMV, V_OB_GEMM, V_BLIS_GEMV, V_BLIS_GEMM, V_DNNL_SGEMM, V_DNNL_MM, V_DNNL_IP, NV };
static const char *mlp_names[NV] = {
    "OpenBLAS cblas_sgemv", "OpenBLAS cblas_sgemm", "BLIS bli_sgemv", "BLIS bli_sgemm",
    "oneDNN dnnl_sgemm", "oneDNN matmul, W any (own stream per thread)",
    "oneDNN inner_product, W any (own stream per thread)"};
static const int mlp_dims[4] = {512, 1024, 1024, 512};

typedef struct {
    float *x, *W[3], *b[3], *h[3], *ref; /* h[2] = y */
    lin_t L[3];
    cand_t dummy;
    int variant;
    double seconds, cpu_seconds;
    long count;
    double err;
    int omp_max;
    pthread_barrier_t *bar;
    double run_us;
} mlp_thr_t;

static void relu(float *v, int n) {
    for (int i = 0; i < n; i++) v[i] = v[i] > 0 ? v[i] : 0;
}

static void mlp_run(mlp_thr_t *T) {
    static void (*const fns[])(cand_t *) = {lin_ob_gemv, lin_ob_gemm, lin_blis_gemv,
                                            lin_blis_gemm, lin_dnnl_sgemm, lin_dnnl_prim,
                                            lin_dnnl_prim};
    for (int l = 0; l < 3; l++) {
        T->dummy.ctx = &T->L[l];
        fns[T->variant](&T->dummy);
        if (l < 2) relu(T->h[l], mlp_dims[l + 1]);
    }
}

static void *mlp_worker(void *arg) {
    mlp_thr_t *T = arg;
    /* The OpenMP ICV is per thread: oneDNN (OMP runtime) and BLIS-openmp read
     * it in the calling thread. OpenBLAS/BLIS counts are global, set in main. */
    if (!g_no_pin) omp_set_num_threads(1);
    T->omp_max = omp_get_max_threads();
    dnnl_stream_t s = NULL;
    int dn = T->variant >= V_DNNL_MM;
    if (dn) DN(dnnl_stream_create(&s, g_eng, dnnl_stream_default_flags));
    const float *in = T->x;
    for (int l = 0; l < 3; l++) {
        T->L[l] = (lin_t){.M = 1, .K = mlp_dims[l], .N = mlp_dims[l + 1], .x = in,
                          .W = T->W[l], .b = T->b[l], .y = T->h[l]};
        if (dn)
            dnnl_lin_setup(&T->L[l], T->variant == V_DNNL_MM ? MM_ANY : IP_ANY, s, NULL,
                           NULL, NULL, NULL, 0, NULL, 0);
        in = T->h[l];
    }
    mlp_run(T);
    double e = 0;
    for (int i = 0; i < 512; i++) {
        double d = fabs((double)T->h[2][i] - T->ref[i]);
        if (!(d <= e)) e = d;
    }
    T->err = e;
    pthread_barrier_wait(T->bar);
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    double t0 = now_us(), t;
    long n = 0;
    do {
        mlp_run(T);
        n++;
        t = now_us();
    } while (t - t0 < T->run_us);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    T->count = n;
    T->seconds = (t - t0) * 1e-6;
    T->cpu_seconds = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) * 1e-9;
    if (dn) {
        for (int l = 0; l < 3; l++) dnnl_lin_free(&T->L[l]);
        dnnl_stream_destroy(s);
    }
    return NULL;
}

static void bench_mlp(void) {
    enum { NT = 2 };
    mlp_thr_t T[NT];
    float *tmp1 = falloc(1024), *tmp2 = falloc(1024);
    for (int t = 0; t < NT; t++) {
        memset(&T[t], 0, sizeof T[t]);
        T[t].x = falloc(512);
        frand(T[t].x, 512);
        for (int l = 0; l < 3; l++) {
            T[t].W[l] = falloc((size_t)mlp_dims[l] * mlp_dims[l + 1]);
            T[t].b[l] = falloc(mlp_dims[l + 1]);
            T[t].h[l] = falloc(mlp_dims[l + 1]);
            frand(T[t].W[l], (size_t)mlp_dims[l] * mlp_dims[l + 1]);
            frand(T[t].b[l], mlp_dims[l + 1]);
            for (size_t i = 0; i < (size_t)mlp_dims[l] * mlp_dims[l + 1]; i++)
                T[t].W[l][i] *= 0.05f; /* keep activations O(1) */
        }
        T[t].ref = falloc(512);
        ref_linear(T[t].x, T[t].W[0], T[t].b[0], tmp1, 1, 512, 1024);
        relu(tmp1, 1024);
        ref_linear(tmp1, T[t].W[1], T[t].b[1], tmp2, 1, 1024, 1024);
        relu(tmp2, 1024);
        ref_linear(tmp2, T[t].W[2], T[t].b[2], T[t].ref, 1, 1024, 512);
    }
    DN(dnnl_set_primitive_cache_capacity(1024)); /* fleet would cache per shape */
    double rate[NV][2][MAXR], cpu_us[NV][2][MAXR];
    double err[NV] = {0};
    int maxthr[NV][2] = {{0}}, ompmax[NV] = {0};
    double run_us = g_min_us * 6; /* 150 ms per measurement by default */
    for (int r = 0; r < g_rounds; r++)
        for (int jj = 0; jj < NV; jj++) {
            int v = (jj + r) % NV;
            for (int nt = 1; nt <= NT; nt++) {
                pthread_barrier_t bar;
                pthread_barrier_init(&bar, NULL, nt + 1);
                pthread_t th[NT];
                for (int t = 0; t < nt; t++) {
                    T[t].variant = v;
                    T[t].bar = &bar;
                    T[t].run_us = run_us;
                    pthread_create(&th[t], NULL, mlp_worker, &T[t]);
                }
                pthread_barrier_wait(&bar);
                struct timespec ts = {0, (long)(run_us * 500)}; /* half the run */
                nanosleep(&ts, NULL);
                int pt = proc_threads();
                if (pt > maxthr[v][nt - 1]) maxthr[v][nt - 1] = pt;
                double tot = 0, cpu = 0;
                for (int t = 0; t < nt; t++) {
                    pthread_join(th[t], NULL);
                    tot += T[t].count / T[t].seconds;
                    cpu += T[t].cpu_seconds * 1e6 / T[t].count / nt;
                    if (T[t].err > err[v]) err[v] = T[t].err;
                    if (T[t].omp_max > ompmax[v]) ompmax[v] = T[t].omp_max;
                }
                pthread_barrier_destroy(&bar);
                rate[v][nt - 1][r] = tot;
                cpu_us[v][nt - 1][r] = cpu;
            }
        }
    DN(dnnl_set_primitive_cache_capacity(0));
    double best = 0, med[NV][2], cmed[NV][2];
    for (int v = 0; v < NV; v++) {
        med[v][0] = median(rate[v][0], g_rounds);
        med[v][1] = median(rate[v][1], g_rounds);
        cmed[v][0] = median(cpu_us[v][0], g_rounds);
        cmed[v][1] = median(cpu_us[v][1], g_rounds);
        if (err[v] < 1e-3 && med[v][1] > best) best = med[v][1];
    }
    double fl = 2.0 * (512 * 1024 + 1024 * 1024 + 1024 * 512);
    printf("\n### Two threads: MLP 512-1024-1024-512, M=1, ReLU (plain loop), each thread on its own weights/data\n\n");
    printf("Runs/s = median over %d rounds of %.0f ms wall-clock windows (sum over threads). CPU µs/run = the "
           "worker's own CPU time (CLOCK_THREAD_CPUTIME_ID) per run: it leaves out time the thread was not "
           "scheduled (the machine is shared), so 2T > 1T there means contention in caches/memory. "
           "'threads' = /proc/self/status Threads during the run (main + workers: 2 and 3 mean no library "
           "helper threads).\n\n", g_rounds, run_us / 1000);
    printf("| library / call | 1T runs/s | 1T CPU µs/run | 2T total runs/s | 2T CPU µs/run (per thread) | "
           "scaling 2T/1T (wall) | GFLOP/s (2T) | ×best (2T) | threads 1T/2T | omp_get_max_threads in worker | max abs err |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int v = 0; v < NV; v++) {
        if (err[v] >= 1e-3) {
            printf("| %s | WRONG | | | | | | | | | %.2e |\n", mlp_names[v], err[v]);
            continue;
        }
        char rb[32];
        snprintf(rb, sizeof rb, med[v][1] == best ? "**%.2f**" : "%.2f", best / med[v][1]);
        printf("| %s | %.0f | %.1f | %.0f | %.1f | %.2f | %.1f | %s | %d/%d | %d | %.1e |\n",
               mlp_names[v], med[v][0], cmed[v][0], med[v][1], cmed[v][1],
               med[v][1] / med[v][0], med[v][1] * fl * 1e-9, rb, maxthr[v][0], maxthr[v][1],
               ompmax[v], err[v]);
    }
    fflush(stdout);
    for (int t = 0; t < NT; t++) {
        free(T[t].x); free(T[t].ref);
        for (int l = 0; l < 3; l++) { free(T[t].W[l]); free(T[t].b[l]); free(T[t].h[l]); }
    }
    free(tmp1); free(tmp2);
}

/* ------------------------------------------------------------------ */

static const char *lib_of(void *sym) {
    Dl_info di;
    if (dladdr(sym, &di) && di.dli_fname) return di.dli_fname;
    return "?";
}

static const char *isa_name(dnnl_cpu_isa_t i) {
    switch ((int)i) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}
static const char *rt_name(unsigned r) {
    switch (r) {
    case DNNL_RUNTIME_NONE: return "none";
    case DNNL_RUNTIME_SEQ: return "SEQ (sequential)";
    case DNNL_RUNTIME_OMP: return "OMP (OpenMP)";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_THREADPOOL: return "THREADPOOL";
    case DNNL_RUNTIME_OCL: return "OCL";
    case DNNL_RUNTIME_SYCL: return "SYCL";
    default: return "?";
    }
}

static void loadavg(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    snprintf(buf, n, "?");
    if (!f) return;
    if (fgets(buf, (int)n, f)) buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

static void cpu_model(char *buf, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(buf, n, "?");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p += 2;
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, n, "%s", p);
            }
            break;
        }
    fclose(f);
}

int main(int argc, char **argv) {
    const char *e;
    if ((e = getenv("BENCH_ROUNDS"))) g_rounds = atoi(e);
    if (g_rounds < 1) g_rounds = 1;
    if (g_rounds > MAXR) g_rounds = MAXR;
    if ((e = getenv("BENCH_MIN_MS"))) g_min_us = atof(e) * 1000.0;
    g_no_pin = getenv("BENCH_NO_PIN") && atoi(getenv("BENCH_NO_PIN"));
    const char *only = argc > 1 ? argv[1] : "all"; /* all | linear | conv | mlp */
    int threads_at_start = proc_threads();
    set_one_thread();
    bli_init();
    DN(dnnl_engine_create(&g_eng, dnnl_cpu, 0));
    DN(dnnl_stream_create(&g_stream, g_eng, dnnl_stream_default_flags));
    DN(dnnl_set_primitive_cache_capacity(0));

    const dnnl_version_t *dv = dnnl_version();
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    printf("## CPU kernel libraries for fleet's cpu backend\n\n");
    printf("- CPU: %s, %ld online CPUs\n", cpu, sysconf(_SC_NPROCESSORS_ONLN));
    printf("- build: %s\n", BUILD_INFO);
    printf("- OpenBLAS: %s; core %s; parallel mode %d; openblas_get_num_threads()=%d; cblas_sgemm from %s\n",
           openblas_get_config(), openblas_get_corename(), openblas_get_parallel(),
           openblas_get_num_threads(), lib_of((void *)cblas_sgemm));
    printf("- BLIS: %s; arch %s; bli_sgemm from %s\n", bli_info_get_version_str(),
           bli_arch_string(bli_arch_query_id()), lib_of((void *)bli_sgemm));
    printf("- oneDNN: %d.%d.%d (git %s); cpu_runtime %s; effective ISA %s; from %s\n", dv->major,
           dv->minor, dv->patch, dv->hash ? dv->hash : "?", rt_name(dv->cpu_runtime),
           isa_name(dnnl_get_effective_cpu_isa()), lib_of((void *)dnnl_version));
    printf("- threading: OPENBLAS_NUM_THREADS=%s BLIS_NUM_THREADS=%s OMP_NUM_THREADS=%s; "
           "omp_get_max_threads()=%d; process threads at start %d, after library init %d\n",
           getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "(unset)",
           getenv("BLIS_NUM_THREADS") ? getenv("BLIS_NUM_THREADS") : "(unset)",
           getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)",
           omp_get_max_threads(), threads_at_start, proc_threads());
    char la[128];
    loadavg(la, sizeof la);
    printf("- /proc/loadavg at start: %s (the machine is shared; other jobs run)\n", la);
    printf("- timing: %d rounds, candidates interleaved (start rotated per round), each batch >= %.0f ms; "
           "µs/op is the median over rounds (min–max beside it); ×best = median / best median (1.00 = best)\n",
           g_rounds, g_min_us / 1000);
    printf("- correctness: each candidate vs a double-accumulating plain-C reference, tolerance 1e-5 + 4e-6·K "
           "(data uniform in [-1,1])\n");

    if (!strcmp(only, "all") || !strcmp(only, "linear")) {
        printf("\n### Linear y[M,N] = x[M,K]·W[N,K]ᵀ + b (W row-major [N,K]; bias add counted in the op)\n\n");
        printf("| shape | candidate | µs/op | min–max | GFLOP/s | ×best | max abs err |\n");
        printf("|---|---|---:|---:|---:|---:|---:|\n");
        static const int sh[][3] = {{1, 64, 64},      {4, 64, 64},     {1, 512, 1024},
                                    {1, 1024, 1024},  {1, 1024, 512},  {4, 1024, 1024},
                                    {64, 2048, 2048}, {128, 384, 384}, {128, 384, 1536},
                                    {128, 1536, 384}, {2048, 384, 1536}};
        for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++)
            bench_linear(sh[i][0], sh[i][1], sh[i][2]);
    }
    if (!strcmp(only, "all") || !strcmp(only, "conv")) {
        printf("\n### conv2d NCHW (ResNet-50 shapes), bias included\n\n");
        printf("im2col is plain C (memcpy rows for stride 1); a 1x1/s1/p0 conv skips it (the input is the "
               "column matrix). '(… alone)' rows are information, not candidates.\n\n");
        printf("| shape | candidate | µs/op | min–max | GFLOP/s | ×best | max abs err |\n");
        printf("|---|---|---:|---:|---:|---:|---:|\n");
        static const int cs[][8] = {{1, 3, 224, 224, 64, 7, 2, 3},   {1, 64, 56, 56, 64, 1, 1, 0},
                                    {1, 64, 56, 56, 64, 3, 1, 1},    {1, 64, 56, 56, 256, 1, 1, 0},
                                    {1, 128, 28, 28, 128, 3, 1, 1},  {1, 256, 14, 14, 256, 3, 1, 1},
                                    {1, 512, 7, 7, 512, 3, 1, 1},    {1, 1024, 14, 14, 2048, 1, 2, 0},
                                    {16, 64, 56, 56, 64, 3, 1, 1}};
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            bench_conv(cs[i][0], cs[i][1], cs[i][2], cs[i][3], cs[i][4], cs[i][5], cs[i][6],
                       cs[i][7]);
    }
    if (g_ncreated) {
        printf("\n### oneDNN one-time costs (per shape; fleet would cache the primitive)\n\n");
        printf("create = primitive_desc_create + primitive_create, primitive cache off, median of 3; "
               "cache hit = the same with the primitive cache on and the shape already in it; "
               "weight reorder = reorder primitive creation + execution (or the transpose copy), once.\n\n");
        printf("| shape | primitive | create µs | cache-hit create µs | weight reorder µs | implementation | layout chosen |\n");
        printf("|---|---|---:|---:|---:|---|---|\n");
        for (int i = 0; i < g_ncreated; i++)
            for (int j = 0; j < g_created[i].nc; j++) {
                cand_t *k = &g_created[i].c[j];
                printf("| %s | %s | %.0f | %.0f | %.0f | %s | %s |\n", g_created[i].label, k->name,
                       k->create_us, k->create_hit_us, k->reorder_us, k->impl, k->wfmt);
            }
    }
    if (!strcmp(only, "all") || !strcmp(only, "mlp")) bench_mlp();
    loadavg(la, sizeof la);
    printf("\nprocess threads at exit: %d; /proc/loadavg at exit: %s\n", proc_threads(), la);
    dnnl_stream_destroy(g_stream);
    dnnl_engine_destroy(g_eng);
    return 0;
}
