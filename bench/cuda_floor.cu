/* bench/cuda_floor.cu — the raw-CUDA reference of `fleet bench`: the same
 * workloads written directly against CUDA, cuBLAS and cuBLASLt, no fleet
 * code, so that fleet's numbers have a floor measured beside them.
 *
 * Method (the same as cli/bench.c and bench/torch_bench.py): for each thread
 * count, every thread owns a non-blocking stream, a cuBLAS handle with its
 * own 4 MiB workspace (and, for linear64-lt, a cuBLASLt handle and
 * workspace) and its buffers; it runs its op once and checks the result
 * against a CPU reference in double, then loops { op; synchronize } while
 * the main thread times a warm-up and `windows` windows of `window_ms`. All
 * threads start each window together (a barrier) and stop at its end; the
 * window's ops/s is the ops summed over threads over the window's wall time.
 * Reported: the median window with min and max, speedup = median / median
 * at the smallest thread count (1 by default), efficiency = speedup per
 * thread relative to it.
 *
 * Float32 throughout with cuBLAS's default math (no TF32): the check's
 * tolerance (5e-6 of the sum of |terms|) would catch TF32's rounding.
 *
 * Exit status: 0, 1 (a check or a CUDA call failed), 2 (bad usage), 77 (no
 * CUDA device: the test harness's "skipped"). */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

/* ---- errors: a bench program, so any failed CUDA call ends it ------------------- */

static void die(const char *call, const char *what, const char *file, int line)
{
    fprintf(stderr, "cuda_floor: %s failed: %s (%s:%d)\n", call, what, file, line);
    exit(1);
}

#define CUDA_OK(call)                                                                      \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess)                                                             \
            die(#call, cudaGetErrorString(e_), __FILE__, __LINE__);                        \
    } while (0)

