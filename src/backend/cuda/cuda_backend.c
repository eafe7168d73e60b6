/* backend/cuda/cuda_backend.c — the cuda backend's vtable over cudart and
 * cuBLAS. Streams are non-blocking cudaStream_t (stream 0 of a device is a
 * stream of its own too, so fleet's default stream never serialises with
 * the legacy NULL stream); events are timing-disabled; segments come from
 * cudaMalloc. This file and its siblings are the only place that calls CUDA. */
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/graph_copy.h"
#include "backend/cuda/cuda_linalg.h"
#include "backend/cuda/conv.h"
#include "backend/cuda/cuda_gemm_lt.h"
#include "backend/cuda/cuda_staging.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/rowwise.h"
#include "backend/cuda/small_gemm.h"
#include "core/atomic.h"
#include "core/log.h"
#include "core/prim.h"

/* cuBLAS scratch per stream handle, so it never allocates on the op path. */
#define CUBLAS_WORKSPACE_BYTES (32u << 20) /* cuBLAS's own default on Hopper */

typedef struct cuda_stream {
    cudaStream_t stream;
    int ordinal;
    /* Rank 6 (like the staging lock; never held with it). Threads that
     * share a stream share its library handles and workspace, and one
     * library call may be several kernels (a split-K GEMM writes partial
     * sums into the workspace, then reduces them): two threads' calls must
     * not interleave their kernels in the stream. Held for each whole
     * cuBLAS, cuBLASLt or cuSOLVER submission, and while the handles below
     * are created. */
    fleet__mutex library_lock;
    fleet_atomic_ptr blas;      /* cublasHandle_t, created on first gemm */
    fleet_atomic_ptr workspace; /* cuBLAS/cuBLASLt scratch, published before the
                                 * handle that uses it                         */
    fleet_atomic_ptr solver;    /* cusolverDnHandle_t, on first linalg op */
    fleet_atomic_ptr lt;        /* fleet__cuda_lt: handle + GEMM plans, on first biased GEMM */
    fleet__cuda_staging staging; /* pinned buffer for host transfers       */
} cuda_stream;

/* ---- exit guard ---------------------------------------------------------------
 * The CUDA runtime tears itself down from an atexit handler it registers when
 * it creates a context. Threads may still be inside CUDA calls then (exit()
 * while threads run ops), and a call in flight during that teardown can
 * crash. So every entry into CUDA is counted, in a counter picked by thread
 * (no shared cache line between threads bound to different slots), and
 * fleet's own atexit handler — registered right after the runtime's, so it
 * runs just before it — closes the backend and waits (at most 2 s) for the
 * counts to drain. Calls after that return FLEET_ERR_SHUTDOWN without
 * touching CUDA. The runtime registers its handler during its first call
 * (seen on the H200 with CUDA 13.0: a handler registered before
 * cudaGetDeviceCount met cudaErrorCudartUnloading, one registered right after
 * it could still allocate), and that call is cuda_init's: so every handler a
 * program registers after fleet's initialisation runs while CUDA still works. */
#define GUARD_SHARDS 64
typedef struct guard_shard {
    _Alignas(64) fleet_atomic_u64 inflight;
} guard_shard;
static guard_shard guards[GUARD_SHARDS];
static fleet_atomic_bool closing;
static fleet_atomic_bool exit_guard_armed;

static bool guard_enter(guard_shard **out)
{
    guard_shard *g = &guards[fleet__thread_token() % GUARD_SHARDS];
    /* seq_cst pair with close_at_exit: either it sees our count, or we see
     * `closing` (store-load on both sides). */
    fleet_atomic_add_seq_cst(&g->inflight, 1);
    if (fleet_atomic_load_seq_cst(&closing)) {
        fleet_atomic_sub_acq_rel(&g->inflight, 1);
        return false;
    }
    *out = g;
    return true;
}

static void guard_leave(guard_shard *g)
{
    fleet_atomic_sub_acq_rel(&g->inflight, 1);
}

static fleet_status closed_error(const char *fn)
{
    return fleet__error(FLEET_ERR_SHUTDOWN,
                        "%s: the cuda backend closed at process exit, before the CUDA runtime "
                        "unloads (an atexit handler that uses a cuda device must be registered "
                        "after fleet's initialisation)", fn);
}

static void close_at_exit(void)
{
    fleet_atomic_store_seq_cst(&closing, true);
    uint64_t deadline = fleet__deadline_after_ms(2000);
    for (;;) {
        uint64_t busy = 0;
        for (int i = 0; i < GUARD_SHARDS; i++)
            busy += fleet_atomic_load_acquire(&guards[i].inflight);
        if (busy == 0 || fleet__now_ns() > deadline)
            return;
        fleet__sleep_ns(200000);
    }
}

/* Right after the runtime's first call: its exit handler is registered
 * then, and ours, registered next, runs just before it. */
