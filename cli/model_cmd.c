/* cli/model_cmd.c — the model commands of the fleet tool:
 *
 *   fleet info model.onnx [--dim name=N]... [--backend cpu|cuda]
 *       inputs, outputs, ops used, parameters, what folded and fused at load,
 *       what is unsupported
 *   fleet run model.onnx [--threads N] [--batch B] [--seconds S]
 *                        [--dim name=N]... [--backend cpu|cuda]
 *                        [--input name=file.npy]... [--output DIR]
 *       N threads run one shared model, then print each output's shape and
 *       checksum, runs/s, samples/s and the p50/p99 latency, with a progress
 *       line each second.
 *
 * Inputs. `--input name=file.npy` reads the model input `name` from a NumPy
 * file (cli/npy.h: versions 1.0-3.0, C order, '<f4' '<f2' '<i4' '<i8' '|b1',
 * and '<f8' for an f32 input, rounded). The name ends at the first '='. The
 * file must hold the input's dtype and shape, where the batch dimension
 * takes the file's size: the files set the batch, so a --batch that differs,
 * or two files that differ in it, are refused. Inputs not read from a file
 * are made as cli/model_inputs.h makes them (floats uniform in [-1, 1),
 * integers 1, bools true: valid token ids and masks) at that batch
 * (--batch, default 1, when no file has a batch dimension). A refused
 * --input (an unknown name, a malformed file, another dtype, rank or
 * dimension) exits with status 2 and says what was expected and what was
 * found, before anything runs.
 *
 * Outputs. `--output DIR` writes each output of thread 0's last run to
 * DIR/<name>.npy once the run ends (DIR is created when missing, one level).
 * Names are made safe first: every byte other than A-Z a-z 0-9 _ - . becomes
 * '_', as does a leading '.' or '-'; an empty name is "_"; names are cut at
 * 200 bytes. So "../x" is "_._x.npy" and "a/b" is "a_b.npy"; two outputs
 * whose names come out the same are refused (status 2) before the run.
 * Each file is written to a temporary name and renamed (cli/npy.h), so a
 * failed write (status 1) leaves no partial file under the output's name.
 * bf16 outputs are written as '<f4' (exact). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fleet.h"
#include "fleet/onnx.h"
#include "model_inputs.h"
#include "npy.h"

#define MAX_DIMS_OPT 16
#define MAX_THREADS 256

typedef struct opts {
    const char *path;
    const char *dim_names[MAX_DIMS_OPT];
    int64_t dim_values[MAX_DIMS_OPT];
    int n_dims;
    int threads;
    int64_t batch;
    bool batch_given;
    double seconds;
    const char *backend;
    /* --input name=path: input_names[i] allocated, input_paths[i] in argv */
    const char *input_names[FLEET_MODEL_MAX_IO];
    const char *input_paths[FLEET_MODEL_MAX_IO];
    int n_inputs;
    const char *output_dir;
} opts;

static int parse_input(const char *v, opts *o, const char *cmd)
{
    const char *eq = strchr(v, '=');
    if (eq == NULL || eq == v || eq[1] == '\0') {
        fprintf(stderr, "fleet %s: --input takes name=file.npy, got '%s'\n", cmd, v);
        return 2;
    }
    if (o->n_inputs == FLEET_MODEL_MAX_IO) {
        fprintf(stderr, "fleet %s: at most %d --input options\n", cmd, FLEET_MODEL_MAX_IO);
        return 2;
    }
    size_t len = (size_t)(eq - v);
    for (int k = 0; k < o->n_inputs; k++)
        if (strlen(o->input_names[k]) == len && strncmp(o->input_names[k], v, len) == 0) {
            fprintf(stderr, "fleet %s: --input '%.*s' given twice\n", cmd, (int)len, v);
            return 2;
        }
    char *name = strndup(v, len);
    if (name == NULL) {
        fprintf(stderr, "fleet %s: out of memory\n", cmd);
        return 2;
    }
    o->input_names[o->n_inputs] = name;
    o->input_paths[o->n_inputs++] = eq + 1;
    return 0;
}