#define BLAS_OK(call)                                                                      \
    do {                                                                                   \
        cublasStatus_t s_ = (call);                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                   \
            die(#call, cublasGetStatusString(s_), __FILE__, __LINE__);                     \
    } while (0)

/* ---- workloads --------------------------------------------------------------------- */

enum class Mode { Empty, Eager, Graph, Lt };
enum class Sync { Stream, Device };

struct Workload {
    const char *name;
    const char *what;
    int in, out, batch; /* a Linear; in == 0: the MLP 512-1024-1024-512 */
    Sync sync;
    Mode mode;
};

static const Workload kWorkloads[] = {
    {"empty", "empty kernel <<<1,1>>> + stream sync (the launch+sync floor)", 0, 0, 0,
     Sync::Stream, Mode::Empty},
    {"seed-device-sync", "Linear 256->128 batch 4 (sgemm + bias kernel), device-wide sync",
     256, 128, 4, Sync::Device, Mode::Eager},
    {"seed-stream-sync", "Linear 256->128 batch 4 (sgemm + bias kernel), stream sync", 256,
     128, 4, Sync::Stream, Mode::Eager},
    {"linear64", "Linear 64->64 batch 4 (sgemm + bias kernel), stream sync", 64, 64, 4,
     Sync::Stream, Mode::Eager},
    {"linear64-graph", "linear64's two launches as a CUDA graph, graph launch + stream sync",
     64, 64, 4, Sync::Stream, Mode::Graph},
    {"linear64-lt", "linear64 as one cublasLtMatmul with the bias epilogue, stream sync", 64,
     64, 4, Sync::Stream, Mode::Lt},
    {"linear2048", "Linear 2048->2048 batch 64 (sgemm + bias kernel), stream sync", 2048,
     2048, 64, Sync::Stream, Mode::Eager},
    {"mlp", "MLP 512-1024-1024-512 batch 1, ReLU between (6 launches), stream sync", 0, 0, 1,
     Sync::Stream, Mode::Eager},
    {"mlp-graph", "the MLP captured as a CUDA graph per thread, graph launch + stream sync", 0,
     0, 1, Sync::Stream, Mode::Graph},
};

static const int kMlpWidths[] = {512, 1024, 1024, 512};
static const int kMlpLayers = 3;
/* per cuBLAS / cuBLASLt handle; --workspace-mb (default 32, cuBLAS's own on Hopper) */
static size_t g_workspace_bytes = 4u << 20;
static const double kTolerance = 5e-6; /* of sum |x w| + |b|, per output */

/* ---- data: the same generator and seeds as cli/bench.c -------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(std::vector<float> &p, uint64_t seed, float scale)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (float &v : p)
        v = scale * ((float)(rng_next(&s) >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
}

/* One layer y = x W^T + b (ReLU if relu): weights on the host (for the
 * reference) and on the device. */
struct Layer {
    int in = 0, out = 0;
    bool relu = false;
    std::vector<float> w, b;
    float *dw = nullptr, *db = nullptr;
};

/* The network of a workload: one Linear (weights per thread, seeded by the
 * thread's index as in cli/bench.c) or the MLP (one set of weights shared
 * by all threads, as fleet's model is). */
static std::vector<Layer> make_layers(const Workload &w, int index)
{
    std::vector<Layer> ls;
    if (w.mode == Mode::Empty)
        return ls;
    if (w.in > 0) {
        Layer l;
        l.in = w.in;
        l.out = w.out;
        l.w.resize((size_t)w.in * w.out);
        l.b.resize((size_t)w.out);
        fill(l.w, 1000 + (uint64_t)index, 1.0f / std::sqrt((float)w.in));
        fill(l.b, 2000 + (uint64_t)index, 0.1f);
        ls.push_back(std::move(l));
        return ls;
    }
    for (int k = 0; k < kMlpLayers; k++) {
        Layer l;
        l.in = kMlpWidths[k];
        l.out = kMlpWidths[k + 1];
        l.relu = k + 1 < kMlpLayers;
        l.w.resize((size_t)l.in * l.out);
        l.b.resize((size_t)l.out);
        fill(l.w, 300 + (uint64_t)k, 1.0f / std::sqrt((float)l.in));
        fill(l.b, 400 + (uint64_t)k, 0.1f);
        ls.push_back(std::move(l));
    }
    return ls;
}

static void upload_layers(std::vector<Layer> &ls, cudaStream_t s)
{
    for (Layer &l : ls) {
        CUDA_OK(cudaMalloc(&l.dw, l.w.size() * sizeof(float)));
        CUDA_OK(cudaMalloc(&l.db, l.b.size() * sizeof(float)));
        CUDA_OK(cudaMemcpyAsync(l.dw, l.w.data(), l.w.size() * sizeof(float),
                                cudaMemcpyHostToDevice, s));
        CUDA_OK(cudaMemcpyAsync(l.db, l.b.data(), l.b.size() * sizeof(float),
                                cudaMemcpyHostToDevice, s));
    }
    CUDA_OK(cudaStreamSynchronize(s));
}

static void free_layers(std::vector<Layer> &ls)
{
    for (Layer &l : ls) {
        CUDA_OK(cudaFree(l.dw));
        CUDA_OK(cudaFree(l.db));
        l.dw = l.db = nullptr;
    }
}

/* The reference in double, and the scale of each output of the last layer
 * (sum |h w| + |b| over its terms) that the tolerance is relative to. True
 * if every |got - ref| <= kTolerance * scale; *worst gets the largest
 * ratio. (Earlier layers' errors reach the output through weights of both
 * signs, so they stay of the same relative size; the worst-case bound,
 * scaling by sum |w| per layer, would be too loose to catch TF32.) */
static bool check_forward(const std::vector<Layer> &ls, const std::vector<float> &x, int batch,
                          const std::vector<float> &got, double *worst)
{
    std::vector<double> h(x.begin(), x.end()), m(x.size());
    for (const Layer &l : ls) {
        for (size_t i = 0; i < h.size(); i++)
            m[i] = std::fabs(h[i]);
        std::vector<double> hn((size_t)batch * l.out), mn((size_t)batch * l.out);
        for (int r = 0; r < batch; r++)
            for (int o = 0; o < l.out; o++) {
                double acc = l.b[o], mag = std::fabs((double)l.b[o]);
                const float *wr = &l.w[(size_t)o * l.in];
                for (int i = 0; i < l.in; i++) {
                    acc += h[(size_t)r * l.in + i] * wr[i];
                    mag += m[(size_t)r * l.in + i] * std::fabs((double)wr[i]);
                }
                hn[(size_t)r * l.out + o] = l.relu && acc < 0 ? 0.0 : acc;
                mn[(size_t)r * l.out + o] = mag;
            }
        h.swap(hn);
        m.swap(mn);
    }
    bool ok = got.size() == h.size();
    *worst = 0;
    for (size_t i = 0; ok && i < h.size(); i++) {
        double ratio = std::fabs((double)got[i] - h[i]) / (kTolerance * m[i] + 1e-300);
        *worst = std::max(*worst, ratio);
        ok = ratio <= 1.0 && std::isfinite(got[i]);
    }
    return ok;
}

/* ---- kernels ------------------------------------------------------------------------ */

__global__ void empty_kernel() {}

/* y (row-major [rows, n]) += b, then ReLU if relu. */
__global__ void bias_act(float *__restrict__ y, const float *__restrict__ b, int n, int total,
                         int relu)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) {
        float v = y[i] + b[i % n];
        y[i] = relu ? fmaxf(v, 0.0f) : v;
    }
}

