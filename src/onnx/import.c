/* onnx/import.c — fleet_model_load_onnx: map the file, decode it
 * (onnx/onnx_proto.c), bind the named dimensions, declare the inputs, make
 * the initializers constants, walk the nodes — folding what is known at load
 * (onnx/fold.c), translating the rest onto the builder (onnx/onnx_ops.c) —
 * declare the outputs and finalize, uploading the weights from the
 * mapping. */
#include "fleet/onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/prim.h"
#include "model/graph.h"
#include "onnx/import.h"
#include "runtime/device.h"

#define B FLEET_DIM_BATCH

/* ---- the value table -------------------------------------------------------------- */

static uint64_t name_hash(fleet__onnx_str s)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < s.n; i++)
        h = (h ^ s.p[i]) * 1099511628211ull;
    return h;
}

static fleet_status no_memory(void)
{
    return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "onnx: no host memory to import the model");
}

fleet__ival *fleet__imp_find(fleet__importer *im, fleet__onnx_str name)
{
    if (im->n_slots == 0)
        return NULL;
    for (size_t i = name_hash(name) & (im->n_slots - 1);; i = (i + 1) & (im->n_slots - 1)) {
        int at = im->slots[i];
        if (at == 0)
            return NULL;
        if (fleet__onnx_str_eq(im->vals[at - 1].name, name))
            return &im->vals[at - 1];
    }
}

static void slot_insert(fleet__importer *im, int index)
{
    size_t i = name_hash(im->vals[index].name) & (im->n_slots - 1);
    while (im->slots[i] != 0)
        i = (i + 1) & (im->n_slots - 1);
    im->slots[i] = index + 1;
}

fleet_status fleet__imp_define(fleet__importer *im, fleet__onnx_str name, fleet__ival **out)
{
    if (fleet__imp_find(im, name) != NULL)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: value '%.*s' is defined twice",
                            (int)name.n, (const char *)name.p);
    if (im->n_vals == im->cap_vals) {
        int cap = im->cap_vals ? im->cap_vals * 2 : 256;
        fleet__ival *v = realloc(im->vals, sizeof *v * (size_t)cap);
        if (v == NULL)
            return no_memory();
        im->vals = v;
        im->cap_vals = cap;
    }
    if ((size_t)(im->n_vals + 1) * 2 > im->n_slots) {
        size_t n = im->n_slots ? im->n_slots * 2 : 512;
        int *slots = fleet__calloc(n, sizeof *slots);
        if (slots == NULL)
            return no_memory();
        free(im->slots);
        im->slots = slots;
        im->n_slots = n;
        for (int i = 0; i < im->n_vals; i++)
            slot_insert(im, i);
    }
    fleet__ival *iv = &im->vals[im->n_vals];
    memset(iv, 0, sizeof *iv);
    iv->name = name;
    iv->v = FLEET_NO_VALUE;
    slot_insert(im, im->n_vals++);
    *out = iv;
    return FLEET_OK;
}

static void ival_free(fleet__ival *iv)
{
    if (iv->owned)
        free(iv->data);
    free(iv->sym);
    iv->data = NULL;
    iv->sym = NULL;
}

fleet_status fleet__imp_input(fleet__importer *im, const fleet__onnx_node *n, int k,
                              fleet__ival **out)
{
    *out = NULL;
    if (k >= n->n_inputs || n->inputs[k].n == 0)
        return FLEET_OK;
    if ((*out = fleet__imp_find(im, n->inputs[k])) == NULL)
        return fleet__error(FLEET_ERR_INVALID_MODEL,
                            "onnx: node '%.*s' reads '%.*s', which no earlier node, input or "
                            "initializer defines",
                            (int)n->name.n, (const char *)n->name.p, (int)n->inputs[k].n,
                            (const char *)n->inputs[k].p);
    return FLEET_OK;
}

/* The entry for output k of n (NULL: the output is unnamed, not wanted). */
static fleet_status out_entry(fleet__importer *im, const fleet__onnx_node *n, int k,
                              fleet__ival **out)
{
    *out = NULL;
    if (k >= n->n_outputs || n->outputs[k].n == 0)
        return FLEET_OK;
    return fleet__imp_define(im, n->outputs[k], out);
}

