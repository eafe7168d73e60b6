/* onnx_node_tests — ONNX's own backend node tests (Debian's libonnx-testdata:
 * data/node/test_*: model.onnx, test_data_set_N/input_i.pb and
 * output_i.pb), loaded with fleet_model_load_onnx_memory and run on the
 * default device; outputs compared as ONNX's runner does (rtol 1e-3, atol
 * 1e-7 for floats; integers and bools equal).
 *
 * A test whose model fleet refuses at load with FLEET_ERR_UNSUPPORTED is
 * excluded, with the reason; a refusal of any other kind, a run that
 * fails, or a wrong value fails. Prints one line per op (passed / failed /
 * excluded, and the first reasons), then the totals; fails when any test
 * failed. FLEET_ONNX_TESTDATA overrides the folder (bench/onnx_models.py
 * writes real exported models in this layout, with onnxruntime's outputs),
 * FLEET_ONNX_NORMWISE=tol compares floats by normwise relative error (and
 * prints it), FLEET_ONNX_THREADS=1,4,16 then runs each model that passed
 * from that many threads at once (three runs each, one past 4 threads,
 * every output checked);
 * Named dimensions of the inputs past the first are bound to the sizes of
 * the test's inputs (the first stays the batch).
 * FLEET_ONNX_TESTS=substr
 * runs the tests whose name contains it (and prints each). Skips (77) when
 * the folder is missing: install libonnx-testdata (scripts/install-deps.sh). */
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#include "fleet/onnx.h"
#include "onnx/import.h"
#include "onnx/onnx_proto.h"
#include "test_util.h"

#define DEFAULT_DIR "/usr/share/libonnx-testdata/data/node"
#define MAX_OPS 256

static fleet_device *dev;
static bool verbose;

typedef struct op_row {
    char op[64];
    int passed, failed, excluded;
    char reasons[3][160];
    int n_reasons;
} op_row;

static op_row rows[MAX_OPS];
static int n_rows;

static op_row *row_of(const char *op)
{
    for (int i = 0; i < n_rows; i++)
        if (strcmp(rows[i].op, op) == 0)
            return &rows[i];
    if (n_rows == MAX_OPS)
        return &rows[MAX_OPS - 1];
    op_row *r = &rows[n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    return r;
}

static void add_reason(op_row *r, const char *test, const char *why)
{
    if (r->n_reasons < 3)
        snprintf(r->reasons[r->n_reasons++], sizeof r->reasons[0], "%s: %.120s", test, why);
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)(n > 0 ? n : 1));
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* The op a test is about: its one node's op_type, or "composite". */
static void op_of(const unsigned char *buf, size_t size, char *op, size_t cap)
{
    fleet__onnx_model m;
    snprintf(op, cap, "(unreadable)");
    if (fleet__onnx_parse(buf, size, &m) != FLEET_OK)
        return;
    if (m.graph.n_nodes == 1)
        snprintf(op, cap, "%.*s", (int)m.graph.nodes[0].op_type.n,
                 (const char *)m.graph.nodes[0].op_type.p);
    else
        snprintf(op, cap, "(composite)");
    fleet__onnx_model_free(&m);
}

/* A .pb TensorProto as a host buffer of its dtype; false if fleet has no such dtype. */
static bool read_pb(const char *path, fleet_dtype *dt, int *ndim, int64_t *shape, void **data,
                    size_t *bytes, char *why, size_t cap)
{
    size_t size;
    unsigned char *buf = read_file(path, &size);
    if (buf == NULL) {
        snprintf(why, cap, "cannot read %s", path);
        return false;
    }
    fleet__onnx_model holder;
    fleet__onnx_tensor t;
    bool ok = fleet__onnx_parse_tensor(buf, size, &holder, &t) == FLEET_OK;
    switch (t.data_type) {
    case FLEET__ONNX_FLOAT: *dt = FLEET_DTYPE_F32; break;
    case FLEET__ONNX_INT64: *dt = FLEET_DTYPE_I64; break;
    case FLEET__ONNX_INT32: *dt = FLEET_DTYPE_I32; break;
    case FLEET__ONNX_BOOL: *dt = FLEET_DTYPE_BOOL; break;
    case FLEET__ONNX_FLOAT16: *dt = FLEET_DTYPE_F16; break;
    default: ok = false; break;
    }
    if (ok) {
        *ndim = t.ndim;
        memcpy(shape, t.dims, sizeof(int64_t) * (size_t)t.ndim);
        int64_t n = fleet__onnx_tensor_numel(&t);
        *bytes = (size_t)n * fleet_dtype_size(*dt);
        *data = malloc(*bytes > 0 ? *bytes : 1);
        ok = fleet__onnx_tensor_read(&holder, &t, *data, *bytes) == FLEET_OK;
        if (!ok)
            free(*data);
    }
    if (!ok)
        snprintf(why, cap, "test data of a dtype fleet does not have (%d)", (int)t.data_type);
    free(buf);
    return ok;
}