static int parse(int argc, char **argv, opts *o, const char *cmd)
{
    *o = (opts){.threads = 1, .batch = 1, .seconds = 3.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (a[0] != '-' && o->path == NULL) {
            o->path = a;
        } else if (strcmp(a, "--dim") == 0 && v != NULL && o->n_dims < MAX_DIMS_OPT) {
            const char *eq = strchr(v, '=');
            long long n = eq ? strtoll(eq + 1, &end, 10) : -1;
            if (eq == NULL || eq == v || *end != '\0' || n < 0) {
                fprintf(stderr, "fleet %s: --dim takes name=N, got '%s'\n", cmd, v);
                return 2;
            }
            o->dim_names[o->n_dims] = strndup(v, (size_t)(eq - v));
            o->dim_values[o->n_dims++] = n;
            i++;
        } else if (strcmp(a, "--threads") == 0 && v != NULL) {
            long n = strtol(v, &end, 10);
            if (*end != '\0' || n < 1 || n > MAX_THREADS) {
                fprintf(stderr, "fleet %s: --threads takes 1..%d\n", cmd, MAX_THREADS);
                return 2;
            }
            o->threads = (int)n;
            i++;
        } else if (strcmp(a, "--batch") == 0 && v != NULL) {
            long long n = strtoll(v, &end, 10);
            if (*end != '\0' || n < 1 || n > FLEET_MODEL_MAX_BATCH) {
                fprintf(stderr, "fleet %s: --batch takes 1..%lld\n", cmd,
                        (long long)FLEET_MODEL_MAX_BATCH);
                return 2;
            }
            o->batch = n;
            o->batch_given = true;
            i++;
        } else if (strcmp(a, "--seconds") == 0 && v != NULL) {
            o->seconds = strtod(v, &end);
            if (*end != '\0' || !(o->seconds > 0 && o->seconds <= 3600)) {
                fprintf(stderr, "fleet %s: --seconds takes (0, 3600]\n", cmd);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--backend") == 0 && v != NULL) {
            o->backend = v;
            i++;
        } else if (strcmp(a, "--input") == 0 && v != NULL) {
            int rc = parse_input(v, o, cmd);
            if (rc != 0)
                return rc;
            i++;
        } else if (strcmp(a, "--output") == 0 && v != NULL && v[0] != '\0') {
            o->output_dir = v;
            i++;
        } else {
            fprintf(stderr, "fleet %s: unknown or incomplete option '%s'\n", cmd, a);
            return 2;
        }
    }
    if (o->path == NULL) {
        fprintf(stderr, "fleet %s: give a model file (model.onnx)\n", cmd);
        return 2;
    }
    if (strcmp(cmd, "run") != 0 && (o->n_inputs > 0 || o->output_dir != NULL)) {
        fprintf(stderr, "fleet %s: --input and --output are options of fleet run\n", cmd);
        return 2;
    }
    return 0;
}

static void opts_free(opts *o)
{
    for (int i = 0; i < o->n_dims; i++)
        free((char *)o->dim_names[i]);
    for (int i = 0; i < o->n_inputs; i++)
        free((char *)o->input_names[i]);
}

static fleet_onnx_options onnx_options(const opts *o)
{
    fleet_onnx_options x = FLEET_ONNX_OPTIONS_INIT;
    x.dim_names = o->dim_names;
    x.dim_values = o->dim_values;
    x.n_dims = o->n_dims;
    return x;
}

static fleet_device *device_of(const opts *o, const char *cmd)
{
    fleet_device *d = NULL;
    fleet_status st;
    if (o->backend == NULL)
        st = fleet_device_default(&d);
    else if (strcmp(o->backend, "cpu") == 0)
        st = fleet_device_get(FLEET_BACKEND_CPU, 0, &d);
    else if (strcmp(o->backend, "cuda") == 0)
        st = fleet_device_get(FLEET_BACKEND_CUDA, 0, &d);
    else {
        fprintf(stderr, "fleet %s: --backend takes cpu or cuda\n", cmd);
        return NULL;
    }
    if (st != FLEET_OK)
        fprintf(stderr, "fleet %s: %s\n", cmd, fleet_last_error());
    return st == FLEET_OK ? d : NULL;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && len < cap; d++) {
        int w = shape[d] == FLEET_DIM_BATCH
                    ? snprintf(buf + len, cap - len, "%sbatch", d ? " x " : "")
                    : snprintf(buf + len, cap - len, "%s%lld", d ? " x " : "",
                               (long long)shape[d]);
        len += w > 0 ? (size_t)w : 0;
    }
    if (ndim == 0)
        snprintf(buf, cap, "scalar");
}

