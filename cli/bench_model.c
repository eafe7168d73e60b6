/* cli/bench_model.c — the model rows of `fleet bench --model model.onnx`:
 * one model loaded with fleet_model_load_onnx and shared by every thread,
 * one row per --batch. Each thread has its own inputs (made as `fleet run`
 * makes them, cli/model_inputs.h, one seed for all) and outputs on its own
 * stream. The check before timing: a first single run on the main thread
 * gives the expected outputs (finite), and every thread's first runs (three
 * on cuda: eager, capture, replay; one on cpu) give them again, bitwise or
 * within MODEL_NORMWISE normwise relative error per output. A row reports
 * runs/s, samples/s (runs x batch) and the p50/p99 latency of one { run;
 * synchronize }; the measurement is cli/bench.c's. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "fleet/onnx.h"
#include "model_inputs.h"

#define MODEL_SEED 17u    /* the inputs' seed: thread 0's of `fleet run` */
#define MODEL_NORMWISE 1e-6 /* a thread's outputs against the first run's */

/* ---- a model row: an ONNX model shared by every thread ------------------------------------ */

/* How far an output (nbytes at got) is from the first run's (at ref): 0 when
 * bitwise equal, else the normwise relative error ||got - ref|| / ||ref||
 * for f32 (INFINITY where got is not finite), INFINITY for any other dtype. */
static double output_error(fleet_dtype dt, const void *got, const void *ref, size_t nbytes)
{
    if (memcmp(got, ref, nbytes) == 0)
        return 0;
    if (dt != FLEET_DTYPE_F32)
        return INFINITY;
    const float *g = got, *r = ref;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < nbytes / sizeof(float); i++) {
        if (!isfinite(g[i]))
            return INFINITY;
        diff += ((double)g[i] - r[i]) * ((double)g[i] - r[i]);
        norm += (double)r[i] * r[i];
    }
    return norm > 0 ? sqrt(diff / norm) : INFINITY;
}

/* Copies the outputs to the host and compares each with the first run's;
 * on a difference records it as the failure, naming the output. */
static bool model_outputs_match(shared *sh, fleet_tensor *const *out, int no, int index)
{
    for (int i = 0; i < no; i++) {
        const char *name;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        size_t bytes = fleet_tensor_nbytes(out[i]);
        void *h = malloc(bytes + 1);
        fleet_status st = h != NULL ? fleet_tensor_copy_to_host(out[i], h, bytes)
                                    : FLEET_ERR_OUT_OF_MEMORY;
        if (st == FLEET_OK)
            st = fleet_model_output_info(sh->model, i, &name, &dt, &ndim, shape);
        if (st != FLEET_OK) {
            bench_fail(sh, "reading the outputs", fleet_last_error());
            free(h);
            return false;
        }
        double e = bytes == sh->ref_bytes[i] ? output_error(dt, h, sh->ref[i], bytes) : INFINITY;
        free(h);
        if (!(e <= MODEL_NORMWISE)) {
            char detail[256];
            snprintf(detail, sizeof detail,
                     "thread %d: output '%s' differs from the first run's (normwise relative "
                     "error %.3g, bound %.0e)", index, name, e, MODEL_NORMWISE);
            bench_fail(sh, sh->w->name, detail);
            return false;
        }
    }
    return true;
}

void *bench_model_main(void *arg)
{
    worker *wk = arg;
    shared *sh = wk->sh;
    fleet_tensor *in[FLEET_MODEL_MAX_IO] = {0}, *out[FLEET_MODEL_MAX_IO] = {0};
    int ni = 0, no = 0;
    fleet_stream *s;
    bool entered = false;
    CHECK(sh, fleet_stream_current(sh->dev, &s));
    if (fleet_cli_model_tensors(sh->model, sh->dev, sh->w->batch, MODEL_SEED, in, &ni, out,
                                &no) != FLEET_OK) {
        bench_fail(sh, "the inputs and outputs", fleet_last_error());
        goto out;
    }
    const fleet_tensor *const *cin = (const fleet_tensor *const *)in;
    /* on cuda the first run launches kernels, the second captures the
     * graph, the third replays it; each is checked */
    for (int k = 0; k < sh->check_runs; k++) {
        CHECK(sh, fleet_model_run(sh->model, cin, ni, out, no));
        if (!model_outputs_match(sh, out, no, wk->index))
            goto out;
    }
    entered = true;
    pthread_barrier_wait(&sh->ready);
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        double t0 = bench_now_s();
        CHECK(sh, fleet_model_run(sh->model, cin, ni, out, no));
        CHECK(sh, fleet_stream_synchronize(s));
        if (atomic_load_explicit(&sh->recording, memory_order_relaxed))
            wk->latency_us[wk->n_latency++ % LATENCY_SAMPLES] = (float)((bench_now_s() - t0) * 1e6);
        atomic_fetch_add_explicit(&wk->ops, 1, memory_order_relaxed);
    }