fleet_status fleet__imp_out_graph(fleet__importer *im, const fleet__onnx_node *n, int k,
                                  fleet_value v)
{
    fleet__ival *iv;
    fleet_status st = out_entry(im, n, k, &iv);
    if (st != FLEET_OK || iv == NULL)
        return st;
    const fleet__value *val = &im->m->values[v];
    iv->kind = FLEET__IV_GRAPH;
    iv->v = v;
    iv->dtype = val->dtype;
    iv->ndim = val->ndim;
    memcpy(iv->shape, val->shape, sizeof iv->shape);
    return FLEET_OK;
}

fleet_status fleet__imp_out_const(fleet__importer *im, const fleet__onnx_node *n, int k,
                                  fleet_dtype dtype, int ndim, const int64_t *shape, void *data,
                                  uint8_t *sym)
{
    fleet__ival *iv;
    fleet_status st = out_entry(im, n, k, &iv);
    if (st != FLEET_OK || iv == NULL) {
        free(data);
        free(sym);
        return st;
    }
    iv->kind = FLEET__IV_CONST;
    iv->dtype = dtype;
    iv->ndim = ndim;
    iv->numel = 1;
    for (int d = 0; d < ndim; d++) {
        iv->shape[d] = shape[d];
        iv->numel *= shape[d];
    }
    iv->data = data;
    iv->owned = true;
    iv->sym = sym;
    return FLEET_OK;
}

fleet_status fleet__imp_value(fleet__importer *im, fleet__ival *iv, fleet_value *out)
{
    if (iv->kind == FLEET__IV_GRAPH || iv->v != FLEET_NO_VALUE) {
        *out = iv->v;
        return FLEET_OK;
    }
    if (iv->sym != NULL)
        for (int64_t i = 0; i < iv->numel; i++)
            if (iv->sym[i])
                return fleet__error(FLEET_ERR_UNSUPPORTED,
                                    "'%.*s' holds the batch size as data", (int)iv->name.n,
                                    (const char *)iv->name.p);
    fleet_status st;
    if (iv->initializer && !iv->owned) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(iv->name.n < 255 ? iv->name.n : 255),
                 (const char *)iv->name.p);
        st = fleet_model_weight(im->m, name, iv->dtype, iv->ndim, iv->shape, out);
        if (st == FLEET_OK)
            st = fleet__model_weight_borrow(im->m, *out, iv->data,
                                            (size_t)iv->numel * fleet_dtype_size(iv->dtype));
    } else {
        st = fleet_model_constant(im->m, iv->dtype, iv->ndim, iv->shape, iv->data, out);
    }
    if (st == FLEET_OK)
        iv->v = *out;
    return st;
}

/* ---- readers ---------------------------------------------------------------------------- */

struct fleet__imp_readers {
    fleet__onnx_str name;
    int count, last;
};

static struct fleet__imp_readers *reader_slot(const fleet__importer *im, fleet__onnx_str name)
{
    size_t mask = im->n_reader_slots - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        struct fleet__imp_readers *r = &im->readers[i];
        if (r->count == 0 || fleet__onnx_str_eq(r->name, name))
            return r;
    }
}

static void count_reader(fleet__importer *im, fleet__onnx_str name, int node)
{
    if (name.n == 0)
        return;
    struct fleet__imp_readers *r = reader_slot(im, name);
    r->name = name;
    r->count++;
    r->last = node > r->last || r->count == 1 ? node : r->last;
}

static fleet_status count_readers(fleet__importer *im)
{
    const fleet__onnx_graph *g = &im->om->graph;
    size_t edges = (size_t)g->n_outputs;
    for (int i = 0; i < g->n_nodes; i++)
        edges += (size_t)g->nodes[i].n_inputs;
    size_t n = 64;
    while (n < 2 * edges + 2)
        n *= 2;
    if ((im->readers = fleet__calloc(n, sizeof *im->readers)) == NULL ||
        (im->done_by = fleet__malloc(sizeof *im->done_by * (size_t)(g->n_nodes + 1))) == NULL ||
        (im->attention_from = fleet__calloc((size_t)g->n_nodes + 1, sizeof(int))) == NULL)
        return no_memory();
    im->n_reader_slots = n;
    for (int i = 0; i < g->n_nodes; i++) {
        im->done_by[i] = FLEET_NO_VALUE;
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            count_reader(im, g->nodes[i].inputs[k], i);
    }
    for (int i = 0; i < g->n_outputs; i++)
        count_reader(im, g->outputs[i].name, -1);
    return FLEET_OK;
}