static void arm_exit_guard(void)
{
    bool expected = false;
    if (fleet_atomic_cas_acq_rel(&exit_guard_armed, &expected, true) &&
        !fleet__atexit_install(close_at_exit))
        FLEET_LOG_WARNF("cuda backend: cannot register the exit guard");
}

/* Kernels load lazily: the CUDA runtime and cuBLAS/cuSOLVER load a kernel's
 * module on its first launch and register its teardown then (seen on the
 * H200, CUDA 13.0: a cuBLAS GEMM in an atexit handler registered after
 * cudaGetDeviceCount but before the first GEMM crashed, with no fleet at
 * all). So the guard is registered again after the first launch of each
 * kind of kernel fleet makes: it runs before that teardown, and a handler
 * registered before it gets FLEET_ERR_SHUTDOWN instead of a crash. */
typedef enum kernel_kind {
    KERNELS_GEMM, KERNELS_LINALG, KERNELS_ELEMENTWISE, KERNELS_ROWWISE, KERNELS_GATHER,
    KERNELS_IM2COL, KERNELS_POOL, KERNELS_COPY, KERNELS_GRAPH, KERNEL_KINDS
} kernel_kind;
static fleet_atomic_bool first_launch_seen[KERNEL_KINDS];

static void guard_after_first_launch(kernel_kind k)
{
    if (FLEET_LIKELY(fleet_atomic_load_relaxed(&first_launch_seen[k])))
        return;
    bool expected = false;
    if (fleet_atomic_cas_acq_rel(&first_launch_seen[k], &expected, true) &&
        !fleet__atexit_install(close_at_exit))
        FLEET_LOG_WARNF("cuda backend: cannot register the exit guard");
}

#define CUDA_STREAMS_MAX (32 * 64)
static _Atomic(cuda_stream *) all_streams[CUDA_STREAMS_MAX];
static fleet_atomic_int all_streams_count;

fleet_status fleet__cuda_status(cudaError_t err, const char *call, const char *file, int line)
{
    fleet_status st = err == cudaErrorMemoryAllocation ? FLEET_ERR_OUT_OF_MEMORY : FLEET_ERR_BACKEND;
    if (err == cudaErrorMemoryAllocation)
        (void)cudaGetLastError(); /* not sticky: keep later launch checks clean */
    if (err == cudaErrorCudartUnloading)
        return fleet__error(FLEET_ERR_SHUTDOWN,
                            "%s: the CUDA runtime is unloading (process exit): cuda devices "
                            "cannot be used by atexit handlers registered before fleet's first "
                            "use", call);
    return fleet__error(st, "%s failed: %s (%s) at %s:%d", call, cudaGetErrorName(err),
                        cudaGetErrorString(err), file, line);
}

fleet_status fleet__cublas_status(cublasStatus_t s, const char *call, const char *file, int line)
{
    fleet_status st = s == CUBLAS_STATUS_ALLOC_FAILED ? FLEET_ERR_OUT_OF_MEMORY : FLEET_ERR_BACKEND;
    return fleet__error(st, "%s failed: %s (%s) at %s:%d", call, cublasGetStatusName(s),
                        cublasGetStatusString(s), file, line);
}

static fleet_status use_device(int ordinal)
{
    int cur = -1;
    FLEET_CUDA_TRY(cudaGetDevice(&cur));
    if (cur != ordinal)
        FLEET_CUDA_TRY(cudaSetDevice(ordinal));
    return FLEET_OK;
}

/* Written once by cuda_init, read-only after (any thread may ask). */
static char kernels_text[128] = "unknown (before init)";

static void describe_kernels(void)
{
    int major = 0, minor = 0, patch = 0, rt = 0;
    cublasGetProperty(MAJOR_VERSION, &major);
    cublasGetProperty(MINOR_VERSION, &minor);
    cublasGetProperty(PATCH_LEVEL, &patch);
    cudaRuntimeGetVersion(&rt);
    snprintf(kernels_text, sizeof kernels_text, "cuBLAS %d.%d.%d and cuBLASLt, CUDA runtime %d.%d",
             major, minor, patch, rt / 1000, rt % 1000 / 10);
}

static const char *cuda_kernels(void)
{
    return kernels_text;
}

/* FLEET_CUDA_SMALL_GEMM: GEMMs of at most this many multiply-adds per matrix
 * take small_gemm.cu's one kernel instead of cuBLAS(Lt). Set at init, read
 * only after. */
static int64_t small_gemm_max = FLEET__DEFAULT_CUDA_SMALL_GEMM;

static fleet_status cuda_init(const fleet__config *cfg, int *device_count, const char **why_none)
{
    small_gemm_max = cfg->cuda_small_gemm;
    static char why[256];
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n); /* the runtime's first call */
    arm_exit_guard();
    *device_count = 0;
    *why_none = NULL;
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(why, sizeof why, "cudaGetDeviceCount: %s", cudaGetErrorString(err));
        *why_none = why;
        return FLEET_OK; /* no GPU is not an error: the cpu backend serves */
    }
    if (n == 0)
        *why_none = "no CUDA device present";
    *device_count = n;
    describe_kernels();
    return FLEET_OK;
}

