/* model/plan.c — compiling a model for one batch size: concrete shapes,
 * views, steps, liveness and the arena layout; and the per-model plan list
 * (compile once per batch size). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "model/plan.h"
#include "ops/ops_internal.h"
#include "core/prim.h"

/* ---- the plan list -------------------------------------------------------------- */

static fleet_status compile(fleet_model *m, int64_t batch, fleet__plan **out);

static const fleet__plan *find(const fleet_model *m, int64_t batch)
{
    for (const fleet__plan *p = fleet_atomic_load_acquire(&((fleet_model *)m)->plans); p != NULL;
         p = p->next)
        if (p->batch == batch)
            return p;
    return NULL;
}

fleet_status fleet__plan_get(fleet_model *m, int64_t batch, const fleet__plan **out)
{
    const fleet__plan *p = find(m, batch);
    if (FLEET_LIKELY(p != NULL)) {
        *out = p;
        return FLEET_OK;
    }
    fleet_status st = FLEET_OK;
    fleet__mutex_lock(&m->lock);
    if ((p = find(m, batch)) == NULL) {
        fleet__plan *np;
        if ((st = compile(m, batch, &np)) == FLEET_OK) {
            np->next = fleet_atomic_load_relaxed(&m->plans);
            fleet_atomic_store_release(&m->plans, np); /* publishes np's contents */
            fleet_atomic_add_relaxed(&m->compiles, 1);
            fleet_atomic_add_relaxed(&m->n_plans, 1);
            uint64_t prev = fleet_atomic_load_relaxed(&m->arena_bytes_max);
            while (np->arena_bytes > prev &&
                   !fleet_atomic_cas_relaxed(&m->arena_bytes_max, &prev, np->arena_bytes))
                ;
            FLEET_LOG_DEBUGF("model %p: plan for batch %lld: %d steps, arena %zu bytes", (void *)m,
                             (long long)batch, np->n_steps, np->arena_bytes);
            p = np;
        }
    }
    fleet__mutex_unlock(&m->lock);
    *out = p;
    return st;
}

static void plan_free(fleet__plan *p)
{
    if (p == NULL)
        return;
    free(p->tmpl);
    free(p->base);
    free(p->needed);
    free(p->steps);
    free(p);
}

void fleet__plans_free(fleet_model *m)
{
    fleet__plan *p = fleet_atomic_load_relaxed(&m->plans);
    while (p != NULL) {
        fleet__plan *next = p->next;
        plan_free(p);
        p = next;
    }
    fleet_atomic_store_relaxed(&m->plans, NULL);
}

/* ---- compile ---------------------------------------------------------------------- */

/* One block of the arena: a value's memory or a step's scratch. */
typedef struct item {
    size_t bytes;
    int first, last;   /* steps during which it is live (inclusive) */
    size_t offset;
    fleet_value value; /* or -1 for scratch of step `first`          */
} item;

static int by_size_desc(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->first - y->first;
}

static size_t align_up(size_t n)
{
    return (n + FLEET__ARENA_ALIGN - 1) / FLEET__ARENA_ALIGN * FLEET__ARENA_ALIGN;
}

/* Greedy packing, largest first: each block goes at the lowest offset where
 * it overlaps no placed block whose lifetime intersects its own. */
static size_t pack(item *items, int n)
{
    qsort(items, (size_t)n, sizeof *items, by_size_desc);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < i; j++) {
                bool live_together = items[j].first <= items[i].last &&
                                     items[i].first <= items[j].last;
                if (live_together && off < items[j].offset + items[j].bytes &&
                    items[j].offset < off + items[i].bytes) {
                    off = items[j].offset + items[j].bytes;
                    moved = true;
                }
            }
        }
        items[i].offset = off;
        if (off + items[i].bytes > total)
            total = off + items[i].bytes;
    }
    return total;
}