int fleet__imp_readers(const fleet__importer *im, fleet__onnx_str name, int *last)
{
    const struct fleet__imp_readers *r = reader_slot(im, name);
    *last = r->count > 0 ? r->last : -1;
    return r->count;
}

/* ---- attributes ---------------------------------------------------------------------- */

const fleet__onnx_attr *fleet__imp_attr(const fleet__onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (fleet__onnx_str_is(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

int64_t fleet__imp_attr_int(const fleet__onnx_node *n, const char *name, int64_t dflt)
{
    const fleet__onnx_attr *a = fleet__imp_attr(n, name);
    return a != NULL && a->type == FLEET__ONNX_ATTR_INT ? a->i : dflt;
}

float fleet__imp_attr_float(const fleet__onnx_node *n, const char *name, float dflt)
{
    const fleet__onnx_attr *a = fleet__imp_attr(n, name);
    return a != NULL && a->type == FLEET__ONNX_ATTR_FLOAT ? a->f : dflt;
}

bool fleet__imp_attr_str_is(const fleet__onnx_node *n, const char *name, const char *s, bool dflt)
{
    const fleet__onnx_attr *a = fleet__imp_attr(n, name);
    if (a == NULL || a->type != FLEET__ONNX_ATTR_STRING)
        return dflt;
    return fleet__onnx_str_is(a->s, s);
}

int fleet__imp_attr_ints(const fleet__onnx_node *n, const char *name, const int64_t **ints)
{
    static const int64_t none[1];
    const fleet__onnx_attr *a = fleet__imp_attr(n, name);
    *ints = none; /* never NULL: callers may copy 0 elements from it */
    if (a == NULL || a->type != FLEET__ONNX_ATTR_INTS || a->n_ints == 0)
        return 0;
    *ints = a->ints;
    return a->n_ints;
}

fleet_status fleet__imp_unsupported(const fleet__onnx_node *n, const char *fmt, ...)
{
    (void)n;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return fleet__error(FLEET_ERR_UNSUPPORTED, "%s", what);
}

/* ---- the unsupported list ---------------------------------------------------------- */

/* Add "what" to the list (as much as fits; the error takes its first
 * ERROR_LIST bytes, whole items only). */
#define ERROR_LIST 380
static void record(fleet__importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(fleet__importer *im, const char *fmt, ...)
{
    im->n_unsupported++;
    char item[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    size_t cap = sizeof im->unsupported, need = strlen(item) + 2;
    if (im->unsupported_len + need >= cap)
        return;
    snprintf(im->unsupported + im->unsupported_len, cap - im->unsupported_len, "%s%s",
             im->n_listed > 0 ? "; " : "", item);
    im->unsupported_len += strlen(im->unsupported + im->unsupported_len);
    im->n_listed++;
    if (im->unsupported_len <= ERROR_LIST) {
        im->error_len = im->unsupported_len;
        im->n_in_error = im->n_listed;
    }
}

static void record_node(fleet__importer *im, const fleet__onnx_node *n, const char *why)
{
    record(im, "%.*s (opset %lld, node '%.*s')%s%s", (int)n->op_type.n,
           (const char *)n->op_type.p, (long long)im->opset, (int)n->name.n,
           (const char *)n->name.p, why[0] ? ": " : "", why);
}

/* ---- dtypes and shapes ---------------------------------------------------------------- */

static bool dtype_of(int32_t onnx, fleet_dtype *out)
{
    switch (onnx) {
    case FLEET__ONNX_FLOAT: *out = FLEET_DTYPE_F32; return true;
    case FLEET__ONNX_FLOAT16: *out = FLEET_DTYPE_F16; return true;
    case FLEET__ONNX_BFLOAT16: *out = FLEET_DTYPE_BF16; return true;
    case FLEET__ONNX_INT32: *out = FLEET_DTYPE_I32; return true;
    case FLEET__ONNX_INT64: *out = FLEET_DTYPE_I64; return true;
    case FLEET__ONNX_BOOL: *out = FLEET_DTYPE_BOOL; return true;
    default: return false;
    }
}

static const char *onnx_dtype_name(int32_t onnx)
{
    static const char *const names[] = {
        [0] = "undefined", [1] = "float", [2] = "uint8", [3] = "int8", [4] = "uint16",
        [5] = "int16", [6] = "int32", [7] = "int64", [8] = "string", [9] = "bool",
        [10] = "float16", [11] = "double", [12] = "uint32", [13] = "uint64",
        [14] = "complex64", [15] = "complex128", [16] = "bfloat16"};
    return onnx >= 0 && onnx <= 16 ? names[onnx] : "an unknown dtype";
}

/* ---- the load ---------------------------------------------------------------------------- */

typedef struct loader {
    fleet__importer im;
    fleet__onnx_model om;
    const fleet_onnx_options *opt;
    char dir[PATH_MAX];       /* external data folder; "" for none */
    const char *batch_name;   /* the batch's dim_param              */
    size_t batch_name_len;
} loader;

static bool str_is_n(fleet__onnx_str s, const char *p, size_t n)
{
    return s.n == n && memcmp(s.p, p, n) == 0;
}

/* One declared dimension of an input: a size, the batch, or unbound. */
static fleet_status input_dim(loader *L, const fleet__onnx_value_info *vi, int d, bool first,
                              int64_t *out)
{
    const fleet__onnx_dim *dim = &vi->dims[d];
    if (dim->has_value && dim->value >= 0 && !dim->has_param) {
        *out = dim->value;
        return FLEET_OK;
    }
    if (dim->has_param) {
        for (int i = 0; i < L->opt->n_dims; i++)
            if (fleet__onnx_str_is(dim->param, L->opt->dim_names[i])) {
                *out = L->opt->dim_values[i];
                return FLEET_OK;
            }
        if (L->batch_name == NULL && first && d == 0) {
            L->batch_name = (const char *)dim->param.p;
            L->batch_name_len = dim->param.n;
        }
        if (L->batch_name != NULL && str_is_n(dim->param, L->batch_name, L->batch_name_len)) {
            *out = B;
            return FLEET_OK;
        }
    } else if (first && d == 0 && L->batch_name == NULL && L->opt->batch_dim == NULL) {
        *out = B; /* unnamed and unknown: the batch */
        return FLEET_OK;
    }
    return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                        "fleet_model_load_onnx: dimension %d of input '%.*s' is '%.*s', which is "
                        "not bound: give its size in the options (or fleet run --dim %.*s=N)",
                        d, (int)vi->name.n, (const char *)vi->name.p, (int)dim->param.n,
                        (const char *)dim->param.p, (int)dim->param.n,
                        (const char *)dim->param.p);
}

static bool is_initializer(const fleet__onnx_graph *g, fleet__onnx_str name)
{
    for (int i = 0; i < g->n_initializers; i++)
        if (fleet__onnx_str_eq(g->initializers[i].name, name))
            return true;
    return false;
}

static fleet_status declare_inputs(loader *L)
{
    const fleet__onnx_graph *g = &L->om.graph;
    bool first = true;
    for (int i = 0; i < g->n_inputs; i++) {
        const fleet__onnx_value_info *vi = &g->inputs[i];
        if (is_initializer(g, vi->name))
            continue;
        fleet__ival *iv;
        fleet_status st = fleet__imp_define(&L->im, vi->name, &iv);
        if (st != FLEET_OK)
            return st;
        fleet_dtype dt;
        if (!vi->is_tensor || !dtype_of(vi->elem_type, &dt)) {
            iv->kind = FLEET__IV_POISON;
            record(&L->im, "input '%.*s' is %s", (int)vi->name.n, (const char *)vi->name.p,
                   vi->is_tensor ? onnx_dtype_name(vi->elem_type) : "not a tensor");
            continue;
        }
        if (!vi->has_shape)
            return fleet__error(FLEET_ERR_UNSUPPORTED,
                                "fleet_model_load_onnx: input '%.*s' has no shape",
                                (int)vi->name.n, (const char *)vi->name.p);
        int64_t shape[FLEET_MAX_DIMS];
        for (int d = 0; d < vi->ndim; d++)
            if ((st = input_dim(L, vi, d, first, &shape[d])) != FLEET_OK)
                return st;
        first = false;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(vi->name.n < 255 ? vi->name.n : 255),
                 (const char *)vi->name.p);
        fleet_value v;
        if ((st = fleet_model_input(L->im.m, name, dt, vi->ndim, shape, &v)) != FLEET_OK)
            return st;
        iv->kind = FLEET__IV_GRAPH;
        iv->v = v;
        iv->dtype = dt;
        iv->ndim = vi->ndim;
        memcpy(iv->shape, shape, sizeof(int64_t) * (size_t)vi->ndim);
    }
    return FLEET_OK;
}

/* An external tensor's bytes: location inside the folder, offset, length. */
static fleet_status read_external(const loader *L, const fleet__onnx_tensor *t, void *dst,
                                  size_t bytes)
{
    if (L->dir[0] == '\0')
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "fleet_model_load_onnx: '%.*s' has "
                            "external data and the model came from memory: give "
                            "external_data_dir", (int)t->name.n, (const char *)t->name.p);
    fleet__onnx_str loc = t->location;
    bool bad = loc.n == 0 || loc.n > 255 || loc.p[0] == '/';
    for (size_t i = 0; !bad && i < loc.n; i++) {
        bool start = i == 0 || loc.p[i - 1] == '/';
        bad = loc.p[i] == '\0' || loc.p[i] == '\\' ||
              (start && loc.p[i] == '.' && i + 1 < loc.n && loc.p[i + 1] == '.' &&
               (i + 2 == loc.n || loc.p[i + 2] == '/'));
    }
    if (bad)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "fleet_model_load_onnx: external data "
                            "location '%.*s' of '%.*s' is not a path inside the model's folder",
                            (int)(loc.n < 255 ? loc.n : 255), (const char *)loc.p,
                            (int)t->name.n, (const char *)t->name.p);
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%.*s", L->dir, (int)loc.n, (const char *)loc.p);
    int64_t off = t->ext_offset < 0 ? 0 : t->ext_offset;
    if (t->ext_length >= 0 && (uint64_t)t->ext_length != bytes)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "fleet_model_load_onnx: external data of "
                            "'%.*s' has length %lld, its dims need %zu bytes", (int)t->name.n,
                            (const char *)t->name.p, (long long)t->ext_length, bytes);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fleet__error(FLEET_ERR_IO, "fleet_model_load_onnx: cannot open external data "
                            "'%s': %s", path, strerror(errno));
    size_t got = 0;
    while (got < bytes) {
        ssize_t r = pread(fd, (char *)dst + got, bytes - got, (off_t)(off + (int64_t)got));
        if (r <= 0) {
            close(fd);
            return fleet__error(FLEET_ERR_INVALID_MODEL, "fleet_model_load_onnx: external data "
                                "'%s' ends before %lld + %zu bytes", path, (long long)off, bytes);
        }
        got += (size_t)r;
    }
    close(fd);
    return FLEET_OK;
}