static void print_io(fleet_model *m)
{
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? fleet_model_output_count(m) : fleet_model_input_count(m);
        for (int i = 0; i < n; i++) {
            const char *name;
            fleet_dtype dt;
            int ndim;
            int64_t shape[FLEET_MAX_DIMS];
            char s[128];
            if ((pass ? fleet_model_output_info(m, i, &name, &dt, &ndim, shape)
                      : fleet_model_input_info(m, i, &name, &dt, &ndim, shape)) != FLEET_OK)
                continue;
            shape_str(ndim, shape, s, sizeof s);
            printf("  %-6s %-24s %-5s %s\n", pass ? "output" : "input", name,
                   fleet_dtype_name(dt), s);
        }
    }
}

int fleet_cli_model_info(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o, "info");
    fleet_device *dev = rc == 0 ? device_of(&o, "info") : NULL;
    if (dev == NULL) {
        opts_free(&o);
        return rc ? rc : 1;
    }
    fleet_onnx_options oo = onnx_options(&o);
    fleet_onnx_report r;
    fleet_status st = fleet_onnx_inspect(dev, o.path, &oo, &r);
    if (st != FLEET_OK) {
        fprintf(stderr, "fleet info: %s\n", fleet_last_error());
        opts_free(&o);
        return 1;
    }
    printf("%s: ONNX IR %lld, opset %lld, from %s\n", o.path, (long long)r.ir_version,
           (long long)r.opset, r.producer[0] != ' ' ? r.producer : "(no producer)");
    printf("  %d nodes, %d initializers, %lld parameters\n", r.nodes, r.initializers,
           (long long)r.parameters);
    printf("  ops: %s\n", r.ops);
    printf("  at load: %d nodes folded (computed from constants), %d fused\n", r.folded,
           r.fused);
    if (r.n_unsupported > 0) {
        printf("  unsupported (%d): %s\n", r.n_unsupported, r.unsupported);
        opts_free(&o);
        return 1;
    }
    fleet_model *m;
    if (fleet_model_load_onnx(dev, o.path, &oo, &m) == FLEET_OK) {
        print_io(m);
        fleet_model_destroy(m);
    }
    printf("  loads on %s\n", fleet_device_name(dev));
    opts_free(&o);
    return 0;
}

/* ---- inputs from files ---------------------------------------------------------------- */

/* The elements of each model input read from a file, as that input's
 * dtype (host[i] NULL: input i is made here). */
typedef struct feeds {
    void *host[FLEET_MODEL_MAX_IO];
    size_t bytes[FLEET_MODEL_MAX_IO];
} feeds;

static void feeds_free(feeds *f)
{
    for (int i = 0; i < FLEET_MODEL_MAX_IO; i++)
        free(f->host[i]);
}

static int input_index(fleet_model *m, const char *name)
{
    for (int i = 0; i < fleet_model_input_count(m); i++) {
        const char *n;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        if (fleet_model_input_info(m, i, &n, &dt, &ndim, shape) == FLEET_OK &&
            strcmp(n, name) == 0)
            return i;
    }
    return -1;
}

static void list_inputs(fleet_model *m, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < fleet_model_input_count(m) && len < cap; i++) {
        const char *n;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        if (fleet_model_input_info(m, i, &n, &dt, &ndim, shape) != FLEET_OK)
            continue;
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", n);
        len += w > 0 ? (size_t)w : 0;
    }
}

/* Where the batch came from, for messages: "--batch", or an input and its
 * file. */
typedef struct batch_source {
    int64_t batch;
    char from[128];
} batch_source;

/* Checks the file's array against the model input (dtype, rank, every
 * fixed dimension) and takes the batch from its batch dimensions. Returns 0,
 * or 2 with the reason printed. */
