/* fleet/batch.h — dynamic batching: many threads' small requests become one
 * batched run of a model.
 *
 * A batcher wraps a finalized model whose inputs and outputs all have the
 * batch dimension (FLEET_DIM_BATCH) first. Any thread submits a request —
 * input and output tensors with the model's shapes for `rows` batch rows,
 * 1 <= rows <= max_batch — and gets a ticket at once; submitting checks the
 * request, records an event on the caller's current stream (the inputs must
 * be ready there) and queues it, never waiting for a device.
 *
 * Runner threads (max_inflight of them, each on its own stream, so several
 * batches may be in flight at once) form batches: an idle runner takes what
 * is queued at once (batches form while runners are busy); only while
 * another runner is running a batch does it wait up to max_delay_us from
 * the first request for more. It takes requests in arrival
 * order while their rows fit in max_batch, copies their inputs into the batch
 * (one copy per request and input, on the device), runs the model once for
 * the batch size rounded up to a bucket (powers of two up to max_batch, and
 * max_batch: few shapes, so few plans and CUDA graphs), copies each request's
 * rows of the outputs into its output tensors, waits for its stream and
 * completes the tickets. A batch of one request whose rows are a bucket's
 * (a lone batch-1 request) runs on the request's own tensors, with no
 * copies. An idle runner spins briefly for work before it sleeps (only
 * while a core is idle; FLEET_CPU_SPIN_US), and while another runner is
 * idle a runner takes one request at a time. The rows of a batch must be independent of each
 * other (true of per-sample inference; padding rows are computed and
 * dropped).
 *
 *     fleet_batcher *b;
 *     fleet_batcher_config cfg = fleet_batcher_config_default();
 *     cfg.max_batch = 64;
 *     fleet_batcher_create(model, &cfg, &b);
 *     ...                                       // any thread:
 *     fleet_ticket *t;
 *     fleet_batcher_submit(b, &x, 1, &y, 1, 0, &t);
 *     fleet_status st = fleet_ticket_wait(t, -1);  // y holds the result
 *     fleet_ticket_release(t);
 *
 * Limits and failure. At most queue_capacity requests wait at once (beyond:
 * FLEET_ERR_QUEUE_FULL, nothing queued). A request whose deadline passes
 * before a runner takes it completes with FLEET_ERR_TIMEOUT without running.
 * A request with a wrong count, shape, dtype or device fails alone, at
 * submit. A failure while running a batch (out of memory, a device error)
 * completes that batch's tickets with the error; the batcher keeps serving.
 * fleet_batcher_shutdown either drains (every queued request runs) or
 * cancels (queued requests complete with FLEET_ERR_SHUTDOWN); later submits
 * return FLEET_ERR_SHUTDOWN. Every ticket completes exactly once, with its
 * own request's output.
 *
 * The batcher holds a reference to each request's tensors until its ticket
 * completes; the caller must not write the inputs or read the outputs
 * before that. Thread-safety: submit, wait, poll, release and stats from any
 * thread; create, shutdown and destroy from one. */
#ifndef FLEET_BATCH_H
#define FLEET_BATCH_H
#include <stdbool.h>
#include <stdint.h>
#include "fleet/model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct fleet_batcher fleet_batcher;
typedef struct fleet_ticket fleet_ticket;

typedef struct fleet_batcher_config {
    int max_batch;          /* rows per batch, 1..4096 (default 32)              */
    int64_t max_delay_us;   /* while another runner is busy, wait for more after
                             * the first request, 0..10^7 (default 200)          */
    int queue_capacity;     /* requests waiting at most, 1..2^20 (default 1024)  */
    int max_inflight;       /* runner threads = batches in flight, 1..16 (2)     */
} fleet_batcher_config;

FLEET_API fleet_batcher_config fleet_batcher_config_default(void);