static fleet_status declare_initializers(loader *L)
{
    const fleet__onnx_graph *g = &L->om.graph;
    for (int i = 0; i < g->n_initializers; i++) {
        const fleet__onnx_tensor *t = &g->initializers[i];
        fleet__ival *iv;
        fleet_status st = fleet__imp_define(&L->im, t->name, &iv);
        if (st != FLEET_OK)
            return st;
        fleet_dtype dt;
        if (!dtype_of(t->data_type, &dt)) {
            iv->kind = FLEET__IV_POISON;
            record(&L->im, "initializer '%.*s' is %s", (int)t->name.n, (const char *)t->name.p,
                   onnx_dtype_name(t->data_type));
            continue;
        }
        int64_t numel = fleet__onnx_tensor_numel(t);
        if (numel < 0)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: initializer '%.*s' is too large",
                                (int)t->name.n, (const char *)t->name.p);
        size_t bytes = (size_t)numel * fleet_dtype_size(dt);
        iv->kind = FLEET__IV_CONST;
        iv->initializer = true;
        iv->dtype = dt;
        iv->ndim = t->ndim;
        memcpy(iv->shape, t->dims, sizeof(int64_t) * (size_t)t->ndim);
        iv->numel = numel;
        if (!t->external && t->has_raw && t->raw.n == bytes) {
            iv->data = (void *)t->raw.p; /* the file's bytes, uploaded from there */
            continue;
        }
        if ((iv->data = fleet__malloc(bytes > 0 ? bytes : 1)) == NULL)
            return no_memory();
        iv->owned = true;
        st = t->external ? read_external(L, t, iv->data, bytes)
                         : fleet__onnx_tensor_read(&L->om, t, iv->data, bytes);
        if (st != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

/* One node: poisoned by a poisoned input, folded, or translated. */
static fleet_status walk_node(loader *L, const fleet__onnx_node *n)
{
    fleet__importer *im = &L->im;
    bool std_domain = n->domain.n == 0 || fleet__onnx_str_is(n->domain, "ai.onnx");
    bool poisoned = false;
    for (int k = 0; k < n->n_inputs; k++) {
        fleet__ival *in;
        fleet_status st = fleet__imp_input(im, n, k, &in);
        if (st != FLEET_OK)
            return st;
        poisoned |= in != NULL && in->kind == FLEET__IV_POISON;
    }
    fleet__onnx_translate tr = std_domain ? fleet__onnx_translator(n->op_type, im->opset) : NULL;
    fleet_status st = FLEET_OK;
    if (!poisoned && im->done_by[im->node] != FLEET_NO_VALUE) {
        im->n_fused++; /* computed by an earlier node */
        return fleet__imp_out_graph(im, n, 0, im->done_by[im->node]);
    }
    if (tr == NULL) {
        char why[96] = "";
        if (!std_domain)
            snprintf(why, sizeof why, "domain '%.*s'", (int)(n->domain.n < 64 ? n->domain.n : 64),
                     (const char *)n->domain.p);
        record_node(im, n, why);
        poisoned = true;
    } else if (!poisoned) {
        bool done = false;
        if ((st = fleet__imp_fold(im, n, &done)) == FLEET_OK && !done) {
            st = tr(im, n);
        } else if (st == FLEET_OK) {
            im->n_folded++;
        }
        if (st == FLEET_ERR_UNSUPPORTED) {
            record_node(im, n, fleet_last_error());
            poisoned = true;
            st = FLEET_OK;
        } else if (st != FLEET_OK) {
            char where[160];
            snprintf(where, sizeof where, "fleet_model_load_onnx: node '%.*s' (%.*s)",
                     (int)(n->name.n < 64 ? n->name.n : 64), (const char *)n->name.p,
                     (int)(n->op_type.n < 64 ? n->op_type.n : 64), (const char *)n->op_type.p);
            return fleet__error_prefix(st, where);
        }
    }
    for (int k = 0; poisoned && k < n->n_outputs; k++) {
        if (n->outputs[k].n == 0 || fleet__imp_find(im, n->outputs[k]) != NULL)
            continue;
        fleet__ival *iv;
        if ((st = fleet__imp_define(im, n->outputs[k], &iv)) != FLEET_OK)
            return st;
        iv->kind = FLEET__IV_POISON;
    }
    /* Every output a translator left undefined is an importer bug. */
    for (int k = 0; !poisoned && k < n->n_outputs; k++)
        if (n->outputs[k].n != 0 && fleet__imp_find(im, n->outputs[k]) == NULL)
            return fleet__error(FLEET_ERR_UNSUPPORTED, "onnx: node '%.*s' (%.*s): output %d is "
                                "not produced by fleet", (int)n->name.n, (const char *)n->name.p,
                                (int)n->op_type.n, (const char *)n->op_type.p, k);
    return FLEET_OK;
}

static fleet_status declare_outputs(loader *L)
{
    const fleet__onnx_graph *g = &L->om.graph;
    for (int i = 0; i < g->n_outputs; i++) {
        fleet__ival *iv = fleet__imp_find(&L->im, g->outputs[i].name);
        if (iv == NULL)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: output '%.*s' is never computed",
                                (int)g->outputs[i].name.n, (const char *)g->outputs[i].name.p);
        if (iv->kind == FLEET__IV_POISON)
            continue; /* listed already */
        fleet_value v;
        fleet_status st = fleet__imp_value(&L->im, iv, &v);
        if (st == FLEET_ERR_UNSUPPORTED) {
            record(&L->im, "output '%.*s': %s", (int)iv->name.n, (const char *)iv->name.p,
                   fleet_last_error());
            continue;
        }
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(iv->name.n < 255 ? iv->name.n : 255),
                 (const char *)iv->name.p);
        if (st != FLEET_OK || (st = fleet_model_output(L->im.m, name, v)) != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

static int64_t standard_opset(const fleet__onnx_model *om)
{
    for (int i = 0; i < om->n_opsets; i++)
        if (om->opsets[i].domain.n == 0 || fleet__onnx_str_is(om->opsets[i].domain, "ai.onnx"))
            return om->opsets[i].version;
    return 1; /* the ONNX default when none is named */
}

/* The file's facts, for fleet_onnx_inspect. */
static void report_file(const loader *L, fleet_onnx_report *r)
{
    const fleet__onnx_model *om = &L->om;
    const fleet__onnx_graph *g = &om->graph;
    r->ir_version = om->ir_version;
    r->opset = L->im.opset;
    snprintf(r->producer, sizeof r->producer, "%.*s %.*s", (int)(om->producer_name.n % 32),
             (const char *)om->producer_name.p, (int)(om->producer_version.n % 24),
             (const char *)om->producer_version.p);
    r->nodes = g->n_nodes;
    r->initializers = g->n_initializers;
    for (int i = 0; i < g->n_initializers; i++) {
        int64_t n = fleet__onnx_tensor_numel(&g->initializers[i]);
        r->parameters += n > 0 ? n : 0;
    }
    /* op types by first use, each with its count */
    size_t len = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        fleet__onnx_str op = g->nodes[i].op_type;
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = fleet__onnx_str_eq(g->nodes[j].op_type, op);
        if (seen)
            continue;
        int count = 0;
        for (int j = i; j < g->n_nodes; j++)
            count += fleet__onnx_str_eq(g->nodes[j].op_type, op);
        int w = snprintf(r->ops + len, sizeof r->ops - len, "%s%.*s %d", len ? ", " : "",
                         (int)(op.n < 64 ? op.n : 64), (const char *)op.p, count);
        if (w < 0 || (size_t)w >= sizeof r->ops - len)
            break;
        len += (size_t)w;
    }
}

static fleet_status import(loader *L, fleet_device *device, const uint8_t *buf, size_t size,
                           fleet_model **out, fleet_onnx_report *report)
{
    fleet_status st = fleet__onnx_parse(buf, size, &L->om);
    if (st != FLEET_OK)
        return st;
    L->im.om = &L->om;
    L->im.opset = standard_opset(&L->om);
    if (report != NULL)
        report_file(L, report);
    if (L->opt->batch_dim != NULL) {
        L->batch_name = L->opt->batch_dim;
        L->batch_name_len = strlen(L->opt->batch_dim);
    }
    for (int i = 0; i < L->opt->n_dims; i++)
        if (L->opt->dim_names[i] == NULL || L->opt->dim_values[i] < 0)
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "fleet_model_load_onnx: named "
                                "dimension %d is NULL or negative", i);
    if ((st = fleet_model_create(device, &L->im.m)) != FLEET_OK)
        return st;
    if ((st = count_readers(&L->im)) == FLEET_OK && (st = declare_initializers(L)) == FLEET_OK &&
        (st = declare_inputs(L)) == FLEET_OK) {
        /* Constant nodes first (they read nothing): a fusion that looks
         * ahead of a node then sees the constants of the nodes after it. */
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < L->om.graph.n_nodes && st == FLEET_OK; i++) {
                const fleet__onnx_node *n = &L->om.graph.nodes[i];
                bool constant = fleet__onnx_str_is(n->op_type, "Constant") && n->n_inputs == 0 &&
                                n->domain.n == 0;
                if (constant != (pass == 0))
                    continue;
                L->im.node = i;
                st = walk_node(L, n);
            }
    }
    if (st == FLEET_OK)
        st = declare_outputs(L);
    if (st == FLEET_OK && L->im.n_unsupported > 0) {
        int more = L->im.n_unsupported - L->im.n_in_error;
        char tail[48] = "";
        if (more > 0)
            snprintf(tail, sizeof tail, "; and %d more (fleet info lists them)", more);
        st = fleet__error(FLEET_ERR_UNSUPPORTED,
                          "fleet_model_load_onnx: %d unsupported in the model: %.*s%s",
                          L->im.n_unsupported, (int)L->im.error_len, L->im.unsupported, tail);
    }
    if (st == FLEET_OK) {
        L->im.m->load_folded = (uint64_t)L->im.n_folded;
        L->im.m->load_fused = (uint64_t)L->im.n_fused;
        st = fleet_model_finalize(L->im.m); /* uploads the weights from the mapping */
    }
    if (report != NULL) {
        report->folded = L->im.n_folded;
        report->fused = L->im.n_fused;
        report->n_unsupported = L->im.n_unsupported;
        snprintf(report->unsupported, sizeof report->unsupported, "%s", L->im.unsupported);
        report->load_status = st;
    }
    if (st != FLEET_OK || report != NULL) {
        fleet_model_destroy(L->im.m);
        return st;
    }
    *out = L->im.m;
    return FLEET_OK;
}