static int check_file(const char *name, const char *path, fleet_dtype dt, int ndim,
                      const int64_t *shape, const fleet_cli_npy_array *a, batch_source *b)
{
    char want[128], got[128];
    shape_str(ndim, shape, want, sizeof want);
    shape_str(a->ndim, a->shape, got, sizeof got);
    if (a->dtype != dt) {
        bool widened = a->file_elem_size != fleet_dtype_size(a->dtype);
        if (dt == FLEET_DTYPE_BF16)
            fprintf(stderr,
                    "fleet run: input '%s' from %s: expected bf16, which .npy files cannot "
                    "hold (numpy has no bf16), found '%s'\n", name, path, a->descr);
        else
            fprintf(stderr, "fleet run: input '%s' from %s: expected dtype %s ('%s'%s), found "
                    "'%s' (%s)\n", name, path, fleet_dtype_name(dt), fleet_cli_npy_descr(dt),
                    dt == FLEET_DTYPE_F32 ? ", or '<f8' rounded to f32" : "", a->descr,
                    widened ? "f64, read only into an f32 input" : fleet_dtype_name(a->dtype));
        return 2;
    }
    if (a->ndim != ndim) {
        fprintf(stderr, "fleet run: input '%s' from %s: expected %d dimensions (%s), found %d "
                "(%s)\n", name, path, ndim, want, a->ndim, got);
        return 2;
    }
    for (int d = 0; d < ndim; d++) {
        if (shape[d] != FLEET_DIM_BATCH) {
            if (a->shape[d] != shape[d]) {
                fprintf(stderr, "fleet run: input '%s' from %s: expected shape %s, found %s "
                        "(dimension %d is %lld, not %lld)\n", name, path, want, got, d,
                        (long long)a->shape[d], (long long)shape[d]);
                return 2;
            }
            continue;
        }
        if (a->shape[d] < 1 || a->shape[d] > FLEET_MODEL_MAX_BATCH) {
            fprintf(stderr, "fleet run: input '%s' from %s: expected a batch of 1..%lld in "
                    "dimension %d (shape %s), found %lld\n", name, path,
                    (long long)FLEET_MODEL_MAX_BATCH, d, want, (long long)a->shape[d]);
            return 2;
        }
        if (b->from[0] != '\0' && a->shape[d] != b->batch) {
            fprintf(stderr, "fleet run: input '%s' from %s: expected batch %lld (from %s) in "
                    "dimension %d, found %lld (shape %s)\n", name, path, (long long)b->batch,
                    b->from, d, (long long)a->shape[d], got);
            return 2;
        }
        b->batch = a->shape[d];
        snprintf(b->from, sizeof b->from, "input '%s' from %s", name, path);
    }
    return 0;
}

/* Reads every --input file into f as its model input's dtype, after
 * checking it; *batch becomes the files' batch (else --batch, or 1).
 * Returns 0, or 2 with the reason printed. */
static int read_inputs(const opts *o, fleet_model *m, int64_t *batch, feeds *f)
{
    batch_source b = {.batch = o->batch};
    if (o->batch_given)
        snprintf(b.from, sizeof b.from, "--batch %lld", (long long)o->batch);
    for (int k = 0; k < o->n_inputs; k++) {
        const char *name = o->input_names[k], *path = o->input_paths[k];
        int i = input_index(m, name);
        if (i < 0) {
            char names[512];
            list_inputs(m, names, sizeof names);
            fprintf(stderr, "fleet run: --input %s=%s: the model has no input '%s' (its "
                    "inputs: %s)\n", name, path, name, names);
            return 2;
        }
        const char *n;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        fleet_model_input_info(m, i, &n, &dt, &ndim, shape);
        fleet_cli_npy_file file;
        char err[FLEET_CLI_NPY_ERR_SIZE];
        if (fleet_cli_npy_open(path, &file, err, sizeof err) != FLEET_OK) {
            fprintf(stderr, "fleet run: input '%s': %s\n", name, err);
            return 2;
        }
        int rc = check_file(name, path, dt, ndim, shape, &file.array, &b);
        if (rc == 0) {
            f->bytes[i] = (size_t)file.array.numel * fleet_dtype_size(dt);
            f->host[i] = malloc(f->bytes[i] + 1);
            if (f->host[i] != NULL)
                fleet_cli_npy_copy_out(&file.array, f->host[i]);
            else
                fprintf(stderr, "fleet run: input '%s': no memory for %zu bytes\n", name,
                        f->bytes[i]);
            rc = f->host[i] != NULL ? 0 : 1;
        }
        fleet_cli_npy_close(&file);
        if (rc != 0)
            return rc;
    }
    *batch = b.batch;
    return 0;
}

/* ---- outputs to files ------------------------------------------------------------------ */

#define SAFE_NAME_MAX 200

