/* serve/metrics.c — GET /metrics: Prometheus text exposition (version
 * 0.0.4), with the names Triton's users graph (nv_inference_*, per model)
 * and fleet's own: the batcher's batches and rows, the models' graph
 * replays, each device's allocator and stream pool. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

typedef struct out {
    char *p;
    size_t len, cap;
    bool oom;
} out;

static void put(out *o, const char *fmt, ...) FLEET_PRINTF(2, 3);
static void put(out *o, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !o->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if (o->p != NULL && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap : 8192;
        while (cap <= o->len + (size_t)n)
            cap *= 2;
        char *p = fleet__realloc(o->p, cap);
        if (p == NULL) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

enum metric {
    M_SUCCESS,
    M_FAILURE,
    M_COUNT,
    M_EXEC,
    M_REQUEST_US,
    M_QUEUE_US,
    M_COMPUTE_US,
    M_PENDING,
    M_ROWS,
    M_QUEUED,
    M_FULL,
    M_TIMED_OUT,
    M_RUNS,
    M_REPLAYS
};

static const struct {
    enum metric id;
    const char *name, *type, *help;
} model_metrics[] = {
    {M_SUCCESS, "nv_inference_request_success", "counter",
     "Number of successful inference requests, all batch sizes"},
    {M_FAILURE, "nv_inference_request_failure", "counter",
     "Number of failed inference requests, all batch sizes"},
    {M_COUNT, "nv_inference_count", "counter",
     "Number of inferences performed (rows; batch B counts B)"},
    {M_EXEC, "nv_inference_exec_count", "counter",
     "Number of model executions performed (batches)"},
    {M_REQUEST_US, "nv_inference_request_duration_us", "counter",
     "Cumulative inference request duration in microseconds (submit to response)"},
    {M_QUEUE_US, "nv_inference_queue_duration_us", "counter",
     "Cumulative inference queuing duration in microseconds"},
    {M_COMPUTE_US, "nv_inference_compute_infer_duration_us", "counter",
     "Cumulative compute inference duration in microseconds (the request's batch run)"},
    {M_PENDING, "nv_inference_pending_request_count", "gauge",
     "Instantaneous number of pending requests awaiting execution"},
    {M_ROWS, "fleet_batcher_rows_total", "counter",
     "Request rows run by the model's batcher (padding excluded)"},
    {M_QUEUED, "fleet_batcher_queued", "gauge", "Requests waiting in the batcher's queue now"},
    {M_FULL, "fleet_batcher_rejected_full_total", "counter",
     "Requests refused because the queue was full (429)"},
    {M_TIMED_OUT, "fleet_batcher_timed_out_total", "counter",
     "Requests dropped at their deadline in the queue"},
    {M_RUNS, "fleet_model_runs_total", "counter", "Model runs (batches, and any direct runs)"},
    {M_REPLAYS, "fleet_model_graph_replays_total", "counter",
     "Runs that replayed a captured CUDA graph"},
};

/* Counters are read relaxed: each is a count on its own. */
static uint64_t model_value(enum metric id, fleet__serve_model *m, const fleet_batcher_stats *b,
                            const fleet_model_stats *ms)
{
    switch (id) {
    case M_SUCCESS:
        return fleet_atomic_load_relaxed(&m->success);
    case M_FAILURE:
        return fleet_atomic_load_relaxed(&m->failure);
    case M_COUNT:
        return fleet_atomic_load_relaxed(&m->inference_count);
    case M_EXEC:
        return b->batches;
    case M_REQUEST_US:
        return fleet_atomic_load_relaxed(&m->request_us);
    case M_QUEUE_US:
        return fleet_atomic_load_relaxed(&m->queue_us);
    case M_COMPUTE_US:
        return fleet_atomic_load_relaxed(&m->compute_us);
    case M_PENDING: {
        int64_t p = fleet_atomic_load_relaxed(&m->pending);
        return p > 0 ? (uint64_t)p : 0;
    }
    case M_ROWS:
        return b->rows;
    case M_QUEUED:
        return b->queued > 0 ? (uint64_t)b->queued : 0;
    case M_FULL:
        return b->rejected_full;
    case M_TIMED_OUT:
        return b->timed_out;
    case M_RUNS:
        return ms->runs;
    case M_REPLAYS:
        return ms->graph_replays;
    }
    return 0;
}