/* cfg NULL: the defaults. The model must be finalized, every input and output
 * [FLEET_DIM_BATCH, ...] with no other batch dimension. Each runner binds
 * its pool stream before create returns and holds it until the batcher is
 * destroyed; when the pool is full and FLEET_STREAM_WAIT_MS makes bindings
 * wait, a runner that gets none fails create with FLEET_ERR_POOL_EXHAUSTED
 * (never a batch later). */
FLEET_API fleet_status fleet_batcher_create(fleet_model *model, const fleet_batcher_config *cfg,
                                  fleet_batcher **out);

/* Queue a request. timeout_us > 0: its deadline, from now; 0: none. On
 * success *ticket is the request's ticket (release it once done with it). */
FLEET_API fleet_status fleet_batcher_submit(fleet_batcher *batcher, const fleet_tensor *const *inputs,
                                  int n_inputs, fleet_tensor *const *outputs, int n_outputs,
                                  int64_t timeout_us, fleet_ticket **ticket);

/* Wait until the ticket completes, at most timeout_ms (-1: as long as it
 * takes), and return the request's status: FLEET_OK (its outputs are
 * written), or why it failed. FLEET_ERR_NOT_READY if the wait timed out
 * (the ticket is still pending; not an error). */
FLEET_API fleet_status fleet_ticket_wait(fleet_ticket *ticket, int64_t timeout_ms);
/* The request's status if complete, else FLEET_ERR_NOT_READY. */
FLEET_API fleet_status fleet_ticket_poll(fleet_ticket *ticket);
/* Where a completed request's time went, in microseconds: *queue_us from
 * submit to the start of its batch, *compute_us that batch's run (copies
 * in, the model, copies out). Both 0 for a request that never ran (timed
 * out, cancelled); FLEET_ERR_NOT_READY (outputs untouched) while pending. */
FLEET_API fleet_status fleet_ticket_get_times(fleet_ticket *ticket, double *queue_us,
                                              double *compute_us);
/* Wait for completion if still pending, then free the ticket. NULL ignored.
 * The handle is checked: a ticket released already (twice, or from two
 * threads at once) is FLEET_ERR_STALE_HANDLE, as are waits and polls on it,
 * never a crash. A wait in one thread may race a release in another: the
 * release waits for the request, and the waiter gets the request's status,
 * or FLEET_ERR_STALE_HANDLE if it came after the release. */
FLEET_API fleet_status fleet_ticket_release(fleet_ticket *ticket);

/* Stop accepting requests; drain = true runs every queued request, false
 * completes them with FLEET_ERR_SHUTDOWN. Batches in flight finish either
 * way. Returns when the runners have stopped. Idempotent. */
FLEET_API fleet_status fleet_batcher_shutdown(fleet_batcher *batcher, bool drain);
/* Shutdown (draining) if not done, then free. NULL ignored. */
FLEET_API fleet_status fleet_batcher_destroy(fleet_batcher *batcher);

typedef struct fleet_batcher_stats {
    uint64_t submitted;      /* requests accepted                         */
    uint64_t completed_ok;   /* tickets completed with FLEET_OK           */
    uint64_t failed;         /* completed with an error while running     */
    uint64_t timed_out;      /* dropped at their deadline                 */
    uint64_t cancelled;      /* completed with FLEET_ERR_SHUTDOWN         */
    uint64_t rejected_full;  /* FLEET_ERR_QUEUE_FULL at submit            */
    uint64_t batches;        /* model runs                                */
    uint64_t rows;           /* request rows run (padding excluded)       */
    double mean_batch_rows;  /* rows / batches                            */
    int queued;              /* requests waiting now                      */
    /* over the last 4096 completed requests, microseconds: */
    double queue_wait_p50_us, queue_wait_p99_us; /* submit to batch start */
    double run_p50_us, run_p99_us;               /* batch start to done   */
} fleet_batcher_stats;
FLEET_API fleet_status fleet_batcher_get_stats(fleet_batcher *batcher, fleet_batcher_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_BATCH_H */