/* The output name as a file name that stays inside its folder (the rule
 * in the header comment). out holds SAFE_NAME_MAX + 1 bytes. */
static void safe_file_name(const char *name, char *out)
{
    size_t n = 0;
    for (; n < SAFE_NAME_MAX && name[n] != '\0'; n++) {
        char ch = name[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ((ch == '-' || ch == '.') && n > 0);
        out[n] = ok ? ch : '_';
    }
    if (n == 0)
        out[n++] = '_';
    out[n] = '\0';
}

/* The file of each output (paths[i], allocated); DIR created when missing.
 * Returns 0, or 2 with the reason printed. */
static int plan_outputs(const char *dir, fleet_model *m, char **paths)
{
    struct stat sb;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "fleet run: --output %s: cannot create it: %s\n", dir, strerror(errno));
        return 2;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "fleet run: --output %s: not a folder this user can write to\n", dir);
        return 2;
    }
    char safe[FLEET_MODEL_MAX_IO][SAFE_NAME_MAX + 1];
    for (int i = 0; i < fleet_model_output_count(m); i++) {
        const char *name, *other;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        fleet_model_output_info(m, i, &name, &dt, &ndim, shape);
        safe_file_name(name, safe[i]);
        for (int k = 0; k < i; k++)
            if (strcmp(safe[k], safe[i]) == 0) {
                fleet_model_output_info(m, k, &other, &dt, &ndim, shape);
                fprintf(stderr, "fleet run: --output: outputs '%s' and '%s' would both be "
                        "written to %s/%s.npy\n", other, name, dir, safe[i]);
                return 2;
            }
        size_t cap = strlen(dir) + strlen(safe[i]) + 6;
        paths[i] = malloc(cap);
        if (paths[i] == NULL) {
            fprintf(stderr, "fleet run: out of memory\n");
            return 2;
        }
        snprintf(paths[i], cap, "%s/%s.npy", dir, safe[i]);
    }
    return 0;
}

/* ---- run -------------------------------------------------------------------------------- */