typedef enum { PASS, FAIL, EXCLUDED } outcome;

static bool close_enough(fleet_dtype dt, const void *got, const void *want, size_t bytes,
                         char *why, size_t cap)
{
    if (dt != FLEET_DTYPE_F32) {
        if (memcmp(got, want, bytes) != 0) {
            snprintf(why, cap, "%s values differ", fleet_dtype_name(dt));
            return false;
        }
        return true;
    }
    const float *g = got, *w = want;
    const char *nw = getenv("FLEET_ONNX_NORMWISE");
    if (nw != NULL) { /* real models: ||got - want|| / ||want|| against a bound */
        double num = 0, den = 0;
        for (size_t i = 0; i < bytes / 4; i++) {
            double d = (double)g[i] - (double)w[i];
            num += d * d;
            den += (double)w[i] * w[i];
        }
        double rel = sqrt(num) / (sqrt(den) > 0 ? sqrt(den) : 1.0);
        snprintf(why, cap, "normwise relative error %.3g", rel);
        return rel <= atof(nw);
    }
    for (size_t i = 0; i < bytes / 4; i++) {
        if (isnan(w[i]) ? isnan(g[i]) : (g[i] == w[i] || fabsf(g[i] - w[i]) <= 1e-7f + 1e-3f * fabsf(w[i])))
            continue;
        snprintf(why, cap, "element %zu is %.8g, expected %.8g", i, (double)g[i], (double)w[i]);
        return false;
    }
    return true;
}

/* ---- the same run from many threads (FLEET_ONNX_THREADS=1,4,16) --------------------------- */

typedef struct host_tensor {
    fleet_dtype dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    void *data;
    size_t bytes;
} host_tensor;

typedef struct io_set {
    fleet_model *m;
    int ni, no;
    host_tensor in[64], out[64]; /* inputs, and the expected outputs */
} io_set;

typedef struct runner {
    const io_set *io;
    int runs;
    bool ok;
    char why[160];
} runner;

/* Runs of the shared model on this thread's own tensors, each output
 * checked against the expected one. */
static void *runner_main(void *arg)
{
    runner *r = arg;
    const io_set *io = r->io;
    fleet_tensor *in[64] = {0}, *out[64] = {0};
    r->ok = true;
    for (int i = 0; r->ok && i < io->ni; i++)
        r->ok = fleet_tensor_create(dev, io->in[i].dtype, io->in[i].ndim, io->in[i].shape,
                                    &in[i]) == FLEET_OK &&
                fleet_tensor_copy_from_host(in[i], io->in[i].data, io->in[i].bytes) == FLEET_OK;
    for (int i = 0; r->ok && i < io->no; i++)
        r->ok = fleet_tensor_create(dev, io->out[i].dtype, io->out[i].ndim, io->out[i].shape,
                                    &out[i]) == FLEET_OK;
    for (int run = 0; r->ok && run < r->runs; run++) {
        r->ok = fleet_model_run(io->m, (const fleet_tensor *const *)in, io->ni, out, io->no) ==
                FLEET_OK;
        if (!r->ok)
            snprintf(r->why, sizeof r->why, "run: %s", fleet_last_error());
        for (int i = 0; r->ok && i < io->no; i++) {
            void *got = malloc(io->out[i].bytes + 1);
            r->ok = fleet_tensor_copy_to_host(out[i], got, io->out[i].bytes) == FLEET_OK &&
                    close_enough(io->out[i].dtype, got, io->out[i].data, io->out[i].bytes, r->why,
                                 sizeof r->why);
            free(got);
        }
    }
    for (int i = 0; i < 64; i++) {
        if (in[i] != NULL)
            fleet_tensor_release(in[i]);
        if (out[i] != NULL)
            fleet_tensor_release(out[i]);
    }
    return NULL;
}

static bool runs_from_threads(const io_set *io, int n, char *why, size_t cap)
{
    runner *r = calloc((size_t)n, sizeof *r);
    for (int i = 0; i < n; i++)
        r[i].io = io, r[i].runs = n > 4 ? 1 : 3; /* many threads: one run each */
    test_run_threads(n, runner_main, r, sizeof *r);
    bool ok = true;
    for (int i = 0; i < n && ok; i++)
        if (!r[i].ok) {
            snprintf(why, cap, "thread %d of %d: %s", i, n, r[i].why);
            ok = false;
        }
    if (ok) {
        size_t len = strlen(why);
        snprintf(why + len, cap - len, "; the same from %d threads", n);
    }
    free(r);
    return ok;
}