static void cuda_shutdown(void)
{
    int n = fleet_atomic_load_acquire(&all_streams_count);
    for (int i = 0; i < n; i++) {
        cuda_stream *s = fleet_atomic_load_acquire(&all_streams[i]);
        if (use_device(s->ordinal) == FLEET_OK) {
            cublasHandle_t h = fleet_atomic_load_acquire(&s->blas);
            if (h != NULL)
                cublasDestroy(h);
            fleet__cuda_solver_destroy(fleet_atomic_load_acquire(&s->solver));
            fleet__cuda_lt_destroy(fleet_atomic_load_acquire(&s->lt));
            cudaFree(fleet_atomic_load_acquire(&s->workspace));
            fleet__cuda_staging_destroy(&s->staging);
            cudaStreamDestroy(s->stream);
        }
        fleet__mutex_destroy(&s->library_lock);
        free(s);
        fleet_atomic_store_relaxed(&all_streams[i], NULL);
    }
    fleet_atomic_store_release(&all_streams_count, 0);
}

static fleet_status cuda_stream_create(int ordinal, bool is_default, void **out)
{
    (void)is_default;
    fleet_status st = use_device(ordinal);
    if (st != FLEET_OK)
        return st;
    cuda_stream *s = fleet__calloc(1, sizeof *s);
    if (s == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cuda backend: cannot allocate a stream");
    s->ordinal = ordinal;
    fleet__cuda_staging_init(&s->staging);
    fleet__mutex_init(&s->library_lock);
    cudaError_t err = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
        fleet__cuda_staging_destroy(&s->staging);
        fleet__mutex_destroy(&s->library_lock);
        free(s);
        return fleet__cuda_status(err, "cudaStreamCreateWithFlags", __FILE__, __LINE__);
    }
    /* Devices create streams under their own pool locks: reserve atomically. */
    int slot = fleet_atomic_add_acq_rel(&all_streams_count, 1);
    FLEET_ASSERT(slot < CUDA_STREAMS_MAX); /* 32 devices x 64 streams at most */
    fleet_atomic_store_release(&all_streams[slot], s);
    *out = s;
    return FLEET_OK;
}

static fleet_status cuda_stream_synchronize(void *p)
{
    cuda_stream *s = p;
    FLEET_CUDA_TRY(cudaStreamSynchronize(s->stream));
    return FLEET_OK;
}

static fleet_status cuda_device_synchronize(int ordinal)
{
    fleet_status status = use_device(ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY(cudaDeviceSynchronize());
    return FLEET_OK;
}

static fleet_status cuda_stream_query(void *p)
{
    cuda_stream *s = p;
    cudaError_t err = cudaStreamQuery(s->stream);
    if (err == cudaErrorNotReady)
        return FLEET_ERR_NOT_READY;
    if (err != cudaSuccess)
        return fleet__cuda_status(err, "cudaStreamQuery", __FILE__, __LINE__);
    return FLEET_OK;
}

static fleet_status cuda_launch_host_func(void *p, fleet_host_fn fn, void *arg)
{
    cuda_stream *s = p;
    FLEET_CUDA_TRY(cudaLaunchHostFunc(s->stream, fn, arg));
    return FLEET_OK;
}

typedef struct cuda_event {
    cudaEvent_t event;
    int ordinal;
} cuda_event;

static fleet_status cuda_event_create(int ordinal, void **out)
{
    fleet_status st = use_device(ordinal);
    if (st != FLEET_OK)
        return st;
    cuda_event *e = fleet__malloc(sizeof *e);
    if (e == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cuda backend: cannot allocate an event");
    e->ordinal = ordinal;
    cudaError_t err = cudaEventCreateWithFlags(&e->event, cudaEventDisableTiming);
    if (err != cudaSuccess) {
        free(e);
        return fleet__cuda_status(err, "cudaEventCreateWithFlags", __FILE__, __LINE__);
    }
    *out = e;
    return FLEET_OK;
}

static void cuda_event_destroy(void *p)
{
    cuda_event *e = p;
    cudaEventDestroy(e->event);
    free(e);
}

static fleet_status cuda_event_record(void *ev, void *st)
{
    cuda_event *e = ev;
    cuda_stream *s = st;
    FLEET_CUDA_TRY(cudaEventRecord(e->event, s->stream));
    return FLEET_OK;
}

static fleet_status cuda_stream_wait_event(void *st, void *ev)
{
    cuda_event *e = ev;
    cuda_stream *s = st;
    FLEET_CUDA_TRY(cudaStreamWaitEvent(s->stream, e->event, 0));
    return FLEET_OK;
}

static fleet_status cuda_event_query(void *ev)
{
    cuda_event *e = ev;
    cudaError_t err = cudaEventQuery(e->event);
    if (err == cudaErrorNotReady)
        return FLEET_ERR_NOT_READY;
    if (err != cudaSuccess)
        return fleet__cuda_status(err, "cudaEventQuery", __FILE__, __LINE__);
    return FLEET_OK;
}

static fleet_status cuda_event_synchronize(void *ev)
{
    cuda_event *e = ev;
    FLEET_CUDA_TRY(cudaEventSynchronize(e->event));
    return FLEET_OK;
}

static fleet_status cuda_segment_alloc(int ordinal, size_t bytes, void **out)
{
    fleet_status st = use_device(ordinal);
    if (st != FLEET_OK)
        return st;
    if (fleet__fault())
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cudaMalloc: injected failure");
    FLEET_CUDA_TRY(cudaMalloc(out, bytes));
    return FLEET_OK;
}

static void cuda_segment_free(int ordinal, void *ptr)
{
    if (use_device(ordinal) == FLEET_OK)
        cudaFree(ptr);
}

static fleet_status cuda_copy_to_device(void *st, void *dst, const void *src, size_t bytes)
{
    cuda_stream *s = st;
    if (bytes == 0)
        return FLEET_OK;
    return fleet__cuda_staging_to_device(&s->staging, s->stream, dst, src, bytes);
}

static fleet_status cuda_copy_to_host(void *st, void *dst, const void *src, size_t bytes)
{
    cuda_stream *s = st;
    if (bytes == 0)
        return FLEET_OK;
    return fleet__cuda_staging_to_host(&s->staging, s->stream, dst, src, bytes);
}

static fleet_status cuda_copy(void *st, void *dst, const void *src, size_t bytes)
{
    cuda_stream *s = st;
    if (bytes == 0)
        return FLEET_OK;
    FLEET_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream));
    return FLEET_OK;
}

