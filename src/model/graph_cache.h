/* model/graph_cache.h — instances of plans on streams, and the bounded cache
 * that keeps them.
 *
 * An instance is what one (plan, stream) pair needs to run: an activation
 * arena allocated from that stream's memory, tensor headers for every value
 * of the plan over the arena and the weights, and on cuda the plan captured
 * as a CUDA graph for that stream. The cache holds at most FLEET_GRAPH_CACHE
 * instances over all models; when it is full the least recently used idle
 * instance is evicted. An instance in use (users > 0) is never evicted, so
 * the cache may briefly hold more while every instance is busy. */
#ifndef FLEET_MODEL_GRAPH_CACHE_H
#define FLEET_MODEL_GRAPH_CACHE_H

#include "model/plan.h"
#include "runtime/device.h"

typedef struct fleet__instance {
    const fleet__plan *plan;
    struct fleet_stream *stream;
    /* Guarded by the cache lock. */
    struct fleet__instance *lru_prev, *lru_next; /* most recent first      */
    int users;
    /* rank 2: guards everything below; held for a whole run, so threads
     * sharing the stream take turns on the arena. */
    fleet__mutex lock;
    bool built;
    uint64_t runs;
    bool captured, capture_refused;
    fleet_tensor *arena;
    fleet_tensor *t;    /* per value of the plan                     */
    void *graph_exec;   /* backend graph, when captured              */
    /* The graph holds the run's copies too: a copy node per needed input
     * and per output, and the caller memory each points at now. */
    void *in_node[FLEET_MODEL_MAX_IO], *out_node[FLEET_MODEL_MAX_IO];
    const void *in_src[FLEET_MODEL_MAX_IO];
    void *out_dst[FLEET_MODEL_MAX_IO];
} fleet__instance;

/* Once per process (after fleet__enter): read FLEET_GRAPH_CACHE, install the
 * fork handlers. */
fleet_status fleet__graph_cache_init(void);
/* Forks this process descends from (models refuse use across a fork). */
uint64_t fleet__graph_cache_fork_generation(void);
/* The instance for (plan, stream), created unbuilt if absent; users + 1. */
fleet_status fleet__instance_acquire(const fleet__plan *plan, struct fleet_stream *stream,
                                     fleet__instance **out);
/* users - 1 (the instance stays cached). */
void fleet__instance_release(fleet__instance *inst);
/* Build an unbuilt instance: arena on the current stream, tensor headers. */
fleet_status fleet__instance_build(fleet__instance *inst) FLEET_REQUIRES(inst->lock);
/* Evict and free every instance of a model's plans (none may be in use). */
void fleet__graph_cache_drop_model(fleet_model *m);

#endif /* FLEET_MODEL_GRAPH_CACHE_H */