/* The named dimensions of the model's inputs past their first (the batch
 * stays symbolic), bound to the sizes of the test's inputs, as a user binds
 * a sequence length: names point into the decoded model (dims->model). */
typedef struct dim_binding {
    fleet__onnx_model model;
    char names[16][64];
    const char *name_ptrs[16];
    int64_t values[16];
    int n;
} dim_binding;

static void bind_dims(const unsigned char *buf, size_t size, const char *dir, const char *name,
                      dim_binding *b)
{
    b->n = 0;
    if (fleet__onnx_parse(buf, size, &b->model) != FLEET_OK)
        return; /* the load reports it */
    const fleet__onnx_graph *g = &b->model.graph;
    int data_input = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const fleet__onnx_value_info *vi = &g->inputs[i];
        bool init = false;
        for (int k = 0; k < g->n_initializers && !init; k++)
            init = g->initializers[k].name.n == vi->name.n &&
                   memcmp(g->initializers[k].name.p, vi->name.p, vi->name.n) == 0;
        if (init)
            continue;
        char path[1200], why[64];
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", dir, name, data_input++);
        fleet_dtype dt;
        int nd;
        int64_t shape[FLEET_MAX_DIMS];
        void *data;
        size_t bytes;
        if (!vi->has_shape || !read_pb(path, &dt, &nd, shape, &data, &bytes, why, sizeof why))
            continue;
        free(data);
        for (int d = 1; d < vi->ndim && d < nd && b->n < 16; d++) {
            const fleet__onnx_dim *dim = &vi->dims[d];
            if (!dim->has_param || dim->param.n == 0 || dim->param.n >= 64)
                continue;
            memcpy(b->names[b->n], dim->param.p, dim->param.n);
            b->names[b->n][dim->param.n] = '\0';
            bool seen = false;
            for (int k = 0; k < b->n && !seen; k++)
                seen = strcmp(b->names[k], b->names[b->n]) == 0;
            if (!seen) {
                b->name_ptrs[b->n] = b->names[b->n];
                b->values[b->n++] = shape[d];
            }
        }
    }
    fleet__onnx_model_free(&b->model);
}

static outcome run_test(const char *dir, const char *name, char *why, size_t cap)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
    size_t size;
    unsigned char *buf = read_file(path, &size);
    if (buf == NULL) {
        snprintf(why, cap, "no model.onnx");
        return FAIL;
    }
    fleet_model *m = NULL;
    dim_binding b;
    bind_dims(buf, size, dir, name, &b);
    fleet_onnx_options o = FLEET_ONNX_OPTIONS_INIT;
    o.dim_names = b.name_ptrs, o.dim_values = b.values, o.n_dims = b.n;
    fleet_status st = fleet_model_load_onnx_memory(dev, buf, size, &o, &m);
    free(buf);
    if (st != FLEET_OK) {
        snprintf(why, cap, "%s", fleet_last_error());
        return st == FLEET_ERR_UNSUPPORTED ? EXCLUDED : FAIL;
    }
    outcome res = PASS;
    int ni = fleet_model_input_count(m), no = fleet_model_output_count(m);
    fleet_tensor *in[64] = {0}, *outs[64] = {0};
    void *want[64] = {0};
    size_t want_bytes[64];
    io_set io = {.m = m, .ni = ni, .no = no};
    for (int i = 0; i < ni && res == PASS; i++) {
        fleet_dtype dt;
        int nd;
        int64_t shape[FLEET_MAX_DIMS];
        void *data;
        size_t bytes;
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", dir, name, i);
        if (!read_pb(path, &dt, &nd, shape, &data, &bytes, why, cap)) {
            res = EXCLUDED;
            break;
        }
        st = fleet_tensor_create(dev, dt, nd, shape, &in[i]);
        if (st == FLEET_OK)
            st = fleet_tensor_copy_from_host(in[i], data, bytes);
        io.in[i] = (host_tensor){dt, nd, {0}, data, bytes};
        memcpy(io.in[i].shape, shape, sizeof shape);
        if (st != FLEET_OK) {
            snprintf(why, cap, "input %d: %s", i, fleet_last_error());
            res = FAIL;
        }
    }
    for (int i = 0; i < no && res == PASS; i++) {
        fleet_dtype dt;
        int nd;
        int64_t shape[FLEET_MAX_DIMS];
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_%d.pb", dir, name, i);
        if (!read_pb(path, &dt, &nd, shape, &want[i], &want_bytes[i], why, cap)) {
            res = EXCLUDED;
            break;
        }
        io.out[i] = (host_tensor){dt, nd, {0}, want[i], want_bytes[i]};
        memcpy(io.out[i].shape, shape, sizeof shape);
        if ((st = fleet_tensor_create(dev, dt, nd, shape, &outs[i])) != FLEET_OK) {
            snprintf(why, cap, "output %d: %s", i, fleet_last_error());
            res = FAIL;
        }
    }
    if (res == PASS &&
        fleet_model_run(m, (const fleet_tensor *const *)in, ni, outs, no) != FLEET_OK) {
        snprintf(why, cap, "run: %s", fleet_last_error());
        res = FAIL;
    }
    for (int i = 0; i < no && res == PASS; i++) {
        void *got = malloc(want_bytes[i] > 0 ? want_bytes[i] : 1);
        if (fleet_tensor_copy_to_host(outs[i], got, want_bytes[i]) != FLEET_OK) {
            snprintf(why, cap, "read: %s", fleet_last_error());
            res = FAIL;
        } else if (!close_enough(fleet_tensor_dtype(outs[i]), got, want[i], want_bytes[i], why,
                                 cap)) {
            res = FAIL;
        }
        free(got);
    }
    const char *threads = getenv("FLEET_ONNX_THREADS");
    for (const char *t = threads; res == PASS && t != NULL && *t;) {
        int n = atoi(t);
        if (n >= 1 && !runs_from_threads(&io, n, why, cap))
            res = FAIL;
        t = strchr(t, ',') ? strchr(t, ',') + 1 : "";
    }
    for (int i = 0; i < 64; i++) {
        if (in[i] != NULL)
            ASSERT_OK(fleet_tensor_release(in[i]));
        if (outs[i] != NULL)
            ASSERT_OK(fleet_tensor_release(outs[i]));
        free(want[i]);
        free(io.in[i].data);
    }
    ASSERT_OK(fleet_model_destroy(m));
    return res;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_op(const void *a, const void *b)
{
    return strcmp(((const op_row *)a)->op, ((const op_row *)b)->op);
}

