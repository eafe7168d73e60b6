/* tests/test_util.h — small helpers shared by the thread tests (header-only).
 *
 *     test_run_threads(n, worker, args, sizeof args[0]);   // start n, join n
 *     test_gate g; test_gate_init(&g);
 *     fleet_stream_launch_host_func(s, test_gate_wait, &g); // s is busy ...
 *     test_gate_open(&g);                                   // ... until now
 *
 *     test_proc_result r;                                   // a child process:
 *     test_proc_fork(child_fn, arg, 60000, &r);             // fork (or test_proc_spawn)
 *     ASSERT_PROC_OK(&r); ASSERT_OUT_CONTAINS(&r, "ok");    // exit 0 in time + output
 *
 * Everything here fails the test through the harness (ASSERT_*) rather than
 * returning errors, so it may be called from any thread.
 */
#ifndef FLEET_TEST_UTIL_H
#define FLEET_TEST_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "harness.h"
#include "ref/ref.h"

/* ---- time ------------------------------------------------------------------ */

static inline double test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- threads ---------------------------------------------------------------- */

/* Start n threads running fn(args + i * arg_size) and join them all. */
static inline void test_run_threads(int n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    ASSERT_TRUE(t != NULL);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * arg_size), 0);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    free(t);
}

/* ---- gate: a one-shot latch; as a host function it blocks a stream --------- */

typedef struct test_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    atomic_int entered; /* host functions that reached the gate */
} test_gate;

static inline void test_gate_init(test_gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
    atomic_init(&g->entered, 0);
}

/* fleet_host_fn: wait until the gate opens. */
static inline void test_gate_wait(void *arg)
{
    test_gate *g = arg;
    atomic_fetch_add(&g->entered, 1);
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static inline void test_gate_open(test_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static inline void test_gate_destroy(test_gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* fleet_host_fn: atomically increment the atomic_int at arg. */
/* The device for checks that block a stream behind a host-function gate
 * while other streams must make progress. On cpu every stream's host
 * functions run on that stream's own worker; CUDA may run all host functions
 * of a device on one callback thread, so one blocked gate would stall the
 * others. Those checks run on cpu; tests/cuda_backend.c checks the same
 * orderings on the GPU with kernels instead of gates. */
static inline fleet_device *test_gate_device(void)
{
    fleet_device *d = NULL;
    if (fleet_device_get(FLEET_BACKEND_CPU, 0, &d) != FLEET_OK) {
        fprintf(stderr, "test_gate_device: %s\n", fleet_last_error());
        abort();
    }
    return d;
}

static inline void test_count_host_fn(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* ---- errors ----------------------------------------------------------------- */

/* ||got - want|| / ||want|| (||got|| where want is all zero), for a float or
 * a double reference: test_normwise_error(got, want, n). */
#define TEST_NORMWISE_ERROR_DEFINE_(name, T)                                             \
    static inline double name(const float *got, const T *want, int64_t n)               \
    {                                                                                    \
        double num = 0, den = 0;                                                         \
        for (int64_t i = 0; i < n; i++) {                                                \
            double d = (double)got[i] - (double)want[i];                                 \
            num += d * d;                                                                \
            den += (double)want[i] * (double)want[i];                                    \
        }                                                                                \
        return den > 0 ? sqrt(num / den) : sqrt(num);                                    \
    }
TEST_NORMWISE_ERROR_DEFINE_(test_normwise_error_f32_, float)
TEST_NORMWISE_ERROR_DEFINE_(test_normwise_error_f64_, double)
#define test_normwise_error(got, want, n)                                                \
    _Generic((want), float *: test_normwise_error_f32_, const float *: test_normwise_error_f32_, \
             double *: test_normwise_error_f64_, const double *: test_normwise_error_f64_)(  \
        (got), (want), (n))

/* ---- devices ---------------------------------------------------------------- */

/* cpu device `index` (FLEET_CPU_DEVICES says how many there are). */
static inline fleet_device *test_cpu_device(int index)
{
    fleet_device *d = NULL;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, index, &d));
    return d;
}

/* cpu 0 and, where a GPU is present, cuda 0: how many (1 or 2) in devs. */
static inline int test_devices(fleet_device *devs[2])
{
    int n = 0, ncuda = 0;
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &devs[n++]));
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &ncuda));
    if (ncuda > 0)
        ASSERT_OK(fleet_device_get(FLEET_BACKEND_CUDA, 0, &devs[n++]));
    return n;
}

