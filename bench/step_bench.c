/* bench/step_bench.c — host time of a model step: what fleet_model_run costs
 * the calling thread per step of the plan, for models whose kernels are
 * tiny (so the host work is what is left), next to the same ops called one
 * by one through the public API.
 *
 * Cases, one thread on the default device (or the one named):
 *   mlp16     MLP of 16 Linear+ReLU layers 8 -> 8, batch 1: 16 steps (each
 *             ReLU fused into its Linear's GEMM)
 *   eager16   the same 16 layers as fleet_linear + fleet_relu calls: 32 ops
 *   encoder   encoder block seq 4, d_model 8, 2 heads, ff 16, batch 1
 * "host" is the time spent inside the run call (the stream works at the same
 * time and is waited for outside the timing); "run" includes that wait. The
 * table gives medians over the windows. A benchmark: it asserts nothing
 * about time, but it does check the MLP's output against the eager ops'.
 *
 *     bench_step [windows] [runs_per_window] [cpu|cuda]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"

#define LAYERS 16
#define WIDTH 8
#define MAX_WINDOWS 64

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_step: %s: %s\n", what, fleet_last_error());
    exit(1);
}
#define CHECK(call)                                                                        \
    do {                                                                                   \
        if ((call) != FLEET_OK)                                                            \
            die(#call);                                                                    \
    } while (0)

static void fill(float *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = ((float)(seed >> 8) / (float)(1u << 24) - 0.5f) * 0.7f;
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static fleet_tensor *tensor(fleet_device *dev, int ndim, const int64_t *shape, const float *data)
{
    fleet_tensor *t;
    CHECK(fleet_tensor_create(dev, FLEET_DTYPE_F32, ndim, shape, &t));
    if (data != NULL)
        CHECK(fleet_tensor_copy_from_host(t, data, fleet_tensor_nbytes(t)));
    return t;
}

/* Set every weight of m from a seeded fill, by its declared size. */
static void set_weights(fleet_model *m, const char *const *names, const size_t *counts, int n)
{
    for (int i = 0; i < n; i++) {
        float *w = malloc(sizeof(float) * counts[i]);
        fill(w, counts[i], 17u + (unsigned)i);
        CHECK(fleet_model_set_weight(m, names[i], w, sizeof(float) * counts[i]));
        free(w);
    }
}

typedef struct bench_case {
    const char *name, *what;
    int steps; /* per run (0: not counted) */
    fleet_model *model;
    fleet_tensor *x, *y;
    /* eager16 */
    fleet_tensor *w[LAYERS], *b[LAYERS], *h[LAYERS];
} bench_case;

static void run_once(const bench_case *c)
{
    if (c->model != NULL) {
        const fleet_tensor *in[1] = {c->x};
        fleet_tensor *out[1] = {c->y};
        CHECK(fleet_model_run(c->model, in, 1, out, 1));
        return;
    }
    const fleet_tensor *cur = c->x;
    for (int l = 0; l < LAYERS; l++) {
        CHECK(fleet_linear(cur, c->w[l], c->b[l], c->h[l]));
        if (l + 1 < LAYERS)
            CHECK(fleet_relu(c->h[l], c->h[l]));
        cur = c->h[l];
    }
}