/* The stream's scratch for cuBLAS and cuBLASLt (both run in stream order,
 * so they can share it), created on first use. */
static fleet_status stream_workspace(cuda_stream *s, void **out) FLEET_REQUIRES(s->library_lock)
{
    void *ws = fleet_atomic_load_relaxed(&s->workspace);
    if (ws == NULL) {
        if (fleet__fault())
            return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cuBLAS workspace: injected failure");
        FLEET_CUDA_TRY(cudaMalloc(&ws, CUBLAS_WORKSPACE_BYTES));
        fleet_atomic_store_release(&s->workspace, ws);
    }
    *out = ws;
    return FLEET_OK;
}

/* The stream's cuBLAS handle, created on first use, bound to the stream and
 * its workspace. */
static fleet_status stream_blas(cuda_stream *s, cublasHandle_t *out) FLEET_REQUIRES(s->library_lock)
{
    cublasHandle_t h = fleet_atomic_load_relaxed(&s->blas);
    if (h != NULL) {
        *out = h;
        return FLEET_OK;
    }
    void *ws;
    fleet_status st = stream_workspace(s, &ws);
    if (st != FLEET_OK)
        return st;
    FLEET_CUBLAS_TRY(cublasCreate(&h));
    cublasStatus_t bs = cublasSetStream(h, s->stream);
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasSetWorkspace(h, ws, CUBLAS_WORKSPACE_BYTES);
    /* float32-accurate by default: no TF32 unless asked for. */
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(h);
        return fleet__cublas_status(bs, "cublasSetStream/Workspace/MathMode", __FILE__, __LINE__);
    }
    fleet_atomic_store_release(&s->blas, (void *)h);
    *out = h;
    return FLEET_OK;
}