/* ---- one thread's resources and its op -------------------------------------------- */

struct Shared;

struct Worker {
    Shared *sh = nullptr;
    int index = 0;
    cudaStream_t s = nullptr;
    cublasHandle_t blas = nullptr;
    void *ws = nullptr;
    std::vector<Layer> own;          /* a Linear's weights (per thread)        */
    const std::vector<Layer> *layers = nullptr; /* own, or the shared MLP      */
    std::vector<float *> act;        /* act[0] = x, act[k+1] = layer k's out   */
    std::vector<float> hx;
    cudaGraphExec_t exec = nullptr;
    cublasLtHandle_t lt = nullptr;
    void *lt_ws = nullptr;
    cublasLtMatmulDesc_t lt_op = nullptr;
    cublasLtMatrixLayout_t lt_a = nullptr, lt_b = nullptr, lt_c = nullptr;
    cublasLtMatmulAlgo_t lt_algo{};
    uint64_t count = 0;
    std::thread thread;
};

struct Shared {
    const Workload *w = nullptr;
    int threads = 0;
    std::vector<Layer> shared;       /* the MLP's weights (or, with
                                        --shared-weights, a Linear's), one set
                                        for all threads                        */
    bool shared_weights = false;     /* a Linear's weights shared too          */
    pthread_barrier_t barrier;
    std::atomic<bool> stop{false};
    std::atomic<bool> quit{false};
    std::atomic<int> failed{0};
    std::mutex setup_lock;           /* serialises GPU setup and graph capture */
};

static void forward_eager(Worker &k)
{
    const float one = 1.0f, zero = 0.0f;
    const std::vector<Layer> &ls = *k.layers;
    int batch = k.sh->w->batch;
    for (size_t i = 0; i < ls.size(); i++) {
        const Layer &l = ls[i];
        /* Row-major y[B,N] = x[B,K] W[N,K]^T is column-major
         * y^T[N,B] = W^T'[N,K] x^T[K,B], W^T' being W read column-major and
         * transposed. */
        BLAS_OK(cublasSgemm(k.blas, CUBLAS_OP_T, CUBLAS_OP_N, l.out, batch, l.in, &one, l.dw,
                            l.in, k.act[i], l.in, &zero, k.act[i + 1], l.out));
        int total = batch * l.out;
        bias_act<<<(total + 255) / 256, 256, 0, k.s>>>(k.act[i + 1], l.db, l.out, total,
                                                        l.relu ? 1 : 0);
    }
}

static void forward_lt(Worker &k)
{
    const float one = 1.0f, zero = 0.0f;
    const Layer &l = (*k.layers)[0];
    BLAS_OK(cublasLtMatmul(k.lt, k.lt_op, &one, l.dw, k.lt_a, k.act[0], k.lt_b, &zero,
                           k.act[1], k.lt_c, k.act[1], k.lt_c, &k.lt_algo, k.lt_ws,
                           g_workspace_bytes, k.s));
}

static inline void op(Worker &k)
{
    switch (k.sh->w->mode) {
    case Mode::Empty:
        empty_kernel<<<1, 1, 0, k.s>>>();
        break;
    case Mode::Eager:
        forward_eager(k);
        break;
    case Mode::Graph:
        CUDA_OK(cudaGraphLaunch(k.exec, k.s));
        break;
    case Mode::Lt:
        forward_lt(k);
        break;
    }
    if (k.sh->w->sync == Sync::Device)
        CUDA_OK(cudaDeviceSynchronize());
    else
        CUDA_OK(cudaStreamSynchronize(k.s));
}