/* The default device: cuda 0 where a GPU is present, else cpu 0. */
static inline fleet_device *test_default_device(void)
{
    fleet_device *d = NULL;
    ASSERT_OK(fleet_device_default(&d));
    return d;
}

/* ---- tensors ---------------------------------------------------------------- */

static inline fleet_tensor *test_tensor_new(fleet_device *dev, int ndim, const int64_t *shape)
{
    fleet_tensor *t = NULL;
    ASSERT_OK(fleet_tensor_create(dev, FLEET_DTYPE_F32, ndim, shape, &t));
    return t;
}

/* A f32 tensor of the dims written out: TEST_TENSOR(dev, 3, 4) is 3x4. */
#define TEST_TENSOR(dev, ...)                                                            \
    test_tensor_new((dev), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),   \
                    (int64_t[]){__VA_ARGS__})

static inline fleet_tensor *test_tensor_2d(fleet_device *dev, int64_t rows, int64_t cols,
                                           const float *host)
{
    int64_t shape[2] = {rows, cols};
    fleet_tensor *t = test_tensor_new(dev, 2, shape);
    if (host)
        ASSERT_OK(fleet_tensor_copy_from_host(t, host, (size_t)(rows * cols) * sizeof(float)));
    return t;
}

static inline void test_tensor_read(const fleet_tensor *t, float *dst)
{
    ASSERT_OK(fleet_tensor_copy_to_host(t, dst, fleet_tensor_nbytes(t)));
}

/* Fill a f32 tensor with a sentinel, to check later (test_assert_sentinel)
 * that a refused call left it alone. */
static inline fleet_tensor *test_fill_sentinel(fleet_tensor *t)
{
    int64_t n = fleet_tensor_numel(t);
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++)
        p[i] = 42.0f;
    ASSERT_OK(fleet_tensor_copy_from_host(t, p, fleet_tensor_nbytes(t)));
    free(p);
    return t;
}

static inline void test_assert_sentinel(fleet_tensor *t)
{
    int64_t n = fleet_tensor_numel(t);
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    test_tensor_read(t, p);
    for (int64_t i = 0; i < n; i++)
        ASSERT_TRUE(p[i] == 42.0f);
    free(p);
}

/* Release every tensor named (asserting each release succeeds). */
#define TEST_RELEASE(...)                                                                \
    do {                                                                                 \
        fleet_tensor *rel_[] = {__VA_ARGS__};                                            \
        for (size_t i_ = 0; i_ < sizeof rel_ / sizeof rel_[0]; i_++)                     \
            ASSERT_OK(fleet_tensor_release(rel_[i_]));                                   \
    } while (0)

static inline int test_current_stream_id(fleet_device *dev)
{
    fleet_stream *s = NULL;
    ASSERT_OK(fleet_stream_current(dev, &s));
    return fleet_stream_id(s);
}

/* Tolerance for a K-long float dot product against the double reference. */
#define TEST_MATMUL_RTOL 1e-5
static inline double test_matmul_atol(int64_t k)
{
    return 1e-5 * sqrt((double)k);
}

/* One checked matmul on the calling thread: random a[m,k] and b[k,n] from
 * seed, out = a @ b through fleet, compared with ref_matmul. Returns
 * the stream id it ran on. */
static inline int test_matmul_check(fleet_device *dev, int64_t m, int64_t k, int64_t n,
                                    uint64_t seed)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k));
    float *b = malloc(sizeof(float) * (size_t)(k * n));
    float *got = malloc(sizeof(float) * (size_t)(m * n));
    float *want = malloc(sizeof(float) * (size_t)(m * n));
    ASSERT_TRUE(a && b && got && want);
    test_rng r = test_rng_make(seed);
    test_fill_random(a, m * k, &r);
    test_fill_random(b, k * n, &r);
    ref_matmul(a, b, NULL, want, m, k, n);
    fleet_tensor *ta = test_tensor_2d(dev, m, k, a);
    fleet_tensor *tb = test_tensor_2d(dev, k, n, b);
    fleet_tensor *tc = test_tensor_2d(dev, m, n, NULL);
    ASSERT_OK(fleet_matmul(ta, tb, tc));
    test_tensor_read(tc, got);
    ASSERT_CLOSE(got, want, m * n, TEST_MATMUL_RTOL, test_matmul_atol(k));
    ASSERT_OK(fleet_tensor_release(ta));
    ASSERT_OK(fleet_tensor_release(tb));
    ASSERT_OK(fleet_tensor_release(tc));
    free(a);
    free(b);
    free(got);
    free(want);
    return test_current_stream_id(dev);
}