out:
    if (!entered)
        pthread_barrier_wait(&sh->ready);
    fleet_cli_model_tensors_release(in, out);
    return NULL;
}

/* The first single run, on the calling (main) thread's stream: its outputs
 * become sh->ref, each checked finite. 0 on success, else the reason in
 * err. */
static int model_first_run(shared *sh, int64_t batch, char *err, size_t err_size)
{
    fleet_tensor *in[FLEET_MODEL_MAX_IO] = {0}, *out[FLEET_MODEL_MAX_IO] = {0};
    int ni = 0, no = 0, rc = -1;
    fleet_status st = fleet_cli_model_tensors(sh->model, sh->dev, batch, MODEL_SEED, in, &ni, out,
                                              &no);
    if (st == FLEET_OK)
        st = fleet_model_run(sh->model, (const fleet_tensor *const *)in, ni, out, no);
    if (st != FLEET_OK) {
        snprintf(err, err_size, "%s", fleet_last_error());
        goto out;
    }
    for (int i = 0; i < no; i++) {
        const char *name;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        sh->ref_bytes[i] = fleet_tensor_nbytes(out[i]);
        sh->ref[i] = malloc(sh->ref_bytes[i] + 1);
        sh->n_ref = i + 1;
        st = sh->ref[i] != NULL ? fleet_tensor_copy_to_host(out[i], sh->ref[i], sh->ref_bytes[i])
                                : FLEET_ERR_OUT_OF_MEMORY;
        if (st == FLEET_OK)
            st = fleet_model_output_info(sh->model, i, &name, &dt, &ndim, shape);
        if (st != FLEET_OK) {
            snprintf(err, err_size, "%s", fleet_last_error());
            goto out;
        }
        if (dt == FLEET_DTYPE_F32)
            for (size_t k = 0; k < sh->ref_bytes[i] / sizeof(float); k++)
                if (!isfinite(((const float *)sh->ref[i])[k])) {
                    snprintf(err, err_size, "output '%s' of the first run is not finite "
                             "(element %zu)", name, k);
                    goto out;
                }
    }
    rc = 0;
out:
    fleet_cli_model_tensors_release(in, out);
    return rc;
}

static void model_refs_free(shared *sh)
{
    for (int i = 0; i < sh->n_ref; i++) {
        free(sh->ref[i]);
        sh->ref[i] = NULL;
    }
    sh->n_ref = 0;
}

/* The row's name: --name, else the file's name without ".onnx" -- or, for
 * a file called model.onnx (the node-test layout of bench/onnx_models.py:
 * test_minilm_opset17/model.onnx), its folder's without "test_". */
static void model_name(const char *path, char *buf, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".onnx") == 0)
        n -= 5;
    if (n == 5 && strncmp(base, "model", 5) == 0 && base > path + 1) {
        const char *end = base - 1, *dir = end; /* end: the '/' before base */
        while (dir > path && dir[-1] != '/')
            dir--;
        if (end - dir > 5 && strncmp(dir, "test_", 5) == 0)
            dir += 5;
        if (end > dir) {
            base = dir;
            n = (size_t)(end - dir);
        }
    }
    snprintf(buf, size, "%.*s", (int)n, base);
}


/* The model rows: the model loaded once, then per --batch a first single
 * run and every thread count. Returns the exit code. */