static void setup_lt(Worker &k)
{
    const Layer &l = (*k.layers)[0];
    int batch = k.sh->w->batch;
    BLAS_OK(cublasLtCreate(&k.lt));
    CUDA_OK(cudaMalloc(&k.lt_ws, g_workspace_bytes));
    BLAS_OK(cublasLtMatmulDescCreate(&k.lt_op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    const void *bias = l.db;
    BLAS_OK(cublasLtMatmulDescSetAttribute(k.lt_op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    BLAS_OK(cublasLtMatmulDescSetAttribute(k.lt_op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    BLAS_OK(cublasLtMatmulDescSetAttribute(k.lt_op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                           sizeof epi));
    BLAS_OK(cublasLtMatmulDescSetAttribute(k.lt_op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                           sizeof bias));
    /* the same column-major view as the sgemm: A = W as [K,N], B = x^T as
     * [K,B], C = D = y^T as [N,B]; the bias is one value per row of D */
    BLAS_OK(cublasLtMatrixLayoutCreate(&k.lt_a, CUDA_R_32F, l.in, l.out, l.in));
    BLAS_OK(cublasLtMatrixLayoutCreate(&k.lt_b, CUDA_R_32F, l.in, batch, l.in));
    BLAS_OK(cublasLtMatrixLayoutCreate(&k.lt_c, CUDA_R_32F, l.out, batch, l.out));
    cublasLtMatmulPreference_t pref;
    BLAS_OK(cublasLtMatmulPreferenceCreate(&pref));
    size_t wsb = g_workspace_bytes;
    BLAS_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &wsb, sizeof wsb));
    cublasLtMatmulHeuristicResult_t heur{};
    int found = 0;
    BLAS_OK(cublasLtMatmulAlgoGetHeuristic(k.lt, k.lt_op, k.lt_a, k.lt_b, k.lt_c, k.lt_c, pref,
                                           1, &heur, &found));
    BLAS_OK(cublasLtMatmulPreferenceDestroy(pref));
    if (found == 0)
        die("cublasLtMatmulAlgoGetHeuristic", "no algorithm for the bias epilogue", __FILE__,
            __LINE__);
    k.lt_algo = heur.algo;
}

/* The GPU part of a thread's setup (under Shared::setup_lock: no other
 * thread allocates or frees while one captures a graph). Runs the op once
 * and returns its output. */
static std::vector<float> setup_gpu(Worker &k)
{
    Shared &sh = *k.sh;
    const Workload &w = *sh.w;
    CUDA_OK(cudaSetDevice(0));
    CUDA_OK(cudaStreamCreateWithFlags(&k.s, cudaStreamNonBlocking));
    if (w.mode == Mode::Empty) {
        empty_kernel<<<1, 1, 0, k.s>>>();
        CUDA_OK(cudaGetLastError());
        CUDA_OK(cudaStreamSynchronize(k.s));
        return {};
    }
    BLAS_OK(cublasCreate(&k.blas));
    BLAS_OK(cublasSetStream(k.blas, k.s)); /* resets the workspace: set it after */
    CUDA_OK(cudaMalloc(&k.ws, g_workspace_bytes));
    BLAS_OK(cublasSetWorkspace(k.blas, k.ws, g_workspace_bytes));
    if (w.in > 0 && !sh.shared_weights) {
        k.own = make_layers(w, k.index);
        upload_layers(k.own, k.s);
        k.layers = &k.own;
    } else {
        k.layers = &sh.shared;
    }
    const std::vector<Layer> &ls = *k.layers;
    int in0 = ls[0].in;
    k.hx.resize((size_t)w.batch * in0);
    fill(k.hx, (w.in > 0 ? 1 : 7) + (uint64_t)k.index, 1.0f);
    k.act.assign(ls.size() + 1, nullptr);
    CUDA_OK(cudaMalloc(&k.act[0], k.hx.size() * sizeof(float)));
    for (size_t i = 0; i < ls.size(); i++)
        CUDA_OK(cudaMalloc(&k.act[i + 1], (size_t)w.batch * ls[i].out * sizeof(float)));
    CUDA_OK(cudaMemcpyAsync(k.act[0], k.hx.data(), k.hx.size() * sizeof(float),
                            cudaMemcpyHostToDevice, k.s));
    if (w.mode == Mode::Lt)
        setup_lt(k);
    /* run it eagerly once (cuBLAS loads its kernels on first use, which must
     * not happen inside a capture) */
    if (w.mode == Mode::Lt)
        forward_lt(k);
    else
        forward_eager(k);
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaStreamSynchronize(k.s));
    size_t nout = (size_t)w.batch * ls.back().out;
    float *y = k.act.back();
    if (w.mode == Mode::Graph) {
        /* capture, then check what the graph computes, not the eager run */
        cudaGraph_t g;
        CUDA_OK(cudaStreamBeginCapture(k.s, cudaStreamCaptureModeThreadLocal));
        forward_eager(k);
        CUDA_OK(cudaStreamEndCapture(k.s, &g));
        CUDA_OK(cudaGraphInstantiate(&k.exec, g, 0));
        CUDA_OK(cudaGraphDestroy(g));
        CUDA_OK(cudaGraphUpload(k.exec, k.s));
        CUDA_OK(cudaMemsetAsync(y, 0xff, nout * sizeof(float), k.s)); /* NaNs */
        CUDA_OK(cudaGraphLaunch(k.exec, k.s));
    }
    std::vector<float> got(nout);
    CUDA_OK(cudaMemcpyAsync(got.data(), y, nout * sizeof(float), cudaMemcpyDeviceToHost, k.s));
    CUDA_OK(cudaStreamSynchronize(k.s));
    return got;
}

static void teardown(Worker &k)
{
    if (k.exec)
        CUDA_OK(cudaGraphExecDestroy(k.exec));
    if (k.lt) {
        BLAS_OK(cublasLtMatrixLayoutDestroy(k.lt_a));
        BLAS_OK(cublasLtMatrixLayoutDestroy(k.lt_b));
        BLAS_OK(cublasLtMatrixLayoutDestroy(k.lt_c));
        BLAS_OK(cublasLtMatmulDescDestroy(k.lt_op));
        BLAS_OK(cublasLtDestroy(k.lt));
        CUDA_OK(cudaFree(k.lt_ws));
    }
    for (float *p : k.act)
        CUDA_OK(cudaFree(p));
    free_layers(k.own);
    if (k.blas) {
        BLAS_OK(cublasDestroy(k.blas));
        CUDA_OK(cudaFree(k.ws));
    }
    CUDA_OK(cudaStreamDestroy(k.s));
}

/* The thread: set up and check, then one loop per phase (the warm-up, then
 * each window), each phase between two barriers:
 *   ready | decided | warm-up ... | end | start | window ... | end | ...   */
static void worker_main(Worker *wp, int windows)
{
    Worker &k = *wp;
    Shared &sh = *k.sh;
    std::vector<float> got;
    {
        std::lock_guard<std::mutex> g(sh.setup_lock);
        got = setup_gpu(k);
    }
    if (sh.w->mode != Mode::Empty) {
        double worst = 0;
        if (!check_forward(*k.layers, k.hx, sh.w->batch, got, &worst)) {
            fprintf(stderr, "cuda_floor: %s, thread %d: CHECK FAILED (worst error %.3g x the "
                            "tolerance)\n", sh.w->name, k.index, worst);
            sh.failed.store(1);
        }
    }
    pthread_barrier_wait(&sh.barrier); /* ready */
    pthread_barrier_wait(&sh.barrier); /* decided */
    if (!sh.quit.load()) {
        for (int phase = 0; phase <= windows; phase++) {
            if (phase > 0)
                pthread_barrier_wait(&sh.barrier); /* start */
            uint64_t n = 0;
            while (!sh.stop.load(std::memory_order_relaxed)) {
                op(k);
                n++;
            }
            CUDA_OK(cudaGetLastError()); /* a bad launch of the phase */
            k.count = n;
            pthread_barrier_wait(&sh.barrier); /* end */
        }
    }
    teardown(k);
}

/* ---- measurement -------------------------------------------------------------------- */

struct Options {
    std::vector<int> threads{1, 2, 4, 8, 16};
    std::vector<const Workload *> workloads;
    int windows = 5, window_ms = 300, warmup_ms = 200;
    const char *json = nullptr;
    const char *sched = "auto";
    int workspace_mb = 32;
    bool shared_weights = false;
};

struct Result {
    const Workload *w;
    int threads;
    double median, min, max, speedup, efficiency;
};

static double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/* One thread count of one workload; false if a check failed. */
static bool measure(Shared &sh, const Options &o, Result *r)
{
    std::vector<Worker> ws((size_t)sh.threads);
    sh.stop.store(false);
    sh.quit.store(false);
    sh.failed.store(0);
    pthread_barrier_init(&sh.barrier, nullptr, (unsigned)sh.threads + 1);
    for (int i = 0; i < sh.threads; i++) {
        ws[i].sh = &sh;
        ws[i].index = i;
        ws[i].thread = std::thread(worker_main, &ws[i], o.windows);
    }
    pthread_barrier_wait(&sh.barrier); /* ready: all set up and checked */
    bool ok = sh.failed.load() == 0;
    sh.quit.store(!ok);
    std::vector<double> rates;
    pthread_barrier_wait(&sh.barrier); /* decided: the warm-up starts */
    if (ok) {
        std::this_thread::sleep_for(std::chrono::milliseconds(o.warmup_ms));
        sh.stop.store(true);
        pthread_barrier_wait(&sh.barrier); /* end of the warm-up */
        for (int k = 0; k < o.windows; k++) {
            sh.stop.store(false);
            pthread_barrier_wait(&sh.barrier); /* start */
            double t0 = now_s();
            std::this_thread::sleep_for(std::chrono::milliseconds(o.window_ms));
            sh.stop.store(true);
            pthread_barrier_wait(&sh.barrier); /* end: every thread's last op is done */
            double t1 = now_s();
            uint64_t n = 0;
            for (Worker &k2 : ws)
                n += k2.count;
            rates.push_back((double)n / (t1 - t0));
        }
    }
    for (Worker &k : ws)
        k.thread.join();
    pthread_barrier_destroy(&sh.barrier);
    if (!ok)
        return false;
    std::sort(rates.begin(), rates.end());
    r->w = sh.w;
    r->threads = sh.threads;
    r->min = rates.front();
    r->max = rates.back();
    r->median = rates.size() % 2 ? rates[rates.size() / 2]
                                 : 0.5 * (rates[rates.size() / 2 - 1] + rates[rates.size() / 2]);
    return true;
}

/* ---- options, header, output ----------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cuda_floor [--threads 1,2,4,8,16] [--workloads a,b,...] [--windows N]\n"
            "                  [--window-ms N] [--warmup-ms N] [--json FILE]\n"
            "                  [--sched auto|spin|yield|blocking] [--workspace-mb N]\n"
            "                  [--shared-weights]\n"
            "The raw-CUDA reference of `fleet bench`: each thread owns a stream, a cuBLAS\n"
            "handle and workspace, and loops { op; synchronize }. Prints a Markdown table\n"
            "of ops/s (median window, min, max), speedup and efficiency.\n"
            "--sched sets cudaSetDeviceFlags(cudaDeviceSchedule*) (default: auto);\n"
            "--workspace-mb the cuBLAS/cuBLASLt workspace per thread (default 32);\n"
            "--shared-weights: one copy of a Linear's weights for all threads (the\n"
            "MLP's always are shared; by default each thread has its own Linear).\n"
            "workloads (default: all):\n");
    for (const Workload &w : kWorkloads)
        fprintf(f, "  %-17s %s\n", w.name, w.what);
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_threads(const char *s, Options &o)
{
    o.threads.clear();
    std::string str(s);
    size_t pos = 0;
    while (pos <= str.size()) {
        size_t comma = str.find(',', pos);
        std::string tok = str.substr(pos, comma == std::string::npos ? std::string::npos
                                                                     : comma - pos);
        int v;
        if (!parse_int(tok.c_str(), 1, 1024, &v))
            return false;
        o.threads.push_back(v);
        if (comma == std::string::npos)
            break;
        pos = comma + 1;
    }
    return !o.threads.empty();
}

static bool parse_workloads(const char *s, Options &o)
{
    o.workloads.clear();
    std::string str(s);
    size_t pos = 0;
    while (pos <= str.size()) {
        size_t comma = str.find(',', pos);
        std::string tok = str.substr(pos, comma == std::string::npos ? std::string::npos
                                                                     : comma - pos);
        const Workload *found = nullptr;
        for (const Workload &w : kWorkloads)
            if (tok == w.name)
                found = &w;
        if (found == nullptr) {
            fprintf(stderr, "cuda_floor: unknown workload '%s'\n", tok.c_str());
            return false;
        }
        o.workloads.push_back(found);
        if (comma == std::string::npos)
            break;
        pos = comma + 1;
    }
    return !o.workloads.empty();
}

/* 0 on success, 1 to exit 0 (--help), -1 on bad usage. */
static int parse_options(int argc, char **argv, Options &o)
{
    for (const Workload &w : kWorkloads)
        o.workloads.push_back(&w);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--shared-weights") == 0) {
            o.shared_weights = true;
            continue;
        }
        bool good = v != nullptr;
        if (!good)
            ;
        else if (strcmp(a, "--threads") == 0)
            good = parse_threads(v, o);
        else if (strcmp(a, "--workloads") == 0)
            good = parse_workloads(v, o);
        else if (strcmp(a, "--windows") == 0)
            good = parse_int(v, 1, 1000, &o.windows);
        else if (strcmp(a, "--window-ms") == 0)
            good = parse_int(v, 1, 600000, &o.window_ms);
        else if (strcmp(a, "--warmup-ms") == 0)
            good = parse_int(v, 0, 600000, &o.warmup_ms);
        else if (strcmp(a, "--json") == 0)
            o.json = v;
        else if (strcmp(a, "--workspace-mb") == 0)
            good = parse_int(v, 0, 1024, &o.workspace_mb);
        else if (strcmp(a, "--sched") == 0) {
            good = strcmp(v, "auto") == 0 || strcmp(v, "spin") == 0 ||
                   strcmp(v, "yield") == 0 || strcmp(v, "blocking") == 0;
            o.sched = v;
        }
        else
            good = false;
        if (!good) {
            fprintf(stderr, "cuda_floor: bad option %s %s\n", a, v ? v : "");
            usage(stderr);
            return -1;
        }
        i++;
    }
    return 0;
}

/* The driver's version as nvidia-smi shows it (580.x), or "" if unknown. */
static std::string driver_version()
{
    char line[512];
    std::string v;
    if (FILE *f = fopen("/proc/driver/nvidia/version", "r")) {
        /* "NVRM version: NVIDIA UNIX [Open ]Kernel Module [for x86_64]  580.159.04 ..."
         * : the first token of digits and dots with a dot in it */
        if (fgets(line, sizeof line, f) != nullptr) {
            char *save = nullptr;
            for (char *t = strtok_r(line, " \t\n", &save); t && v.empty();
                 t = strtok_r(nullptr, " \t\n", &save))
                if (isdigit((unsigned char)t[0]) && strchr(t, '.') &&
                    strspn(t, "0123456789.") == strlen(t))
                    v = t;
        }
        fclose(f);
    }
    if (v.empty()) {
        if (FILE *p = popen("nvidia-smi --query-gpu=driver_version --format=csv,noheader "
                            "2>/dev/null", "r")) {
            if (fgets(line, sizeof line, p) != nullptr) {
                v = line;
                while (!v.empty() && (v.back() == '\n' || v.back() == ' '))
                    v.pop_back();
            }
            pclose(p);
        }
    }
    return v;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
    fputc('"', f);
}

int main(int argc, char **argv)
{
    Options o;
    int pr = parse_options(argc, argv, o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;

    int devices = 0;
    cudaError_t e = cudaGetDeviceCount(&devices);
    if (e != cudaSuccess || devices == 0) {
        fprintf(stderr, "cuda_floor: no CUDA device (%s)\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 77;
    }
    unsigned flags = strcmp(o.sched, "spin") == 0       ? cudaDeviceScheduleSpin
                     : strcmp(o.sched, "yield") == 0    ? cudaDeviceScheduleYield
                     : strcmp(o.sched, "blocking") == 0 ? cudaDeviceScheduleBlockingSync
                                                        : cudaDeviceScheduleAuto;
    CUDA_OK(cudaSetDeviceFlags(flags));
    g_workspace_bytes = (size_t)o.workspace_mb << 20;
    CUDA_OK(cudaSetDevice(0));
    cudaDeviceProp prop;
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    int drv = 0, rt = 0, blas_ver = 0;
    CUDA_OK(cudaDriverGetVersion(&drv));
    CUDA_OK(cudaRuntimeGetVersion(&rt));
    {
        cublasHandle_t h;
        BLAS_OK(cublasCreate(&h));
        BLAS_OK(cublasGetVersion(h, &blas_ver));
        BLAS_OK(cublasDestroy(h));
    }
    std::string dv = driver_version();
    char today[32];
    time_t now = time(nullptr);
    strftime(today, sizeof today, "%Y-%m-%d", gmtime(&now));
    const char *conns = getenv("CUDA_DEVICE_MAX_CONNECTIONS");

    printf("raw-cuda (bench/cuda_floor) on %s, driver %s (CUDA %d.%d), runtime %d.%d, "
           "cuBLAS %d.%d.%d, %s; sched %s, workspace %d MiB/thread, %s weights%s%s; median of %d windows of %d ms after %d ms "
           "warm-up\n\n",
           prop.name, dv.empty() ? "?" : dv.c_str(), drv / 1000, drv % 1000 / 10, rt / 1000,
           rt % 1000 / 10, blas_ver / 10000, blas_ver / 100 % 100, blas_ver % 100, today,
           o.sched, o.workspace_mb, o.shared_weights ? "shared" : "per-thread Linear",
           conns ? ", CUDA_DEVICE_MAX_CONNECTIONS=" : "", conns ? conns : "",
           o.windows, o.window_ms, o.warmup_ms);
    printf("| workload | threads | ops/s | min | max | speedup | efficiency |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n");
    fflush(stdout);

    std::vector<Result> all;
    int rc = 0;
    for (const Workload *w : o.workloads) {
        Shared sh;
        sh.w = w;
        cudaStream_t s0;
        sh.shared_weights = o.shared_weights;
        if (w->mode != Mode::Empty && (w->in == 0 || o.shared_weights)) { /* one set */
            CUDA_OK(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking));
            sh.shared = make_layers(*w, 0);
            upload_layers(sh.shared, s0);
            CUDA_OK(cudaStreamDestroy(s0));
        }
        std::vector<Result> rs;
        for (int t : o.threads) {
            sh.threads = t;
            fprintf(stderr, "cuda_floor: %s, %d thread%s...\n", w->name, t, t > 1 ? "s" : "");
            Result r;
            if (!measure(sh, o, &r)) {
                fprintf(stderr, "cuda_floor: %s: the result check failed, not timed\n",
                        w->name);
                rc = 1;
                break;
            }
            const Result &base = rs.empty() ? r : rs.front();
            r.speedup = r.median / base.median;
            r.efficiency = r.speedup * base.threads / r.threads;
            printf("| %s | %d | %.0f | %.0f | %.0f | %.2f | %.2f |\n", w->name, r.threads,
                   r.median, r.min, r.max, r.speedup, r.efficiency);
            fflush(stdout);
            rs.push_back(r);
        }
        free_layers(sh.shared);
        all.insert(all.end(), rs.begin(), rs.end());
    }

    if (o.json != nullptr) {
        FILE *f = fopen(o.json, "w");
        if (f == nullptr) {
            fprintf(stderr, "cuda_floor: cannot write %s: %s\n", o.json, strerror(errno));
            return 1;
        }
        fprintf(f, "[\n");
        for (size_t i = 0; i < all.size(); i++) {
            const Result &r = all[i];
            fprintf(f, "  {\"program\": \"raw-cuda\", \"workload\": \"%s\", \"threads\": %d, "
                       "\"ops_per_s\": %.0f, \"min\": %.0f, \"max\": %.0f, "
                       "\"speedup\": %.4f, \"efficiency\": %.4f, \"card\": ",
                    r.w->name, r.threads, r.median, r.min, r.max, r.speedup, r.efficiency);
            json_string(f, prop.name);
            fprintf(f, "}%s\n", i + 1 < all.size() ? "," : "");
        }
        fprintf(f, "]\n");
        fclose(f);
    }
    return rc;
}