/* Concrete shape of value v; bounded so that every byte count fits. */
static fleet_status concretize(const fleet__value *v, int64_t batch, fleet_tensor *t,
                               fleet_device *dev)
{
    memset(t, 0, sizeof *t);
    t->device = dev;
    t->dtype = v->dtype;
    int64_t shape[FLEET_MAX_DIMS], numel = 1;
    for (int d = 0; d < v->ndim; d++) {
        if (v->shape[d] < -(((int64_t)1 << 40) / batch))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "fleet_model_run: batch %lld makes a "
                                "dimension of more than 2^40", (long long)batch);
        int64_t s = fleet__dim_at(v->shape[d], batch);
        shape[d] = s;
        if (s != 0 && numel > ((int64_t)1 << 40) / s)
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                "fleet_model_run: batch %lld makes a value of more than 2^40 "
                                "elements", (long long)batch);
        numel *= s;
    }
    fleet__tensor_set_shape(t, v->ndim, shape);
    return FLEET_OK;
}

/* ---- compile: named passes --------------------------------------------------------
 *
 *   prune      the values an output needs
 *   readers    which needed nodes read each value
 *   fuse       a ReLU into the biased Linear whose only reader it is
 *   shapes     every value's concrete shape for the batch
 *   views      which values are views of another's memory, which own theirs
 *   steps      a step per node that owns its memory, in definition order
 *   check      each step's dtype and layout, as its op entry needs them
 *   lifetimes  each block of the arena live from its writer to its last reader
 *   pack       offsets in the arena, blocks live together never sharing bytes
 *
 * The graph is in definition order, which is topological; every pass walks
 * it forwards except prune. */

typedef struct compiler {
    fleet_model *m;
    fleet__plan *p;
    int nv;
    int *readers;     /* per value: needed nodes reading it, plus outputs      */
    int *reader_at;   /* the nodes reading v: reader_node[reader_at[v] ...     */
    int *reader_node; /*   ... reader_at[v + 1])                               */
    bool *fused;      /* a ReLU value computed by its producer's step          */
    bool *relu;       /* a Linear value whose step applies the fused ReLU      */
    int *root;        /* the value whose memory v lives in (-1: a weight)      */
    int *def;         /* the step writing v; -1: none (input, weight, view)    */
    item *items;
    int n_items;
} compiler;

static fleet_status no_memory(void)
{
    return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "fleet_model_run: no host memory to compile");
}

static const fleet__node *producer(const compiler *c, fleet_value v)
{
    const fleet__value *val = &c->m->values[v];
    return val->kind == FLEET__VALUE_NODE ? &c->m->nodes[val->index] : NULL;
}

static void pass_prune(compiler *c)
{
    const fleet_model *m = c->m;
    for (int i = 0; i < m->n_outputs; i++)
        c->p->needed[m->outputs[i].value] = true;
    for (int n = m->n_nodes - 1; n >= 0; n--) {
        const fleet__node *node = &m->nodes[n];
        if (!c->p->needed[node->out])
            continue;
        for (int k = 0; k < node->n_in; k++)
            if (node->in[k] != FLEET_NO_VALUE)
                c->p->needed[node->in[k]] = true;
    }
}

static fleet_status pass_readers(compiler *c)
{
    const fleet_model *m = c->m;
    int edges = 0;
    for (int n = 0; n < m->n_nodes; n++)
        for (int k = 0; c->p->needed[m->nodes[n].out] && k < m->nodes[n].n_in; k++)
            if (m->nodes[n].in[k] != FLEET_NO_VALUE) {
                c->readers[m->nodes[n].in[k]]++;
                edges++;
            }
    if ((c->reader_node = fleet__calloc((size_t)edges + 1, sizeof *c->reader_node)) == NULL)
        return no_memory();
    for (int v = 0; v < c->nv; v++)
        c->reader_at[v + 1] = c->reader_at[v] + c->readers[v];
    int *fill = c->def; /* scratch here; pass_views sets def for real */
    for (int v = 0; v < c->nv; v++)
        fill[v] = c->reader_at[v];
    for (int n = 0; n < m->n_nodes; n++)
        for (int k = 0; c->p->needed[m->nodes[n].out] && k < m->nodes[n].n_in; k++)
            if (m->nodes[n].in[k] != FLEET_NO_VALUE)
                c->reader_node[fill[m->nodes[n].in[k]]++] = n;
    for (int i = 0; i < m->n_outputs; i++)
        c->readers[m->outputs[i].value]++;
    return FLEET_OK;
}

