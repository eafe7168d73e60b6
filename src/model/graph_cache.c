/* model/graph_cache.c — (plan, stream) instances and their LRU cache. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/prim.h"
#include "model/graph_cache.h"
#include "runtime/dispatch.h"
#include "tensor/tensor.h"

/* rank 2: the LRU list, every plan's instances[] and each instance's users.
 * Nothing else is locked while it is held (instances are built and freed
 * outside it). */
static fleet__mutex cache_lock = {PTHREAD_MUTEX_INITIALIZER};
static bool installed FLEET_GUARDED_BY(cache_lock);
static int capacity FLEET_GUARDED_BY(cache_lock);
static int count FLEET_GUARDED_BY(cache_lock);
static fleet__instance *lru_head FLEET_GUARDED_BY(cache_lock);
static fleet__instance *lru_tail FLEET_GUARDED_BY(cache_lock);
static fleet_atomic_u64 fork_generation;

static void atfork_prepare(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    fleet__mutex_lock(&cache_lock);
}

static void atfork_parent(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    fleet__mutex_unlock(&cache_lock);
}

/* The child forgets the parent's instances (their streams and graphs belong
 * to the parent; models refuse use in the child, see fork_generation). */
static void atfork_child(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    lru_head = lru_tail = NULL;
    count = 0;
    fleet_atomic_add_relaxed(&fork_generation, 1);
    fleet__mutex_unlock(&cache_lock);
}

fleet_status fleet__graph_cache_init(void)
{
    fleet__mutex_lock(&cache_lock);
    if (!installed) {
        capacity = fleet__config_get()->graph_cache;
        fleet__atfork_install(atfork_prepare, atfork_parent, atfork_child);
        installed = true;
    }
    fleet__mutex_unlock(&cache_lock);
    return FLEET_OK;
}

uint64_t fleet__graph_cache_fork_generation(void)
{
    return fleet_atomic_load_relaxed(&fork_generation);
}

static void lru_unlink(fleet__instance *in) FLEET_REQUIRES(cache_lock)
{
    if (in->lru_prev != NULL)
        in->lru_prev->lru_next = in->lru_next;
    else
        lru_head = in->lru_next;
    if (in->lru_next != NULL)
        in->lru_next->lru_prev = in->lru_prev;
    else
        lru_tail = in->lru_prev;
    in->lru_prev = in->lru_next = NULL;
}

static void lru_push_front(fleet__instance *in) FLEET_REQUIRES(cache_lock)
{
    in->lru_prev = NULL;
    in->lru_next = lru_head;
    if (lru_head != NULL)
        lru_head->lru_prev = in;
    lru_head = in;
    if (lru_tail == NULL)
        lru_tail = in;
}

/* Take `in` out of the cache (the caller frees it after unlocking). */
static void remove_entry(fleet__instance *in) FLEET_REQUIRES(cache_lock)
{
    lru_unlink(in);
    ((fleet__plan *)in->plan)->instances[in->stream->id] = NULL;
    count--;
}

static void instance_free(fleet__instance *in)
{
    if (in->graph_exec != NULL) /* freed once a running launch of it ends */
        fleet__backend_graph_destroy(in->plan->model->device, in->graph_exec);
    if (in->arena != NULL)
        fleet__tensor_free(in->arena); /* stream-ordered on its stream */
    free(in->t);
    fleet__mutex_destroy(&in->lock);
    free(in);
}

fleet_status fleet__instance_acquire(const fleet__plan *plan, struct fleet_stream *stream,
                                     fleet__instance **out)
{
    fleet__plan *p = (fleet__plan *)plan;
    fleet__instance *victims = NULL, *in;
    fleet__mutex_lock(&cache_lock);
    in = p->instances[stream->id];
    if (in == NULL) {
        if ((in = fleet__calloc(1, sizeof *in)) == NULL) {
            fleet__mutex_unlock(&cache_lock);
            return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "fleet_model_run: no host memory");
        }
        in->plan = plan;
        in->stream = stream;
        fleet__mutex_init(&in->lock);
        p->instances[stream->id] = in;
        count++;
    } else {
        lru_unlink(in);
    }
    lru_push_front(in);
    in->users++;
    /* Over capacity: evict idle instances, least recently used first. */
    for (fleet__instance *c = lru_tail; c != NULL && count > capacity;) {
        fleet__instance *prev = c->lru_prev;
        if (c->users == 0) {
            remove_entry(c);
            c->lru_next = victims; /* reuse the link for the victim list */
            victims = c;
        }
        c = prev;
    }
    fleet__mutex_unlock(&cache_lock);
    while (victims != NULL) {
        fleet__instance *next = victims->lru_next;
        fleet_atomic_add_relaxed(&victims->plan->model->evictions, 1);
        instance_free(victims);
        victims = next;
    }
    *out = in;
    return FLEET_OK;
}

void fleet__instance_release(fleet__instance *inst)
{
    fleet__mutex_lock(&cache_lock);
    FLEET_DEBUG_ASSERT(inst->users > 0);
    inst->users--;
    fleet__mutex_unlock(&cache_lock);
}

void fleet__graph_cache_drop_model(fleet_model *m)
{
    fleet__instance *victims = NULL;
    fleet__mutex_lock(&cache_lock);
    for (fleet__instance *c = lru_head; c != NULL;) {
        fleet__instance *next = c->lru_next;
        if (c->plan->model == m) {
            FLEET_ASSERT(c->users == 0); /* destroy raced with a run */
            remove_entry(c);
            c->lru_next = victims;
            victims = c;
        }
        c = next;
    }
    fleet__mutex_unlock(&cache_lock);
    while (victims != NULL) {
        fleet__instance *next = victims->lru_next;
        instance_free(victims);
        victims = next;
    }
}

fleet_status fleet__instance_build(fleet__instance *in)
{
    const fleet__plan *p = in->plan;
    const fleet_model *m = p->model;
    /* The arena: f32 elements covering arena_bytes (offsets are multiples of
     * FLEET__ARENA_ALIGN, so every dtype's view lands on a whole element). */
    int64_t n = (int64_t)((p->arena_bytes + sizeof(float) - 1) / sizeof(float));
    fleet_status st =
        fleet__tensor_new(m->device, FLEET_DTYPE_F32, 1, &n, "the activation arena", &in->arena);
    if (st != FLEET_OK)
        return st;
    if ((in->t = fleet__calloc((size_t)p->n_values + 1, sizeof *in->t)) == NULL) {
        fleet__tensor_free(in->arena);
        in->arena = NULL;
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "no host memory for the instance");
    }
    for (int v = 0; v < p->n_values; v++) {
        const fleet_tensor *base = p->base[v] < 0 ? in->arena : m->weights[p->base[v]].tensor;
        in->t[v] = p->tmpl[v];
        in->t[v].storage = base->storage;
        in->t[v].offset += base->offset;
    }
    in->built = true;
    fleet_atomic_add_relaxed(&((fleet_model *)m)->instances_created, 1);
    return FLEET_OK;
}