/* ---- stream pool ------------------------------------------------------------ */

static inline fleet_stream_pool_stats test_pool_stats(fleet_device *dev)
{
    fleet_stream_pool_stats st;
    memset(&st, 0, sizeof st);
    ASSERT_OK(fleet_stream_pool_get_stats(dev, &st));
    return st;
}

/* A thread that binds to a pool stream and holds it until released:
 *     test_holder h; test_holder_start(&h, dev);   // returns once bound
 *     ... h.id ...;  test_holder_stop(&h);         // thread exits, slot freed */
typedef struct test_holder {
    fleet_device *dev;
    pthread_t thread;
    int id;
    atomic_int bound;
    test_gate release;
} test_holder;

static inline void *test_holder_main_(void *arg)
{
    test_holder *h = arg;
    h->id = test_current_stream_id(h->dev);
    atomic_store(&h->bound, 1);
    test_gate_wait(&h->release);
    return NULL;
}

static inline void test_holder_start(test_holder *h, fleet_device *dev)
{
    h->dev = dev;
    h->id = -1;
    atomic_init(&h->bound, 0);
    test_gate_init(&h->release);
    ASSERT_EQ(pthread_create(&h->thread, NULL, test_holder_main_, h), 0);
    double t0 = test_now_ms();
    while (!atomic_load(&h->bound)) {
        ASSERT_TRUE(test_now_ms() - t0 < 10000);
        test_sleep_ms(1);
    }
}

static inline void test_holder_stop(test_holder *h)
{
    test_gate_open(&h->release);
    ASSERT_EQ(pthread_join(h->thread, NULL), 0);
    test_gate_destroy(&h->release);
}


/* ---- subprocesses (fork_*, static_*, config tests) -------------------------- */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

/* Wait up to timeout_ms for pid; on timeout kill it (SIGKILL), reap it and
 * return -1; else store the wait status and return 0. */
static inline int test_proc_wait(pid_t pid, double timeout_ms, int *status)
{
    double t0 = test_now_ms();
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (test_now_ms() - t0 > timeout_ms) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        test_sleep_ms(2);
    }
}

/* Read fd until EOF or the deadline (test_now_ms() value) into buf (NUL
 * terminated, truncated at cap - 1). Returns 0 at EOF, -1 at the deadline. */
static inline int test_proc_read_all(int fd, char *buf, size_t cap, double deadline_ms)
{
    size_t len = 0;
    buf[0] = 0;
    for (;;) {
        double left = deadline_ms - test_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        size_t take = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(buf + len, tmp, take);
        len += take;
        buf[len] = 0;
    }
}

/* A child's result: how it ended and what it wrote. */
typedef struct test_proc_result {
    int timed_out;  /* killed after the timeout                         */
    int exited;     /* WIFEXITED                                        */
    int code;       /* WEXITSTATUS, or the signal number when signalled */
    char out[16384];
} test_proc_result;