static void pass_fuse(compiler *c)
{
    fleet_model *m = c->m;
    for (int n = 0; n < m->n_nodes; n++) {
        const fleet__node *node = &m->nodes[n];
        if (!c->p->needed[node->out] || node->op != FLEET__NODE_ELEMENTWISE ||
            node->attr.ew.op != FLEET__EW_RELU || c->readers[node->in[0]] != 1)
            continue;
        const fleet__node *prod = producer(c, node->in[0]);
        if (prod == NULL || prod->op != FLEET__NODE_LINEAR || prod->in[2] == FLEET_NO_VALUE)
            continue;
        c->fused[node->out] = true;
        c->relu[node->in[0]] = true;
        fleet_atomic_add_relaxed(&m->fusions, 1);
    }
}

static fleet_status pass_shapes(compiler *c, int64_t batch)
{
    for (int v = 0; v < c->nv; v++) {
        fleet_status st = concretize(&c->m->values[v], batch, &c->p->tmpl[v], c->m->device);
        if (st != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}

bool fleet__node_view(const fleet__node *n, const fleet_tensor *src, int ndim,
                      const int64_t *shape, fleet_tensor *view)
{
    *view = *src;
    fleet__tensor_set_shape(view, ndim, shape);
    switch (n->op) {
    case FLEET__NODE_RESHAPE:
        return fleet_tensor_is_contiguous(src);
    case FLEET__NODE_PERMUTE:
        for (int d = 0; d < ndim; d++)
            view->strides[d] = src->strides[n->attr.perm[d]];
        return true;
    case FLEET__NODE_SLICE:
        for (int d = 0; d < ndim; d++) {
            view->offset += n->attr.slice.start[d] * src->strides[d];
            view->strides[d] = src->strides[d] * n->attr.slice.step[d];
        }
        return true;
    case FLEET__NODE_EXPAND: /* src's dims aligned at the last; stretched ones step 0 */
        for (int d = 0; d < ndim; d++) {
            int k = d - (ndim - src->ndim);
            view->strides[d] = k >= 0 && src->shape[k] == shape[d] ? src->strides[k] : 0;
        }
        return true;
    default:
        return false;
    }
}

/* Whether a node takes t as its operand k as it is laid out: elementwise
 * ops, concatenation and views take any layout, a GEMM operand rows or
 * columns of unit stride, everything else (and a linear's bias) contiguous
 * tensors only. */
static bool takes(const fleet__node *node, int k, const fleet_tensor *t)
{
    if (fleet__node_is_view(node->op))
        return true;
    switch (node->op) {
    case FLEET__NODE_ELEMENTWISE:
    case FLEET__NODE_CONCAT:
        return true;
    case FLEET__NODE_MATMUL:
        return fleet__gemm_operand_ok(t);
    case FLEET__NODE_LINEAR:
        return k < 2 ? fleet__gemm_operand_ok(t) : fleet_tensor_is_contiguous(t);
    default:
        return fleet_tensor_is_contiguous(t);
    }
}

/* Whether a reader of value v, laid out as t, needs it otherwise. */
static bool readers_need_copy(const compiler *c, fleet_value v, const fleet_tensor *t)
{
    for (int r = c->reader_at[v]; r < c->reader_at[v + 1]; r++) {
        const fleet__node *reader = &c->m->nodes[c->reader_node[r]];
        for (int k = 0; k < reader->n_in; k++)
            if (reader->in[k] == v && !takes(reader, k, t))
                return true;
    }
    return false;
}

static void pass_views(compiler *c)
{
    fleet__plan *p = c->p;
    for (int v = 0; v < c->nv; v++) {
        const fleet__value *val = &c->m->values[v];
        fleet_tensor *t = &p->tmpl[v];
        c->root[v] = v;
        c->def[v] = -1;
        p->base[v] = -1;
        if (val->kind == FLEET__VALUE_WEIGHT) {
            p->base[v] = val->index;
            c->root[v] = -1;
            continue;
        }
        if (val->kind == FLEET__VALUE_INPUT || !p->needed[v])
            continue;
        const fleet__node *node = &c->m->nodes[val->index];
        const fleet_tensor *src = &p->tmpl[node->in[0]];
        fleet_tensor view = *t;
        if (c->fused[v]) /* the linear's own memory */
            view.offset = src->offset;
        else if (!fleet__node_view(node, src, t->ndim, t->shape, &view) ||
                 readers_need_copy(c, v, &view))
            continue; /* owns its memory: a step writes it */
        p->base[v] = p->base[node->in[0]];
        c->root[v] = c->root[node->in[0]];
        *t = view;
    }
}

static void pass_steps(compiler *c)
{
    fleet__plan *p = c->p;
    for (int v = 0; v < c->nv; v++) {
        const fleet__value *val = &c->m->values[v];
        if (val->kind != FLEET__VALUE_NODE || !p->needed[v] || c->root[v] != v)
            continue;
        const fleet__node *node = &c->m->nodes[val->index];
        fleet__step *s = &p->steps[p->n_steps];
        s->kind = fleet__node_is_view(node->op) ? FLEET__STEP_COPY : FLEET__STEP_NODE;
        s->node = val->index;
        s->out = v;
        s->src = node->in[0];
        s->relu = c->relu[v];
        c->def[v] = p->n_steps++;
    }
}

/* The views pass's promise, checked: every operand of a node step laid out
 * as its op entry takes it. */
static fleet_status pass_check(const compiler *c)
{
    const fleet__plan *p = c->p;
    for (int i = 0; i < p->n_steps; i++) {
        const fleet__step *s = &p->steps[i];
        const fleet__node *node = &c->m->nodes[s->node];
        for (int k = 0; s->kind == FLEET__STEP_NODE && k < node->n_in; k++)
            if (node->in[k] != FLEET_NO_VALUE && !takes(node, k, &p->tmpl[node->in[k]]))
                return fleet__error(FLEET_ERR_INTERNAL, "fleet_model_run: operand %d of step %d "
                                    "is laid out as its op cannot take it", k, i);
    }
    return FLEET_OK;
}

static fleet_status pass_lifetimes(compiler *c)
{
    fleet__plan *p = c->p;
    const fleet_model *m = c->m;
    /* A value is live from the step writing it (inputs: from the copy-in,
     * step -1) to the last step reading it or any view of it (outputs: to the
     * copy-out, step n_steps). */
    int *last = fleet__calloc((size_t)c->nv + 1, sizeof *last);
    if (last == NULL)
        return no_memory();
    for (int v = 0; v < c->nv; v++)
        last[v] = c->def[v];
    for (int i = 0; i < p->n_steps; i++) {
        const fleet__node *node = &m->nodes[p->steps[i].node];
        for (int k = 0; k < node->n_in; k++) {
            fleet_value r = node->in[k];
            if (r != FLEET_NO_VALUE && c->root[r] >= 0 && last[c->root[r]] < i)
                last[c->root[r]] = i;
        }
    }
    for (int i = 0; i < m->n_outputs; i++) {
        fleet_value r = m->outputs[i].value;
        if (c->root[r] >= 0)
            last[c->root[r]] = p->n_steps;
    }
    for (int v = 0; v < c->nv; v++) {
        if (c->root[v] != v || !p->needed[v])
            continue;
        c->items[c->n_items++] = (item){.bytes = align_up(fleet_tensor_nbytes(&p->tmpl[v])),
                                        .first = c->def[v], .last = last[v], .value = v};
    }
    free(last);
    /* A convolution's columns: scratch live during its step only. */
    for (int i = 0; i < p->n_steps; i++) {
        fleet__step *s = &p->steps[i];
        const fleet__node *node = &m->nodes[s->node];
        if (s->kind != FLEET__STEP_NODE || node->op != FLEET__NODE_CONV)
            continue;
        s->ws_bytes = fleet__conv_workspace_bytes(&node->attr.conv, &p->tmpl[node->in[0]],
                                                  &p->tmpl[node->in[1]], &p->tmpl[s->out]);
        c->items[c->n_items++] = (item){.bytes = align_up(s->ws_bytes), .first = i, .last = i,
                                        .value = -1 - i};
    }
    return FLEET_OK;
}

static fleet_status pass_pack(compiler *c)
{
    fleet__plan *p = c->p;
    p->arena_bytes = pack(c->items, c->n_items);
    /* Offsets: each arena value's own block, plus its view's offset. */
    size_t *slot = fleet__calloc((size_t)c->nv + 1, sizeof *slot);
    if (slot == NULL)
        return no_memory();
    for (int i = 0; i < c->n_items; i++) {
        if (c->items[i].value >= 0)
            slot[c->items[i].value] = c->items[i].offset;
        else
            p->steps[-1 - c->items[i].value].ws_offset = c->items[i].offset;
    }
    for (int v = 0; v < c->nv; v++)
        if (c->root[v] >= 0)
            p->tmpl[v].offset += (int64_t)(slot[c->root[v]] / fleet_dtype_size(p->tmpl[v].dtype));
    free(slot);
    return FLEET_OK;
}

static fleet_status compile(fleet_model *m, int64_t batch, fleet__plan **out)
{
    int nv = m->n_values;
    size_t n1 = (size_t)nv + 1;
    compiler c = {.m = m, .nv = nv};
    fleet__plan *p = c.p = fleet__calloc(1, sizeof *p);
    fleet_status st = FLEET_OK;
    if (p == NULL || (c.readers = fleet__calloc(n1, sizeof *c.readers)) == NULL ||
        (c.reader_at = fleet__calloc(n1 + 1, sizeof *c.reader_at)) == NULL ||
        (c.fused = fleet__calloc(n1, sizeof *c.fused)) == NULL ||
        (c.relu = fleet__calloc(n1, sizeof *c.relu)) == NULL ||
        (c.root = fleet__calloc(n1, sizeof *c.root)) == NULL ||
        (c.def = fleet__calloc(n1, sizeof *c.def)) == NULL ||
        (c.items = fleet__calloc(n1 + (size_t)m->n_nodes, sizeof *c.items)) == NULL ||
        (p->tmpl = fleet__calloc(n1, sizeof *p->tmpl)) == NULL ||
        (p->base = fleet__calloc(n1, sizeof *p->base)) == NULL ||
        (p->needed = fleet__calloc(n1, sizeof *p->needed)) == NULL ||
        (p->steps = fleet__calloc((size_t)m->n_nodes + 1, sizeof *p->steps)) == NULL) {
        st = no_memory();
        goto out;
    }
    p->model = m;
    p->batch = batch;
    p->n_values = nv;
    pass_prune(&c);
    if ((st = pass_readers(&c)) == FLEET_OK) {
        pass_fuse(&c);
        st = pass_shapes(&c, batch);
    }
    if (st == FLEET_OK) {
        pass_views(&c);
        pass_steps(&c);
        st = pass_check(&c);
    }
    if (st == FLEET_OK)
        st = pass_lifetimes(&c);
    if (st == FLEET_OK)
        st = pass_pack(&c);
out:
    free(c.readers);
    free(c.reader_at);
    free(c.reader_node);
    free(c.fused);
    free(c.relu);
    free(c.root);
    free(c.def);
    free(c.items);
    if (st != FLEET_OK) {
        plan_free(p);
        p = NULL;
    }
    *out = p;
    return st;
}