char *fleet__serve_metrics_text(fleet_server *s, size_t *len)
{
    out o = {0};
    int n = s->n_models;
    fleet_batcher_stats *bs = fleet__calloc((size_t)n + 1, sizeof *bs);
    fleet_model_stats *ms = fleet__calloc((size_t)n + 1, sizeof *ms);
    if (bs == NULL || ms == NULL) {
        free(bs);
        free(ms);
        return NULL;
    }
    for (int i = 0; i < n; i++) { /* a model's replicas added up */
        fleet__serve_model *m = s->models[i];
        for (int r = 0; r < m->n_replicas; r++) {
            fleet_batcher_stats b;
            fleet_model_stats x;
            if (fleet_batcher_get_stats(m->rep[r].batcher, &b) == FLEET_OK) {
                bs[i].batches += b.batches;
                bs[i].rows += b.rows;
                bs[i].queued += b.queued;
                bs[i].rejected_full += b.rejected_full;
                bs[i].timed_out += b.timed_out;
            }
            if (fleet_model_get_stats(m->rep[r].model, &x) == FLEET_OK) {
                ms[i].runs += x.runs;
                ms[i].graph_replays += x.graph_replays;
            }
        }
        bs[i].mean_batch_rows = bs[i].batches ? (double)bs[i].rows / (double)bs[i].batches : 0;
    }
    for (size_t k = 0; k < sizeof model_metrics / sizeof model_metrics[0]; k++) {
        put(&o, "# HELP %s %s\n# TYPE %s %s\n", model_metrics[k].name, model_metrics[k].help,
            model_metrics[k].name, model_metrics[k].type);
        for (int i = 0; i < n; i++)
            put(&o, "%s{model=\"%s\",version=\"1\"} %llu\n", model_metrics[k].name,
                s->models[i]->name,
                (unsigned long long)model_value(model_metrics[k].id, s->models[i], &bs[i], &ms[i]));
    }
    put(&o, "# HELP fleet_batcher_mean_batch_rows Mean rows per batch since start\n"
            "# TYPE fleet_batcher_mean_batch_rows gauge\n");
    for (int i = 0; i < n; i++)
        put(&o, "fleet_batcher_mean_batch_rows{model=\"%s\",version=\"1\"} %.3f\n",
            s->models[i]->name, bs[i].mean_batch_rows);
    free(bs);
    free(ms);
    put(&o, "# HELP fleet_replica_batches_total Batches run by one replica (a model's copy on "
            "one device)\n# TYPE fleet_replica_batches_total counter\n");
    for (int i = 0; i < n; i++)
        for (int r = 0; r < s->models[i]->n_replicas; r++) {
            fleet_batcher_stats b = {0};
            (void)fleet_batcher_get_stats(s->models[i]->rep[r].batcher, &b);
            put(&o, "fleet_replica_batches_total{model=\"%s\",version=\"1\",device=\"%s\"} %llu\n",
                s->models[i]->name, fleet_device_name(s->models[i]->rep[r].device),
                (unsigned long long)b.batches);
        }

    /* Per device, each once. */
    static const char *const dev_names[] = {
        "fleet_memory_allocated_bytes",     "fleet_memory_reserved_bytes",
        "fleet_memory_cached_bytes",        "fleet_memory_peak_allocated_bytes",
        "fleet_stream_pool_capacity",       "fleet_stream_pool_exclusive_in_use",
        "fleet_stream_pool_shared_bindings"};
    static const char *const dev_help[] = {
        "Bytes in live blocks of the caching allocator", "Bytes in segments from the backend",
        "Bytes in free blocks ready for reuse",          "Highest allocated bytes since start",
        "Streams of the device's pool (FLEET_STREAMS)",  "Pool slots held by a bound thread now",
        "Live threads bound to a slot they share"};
    for (size_t k = 0; k < sizeof dev_names / sizeof dev_names[0]; k++) {
        put(&o, "# HELP %s %s\n# TYPE %s gauge\n", dev_names[k], dev_help[k], dev_names[k]);
        for (int i = 0; i < n * FLEET__SERVE_MAX_REPLICAS; i++) {
            const fleet__serve_model *m = s->models[i / FLEET__SERVE_MAX_REPLICAS];
            int r = i % FLEET__SERVE_MAX_REPLICAS;
            if (r >= m->n_replicas)
                continue;
            fleet_device *d = m->rep[r].device;
            bool seen = false;
            for (int j = 0; j < i && !seen; j++) {
                const fleet__serve_model *mj = s->models[j / FLEET__SERVE_MAX_REPLICAS];
                int rj = j % FLEET__SERVE_MAX_REPLICAS;
                seen = rj < mj->n_replicas && mj->rep[rj].device == d;
            }
            if (seen)
                continue;
            fleet_memory_stats mem = {0};
            fleet_stream_pool_stats pool = {0};
            (void)fleet_memory_get_stats(d, &mem);
            (void)fleet_stream_pool_get_stats(d, &pool);
            uint64_t v[] = {mem.allocated,
                            mem.reserved,
                            mem.cached,
                            mem.peak_allocated,
                            (uint64_t)pool.capacity,
                            (uint64_t)pool.exclusive_in_use,
                            (uint64_t)pool.shared_bindings};
            put(&o, "%s{device=\"%s\"} %llu\n", dev_names[k], fleet_device_name(d),
                (unsigned long long)v[k]);
        }
    }
    put(&o,
        "# HELP fleet_server_in_flight Infer requests between submit and response\n"
        "# TYPE fleet_server_in_flight gauge\nfleet_server_in_flight %lld\n",
        (long long)fleet_atomic_load_relaxed(&s->in_flight));
    put(&o,
        "# HELP fleet_server_connections_timed_out_total Connections closed because their "
        "request did not arrive within request_timeout_ms\n"
        "# TYPE fleet_server_connections_timed_out_total counter\n"
        "fleet_server_connections_timed_out_total %llu\n",
        (unsigned long long)fleet_atomic_load_relaxed(&s->connections_refused_timeout));
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