static void loader_free(loader *L)
{
    for (int i = 0; i < L->im.n_vals; i++)
        ival_free(&L->im.vals[i]);
    free(L->im.vals);
    free(L->im.slots);
    free(L->im.readers);
    free(L->im.done_by);
    free(L->im.attention_from);
    fleet__onnx_model_free(&L->om);
}

static fleet_status load(fleet_device *device, const uint8_t *buf, size_t size, const char *dir,
                         const fleet_onnx_options *options, fleet_model **out,
                         fleet_onnx_report *report)
{
    static const fleet_onnx_options defaults = FLEET_ONNX_OPTIONS_INIT;
    loader *L = fleet__calloc(1, sizeof *L);
    if (L == NULL)
        return no_memory();
    L->opt = options != NULL ? options : &defaults;
    const char *d = L->opt->external_data_dir != NULL ? L->opt->external_data_dir : dir;
    if (d != NULL)
        snprintf(L->dir, sizeof L->dir, "%s", d);
    fleet_status st = import(L, device, buf, size, out, report);
    loader_free(L);
    free(L);
    return st;
}

static fleet_status enter(fleet_device *device, const fleet_onnx_options *options,
                          fleet_model **out, const char *fn)
{
    fleet_status st = fleet__enter_device(device, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    *out = NULL;
    FLEET_CHECK_ARG(options == NULL || options->n_dims == 0 ||
                        (options->dim_names != NULL && options->dim_values != NULL),
                    FLEET_ERR_NULL_POINTER, "%s: n_dims is %d but the names or values are NULL",
                    fn, options != NULL ? options->n_dims : 0);
    FLEET_CHECK_ARG(options == NULL || options->n_dims >= 0, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: n_dims is negative", fn);
    return FLEET_OK;
}

fleet_status fleet_model_load_onnx_memory(fleet_device *device, const void *data, size_t size,
                                          const fleet_onnx_options *options, fleet_model **out)
{
    static const char fn[] = "fleet_model_load_onnx_memory";
    fleet_status st = enter(device, options, out, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(data != NULL, FLEET_ERR_NULL_POINTER, "%s: data is NULL", fn);
    return load(device, data, size, NULL, options, out, NULL);
}

/* Map the file at path and load it (report: inspect instead). */
static fleet_status load_file(fleet_device *device, const char *fn, const char *path,
                              const fleet_onnx_options *options, fleet_model **out,
                              fleet_onnx_report *report)
{
    FLEET_CHECK_ARG(path != NULL, FLEET_ERR_NULL_POINTER, "%s: path is NULL", fn);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fleet__error(FLEET_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fleet__error(FLEET_ERR_IO, "%s: '%s' is not a regular file", fn, path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = size > 0 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size > 0 && map == MAP_FAILED)
        return fleet__error(FLEET_ERR_IO, "%s: cannot map '%s': %s", fn, path, strerror(errno));
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    static const uint8_t empty[1];
    fleet_status st = load(device, size > 0 ? map : empty, size, dir, options, out, report);
    if (size > 0)
        munmap(map, size);
    return st;
}

fleet_status fleet_model_load_onnx(fleet_device *device, const char *path,
                                   const fleet_onnx_options *options, fleet_model **out)
{
    static const char fn[] = "fleet_model_load_onnx";
    fleet_status st = enter(device, options, out, fn);
    return st != FLEET_OK ? st : load_file(device, fn, path, options, out, NULL);
}

fleet_status fleet_onnx_inspect(fleet_device *device, const char *path,
                                const fleet_onnx_options *options, fleet_onnx_report *out)
{
    static const char fn[] = "fleet_onnx_inspect";
    fleet_model *m;
    fleet_status st = enter(device, options, &m, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    memset(out, 0, sizeof *out);
    st = load_file(device, fn, path, options, &m, out);
    /* a refusal of the model itself is the report's answer */
    return st == FLEET_ERR_UNSUPPORTED ? FLEET_OK : st;
}