TEST(every_node_test_of_every_claimed_op)
{
    const char *dir = getenv("FLEET_ONNX_TESTDATA") ? getenv("FLEET_ONNX_TESTDATA") : DEFAULT_DIR;
    const char *only = getenv("FLEET_ONNX_TESTS");
    verbose = only != NULL || getenv("FLEET_ONNX_NORMWISE") != NULL;
    DIR *d = opendir(dir);
    ASSERT_TRUE(d != NULL);
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "test_", 5) != 0 || (only && !strstr(e->d_name, only)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 512;
            names = realloc(names, sizeof *names * (size_t)cap);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    int total[3] = {0};
    for (int i = 0; i < n; i++) {
        char path[1200], op[64], why[400] = "";
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, names[i]);
        size_t size;
        unsigned char *buf = read_file(path, &size);
        if (buf == NULL)
            continue;
        op_of(buf, size, op, sizeof op);
        free(buf);
        outcome o = run_test(dir, names[i], why, sizeof why);
        op_row *r = row_of(op);
        total[o]++;
        if (o == PASS)
            r->passed++;
        else if (o == FAIL)
            r->failed++, add_reason(r, names[i], why);
        else
            r->excluded++, add_reason(r, names[i], why);
        if (verbose || o == FAIL)
            printf("  %-8s %s%s%s\n", o == PASS ? "pass" : o == FAIL ? "FAIL" : "excluded",
                   names[i], why[0] ? ": " : "", why);
        free(names[i]);
    }
    free(names);
    qsort(rows, (size_t)n_rows, sizeof rows[0], by_op);
    printf("\n| op | passed | failed | excluded | first reasons |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        const op_row *r = &rows[i];
        fleet__onnx_str op = {(const uint8_t *)r->op, strlen(r->op)};
        bool claimed = fleet__onnx_translator(op, 21) != NULL || r->op[0] == '(';
        if (!claimed && r->passed == 0 && r->failed == 0 && !verbose)
            continue; /* ops fleet does not claim: every test excluded */
        printf("| %s | %d | %d | %d |", r->op, r->passed, r->failed, r->excluded);
        for (int k = 0; k < r->n_reasons; k++)
            printf("%s %s", k ? ";" : "", r->reasons[k]);
        printf(" |\n");
    }
    printf("\nnode tests: %d passed, %d failed, %d excluded (ops fleet does not claim are "
           "excluded and not listed)\n", total[PASS], total[FAIL], total[EXCLUDED]);
    ASSERT_EQ(total[FAIL], 0);
}

int main(int argc, char **argv)
{
    const char *dir = getenv("FLEET_ONNX_TESTDATA") ? getenv("FLEET_ONNX_TESTDATA") : DEFAULT_DIR;
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("SKIP: no ONNX node tests at %s (install libonnx-testdata)\n", dir);
        return 77;
    }
    dev = test_default_device();
    printf("device %s, node tests from %s\n", fleet_device_name(dev), dir);
    return test_main(argc, argv);
}