static fleet_status gemm_locked(cuda_stream *s, const fleet__gemm_args *g)
    FLEET_REQUIRES(s->library_lock)
{
    bool half = g->dtype == FLEET_DTYPE_F16 || g->dtype == FLEET_DTYPE_BF16;
    if (g->dtype != FLEET_DTYPE_F32 && !half)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cuda backend: gemm on %s",
                            fleet_dtype_name(g->dtype));
    if (g->m > INT32_MAX || g->n > INT32_MAX || g->k > INT32_MAX || g->batch > INT32_MAX)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cuda backend: gemm dimensions beyond 2^31-1");
    if (g->m == 0 || g->n == 0 || g->batch == 0)
        return FLEET_OK;
    fleet_status status = use_device(s->ordinal);
    cublasHandle_t h = NULL;
    if (status == FLEET_OK)
        status = stream_blas(s, &h);
    if (status != FLEET_OK)
        return status;
    float beta = g->beta;
    if (g->bias != NULL) {
        /* One launch: the bias in cuBLASLt's epilogue; a kernel before the
         * GEMM only where cuBLASLt has no algorithm for the shape. */
        bool fused = false;
        status = fleet__cuda_gemm_bias_lt(&s->lt, s->stream,
                                          fleet_atomic_load_acquire(&s->workspace),
                                          CUBLAS_WORKSPACE_BYTES, g, &fused);
        if (status != FLEET_OK || fused)
            return status;
        if (g->relu) /* nothing launched yet: the op applies the ReLU apart */
            return fleet__error(FLEET_ERR_UNSUPPORTED, "cuda backend: no cuBLASLt algorithm "
                                "with a bias and ReLU epilogue for this GEMM");
        if (half)
            return fleet__error(FLEET_ERR_UNSUPPORTED,
                                "cuda backend: cuBLASLt has no algorithm for this %s GEMM with a "
                                "bias (%lldx%lldx%lld); add the bias with fleet_add",
                                fleet_dtype_name(g->dtype), (long long)g->m, (long long)g->n,
                                (long long)g->k);
        FLEET_LOG_DEBUGF("cuBLASLt has no algorithm for a %lldx%lldx%lld GEMM with bias "
                         "(batch %lld): bias kernel, then GEMM", (long long)g->m,
                         (long long)g->n, (long long)g->k, (long long)g->batch);
        FLEET_CUDA_TRY((cudaError_t)fleet__cuda_bias_rows_f32(s->stream, g->batch, g->stride_c,
                                                              g->m, g->n, g->ldc, g->bias, beta,
                                                              g->c));
        beta = 1.0f;
    }
    /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T. */
    cublasOperation_t opb = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opa = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    int n = (int)g->n, m = (int)g->m, k = (int)g->k;
    if (!half && g->batch == 1) {
        FLEET_CUBLAS_TRY(cublasSgemm(h, opb, opa, n, m, k, &g->alpha, g->b, (int)g->ldb, g->a,
                                     (int)g->lda, &beta, g->c, (int)g->ldc));
    } else if (!half) {
        FLEET_CUBLAS_TRY(cublasSgemmStridedBatched(h, opb, opa, n, m, k, &g->alpha, g->b,
                                                   (int)g->ldb, g->stride_b, g->a, (int)g->lda,
                                                   g->stride_a, &beta, g->c, (int)g->ldc,
                                                   g->stride_c, (int)g->batch));
    } else {
        cudaDataType_t t = g->dtype == FLEET_DTYPE_F16 ? CUDA_R_16F : CUDA_R_16BF;
        FLEET_CUBLAS_TRY(cublasGemmStridedBatchedEx(
            h, opb, opa, n, m, k, &g->alpha, g->b, t, (int)g->ldb, g->stride_b, g->a, t,
            (int)g->lda, g->stride_a, &beta, g->c, t, (int)g->ldc, g->stride_c, (int)g->batch,
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    return FLEET_OK;
}

/* Whether g is small enough for small_gemm.cu: a float type; m, n and k
 * each, and the product, at most small_gemm_max (each factor checked first,
 * so nothing overflows); fewer than 2^31 outputs over the batch. */
static bool small_gemm_fits(const fleet__gemm_args *g)
{
    int64_t t = small_gemm_max;
    bool float_type = g->dtype == FLEET_DTYPE_F32 || g->dtype == FLEET_DTYPE_F16 ||
                      g->dtype == FLEET_DTYPE_BF16;
    return float_type && g->m <= t && g->n <= t && g->k <= t && g->m * g->n <= t &&
           g->m * g->n * g->k <= t && g->batch <= INT32_MAX / (g->m * g->n > 0 ? g->m * g->n : 1);
}

static fleet_status cuda_gemm(void *st, const fleet__gemm_args *g)
{
    cuda_stream *s = st;
    if (small_gemm_fits(g)) { /* one launch, no library: no lock needed */
        if (g->m == 0 || g->n == 0 || g->batch == 0)
            return FLEET_OK;
        fleet_status status = use_device(s->ordinal);
        if (status != FLEET_OK)
            return status;
        FLEET_CUDA_TRY((cudaError_t)fleet__cuda_small_gemm(s->stream, g));
        return FLEET_OK;
    }
    fleet__mutex_lock(&s->library_lock);
    fleet_status status = gemm_locked(s, g);
    fleet__mutex_unlock(&s->library_lock);
    return status;
}

static fleet_status cuda_elementwise(void *st, const fleet__elementwise_args *e)
{
    cuda_stream *s = st;
    fleet_status status = use_device(s->ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_elementwise(s->stream, e));
    return FLEET_OK;
}

static bool cuda_elementwise_supports(int op, int dtype, int out_dtype)
{
    return fleet__cuda_elementwise_supports(op, dtype, out_dtype) != 0;
}

static fleet_status cuda_rowwise(void *st, const fleet__rowwise_args *r)
{
    cuda_stream *s = st;
    fleet_status status = use_device(s->ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_rowwise(s->stream, r));
    return FLEET_OK;
}

/* ---- linear algebra (cuda_linalg.c) ------------------------------------------ */

/* The stream's cuSOLVER handle, created on first use. */
static fleet_status stream_solver(cuda_stream *s, cusolverDnHandle_t *out)
    FLEET_REQUIRES(s->library_lock)
{
    cusolverDnHandle_t h = fleet_atomic_load_relaxed(&s->solver);
    if (h == NULL) {
        fleet_status st = fleet__cuda_solver_create(s->stream, &h);
        if (st != FLEET_OK)
            return st;
        fleet_atomic_store_release(&s->solver, (void *)h);
    }
    *out = h;
    return FLEET_OK;
}

static fleet_status cuda_linalg_workspace_size(void *st, const fleet__linalg_args *args,
                                               size_t *bytes)
{
    cuda_stream *s = st;
    cusolverDnHandle_t h = NULL;
    fleet__mutex_lock(&s->library_lock);
    fleet_status status = use_device(s->ordinal);
    if (status == FLEET_OK)
        status = stream_solver(s, &h);
    if (status == FLEET_OK)
        status = fleet__cuda_linalg_workspace_size(h, args, bytes);
    fleet__mutex_unlock(&s->library_lock);
    return status;
}

/* The whole batch under the library lock: cuSOLVER and cuBLAS calls of
 * other threads of this stream go before or after it, never between. */
static fleet_status cuda_linalg(void *st, const fleet__linalg_args *args)
{
    cuda_stream *s = st;
    cusolverDnHandle_t h = NULL;
    cublasHandle_t blas = NULL;
    fleet__mutex_lock(&s->library_lock);
    fleet_status status = use_device(s->ordinal);
    if (status == FLEET_OK)
        status = stream_solver(s, &h);
    if (status == FLEET_OK && args->op == FLEET__LINALG_SOLVE_TRIANGULAR)
        status = stream_blas(s, &blas);
    if (status == FLEET_OK)
        status = fleet__cuda_linalg(s->stream, blas, h, args);
    fleet__mutex_unlock(&s->library_lock);
    return status;
}

/* ---- the gather, the range, im2col and pooling (conv.cu) ------------------------------------ */

static fleet_status cuda_gather(void *st, const fleet__gather_args *e)
{
    cuda_stream *s = st;
    if (e->index_dtype != FLEET_DTYPE_I32 && e->index_dtype != FLEET_DTYPE_I64)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cuda backend: gather indices must be i32/i64");
    fleet_status status = use_device(s->ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_gather(s->stream, e));
    return FLEET_OK;
}

static fleet_status cuda_range(void *st, const fleet__range_args *a)
{
    cuda_stream *s = st;
    if (a->dtype != FLEET_DTYPE_F32 && a->dtype != FLEET_DTYPE_I32 && a->dtype != FLEET_DTYPE_I64)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cuda backend: a range of %s",
                            fleet_dtype_name((fleet_dtype)a->dtype));
    fleet_status status = use_device(s->ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_range(s->stream, a));
    return FLEET_OK;
}

static fleet_status cuda_im2col(void *st, const fleet__im2col_args *a)
{
    cuda_stream *s = st;
    if (a->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cuda backend: im2col supports f32 only");
    fleet_status status = use_device(s->ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_im2col(s->stream, a));
    return FLEET_OK;
}

static fleet_status cuda_pool2d(void *st, const fleet__pool_args *a)
{
    cuda_stream *s = st;
    if (a->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cuda backend: pooling supports f32 only");
    fleet_status status = use_device(s->ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_pool2d(s->stream, a));
    return FLEET_OK;
}

/* ---- graphs: capture on a stream, replay ----------------------------------------
 * Thread-local capture mode: other threads' CUDA calls (their own streams,
 * their allocations) neither break the capture nor are recorded into it. */

static fleet_status cuda_capture_begin(void *st)
{
    cuda_stream *s = st;
    fleet_status status = use_device(s->ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY(cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeThreadLocal));
    return FLEET_OK;
}

/* An instantiated graph and the graph it came from: node handles taken
 * during the capture (capture_last_node) belong to the graph, which must
 * live as long as they are used to update the exec. */
typedef struct cuda_graph {
    cudaGraphExec_t exec;
    cudaGraph_t graph;
} cuda_graph;

static fleet_status cuda_capture_end(void *st, bool keep, void **exec)
{
    cuda_stream *s = st;
    cudaGraph_t graph = NULL;
    *exec = NULL;
    cudaError_t e = cudaStreamEndCapture(s->stream, &graph);
    if (e != cudaSuccess || !keep) {
        if (graph != NULL)
            (void)cudaGraphDestroy(graph);
        (void)cudaGetLastError(); /* an invalidated capture leaves no sticky error */
        return e != cudaSuccess ? fleet__cuda_status(e, "cudaStreamEndCapture", __FILE__, __LINE__)
                                : FLEET_OK;
    }
    cuda_graph *g = fleet__malloc(sizeof *g);
    if (g == NULL) {
        (void)cudaGraphDestroy(graph);
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cuda backend: no host memory for a graph");
    }
    g->graph = graph;
    e = cudaGraphInstantiate(&g->exec, graph, 0);
    if (e != cudaSuccess) {
        (void)cudaGraphDestroy(graph);
        free(g);
        return fleet__cuda_status(e, "cudaGraphInstantiate", __FILE__, __LINE__);
    }
    *exec = g;
    return FLEET_OK;
}

static fleet_status cuda_graph_launch(void *st, void *exec)
{
    cuda_stream *s = st;
    FLEET_CUDA_TRY(cudaGraphLaunch(((cuda_graph *)exec)->exec, s->stream));
    return FLEET_OK;
}

static void cuda_graph_destroy(void *exec)
{
    cuda_graph *g = exec;
    (void)cudaGraphExecDestroy(g->exec); /* freed when a running launch ends */
    (void)cudaGraphDestroy(g->graph);
    free(g);
}

static fleet_status cuda_capture_last_node(void *st, void **node)
{
    cuda_stream *s = st;
    enum cudaStreamCaptureStatus status;
    const cudaGraphNode_t *deps = NULL;
    size_t n = 0;
    FLEET_CUDA_TRY(cudaStreamGetCaptureInfo(s->stream, &status, NULL, NULL, &deps, NULL, &n));
    if (status != cudaStreamCaptureStatusActive || n != 1)
        return fleet__error(FLEET_ERR_INTERNAL, "cuda backend: the stream is not capturing one "
                            "sequence (status %d, %zu last nodes)", (int)status, n);
    *node = deps[0];
    return FLEET_OK;
}

static fleet_status cuda_graph_copy(void *st, void *dst, const void *src, size_t bytes)
{
    cuda_stream *s = st;
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_graph_copy_launch(s->stream, dst, src, bytes));
    return FLEET_OK;
}

static fleet_status cuda_copy_segments(void *st, const fleet__segments_args *a)
{
    cuda_stream *s = st;
    fleet_status status = use_device(s->ordinal);
    if (status != FLEET_OK)
        return status;
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_copy_segments(s->stream, a));
    return FLEET_OK;
}

static fleet_status cuda_graph_set_copy(void *exec, void *node, void *dst, const void *src,
                                        size_t bytes)
{
    FLEET_CUDA_TRY((cudaError_t)fleet__cuda_graph_copy_update(((cuda_graph *)exec)->exec, node, dst,
                                                              src, bytes));
    return FLEET_OK;
}

/* ---- the vtable: every entry behind the exit guard ---------------------------- */

#define GUARDED(name, params, args)                                                      \
    static fleet_status guarded_##name params                                           \
    {                                                                                    \
        guard_shard *guard_;                                                             \
        if (!guard_enter(&guard_))                                                       \
            return closed_error(#name);                                                  \
        fleet_status st_ = name args;                                                    \
        guard_leave(guard_);                                                             \
        return st_;                                                                      \
    }
/* The same for an entry that launches kernels of one kind. */
#define GUARDED_KERNELS(name, kind, params, args)                                        \
    static fleet_status guarded_##name params                                           \
    {                                                                                    \
        guard_shard *guard_;                                                             \
        if (!guard_enter(&guard_))                                                       \
            return closed_error(#name);                                                  \
        fleet_status st_ = name args;                                                    \
        guard_leave(guard_);                                                             \
        if (st_ == FLEET_OK)                                                             \
            guard_after_first_launch(kind);                                              \
        return st_;                                                                      \
    }
#define GUARDED_VOID(name, params, args)                                                 \
    static void guarded_##name params                                                   \
    {                                                                                    \
        guard_shard *guard_;                                                             \
        if (!guard_enter(&guard_))                                                       \
            return; /* the process is ending: the OS reclaims it */                      \
        name args;                                                                       \
        guard_leave(guard_);                                                             \
    }

GUARDED(cuda_stream_create, (int o, bool d, void **out), (o, d, out))
GUARDED(cuda_stream_synchronize, (void *s), (s))
GUARDED(cuda_stream_query, (void *s), (s))
GUARDED(cuda_device_synchronize, (int o), (o))
GUARDED(cuda_launch_host_func, (void *s, fleet_host_fn fn, void *arg), (s, fn, arg))
GUARDED(cuda_event_create, (int o, void **out), (o, out))
GUARDED_VOID(cuda_event_destroy, (void *e), (e))
GUARDED(cuda_event_record, (void *e, void *s), (e, s))
GUARDED(cuda_stream_wait_event, (void *s, void *e), (s, e))
GUARDED(cuda_event_query, (void *e), (e))
GUARDED(cuda_event_synchronize, (void *e), (e))
GUARDED(cuda_segment_alloc, (int o, size_t n, void **out), (o, n, out))
GUARDED_VOID(cuda_segment_free, (int o, void *p), (o, p))
GUARDED(cuda_copy_to_device, (void *s, void *d, const void *src, size_t n), (s, d, src, n))
GUARDED(cuda_copy_to_host, (void *s, void *d, const void *src, size_t n), (s, d, src, n))
GUARDED(cuda_copy, (void *s, void *d, const void *src, size_t n), (s, d, src, n))
GUARDED_KERNELS(cuda_gemm, KERNELS_GEMM, (void *s, const fleet__gemm_args *g), (s, g))
GUARDED(cuda_linalg_workspace_size, (void *s, const fleet__linalg_args *l, size_t *n), (s, l, n))
GUARDED_KERNELS(cuda_linalg, KERNELS_LINALG, (void *s, const fleet__linalg_args *l), (s, l))
GUARDED_KERNELS(cuda_elementwise, KERNELS_ELEMENTWISE, (void *s, const fleet__elementwise_args *e),
                (s, e))
GUARDED_KERNELS(cuda_gather, KERNELS_GATHER, (void *s, const fleet__gather_args *e), (s, e))
/* the range is in the gather's module (conv.cu) */
GUARDED_KERNELS(cuda_range, KERNELS_GATHER, (void *s, const fleet__range_args *a), (s, a))
GUARDED_KERNELS(cuda_im2col, KERNELS_IM2COL, (void *s, const fleet__im2col_args *a), (s, a))
GUARDED_KERNELS(cuda_pool2d, KERNELS_POOL, (void *s, const fleet__pool_args *a), (s, a))
GUARDED_KERNELS(cuda_rowwise, KERNELS_ROWWISE, (void *s, const fleet__rowwise_args *r), (s, r))
GUARDED(cuda_capture_begin, (void *s), (s))
GUARDED(cuda_capture_end, (void *s, bool keep, void **exec), (s, keep, exec))
GUARDED_KERNELS(cuda_graph_launch, KERNELS_GRAPH, (void *s, void *exec), (s, exec))
GUARDED_VOID(cuda_graph_destroy, (void *exec), (exec))
GUARDED(cuda_capture_last_node, (void *s, void **node), (s, node))
GUARDED_KERNELS(cuda_graph_copy, KERNELS_COPY, (void *s, void *d, const void *src, size_t b),
                (s, d, src, b))
GUARDED_KERNELS(cuda_copy_segments, KERNELS_COPY, (void *s, const fleet__segments_args *a), (s, a))
GUARDED(cuda_graph_set_copy, (void *e, void *n, void *d, const void *src, size_t b), (e, n, d, src, b))

const fleet__backend fleet__cuda_backend = {
    .name = "cuda",
    .kind = FLEET_BACKEND_CUDA,
    .survives_fork = false,
    .init = cuda_init,
    .kernels = cuda_kernels,
    .shutdown = cuda_shutdown,
    .stream_create = guarded_cuda_stream_create,
    .stream_synchronize = guarded_cuda_stream_synchronize,
    .stream_query = guarded_cuda_stream_query,
    .device_synchronize = guarded_cuda_device_synchronize,
    .stream_launch_host_func = guarded_cuda_launch_host_func,
    .event_create = guarded_cuda_event_create,
    .event_destroy = guarded_cuda_event_destroy,
    .event_record = guarded_cuda_event_record,
    .stream_wait_event = guarded_cuda_stream_wait_event,
    .event_query = guarded_cuda_event_query,
    .event_synchronize = guarded_cuda_event_synchronize,
    .segment_alloc = guarded_cuda_segment_alloc,
    .segment_free = guarded_cuda_segment_free,
    .copy_host_to_device = guarded_cuda_copy_to_device,
    .copy_device_to_host = guarded_cuda_copy_to_host,
    .copy_device_to_device = guarded_cuda_copy,
    .copy_segments = guarded_cuda_copy_segments,
    .gemm = guarded_cuda_gemm,
    .linalg_workspace_size = guarded_cuda_linalg_workspace_size,
    .linalg = guarded_cuda_linalg,
    .gather = guarded_cuda_gather,
    .range = guarded_cuda_range,
    .im2col = guarded_cuda_im2col,
    .pool2d = guarded_cuda_pool2d,
    .elementwise = guarded_cuda_elementwise,
    .elementwise_supports = cuda_elementwise_supports,
    .rowwise = guarded_cuda_rowwise,
    .capture_begin = guarded_cuda_capture_begin,
    .capture_end = guarded_cuda_capture_end,
    .graph_launch = guarded_cuda_graph_launch,
    .graph_destroy = guarded_cuda_graph_destroy,
    .capture_last_node = guarded_cuda_capture_last_node,
    .graph_copy = guarded_cuda_graph_copy,
    .graph_set_copy = guarded_cuda_graph_set_copy,
    /* No fork handlers: a CUDA context does not survive fork; the runtime
     * marks cuda devices unusable in the child (FLEET_ERR_FORKED). */
};