int bench_model_rows(const options *o, fleet_device *dev, FILE *json, int *rows)
{
    fleet_onnx_options oo = FLEET_ONNX_OPTIONS_INIT;
    oo.dim_names = o->dim_ptrs;
    oo.dim_values = o->dim_values;
    oo.n_dims = o->n_dims;
    shared sh = {.dev = dev, .check_runs = fleet_device_backend(dev) == FLEET_BACKEND_CUDA ? 3 : 1};
    double t0 = bench_now_s();
    if (fleet_model_load_onnx(dev, o->model, &oo, &sh.model) != FLEET_OK) {
        fprintf(stderr, "fleet bench: %s\n", fleet_last_error());
        return 1;
    }
    double load_ms = (bench_now_s() - t0) * 1e3;
    bool batched = false;
    for (int i = 0; i < fleet_model_input_count(sh.model); i++) {
        const char *nm;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        if (fleet_model_input_info(sh.model, i, &nm, &dt, &ndim, shape) == FLEET_OK)
            for (int d = 0; d < ndim; d++)
                batched |= shape[d] == FLEET_DIM_BATCH;
    }
    for (int b = 0; b < o->n_batches && !batched; b++)
        if (o->batches[b] != 1) {
            fprintf(stderr, "fleet bench: %s has no batch dimension: --batch 1 only\n", o->model);
            fleet_model_destroy(sh.model);
            return 2;
        }
    char name[96], dims[256] = "";
    if (o->model_name != NULL)
        snprintf(name, sizeof name, "%s", o->model_name);
    else
        model_name(o->model, name, sizeof name);
    for (int d = 0, len = 0; d < o->n_dims && len < (int)sizeof dims; d++)
        len += snprintf(dims + len, sizeof dims - (size_t)len, "%s%s=%lld", d ? ", " : "; ",
                        o->dim_names[d], (long long)o->dim_values[d]);
    fleet_model_stats ms;
    fleet_model_get_stats(sh.model, &ms);
    printf("%smodel %s: loaded in %.0f ms (%llu nodes folded, %llu fused at load)%s; inputs made "
           "as `fleet run` makes them, each thread's outputs checked against a first run\n\n",
           *rows > 0 || o->workloads_given ? "\n" : "", o->model, load_ms,
           (unsigned long long)ms.load_folded, (unsigned long long)ms.load_fused, dims);
    printf("| model | threads | runs/s | min | max | samples/s | p50 ms | p99 ms | speedup | "
           "efficiency |\n|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    pthread_mutex_init(&sh.error_lock, NULL);
    int rc = 0;
    for (int b = 0; b < o->n_batches && rc == 0; b++) {
        char row[128], err[512];
        snprintf(row, sizeof row, "model:%s b%lld", name, (long long)o->batches[b]);
        workload w = {.name = row, .what = o->model, .kind = KIND_MODEL,
                      .batch = o->batches[b], .sync = SYNC_STREAM};
        sh.w = &w;
        fprintf(stderr, "fleet bench: %s, the first run...\n", row);
        if (model_first_run(&sh, w.batch, err, sizeof err) != 0) {
            fprintf(stderr, "fleet bench: %s: the first run: %s\n", row, err);
            rc = 1;
        }
        result rs[MAX_COUNTS];
        for (int k = 0; k < o->n_counts && rc == 0; k++) {
            sh.threads = o->counts[k];
            fprintf(stderr, "fleet bench: %s, %d thread%s...\n", row, sh.threads,
                    sh.threads > 1 ? "s" : "");
            if (bench_measure(&sh, o, &rs[k]) != 0) {
                fprintf(stderr, "fleet bench: %s failed: %s\n", row, sh.error);
                rc = 1;
                break;
            }
            bench_scaling(rs, k);
            char r1[32], r2[32], r3[32], r4[32];
            printf("| %s | %d | %s | %s | %s | %s | %.3f | %.3f | %.2f | %.2f |\n", row,
                   rs[k].threads, bench_rate_str(rs[k].median, r1, sizeof r1),
                   bench_rate_str(rs[k].min, r2, sizeof r2), bench_rate_str(rs[k].max, r3, sizeof r3),
                   bench_rate_str(rs[k].median * (double)w.batch, r4, sizeof r4), rs[k].p50_us / 1e3,
                   rs[k].p99_us / 1e3, rs[k].speedup, rs[k].efficiency);
            fflush(stdout);
        }
        if (json != NULL && rc == 0)
            bench_print_json(json, rs, o->n_counts, dev, o->model, rows);
        model_refs_free(&sh);
    }
    pthread_mutex_destroy(&sh.error_lock);
    fleet_model_destroy(sh.model);
    return rc;
}