static inline void test_proc_finish_(pid_t pid, int fd, double timeout_ms, test_proc_result *r)
{
    double deadline = test_now_ms() + timeout_ms;
    int eof = test_proc_read_all(fd, r->out, sizeof r->out, deadline) == 0;
    close(fd);
    double left = deadline - test_now_ms();
    int status = 0;
    int waited = test_proc_wait(pid, eof ? (left > 0 ? left : 1) : 0, &status);
    r->timed_out = waited != 0 || !eof;
    r->exited = WIFEXITED(status);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

/* posix_spawn argv[0] with argv (environment inherited, plus the optional
 * NULL-terminated "NAME=value" list extra_env), stdout and stderr captured
 * in r->out; kill after timeout_ms. */
static inline void test_proc_spawn(char *const argv[], char *const extra_env[], double timeout_ms,
                                   test_proc_result *r)
{
    memset(r, 0, sizeof *r);
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    char *envp[512];
    int ne = 0;
    for (char **e = environ; *e && ne < 400; e++)
        envp[ne++] = *e;
    for (int i = 0; extra_env && extra_env[i] && ne < 511; i++)
        envp[ne++] = extra_env[i];
    envp[ne] = NULL;
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    ASSERT_EQ(rc, 0);
    test_proc_finish_(pid, fds[0], timeout_ms, r);
}

/* fork; the child runs fn(arg, fd) with fd the write end of a pipe whose
 * contents land in r->out, under alarm(timeout) as a backstop, and exits
 * with fn's return value. The parent waits up to timeout_ms (then kills). */
static inline void test_proc_fork(int (*fn)(void *arg, int fd), void *arg, double timeout_ms,
                                  test_proc_result *r)
{
    memset(r, 0, sizeof *r);
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm((unsigned)(timeout_ms / 1000) + 1);
        int code = fn(arg, fds[1]);
        close(fds[1]);
        _exit(code);
    }
    close(fds[1]);
    test_proc_finish_(pid, fds[0], timeout_ms, r);
}

/* Fail unless the child exited 0 in time; show its output otherwise. */
#define ASSERT_PROC_OK(r)                                                                \
    do {                                                                                 \
        const test_proc_result *pr_ = (r);                                               \
        if (pr_->timed_out || !pr_->exited || pr_->code != 0) {                          \
            char m_[1024];                                                               \
            snprintf(m_, sizeof m_, "child %s %d; its output:\n%.700s",                  \
                     pr_->timed_out ? "hung (killed), status" :                          \
                     pr_->exited ? "exited with" : "killed by signal", pr_->code, pr_->out); \
            test_fail_(__FILE__, __LINE__, m_);                                          \
        }                                                                                \
    } while (0)

/* Fail unless the child's output contains needle (shows the output). */
static inline void test_proc_expect_(const char *file, int line, const test_proc_result *r,
                                     const char *needle)
{
    if (strstr(r->out, needle) == NULL) {
        char m[1024];
        snprintf(m, sizeof m, "child output lacks \"%.100s\"; it was:\n%.800s", needle, r->out);
        test_fail_(file, line, m);
    }
}
#define ASSERT_OUT_CONTAINS(r, needle) test_proc_expect_(__FILE__, __LINE__, (r), (needle))

/* Run fn(args + i * arg_size) on n detached threads and wait until all
 * returned. For fork children: a joined (or detached) thread there may have
 * the pthread_t of one of the parent's threads, which ThreadSanitizer still
 * counts as alive and reports as "dup thread with used id". */
typedef struct test_detached_ {
    void *(*fn)(void *);
    void *arg;
    atomic_int *done;
} test_detached_;

static inline void *test_detached_main_(void *p)
{
    test_detached_ d = *(test_detached_ *)p;
    free(p);
    d.fn(d.arg);
    atomic_fetch_add(d.done, 1);
    return NULL;
}

static inline void test_run_threads_detached(int n, void *(*fn)(void *), void *args,
                                             size_t arg_size)
{
    atomic_int done;
    atomic_init(&done, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < n; i++) {
        test_detached_ *d = malloc(sizeof *d);
        ASSERT_TRUE(d != NULL);
        *d = (test_detached_){fn, (char *)args + (size_t)i * arg_size, &done};
        pthread_t t;
        ASSERT_EQ(pthread_create(&t, &attr, test_detached_main_, d), 0);
    }
    pthread_attr_destroy(&attr);
    double t0 = test_now_ms();
    while (atomic_load(&done) < n) {
        ASSERT_TRUE(test_now_ms() - t0 < 60000);
        test_sleep_ms(1);
    }
}

/* ---- exactly representable data --------------------------------------------- */

/* Values in {-0.75, ..., 0.75} (multiples of 1/4): a matmul of such inputs
 * with k <= 1024 is exact in float whatever the summation order, so a child
 * process and its parent can compare results bit for bit. */
static inline void test_fill_exact(float *p, int64_t n, uint32_t salt)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((int)(((uint32_t)i * 2654435761u + salt * 40503u) >> 16) % 7 - 3) * 0.25f;
}