typedef struct worker {
    fleet_model *m;
    fleet_device *dev;
    int64_t batch;
    double seconds;
    atomic_int *go, *ready;
    atomic_long *runs_total;
    double *lat;      /* each run's latency, ms */
    long n_lat, cap_lat;
    const feeds *feeds; /* the inputs read from files */
    fleet_tensor *in[FLEET_MODEL_MAX_IO], *out[FLEET_MODEL_MAX_IO];
    int ni, no;
    fleet_status st;
    char err[256];
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The worker's inputs and outputs: the inputs made (cli/model_inputs.h),
 * those read from files then uploaded over them. */
static fleet_status make_tensors(worker *w, unsigned seed)
{
    fleet_status st = fleet_cli_model_tensors(w->m, w->dev, w->batch, seed, w->in, &w->ni,
                                              w->out, &w->no);
    for (int i = 0; i < w->ni && st == FLEET_OK; i++)
        if (w->feeds->host[i] != NULL)
            st = fleet_tensor_copy_from_host(w->in[i], w->feeds->host[i], w->feeds->bytes[i]);
    return st;
}

static void *run_main(void *arg)
{
    worker *w = arg;
    fleet_stream *s = NULL;
    /* one run first, on this thread's stream: compiles the plan (once) and
     * builds this stream's instance */
    fleet_status st = fleet_stream_current(w->dev, &s);
    if (st == FLEET_OK)
        st = fleet_model_run(w->m, (const fleet_tensor *const *)w->in, w->ni, w->out, w->no);
    if (st == FLEET_OK)
        st = fleet_stream_synchronize(s);
    atomic_fetch_add(w->ready, 1);
    while (atomic_load(w->go) == 0)
        ;
    double end = now_s() + w->seconds;
    while (st == FLEET_OK && now_s() < end) {
        double t0 = now_s();
        st = fleet_model_run(w->m, (const fleet_tensor *const *)w->in, w->ni, w->out, w->no);
        if (st == FLEET_OK)
            st = fleet_stream_synchronize(s);
        if (st != FLEET_OK)
            break;
        if (w->n_lat == w->cap_lat) {
            long cap = w->cap_lat ? w->cap_lat * 2 : 1024;
            double *l = realloc(w->lat, sizeof *l * (size_t)cap);
            if (l == NULL)
                break;
            w->lat = l;
            w->cap_lat = cap;
        }
        w->lat[w->n_lat++] = (now_s() - t0) * 1e3;
        atomic_fetch_add(w->runs_total, 1);
    }
    w->st = st;
    if (st != FLEET_OK)
        snprintf(w->err, sizeof w->err, "%s", fleet_last_error());
    return NULL;
}

/* The nearest-rank percentile's index among n sorted values. */
static long rank(long n, double q)
{
    long k = (long)ceil(q * (double)n);
    return k < 1 ? 0 : k - 1;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Output i of the worker's last run in host memory (to free; NULL when
 * out of memory or the copy failed), with its name, dtype, shape (the
 * batch filled in) and size. */
static unsigned char *output_to_host(const worker *w, int i, const char **name, fleet_dtype *dt,
                                     int *ndim, int64_t *shape, size_t *bytes)
{
    fleet_model_output_info(w->m, i, name, dt, ndim, shape);
    fleet_model_output_shape(w->m, i, w->batch, ndim, shape);
    *bytes = fleet_tensor_nbytes(w->out[i]);
    unsigned char *h = malloc(*bytes + 1);
    if (h != NULL && fleet_tensor_copy_to_host(w->out[i], h, *bytes) != FLEET_OK) {
        free(h);
        h = NULL;
    }
    return h;
}

static void print_outputs(const worker *w)
{
    for (int i = 0; i < w->no; i++) {
        const char *name;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        char s[128];
        size_t bytes;
        unsigned char *h = output_to_host(w, i, &name, &dt, &ndim, shape, &bytes);
        size_t es = fleet_dtype_size(dt);
        shape_str(ndim, shape, s, sizeof s);
        double sum = 0, asum = 0;
        for (size_t k = 0; h != NULL && k < bytes / (es ? es : 1); k++) {
            double v = 0;
            if (dt == FLEET_DTYPE_F32) {
                float f;
                memcpy(&f, h + k * 4, 4);
                v = f;
            } else if (dt == FLEET_DTYPE_I64) {
                int64_t x;
                memcpy(&x, h + k * 8, 8);
                v = (double)x;
            } else if (dt == FLEET_DTYPE_I32) {
                int32_t x;
                memcpy(&x, h + k * 4, 4);
                v = x;
            } else if (dt == FLEET_DTYPE_BOOL) {
                v = h[k];
            }
            sum += v;
            asum += fabs(v);
        }
        free(h);
        printf("  output %-24s %-5s %-20s sum %.6g, sum |x| %.6g\n", name, fleet_dtype_name(dt),
               s, sum, asum);
    }
}

/* Writes each output of the worker's last run to paths[i]. Returns 0, or 1
 * with the reason printed (files written before a failure stay, each
 * whole). */
static int write_outputs(const worker *w, char *const *paths)
{
    for (int i = 0; i < w->no; i++) {
        const char *name;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        size_t bytes;
        char err[FLEET_CLI_NPY_ERR_SIZE];
        unsigned char *h = output_to_host(w, i, &name, &dt, &ndim, shape, &bytes);
        fleet_status st = h != NULL ? fleet_cli_npy_save(paths[i], dt, ndim, shape, h, err,
                                                         sizeof err)
                                    : FLEET_ERR_OUT_OF_MEMORY;
        free(h);
        if (st != FLEET_OK) {
            fprintf(stderr, "fleet run: output '%s': %s\n", name,
                    h != NULL ? err : "cannot read it back");
            return 1;
        }
        printf("  wrote %s\n", paths[i]);
    }
    return 0;
}

/* Runs the model from o->threads threads for o->seconds and prints the
 * figures; then writes the outputs to out_paths (NULL: none). Returns the
 * exit status. */
static int run_and_report(const opts *o, fleet_device *dev, fleet_model *m, double load_ms,
                          const feeds *in, char *const *out_paths)
{
    fleet_model_stats ms;
    fleet_model_get_stats(m, &ms);
    printf("%s on %s: loaded in %.0f ms (%llu nodes folded, %llu fused at load), "
           "%d thread(s), batch %lld, %.1f s\n",
           o->path, fleet_device_name(dev), load_ms, (unsigned long long)ms.load_folded,
           (unsigned long long)ms.load_fused, o->threads, (long long)o->batch, o->seconds);
    for (int k = 0; k < o->n_inputs; k++)
        printf("  input  %-24s from %s\n", o->input_names[k], o->input_paths[k]);
    atomic_int go = 0, ready = 0;
    atomic_long runs = 0;
    worker *w = calloc((size_t)o->threads, sizeof *w);
    pthread_t th[MAX_THREADS] = {0};
    int started = 0;
    fleet_status st = w != NULL ? FLEET_OK : FLEET_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < o->threads && st == FLEET_OK; i++) {
        w[i] = (worker){.m = m, .dev = dev, .batch = o->batch, .seconds = o->seconds,
                        .go = &go, .ready = &ready, .runs_total = &runs, .feeds = in};
        st = make_tensors(&w[i], 17u + (unsigned)i);
    }
    for (int i = 0; i < o->threads && st == FLEET_OK; i++, started++)
        if (pthread_create(&th[i], NULL, run_main, &w[i]) != 0)
            st = FLEET_ERR_INTERNAL;
    if (st != FLEET_OK)
        fprintf(stderr, "fleet run: %s\n", fleet_last_error());
    while (atomic_load(&ready) < started)
        ;
    double start = now_s();
    atomic_store(&go, 1);
    for (int sec = 1; st == FLEET_OK && sec < (int)ceil(o->seconds); sec++) {
        struct timespec one = {1, 0};
        nanosleep(&one, NULL);
        printf("  ... %d s: %ld runs\n", sec, atomic_load(&runs));
        fflush(stdout);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double elapsed = now_s() - start;
    long total = 0, n_lat = 0;
    for (int i = 0; i < started; i++) {
        total += w[i].n_lat;
        if (w[i].st != FLEET_OK) {
            fprintf(stderr, "fleet run: thread %d: %s\n", i, w[i].err);
            st = w[i].st;
        }
    }
    double *all = total > 0 ? malloc(sizeof *all * (size_t)total) : NULL;
    for (int i = 0; i < started && all != NULL; i++) {
        memcpy(all + n_lat, w[i].lat, sizeof *all * (size_t)w[i].n_lat);
        n_lat += w[i].n_lat;
    }
    if (st == FLEET_OK && n_lat > 0) {
        qsort(all, (size_t)n_lat, sizeof *all, by_value);
        print_outputs(&w[0]);
        printf("  %ld runs in %.2f s: %.1f runs/s, %.1f samples/s; latency p50 %.3f ms, "
               "p99 %.3f ms\n",
               n_lat, elapsed, (double)n_lat / elapsed, (double)n_lat * (double)o->batch / elapsed,
               all[rank(n_lat, 0.50)], all[rank(n_lat, 0.99)]);
    }
    free(all);
    /* every thread ran the model at least once (its warm-up): thread 0's
     * outputs are there even when no timed run finished */
    int rc = st == FLEET_OK ? 0 : 1;
    if (rc == 0 && out_paths != NULL)
        rc = write_outputs(&w[0], out_paths);
    for (int i = 0; w != NULL && i < o->threads; i++) {
        fleet_cli_model_tensors_release(w[i].in, w[i].out);
        free(w[i].lat);
    }
    free(w);
    return rc;
}

int fleet_cli_run(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o, "run");
    fleet_device *dev = rc == 0 ? device_of(&o, "run") : NULL;
    if (dev == NULL) {
        opts_free(&o);
        return rc ? rc : 1;
    }
    fleet_onnx_options oo = onnx_options(&o);
    fleet_model *m;
    double t0 = now_s();
    if (fleet_model_load_onnx(dev, o.path, &oo, &m) != FLEET_OK) {
        fprintf(stderr, "fleet run: %s\n", fleet_last_error());
        opts_free(&o);
        return 1;
    }
    double load_ms = (now_s() - t0) * 1e3;
    feeds in = {0};
    char *out_paths[FLEET_MODEL_MAX_IO] = {0};
    rc = read_inputs(&o, m, &o.batch, &in);
    if (rc == 0 && o.output_dir != NULL)
        rc = plan_outputs(o.output_dir, m, out_paths);
    if (rc == 0)
        rc = run_and_report(&o, dev, m, load_ms, &in, o.output_dir != NULL ? out_paths : NULL);
    for (int i = 0; i < FLEET_MODEL_MAX_IO; i++)
        free(out_paths[i]);
    feeds_free(&in);
    fleet_model_destroy(m);
    opts_free(&o);
    return rc;
}
