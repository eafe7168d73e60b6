/* cli/bench.h — what the parts of `fleet bench` share: the workloads'
 * kinds, one measurement's shared state and workers, the options, a row's
 * result, and the measurement (cli/bench.c, which also holds the reference
 * workloads and the output) used by the model rows (cli/bench_model.c). */
#ifndef FLEET_CLI_BENCH_H
#define FLEET_CLI_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "fleet.h"

#define MAX_THREADS 256
#define MAX_WORKLOADS 16
#define MLP_LAYERS 3   /* the reference MLP's (cli/bench.c)            */
#define MAX_COUNTS 16
#define MAX_WINDOWS 101
#define MIN_WINDOW_OPS 8 /* a window holds at least this many ops...  */
#define MAX_WINDOW_S 30.0 /* ...unless that takes longer than this      */
#define MAX_BATCHES 16    /* --batch values of a model row               */
#define MAX_DIM_OPTS 16   /* --dim name=N bindings                       */

typedef enum sync_kind { SYNC_STREAM, SYNC_DEVICE } sync_kind;
typedef enum workload_kind { KIND_LINEAR, KIND_MLP, KIND_BATCHER, KIND_MODEL } workload_kind;

typedef struct workload {
    const char *name;
    const char *what;
    workload_kind kind;
    int64_t in, out, batch;  /* a Linear's sizes; the batch of the others */
    sync_kind sync;
} workload;

/* ---- shared state of one measurement ---------------------------------------------- */

typedef struct shared {
    fleet_device *dev;
    const workload *w;
    int threads;
    fleet_model *mlp;            /* mlp: one model shared by all threads    */
    fleet_batcher *batcher;      /* batcher: over mlp                       */
    fleet_model *model;          /* a model row: the ONNX model, shared     */
    int check_runs;              /* a model row: runs each thread checks    */
    int n_ref;                   /* a model row: the first run's outputs    */
    void *ref[FLEET_MODEL_MAX_IO];
    size_t ref_bytes[FLEET_MODEL_MAX_IO];
    atomic_bool recording;       /* workers record latencies (timed windows) */
    float *mlp_w[MLP_LAYERS], *mlp_b[MLP_LAYERS];
    pthread_barrier_t ready;     /* all checked, start the loop            */
    atomic_bool stop;
    atomic_int failed;
    char error[256];
    pthread_mutex_t error_lock;
} shared;

#define LATENCY_SAMPLES 8192

typedef struct worker {
    shared *sh;
    int index;
    _Atomic uint64_t ops;
    pthread_t tid;
    float *latency_us;           /* batcher, model: a ring of latencies (us) */
    uint64_t n_latency;
} worker;

typedef struct options {
    int counts[MAX_COUNTS], n_counts;
    bool selected[MAX_WORKLOADS];
    bool workloads_given;        /* --workloads (with --model: run them too) */
    int windows, window_ms, warmup_ms;
    int64_t batch_delay_us;
    int batch_runners;
    const char *json;
    const char *backend;
    const char *model;           /* --model PATH: the model rows           */
    const char *model_name;      /* --name NAME                            */
    int64_t batches[MAX_BATCHES];
    int n_batches;
    char dim_names[MAX_DIM_OPTS][64];
    const char *dim_ptrs[MAX_DIM_OPTS];
    int64_t dim_values[MAX_DIM_OPTS];
    int n_dims;
} options;

typedef struct result {
    const workload *w;
    int threads;
    double median, min, max, speedup, efficiency;
    double p50_us, p99_us;       /* batcher, model                          */
    double batch_rows;           /* batcher only                            */
    double queue_p50_us, run_p50_us; /* batcher only: its stats' submit-to-start
                                  * and batch run, last 4096 requests      */
} result;

/* Record the first failure of a measurement as "what: detail". */
void bench_fail(shared *sh, const char *what, const char *detail);

#define CHECK(sh, call)                                                                    \
    do {                                                                                   \
        fleet_status st_ = (call);                                                         \
        if (st_ != FLEET_OK) {                                                             \
            bench_fail(sh, #call, fleet_last_error());                                 \
            goto out;                                                                      \
        }                                                                                  \
    } while (0)

/* Seconds on the monotonic clock. */
double bench_now_s(void);
/* One thread count of one workload into r; 0 on success, else the reason
 * in sh->error. */
int bench_measure(shared *sh, const options *o, result *r);
/* Speedup and efficiency of rs[k] against rs[0], the first thread count. */
void bench_scaling(result *rs, int k);
/* A rate for the table: whole numbers from 100, else with decimals. */
const char *bench_rate_str(double x, char *buf, size_t size);
/* n rows of results as JSON objects (model: the model row's file, or NULL);
 * *rows counts the rows written so far, for the commas. */
void bench_print_json(FILE *f, const result *rs, int n, const fleet_device *dev,
                      const char *model, int *rows);

/* A model row's worker (cli/bench_model.c). */
void *bench_model_main(void *arg);
/* The model rows of --model: the exit code. */
int bench_model_rows(const options *o, fleet_device *dev, FILE *json, int *rows);

#endif /* FLEET_CLI_BENCH_H */