/* ---- busy workers: threads that run checked ops until told to stop ---------- */

/* Each iteration: out = relu(a @ b + bias) into a fresh tensor, read back and
 * compared with the reference every `check_every` iterations (the others stay
 * queued on the stream). */
typedef struct test_busy {
    fleet_device *dev;
    int check_every;
    atomic_int *stop;
    uint64_t seed;
    atomic_long iterations;
    atomic_long checked;
    pthread_t thread;
} test_busy;

#define TEST_BUSY_M 32
#define TEST_BUSY_K 48
#define TEST_BUSY_N 24

static inline void *test_busy_main_(void *arg)
{
    test_busy *w = arg;
    enum { M = TEST_BUSY_M, K = TEST_BUSY_K, N = TEST_BUSY_N };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *bias = malloc(sizeof(float) * N), *want = malloc(sizeof(float) * M * N);
    float *got = malloc(sizeof(float) * M * N);
    ASSERT_TRUE(a && b && bias && want && got);
    test_rng r = test_rng_make(w->seed);
    test_fill_random(a, M * K, &r);
    test_fill_random(b, K * N, &r);
    test_fill_random(bias, N, &r);
    ref_matmul(a, b, NULL, want, M, K, N);
    for (int i = 0; i < M * N; i++) {
        float v = want[i] + bias[i % N];
        want[i] = v > 0 ? v : 0;
    }
    fleet_tensor *ta = test_tensor_2d(w->dev, M, K, a);
    fleet_tensor *tb = test_tensor_2d(w->dev, K, N, b);
    int64_t bshape[1] = {N};
    fleet_tensor *tbias = test_tensor_new(w->dev, 1, bshape);
    ASSERT_OK(fleet_tensor_copy_from_host(tbias, bias, sizeof(float) * N));
    for (long it = 0; !atomic_load(w->stop); it++) {
        fleet_tensor *out = test_tensor_2d(w->dev, M, N, NULL);
        ASSERT_OK(fleet_matmul(ta, tb, out));
        ASSERT_OK(fleet_add(out, tbias, out));
        ASSERT_OK(fleet_relu(out, out));
        if (it % w->check_every == 0) {
            memset(got, 0, sizeof(float) * M * N);
            test_tensor_read(out, got);
            ASSERT_CLOSE(got, want, M * N, TEST_MATMUL_RTOL, test_matmul_atol(K) + 1e-6);
            atomic_fetch_add(&w->checked, 1);
        }
        ASSERT_OK(fleet_tensor_release(out));
        atomic_fetch_add(&w->iterations, 1);
    }
    fleet_tensor_release(ta);
    fleet_tensor_release(tb);
    fleet_tensor_release(tbias);
    free(a), free(b), free(bias), free(want), free(got);
    return NULL;
}

static inline void test_busy_start(test_busy *w, fleet_device *dev, atomic_int *stop,
                                   uint64_t seed, int check_every)
{
    w->dev = dev;
    w->stop = stop;
    w->seed = seed;
    w->check_every = check_every < 1 ? 1 : check_every;
    atomic_init(&w->iterations, 0);
    atomic_init(&w->checked, 0);
    ASSERT_EQ(pthread_create(&w->thread, NULL, test_busy_main_, w), 0);
}

/* Wait until every worker has done at least `more` iterations beyond what
 * `since[i]` says (NULL: beyond 0); fail after timeout_ms. */
static inline void test_busy_wait_progress(test_busy *w, int n, const long *since, long more,
                                           double timeout_ms)
{
    double t0 = test_now_ms();
    for (int i = 0; i < n; i++)
        while (atomic_load(&w[i].iterations) < (since ? since[i] : 0) + more) {
            if (test_now_ms() - t0 > timeout_ms) {
                char m[128];
                snprintf(m, sizeof m, "busy worker %d made no progress in %.0f ms", i, timeout_ms);
                test_fail_(__FILE__, __LINE__, m);
            }
            test_sleep_ms(1);
        }
}

static inline void test_busy_join(test_busy *w, int n)
{
    for (int i = 0; i < n; i++)
        ASSERT_EQ(pthread_join(w[i].thread, NULL), 0);
}

#endif /* FLEET_TEST_UTIL_H */
