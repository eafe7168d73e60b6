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

static void set_contiguous(fleet_tensor *t)
{
    int64_t stride = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->strides[d] = stride;
        stride *= t->shape[d] > 0 ? t->shape[d] : 1;
    }
}

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
    t->ndim = v->ndim;
    int64_t numel = 1;
    for (int d = 0; d < v->ndim; d++) {
        int64_t s = v->shape[d] == FLEET_DIM_BATCH ? batch : v->shape[d];
        t->shape[d] = s;
        if (s != 0 && numel > ((int64_t)1 << 40) / s)
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                                "fleet_model_run: batch %lld makes a value of more than 2^40 "
                                "elements", (long long)batch);
        numel *= s;
    }
    set_contiguous(t);
    return FLEET_OK;
}

static fleet_status compile(fleet_model *m, int64_t batch, fleet__plan **out)
{
    int nv = m->n_values;
    fleet__plan *p = fleet__calloc(1, sizeof *p);
    int *root = fleet__calloc((size_t)nv + 1, sizeof *root);
    int *def = fleet__calloc((size_t)nv + 1, sizeof *def);
    int *readers = NULL; /* readers of each value, for fusion */
    item *items = fleet__calloc((size_t)nv + (size_t)m->n_nodes + 1, sizeof *items);
    fleet_status st = FLEET_OK;
    if (p == NULL || root == NULL || def == NULL || items == NULL ||
        (p->tmpl = fleet__calloc((size_t)nv + 1, sizeof *p->tmpl)) == NULL ||
        (p->base = fleet__calloc((size_t)nv + 1, sizeof *p->base)) == NULL ||
        (p->needed = fleet__calloc((size_t)nv + 1, sizeof *p->needed)) == NULL ||
        (p->steps = fleet__calloc((size_t)m->n_nodes + 1, sizeof *p->steps)) == NULL) {
        st = fleet__error(FLEET_ERR_OUT_OF_MEMORY, "fleet_model_run: no host memory to compile");
        goto out;
    }
    p->model = m;
    p->batch = batch;
    p->n_values = nv;

    /* Which values matter: outputs and, backwards, what they read. */
    for (int i = 0; i < m->n_outputs; i++)
        p->needed[m->outputs[i].value] = true;
    for (int n = m->n_nodes - 1; n >= 0; n--) {
        const fleet__node *node = &m->nodes[n];
        if (!p->needed[node->out])
            continue;
        for (int k = 0; k < node->n_in; k++)
            if (node->in[k] != FLEET_NO_VALUE)
                p->needed[node->in[k]] = true;
    }

    /* Readers of each value (needed nodes, and outputs), for fusion. */
    readers = fleet__calloc((size_t)nv + 1, sizeof *readers);
    if (readers == NULL) {
        st = fleet__error(FLEET_ERR_OUT_OF_MEMORY, "fleet_model_run: no host memory to compile");
        goto out;
    }
    for (int n = 0; n < m->n_nodes; n++)
        for (int k = 0; p->needed[m->nodes[n].out] && k < m->nodes[n].n_in; k++)
            if (m->nodes[n].in[k] != FLEET_NO_VALUE)
                readers[m->nodes[n].in[k]]++;
    for (int i = 0; i < m->n_outputs; i++)
        readers[m->outputs[i].value]++;

    /* Shapes, views and steps, in definition order (topological). */
    for (int v = 0; v < nv && st == FLEET_OK; v++) {
        const fleet__value *val = &m->values[v];
        fleet_tensor *t = &p->tmpl[v];
        if ((st = concretize(val, batch, t, m->device)) != FLEET_OK)
            break;
        root[v] = v;
        def[v] = -1;
        p->base[v] = -1;
        if (val->kind == FLEET__VALUE_WEIGHT) {
            p->base[v] = val->index;
            root[v] = -1;
            continue;
        }
        if (val->kind == FLEET__VALUE_INPUT || !p->needed[v])
            continue;
        const fleet__node *node = &m->nodes[val->index];
        const fleet_tensor *src = &p->tmpl[node->in[0]];
        bool fuse = false;
        if (node->op == FLEET__NODE_UNARY && node->attr.kind == FLEET__RELU &&
            readers[node->in[0]] == 1 && def[node->in[0]] >= 0) {
            const fleet__value *pv = &m->values[node->in[0]];
            const fleet__node *prod = pv->kind == FLEET__VALUE_NODE ? &m->nodes[pv->index] : NULL;
            fuse = prod != NULL && prod->op == FLEET__NODE_LINEAR &&
                   prod->in[2] != FLEET_NO_VALUE &&
                   p->steps[def[node->in[0]]].kind == FLEET__STEP_NODE;
            if (fuse) {
                p->steps[def[node->in[0]]].relu = true;
                fleet_atomic_add_relaxed(&m->fusions, 1);
            }
        }
        if (fuse || node->op == FLEET__NODE_PERMUTE ||
            (node->op == FLEET__NODE_RESHAPE && fleet_tensor_is_contiguous(src))) {
            /* A view: same base and offset, new shape and strides. */
            p->base[v] = p->base[node->in[0]];
            root[v] = root[node->in[0]];
            t->offset = src->offset;
            if (node->op == FLEET__NODE_PERMUTE)
                for (int d = 0; d < t->ndim; d++)
                    t->strides[d] = src->strides[node->attr.perm[d]];
            continue;
        }
        fleet__step *s = &p->steps[p->n_steps];
        s->kind = node->op == FLEET__NODE_RESHAPE ? FLEET__STEP_COPY : FLEET__STEP_NODE;
        s->node = val->index;
        s->out = v;
        s->src = node->in[0];
        def[v] = p->n_steps++;
    }
    if (st != FLEET_OK)
        goto out;

    /* Lifetimes: a value is live from the step writing it (inputs: from the
     * copy-in, step -1) to the last step reading it or any view of it
     * (outputs: to the copy-out, step n_steps). */
    int n_items = 0;
    int *last = fleet__calloc((size_t)nv + 1, sizeof *last);
    if (last == NULL) {
        st = fleet__error(FLEET_ERR_OUT_OF_MEMORY, "fleet_model_run: no host memory to compile");
        goto out;
    }
    for (int v = 0; v < nv; v++)
        last[v] = def[v];
    for (int i = 0; i < p->n_steps; i++) {
        const fleet__step *s = &p->steps[i];
        const fleet__node *node = &m->nodes[s->node];
        for (int k = 0; k < node->n_in; k++) {
            fleet_value r = node->in[k];
            if (r != FLEET_NO_VALUE && root[r] >= 0 && last[root[r]] < i)
                last[root[r]] = i;
        }
    }
    for (int i = 0; i < m->n_outputs; i++) {
        fleet_value r = m->outputs[i].value;
        if (root[r] >= 0)
            last[root[r]] = p->n_steps;
    }
    for (int v = 0; v < nv; v++) {
        if (root[v] != v || !p->needed[v])
            continue;
        items[n_items++] = (item){.bytes = align_up(fleet_tensor_nbytes(&p->tmpl[v])),
                                  .first = def[v], .last = last[v], .value = v};
    }
    for (int i = 0; i < p->n_steps; i++) {
        fleet__step *s = &p->steps[i];
        const fleet__node *node = &m->nodes[s->node];
        if (s->kind != FLEET__STEP_NODE || node->op != FLEET__NODE_CONV1D)
            continue;
        s->ws_bytes = fleet__conv1d_workspace_bytes(&p->tmpl[node->in[0]],
                                                    &p->tmpl[node->in[1]], &p->tmpl[s->out]);
        items[n_items++] = (item){.bytes = align_up(s->ws_bytes), .first = i, .last = i,
                                  .value = -1 - i};
    }
    free(last);
    p->arena_bytes = pack(items, n_items);

    /* Offsets: each arena value's own block, plus its view's offset. */
    size_t *slot = fleet__calloc((size_t)nv + 1, sizeof *slot);
    if (slot == NULL) {
        st = fleet__error(FLEET_ERR_OUT_OF_MEMORY, "fleet_model_run: no host memory to compile");
        goto out;
    }
    for (int i = 0; i < n_items; i++) {
        if (items[i].value >= 0)
            slot[items[i].value] = items[i].offset;
        else
            p->steps[-1 - items[i].value].ws_offset = items[i].offset;
    }
    for (int v = 0; v < nv; v++)
        if (root[v] >= 0)
            p->tmpl[v].offset += (int64_t)(slot[root[v]] / fleet_dtype_size(p->tmpl[v].dtype));
    free(slot);

out:
    free(readers);
    free(root);
    free(def);
    free(items);
    if (st != FLEET_OK) {
        plan_free(p);
        p = NULL;
    }
    *out = p;
    return st;
}