int main(int argc, char **argv)
{
    int windows = argc > 1 ? atoi(argv[1]) : 7;
    int runs = argc > 2 ? atoi(argv[2]) : 2000;
    if (windows < 1 || windows > MAX_WINDOWS || runs < 1) {
        fprintf(stderr, "usage: bench_step [windows 1..%d] [runs_per_window] [cpu|cuda]\n",
                MAX_WINDOWS);
        return 2;
    }
    CHECK(fleet_init());
    fleet_device *dev;
    if (argc > 3)
        CHECK(fleet_device_get(strcmp(argv[3], "cuda") == 0 ? FLEET_BACKEND_CUDA
                                                            : FLEET_BACKEND_CPU, 0, &dev));
    else
        CHECK(fleet_device_default(&dev));
    fleet_stream *s;
    CHECK(fleet_stream_current(dev, &s));

    static bench_case cases[3] = {
        {.name = "mlp16", .what = "MLP, 16 x Linear+ReLU 8->8, batch 1 (model runtime)",
         .steps = LAYERS},
        {.name = "eager16", .what = "the same layers as fleet_linear + fleet_relu calls",
         .steps = 2 * LAYERS - 1},
        {.name = "encoder",
         .what = "encoder block seq 4, d 8, 2 heads, ff 16, batch 1 (model runtime)"},
    };
    int64_t xs[2] = {1, WIDTH}, ys[2] = {1, WIDTH};
    float xh[WIDTH * 4];
    fill(xh, WIDTH * 4, 3u);

    /* mlp16 */
    int64_t widths[LAYERS + 1];
    for (int i = 0; i <= LAYERS; i++)
        widths[i] = WIDTH;
    CHECK(fleet_model_build_mlp(dev, widths, LAYERS + 1, &cases[0].model));
    char names[2 * LAYERS][32];
    const char *np[2 * LAYERS];
    size_t counts[2 * LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        snprintf(names[2 * l], sizeof names[0], "layers.%d.weight", l);
        snprintf(names[2 * l + 1], sizeof names[0], "layers.%d.bias", l);
        np[2 * l] = names[2 * l];
        np[2 * l + 1] = names[2 * l + 1];
        counts[2 * l] = WIDTH * WIDTH;
        counts[2 * l + 1] = WIDTH;
    }
    set_weights(cases[0].model, np, counts, 2 * LAYERS);
    CHECK(fleet_model_finalize(cases[0].model));
    cases[0].x = tensor(dev, 2, xs, xh);
    cases[0].y = tensor(dev, 2, ys, NULL);

    /* eager16: the same weights */
    cases[1].x = cases[0].x;
    for (int l = 0; l < LAYERS; l++) {
        float w[WIDTH * WIDTH], b[WIDTH];
        fill(w, WIDTH * WIDTH, 17u + 2u * (unsigned)l);
        fill(b, WIDTH, 17u + 2u * (unsigned)l + 1u);
        int64_t ws[2] = {WIDTH, WIDTH}, bs[1] = {WIDTH};
        cases[1].w[l] = tensor(dev, 2, ws, w);
        cases[1].b[l] = tensor(dev, 1, bs, b);
        cases[1].h[l] = tensor(dev, 2, ys, NULL);
    }

    /* encoder */
    CHECK(fleet_model_build_encoder_block(dev, 4, WIDTH, 2, 16, &cases[2].model));
    static const char *const enc_names[] = {
        "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
        "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
        "self_attn.out_proj.weight", "self_attn.out_proj.bias", "linear1.weight", "linear1.bias",
        "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight",
        "norm2.bias"};
    const size_t enc_counts[] = {64, 8, 64, 8, 64, 8, 64, 8, 128, 16, 128, 8, 8, 8, 8, 8};
    set_weights(cases[2].model, enc_names, enc_counts, 16);
    CHECK(fleet_model_finalize(cases[2].model));
    int64_t es[3] = {1, 4, WIDTH};
    cases[2].x = tensor(dev, 3, es, xh);
    cases[2].y = tensor(dev, 3, es, NULL);

    /* The model's MLP and the eager layers agree. */
    run_once(&cases[0]);
    run_once(&cases[1]);
    CHECK(fleet_stream_synchronize(s));
    float a[WIDTH], e[WIDTH];
    CHECK(fleet_tensor_copy_to_host(cases[0].y, a, sizeof a));
    CHECK(fleet_tensor_copy_to_host(cases[1].h[LAYERS - 1], e, sizeof e));
    for (int i = 0; i < WIDTH; i++)
        if (fabsf(a[i] - e[i]) > 1e-5f * (1.0f + fabsf(e[i]))) {
            fprintf(stderr, "bench_step: the model's MLP gives %g at %d, the ops %g\n", a[i], i,
                    e[i]);
            return 1;
        }

    printf("bench_step on %s: median of %d windows of %d runs, one thread\n\n",
           fleet_device_name(dev), windows, runs);
    printf("| case | host µs/run | host µs/step | run µs (with wait) | what |\n"
           "|---|---:|---:|---:|---|\n");
    for (int k = 0; k < 3; k++) {
        const bench_case *c = &cases[k];
        for (int i = 0; i < runs / 4 + 1; i++) /* warm-up: plans, instances, caches */
            run_once(c);
        CHECK(fleet_stream_synchronize(s));
        double host[MAX_WINDOWS] = {0}, total[MAX_WINDOWS] = {0};
        for (int w = 0; w < windows; w++) {
            double in_call = 0, t0 = now_ns();
            for (int i = 0; i < runs; i++) {
                double a0 = now_ns();
                run_once(c);
                in_call += now_ns() - a0;
                CHECK(fleet_stream_synchronize(s));
            }
            total[w] = (now_ns() - t0) / runs / 1e3;
            host[w] = in_call / runs / 1e3;
        }
        qsort(host, (size_t)windows, sizeof host[0], cmp);
        qsort(total, (size_t)windows, sizeof total[0], cmp);
        double h = host[windows / 2];
        char per_step[32] = "-";
        if (c->steps > 0)
            snprintf(per_step, sizeof per_step, "%.2f", h / c->steps);
        printf("| %s | %.2f | %s | %.2f | %s |\n", c->name, h, per_step, total[windows / 2],
               c->what);
    }

    fleet_tensor_release(cases[0].x);
    fleet_tensor_release(cases[0].y);
    for (int l = 0; l < LAYERS; l++) {
        fleet_tensor_release(cases[1].w[l]);
        fleet_tensor_release(cases[1].b[l]);
        fleet_tensor_release(cases[1].h[l]);
    }
    fleet_tensor_release(cases[2].x);
    fleet_tensor_release(cases[2].y);
    fleet_model_destroy(cases[0].model);
    fleet_model_destroy(cases[2].model);
    return fleet_shutdown() == FLEET_OK ? 0 : 1;
}
