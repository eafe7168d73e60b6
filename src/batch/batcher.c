/* batch/batcher.c — the dynamic batcher (fleet/batch.h).
 *
 * Protocol (verify/batcher.pml models it): a request is queued by submit
 * under the batcher's lock, or refused there (full, shut down); a runner
 * takes requests off the queue under the same lock, runs them without it and
 * completes each ticket exactly once; shutdown flips the state under the lock
 * and, when cancelling, takes every queued request itself and completes it
 * with FLEET_ERR_SHUTDOWN. A request is therefore always in exactly one
 * place — the queue, one runner's batch, or completed — and runners exit only
 * when the state is no longer RUNNING and the queue is empty, so nothing
 * is stranded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/handle.h"
#include "core/log.h"
#include "core/prim.h"
#include "core/spin.h"
#include "fleet/batch.h"
#include "fleet/ops.h"
#include "model/run.h"
#include "ops/ops_internal.h"
#include "runtime/device.h"
#include "tensor/tensor.h"

#define MAX_BUCKETS 16
#define SAMPLES 4096

typedef enum state { RUNNING, DRAINING, CANCELLING, STOPPED } state;

/* A ticket; the public request_ticket * is its handle in `tickets`. References:
 * the owner's (until fleet_ticket_release), the batcher's (from queueing
 * to completion), and one per thread inside fleet_ticket_wait; the last to
 * go destroys it (ticket_put). */
typedef struct request_ticket {
    /* Set at submit, read-only after. */
    struct fleet_batcher *batcher;
    int64_t rows;
    int n_in, n_out;
    fleet_tensor *in[FLEET_MODEL_MAX_IO];
    fleet_tensor *out[FLEET_MODEL_MAX_IO];
    fleet_event *ready;         /* inputs ready on the submitter's stream */
    uint64_t enqueued_ns, deadline_ns; /* FLEET__FOREVER: none        */
    /* Its batch's start and end (0: never ran); written by the runner
     * before completion, read after it (done's release/acquire orders). */
    uint64_t started_ns, finished_ns;
    struct request_ticket *next;        /* queue or batch link (batcher lock)  */
    /* rank 2 (leaf): guards status and done's writes (done is read
     * without it by a waiter that spins first). */
    fleet__mutex lock;
    fleet__cond cv;
    fleet_status status;
    fleet_atomic_bool done;
} request_ticket;

static fleet__handle_table tickets = FLEET__HANDLE_TABLE_INIT("ticket", request_ticket);

typedef struct runner {
    struct fleet_batcher *b;
    int index;
    fleet__thread thread;
    fleet_stream *stream;        /* bound at start, held for its life    */
    /* Batch tensors per bucket, on the runner's stream (runner-private). */
    fleet_tensor *in[MAX_BUCKETS][FLEET_MODEL_MAX_IO];
    fleet_tensor *out[MAX_BUCKETS][FLEET_MODEL_MAX_IO];
    fleet__copy_list copies;     /* a gather or scatter being gathered  */
} runner;

typedef struct samples {
    double v[SAMPLES];
    uint64_t n;
} samples;

struct fleet_batcher {
    fleet_model *model;
    fleet_device *dev;
    fleet_batcher_config cfg;
    int64_t buckets[MAX_BUCKETS];
    int n_buckets;
    runner *runners;
    /* rank 2: guards everything below. */
    fleet__mutex lock;
    fleet__cond work;           /* a request arrived, or the state changed */
    fleet__cond started;        /* a runner bound its stream, or failed to */
    int n_started;              /* runners that reported                 */
    fleet_status start_status;  /* the first runner's failure to bind    */
    char start_error[256];
    state st;
    request_ticket *head, *tail;
    int queued;
    int64_t queued_rows;
    int running;                /* runners running a batch now           */
    int spinning;               /* idle runners spinning for work now: a
                                 * submit then needs no wake-up            */
    fleet_atomic_u64 work_seq;  /* bumped (under the lock) at each queued
                                 * request and state change: what an idle
                                 * runner spins on, read without the lock  */
    fleet_event **events;       /* free events, a stack                  */
    int n_events, cap_events;
    uint64_t submitted, completed_ok, failed, timed_out, cancelled, rejected_full;
    uint64_t batches, rows;
    samples wait_us, run_us;
};

fleet_batcher_config fleet_batcher_config_default(void)
{
    return (fleet_batcher_config){.max_batch = 32, .max_delay_us = 200, .queue_capacity = 1024,
                                  .max_inflight = 2};
}

/* ---- tickets -------------------------------------------------------------------------- */

static fleet_status ticket_new(request_ticket **out, uintptr_t *handle)
{
    void *p;
    fleet_status st = fleet__handle_new(&tickets, &p, handle);
    if (st != FLEET_OK)
        return st;
    request_ticket *t = p;
    fleet__mutex_init(&t->lock);
    fleet__cond_init(&t->cv);
    *out = t;
    return FLEET_OK;
}

/* After the last reference. */
static void ticket_destroy(request_ticket *t)
{
    fleet__mutex_destroy(&t->lock);
    fleet__cond_destroy(&t->cv);
    fleet__handle_recycle(&tickets, t);
}

/* Drop one reference; the last destroys the ticket. */
static void ticket_put(request_ticket *t)
{
    if (fleet__handle_put(&tickets, t))
        ticket_destroy(t);
}

/* Give back the references a ticket holds on its tensors. */
static void release_tensors(request_ticket *t)
{
    for (int i = 0; i < t->n_in; i++)
        (void)fleet_tensor_release(t->in[i]);
    for (int i = 0; i < t->n_out; i++)
        (void)fleet_tensor_release(t->out[i]);
    t->n_in = t->n_out = 0;
}

/* Complete every ticket of a list with `status`: give back what each held
 * (its tensors; its event, and the counts, under one lock for the whole
 * list), then mark each done and drop the batcher's reference (the next
 * link is read before). */
static void complete_list(fleet_batcher *b, request_ticket *list, fleet_status status)
{
    if (list == NULL)
        return;
    uint64_t n = 0;
    for (request_ticket *t = list; t != NULL; t = t->next, n++)
        release_tensors(t);
    fleet__mutex_lock(&b->lock);
    for (request_ticket *t = list; t != NULL; t = t->next) {
        if (b->n_events < b->cap_events)
            b->events[b->n_events++] = t->ready;
        else
            (void)fleet_event_destroy(t->ready);
    }
    if (status == FLEET_OK)
        b->completed_ok += n;
    else if (status == FLEET_ERR_TIMEOUT)
        b->timed_out += n;
    else if (status == FLEET_ERR_SHUTDOWN)
        b->cancelled += n;
    else
        b->failed += n;
    fleet__mutex_unlock(&b->lock);
    for (request_ticket *t = list; t != NULL;) {
        request_ticket *next = t->next;
        fleet__mutex_lock(&t->lock);
        FLEET_DEBUG_ASSERT(!fleet_atomic_load_relaxed(&t->done)); /* completed exactly once */
        t->status = status;
        fleet_atomic_store_release(&t->done, true);
        fleet__cond_broadcast(&t->cv);
        fleet__mutex_unlock(&t->lock);
        ticket_put(t);
        t = next;
    }
}

static bool ticket_done(const void *t)
{
    return fleet_atomic_load_acquire(&((const request_ticket *)t)->done);
}

/* Wait for t (a reference held) until the deadline; whether it is done. A
 * wait spins a little first (core/spin.h), so an answer microseconds away
 * costs no sleep. */
static bool ticket_wait_until(request_ticket *t, uint64_t deadline, bool may_spin,
                              fleet_status *status)
{
    if (may_spin && !ticket_done(t))
        (void)fleet__spin_until(ticket_done, t);
    fleet__mutex_lock(&t->lock);
    while (!fleet_atomic_load_relaxed(&t->done))
        if (!fleet__cond_wait_until(&t->cv, &t->lock, deadline))
            break;
    bool done = fleet_atomic_load_relaxed(&t->done);
    *status = t->status;
    fleet__mutex_unlock(&t->lock);
    return done;
}

fleet_status fleet_ticket_wait(fleet_ticket *handle, int64_t timeout_ms)
{
    static const char fn[] = "fleet_ticket_wait";
    FLEET_CHECK_ARG(handle != NULL, FLEET_ERR_NULL_POINTER, "%s: ticket is NULL", fn);
    FLEET_CHECK_ARG(timeout_ms >= -1, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: timeout_ms %lld (expected -1, 0 or more)", fn, (long long)timeout_ms);
    request_ticket *t = fleet__handle_acquire(&tickets, (uintptr_t)handle);
    if (t == NULL)
        return fleet__handle_stale(&tickets, fn, "ticket");
    fleet_status st;
    bool done = ticket_wait_until(t, fleet__deadline_after_ms(timeout_ms), timeout_ms != 0, &st);
    ticket_put(t);
    if (!done)
        return FLEET_ERR_NOT_READY;
    if (st != FLEET_OK)
        return fleet__error(st, "%s: the request failed: %s", fn, fleet_status_str(st));
    return FLEET_OK;
}

fleet_status fleet_ticket_poll(fleet_ticket *ticket)
{
    return fleet_ticket_wait(ticket, 0);
}

fleet_status fleet_ticket_get_times(fleet_ticket *handle, double *queue_us, double *compute_us)
{
    static const char fn[] = "fleet_ticket_get_times";
    FLEET_CHECK_ARG(handle != NULL && queue_us != NULL && compute_us != NULL,
                    FLEET_ERR_NULL_POINTER, "%s: ticket or an output is NULL", fn);
    request_ticket *t = fleet__handle_acquire(&tickets, (uintptr_t)handle);
    if (t == NULL)
        return fleet__handle_stale(&tickets, fn, "ticket");
    fleet_status st = FLEET_OK;
    if (!ticket_done(t)) {
        st = FLEET_ERR_NOT_READY;
    } else if (t->started_ns == 0) {
        *queue_us = 0;
        *compute_us = 0;
    } else {
        *queue_us = (double)(t->started_ns - t->enqueued_ns) / 1e3;
        *compute_us = (double)(t->finished_ns - t->started_ns) / 1e3;
    }
    ticket_put(t);
    return st;
}

fleet_status fleet_ticket_release(fleet_ticket *handle)
{
    static const char fn[] = "fleet_ticket_release";
    if (handle == NULL)
        return FLEET_OK;
    request_ticket *t = fleet__handle_acquire(&tickets, (uintptr_t)handle);
    if (t == NULL)
        return fleet__handle_stale(&tickets, fn, "ticket");
    fleet_status ignored;
    (void)ticket_wait_until(t, FLEET__FOREVER, true, &ignored);
    ticket_put(t);
    /* The owner's reference; a concurrent second release finds it closed. */
    void *p;
    bool last;
    fleet_status st = fleet__handle_close(&tickets, (uintptr_t)handle, fn, &p, &last);
    if (st == FLEET_OK && last)
        ticket_destroy(p);
    return st;
}

/* ---- create ---------------------------------------------------------------------------- */

static fleet_status check_config(const fleet_batcher_config *c)
{
    static const char fn[] = "fleet_batcher_create";
    FLEET_CHECK_ARG(c->max_batch >= 1 && c->max_batch <= 4096, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: max_batch %d is outside 1..4096", fn, c->max_batch);
    FLEET_CHECK_ARG(c->max_delay_us >= 0 && c->max_delay_us <= 10000000, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: max_delay_us %lld is outside 0..10^7", fn, (long long)c->max_delay_us);
    FLEET_CHECK_ARG(c->queue_capacity >= 1 && c->queue_capacity <= (1 << 20),
                    FLEET_ERR_INVALID_ARGUMENT, "%s: queue_capacity %d is outside 1..2^20", fn,
                    c->queue_capacity);
    FLEET_CHECK_ARG(c->max_inflight >= 1 && c->max_inflight <= 16, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: max_inflight %d is outside 1..16", fn, c->max_inflight);
    return FLEET_OK;
}

/* Every input and output is [B, ...] with B nowhere else. */
static fleet_status check_model(const fleet_model *m)
{
    static const char fn[] = "fleet_batcher_create";
    FLEET_CHECK_ARG(fleet__model_finalized(m), FLEET_ERR_INVALID_ARGUMENT,
                    "%s: finalize the model first", fn);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < fleet__model_io_count(m, pass); i++) {
            fleet__model_io io = fleet__model_io_at(m, pass, i);
            bool ok = io.ndim >= 1 && io.shape[0] == FLEET_DIM_BATCH;
            for (int d = 1; ok && d < io.ndim; d++)
                ok = io.shape[d] >= 0;
            FLEET_CHECK_ARG(ok, FLEET_ERR_INVALID_ARGUMENT,
                            "%s: %s '%s' must have the batch dimension first and only there", fn,
                            pass ? "output" : "input", io.name);
        }
    }
    return FLEET_OK;
}

static void *runner_main(void *arg);

fleet_status fleet_batcher_create(fleet_model *model, const fleet_batcher_config *cfg,
                                  fleet_batcher **out)
{
    static const char fn[] = "fleet_batcher_create";
    fleet_status st = fleet__model_enter(model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "%s: out is NULL", fn);
    fleet_batcher_config c = cfg != NULL ? *cfg : fleet_batcher_config_default();
    if ((st = check_config(&c)) != FLEET_OK || (st = check_model(model)) != FLEET_OK)
        return st;
    fleet_batcher *b = fleet__calloc(1, sizeof *b);
    if (b == NULL || (b->runners = fleet__calloc((size_t)c.max_inflight, sizeof *b->runners)) == NULL ||
        (b->events = fleet__calloc((size_t)c.queue_capacity + (size_t)c.max_batch * (size_t)c.max_inflight,
                            sizeof *b->events)) == NULL) {
        if (b != NULL)
            free(b->runners);
        free(b);
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory", fn);
    }
    b->cap_events = c.queue_capacity + c.max_batch * c.max_inflight;
    b->model = model;
    b->dev = fleet__model_device(model);
    b->cfg = c;
    for (int64_t s = 1; s < c.max_batch && b->n_buckets < MAX_BUCKETS - 1; s *= 2)
        b->buckets[b->n_buckets++] = s;
    b->buckets[b->n_buckets++] = c.max_batch;
    fleet__mutex_init(&b->lock);
    fleet__cond_init(&b->work);
    fleet__cond_init(&b->started);
    b->st = RUNNING;
    int started = 0;
    for (; started < c.max_inflight; started++) {
        runner *r = &b->runners[started];
        r->b = b;
        r->index = started;
        if ((st = fleet__thread_start(&r->thread, runner_main, r, "fleet-batch")) != FLEET_OK)
            break;
    }
    /* Each runner binds its stream before serving: with a pool full and
     * FLEET_STREAM_WAIT_MS set, create fails here, never a batch later. */
    fleet__mutex_lock(&b->lock);
    while (b->n_started < started)
        fleet__cond_wait(&b->started, &b->lock);
    if (st == FLEET_OK && b->start_status != FLEET_OK)
        st = fleet__error(b->start_status, "%s", b->start_error);
    fleet__mutex_unlock(&b->lock);
    if (st != FLEET_OK) {
        fleet__mutex_lock(&b->lock);
        b->st = CANCELLING;
        fleet_atomic_add_relaxed(&b->work_seq, 1);
        fleet__cond_broadcast(&b->work);
        fleet__mutex_unlock(&b->lock);
        for (int i = 0; i < started; i++)
            fleet__thread_join(&b->runners[i].thread);
        fleet__cond_destroy(&b->started);
        fleet__cond_destroy(&b->work);
        fleet__mutex_destroy(&b->lock);
        free(b->events);
        free(b->runners);
        free(b);
        return fleet__error_prefix(st, fn);
    }
    *out = b;
    return FLEET_OK;
}

/* ---- submit ----------------------------------------------------------------------------- */

/* Count, device, dtype, shape of each tensor; the rows they share. */
static fleet_status check_request(const fleet_batcher *b, const fleet_tensor *const *inputs,
                                  int n_inputs, fleet_tensor *const *outputs, int n_outputs,
                                  int64_t *rows)
{
    static const char fn[] = "fleet_batcher_submit";
    const fleet_model *m = b->model;
    int mi = fleet__model_io_count(m, false), mo = fleet__model_io_count(m, true);
    FLEET_CHECK_ARG(n_inputs == mi && n_outputs == mo, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: the model takes %d inputs and %d outputs, got %d and %d", fn, mi, mo,
                    n_inputs, n_outputs);
    FLEET_CHECK_ARG(inputs != NULL && outputs != NULL, FLEET_ERR_NULL_POINTER,
                    "%s: inputs or outputs is NULL", fn);
    *rows = -1;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? n_outputs : n_inputs;
        for (int i = 0; i < n; i++) {
            fleet__model_io io = fleet__model_io_at(m, pass, i);
            const fleet_tensor *t = pass ? outputs[i] : inputs[i];
            fleet_status st = fleet__enter_tensor(&t, fn, io.name);
            if (st != FLEET_OK)
                return st;
            FLEET_CHECK_ARG(t->device == b->dev, FLEET_ERR_INVALID_DEVICE,
                            "%s: '%s' is on %s, the model on %s", fn, io.name, t->device->name,
                            b->dev->name);
            FLEET_CHECK_ARG(t->dtype == io.dtype, FLEET_ERR_DTYPE_MISMATCH,
                            "%s: '%s' is %s, expected %s", fn, io.name,
                            fleet_dtype_name(t->dtype), fleet_dtype_name(io.dtype));
            bool ok = t->ndim == io.ndim && (*rows < 0 || t->shape[0] == *rows);
            for (int d = 1; ok && d < io.ndim; d++)
                ok = t->shape[d] == io.shape[d];
            if (!ok) {
                char got[96];
                return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                                    "%s: '%s' is %s: it does not match the model's shape with the "
                                    "request's rows", fn, io.name,
                                    fleet__shape_str(t, got, sizeof got));
            }
            *rows = t->shape[0];
        }
    }
    FLEET_CHECK_ARG(*rows >= 1 && *rows <= b->cfg.max_batch, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: a request of %lld rows; the batcher takes 1..%d (max_batch)", fn,
                    (long long)*rows, b->cfg.max_batch);
    return FLEET_OK;
}

/* A reference on each of the request's tensor handles, held until the ticket
 * completes (the caller may release its own meanwhile). */
static fleet_status hold_tensors(request_ticket *t, const fleet_tensor *const *inputs, int n_in,
                                 fleet_tensor *const *outputs, int n_out)
{
    fleet_status st = FLEET_OK;
    for (int i = 0; i < n_in && st == FLEET_OK; i++)
        if ((st = fleet_tensor_retain((fleet_tensor *)inputs[i])) == FLEET_OK)
            t->in[t->n_in++] = (fleet_tensor *)inputs[i];
    for (int i = 0; i < n_out && st == FLEET_OK; i++)
        if ((st = fleet_tensor_retain(outputs[i])) == FLEET_OK)
            t->out[t->n_out++] = outputs[i];
    if (st != FLEET_OK)
        release_tensors(t);
    return st;
}

fleet_status fleet_batcher_submit(fleet_batcher *batcher, const fleet_tensor *const *inputs,
                                  int n_inputs, fleet_tensor *const *outputs, int n_outputs,
                                  int64_t timeout_us, fleet_ticket **ticket)
{
    static const char fn[] = "fleet_batcher_submit";
    FLEET_CHECK_ARG(batcher != NULL && ticket != NULL, FLEET_ERR_NULL_POINTER,
                    "%s: batcher or ticket is NULL", fn);
    fleet_status st = fleet__model_enter(batcher->model, fn);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(timeout_us >= 0, FLEET_ERR_INVALID_ARGUMENT, "%s: timeout_us %lld < 0", fn,
                    (long long)timeout_us);
    fleet__mutex_lock(&batcher->lock);
    state s = batcher->st;
    fleet__mutex_unlock(&batcher->lock);
    if (s != RUNNING)
        return fleet__error(FLEET_ERR_SHUTDOWN, "%s: the batcher is shut down", fn);
    int64_t rows;
    if ((st = check_request(batcher, inputs, n_inputs, outputs, n_outputs, &rows)) != FLEET_OK)
        return st;

    request_ticket *t;
    uintptr_t handle;
    if ((st = ticket_new(&t, &handle)) != FLEET_OK)
        return fleet__error_prefix(st, fn);
    t->batcher = batcher;
    t->rows = rows;
    /* The event that orders the runner's reads after the submitter's writes. */
    fleet__mutex_lock(&batcher->lock);
    t->ready = batcher->n_events > 0 ? batcher->events[--batcher->n_events] : NULL;
    fleet__mutex_unlock(&batcher->lock);
    fleet_stream *s_cur;
    if ((t->ready == NULL && (st = fleet_event_create(batcher->dev, &t->ready)) != FLEET_OK) ||
        (st = fleet__stream_current(batcher->dev, &s_cur)) != FLEET_OK ||
        (st = fleet_event_record(t->ready, s_cur)) != FLEET_OK) {
        if (t->ready != NULL)
            (void)fleet_event_destroy(t->ready);
        ticket_put(t);
        return fleet__error_prefix(st, fn);
    }
    if ((st = hold_tensors(t, inputs, n_inputs, outputs, n_outputs)) != FLEET_OK) {
        (void)fleet_event_destroy(t->ready);
        ticket_put(t);
        return fleet__error_prefix(st, fn);
    }
    t->enqueued_ns = fleet__now_ns();
    t->deadline_ns = timeout_us > 0 ? fleet__deadline_after_us(timeout_us) : FLEET__FOREVER;

    fleet__mutex_lock(&batcher->lock);
    if (batcher->st != RUNNING || batcher->queued >= batcher->cfg.queue_capacity) {
        bool full = batcher->st == RUNNING;
        if (full)
            batcher->rejected_full++;
        if (batcher->n_events < batcher->cap_events)
            batcher->events[batcher->n_events++] = t->ready;
        else
            (void)fleet_event_destroy(t->ready);
        fleet__mutex_unlock(&batcher->lock);
        release_tensors(t);
        ticket_put(t);
        return full ? fleet__error(FLEET_ERR_QUEUE_FULL, "%s: %d requests are waiting (the "
                                   "queue_capacity)", fn, batcher->cfg.queue_capacity)
                    : fleet__error(FLEET_ERR_SHUTDOWN, "%s: the batcher is shut down", fn);
    }
    /* Accepted: the batcher holds the ticket (and, from hold_tensors, its
     * tensors) until it completes. */
    fleet__handle_retain(&tickets, t);
    if (batcher->tail != NULL)
        batcher->tail->next = t;
    else
        batcher->head = t;
    batcher->tail = t;
    batcher->queued++;
    batcher->queued_rows += rows;
    batcher->submitted++;
    fleet_atomic_add_relaxed(&batcher->work_seq, 1);
    /* A spinning runner will see it (and looks at the queue under the lock
     * before it parks): waking a parked one as well would only cost the
     * futex call, made under the lock the spinner needs. */
    if (batcher->spinning == 0)
        fleet__cond_signal(&batcher->work);
    fleet__mutex_unlock(&batcher->lock);
    *ticket = (fleet_ticket *)handle;
    return FLEET_OK;
}

/* ---- runners ------------------------------------------------------------------------------ */

static void add_sample(samples *s, double v)
{
    s->v[s->n++ % SAMPLES] = v;
}

/* Take the next batch off the queue (lock held): requests in arrival order
 * while their rows fit; expired ones go to *expired instead. While another
 * runner is idle and spinning for work, one request only: it takes the
 * next, and two runs side by side cost less than a gather and a scatter. */
static request_ticket *take_batch(fleet_batcher *b, int64_t *rows, request_ticket **expired)
    FLEET_REQUIRES(b->lock)
{
    request_ticket *batch = NULL, **tail = &batch;
    uint64_t now = fleet__now_ns();
    bool alone = b->spinning > 0;
    *rows = 0;
    *expired = NULL;
    while (b->head != NULL) {
        request_ticket *t = b->head;
        bool late = now >= t->deadline_ns;
        if (!late && (*rows + t->rows > b->cfg.max_batch || (alone && batch != NULL)))
            break;
        b->head = t->next;
        if (b->head == NULL)
            b->tail = NULL;
        b->queued--;
        b->queued_rows -= t->rows;
        if (late) {
            t->next = *expired;
            *expired = t;
            continue;
        }
        t->next = NULL;
        *tail = t;
        tail = &t->next;
        *rows += t->rows;
    }
    return batch;
}

/* A view of rows [start, start + n) of t (dim 0), on the stack. */
static fleet_tensor rows_view(const fleet_tensor *t, int64_t start, int64_t n)
{
    fleet_tensor v = *t;
    v.offset += start * t->strides[0];
    v.shape[0] = n;
    return v;
}

static fleet_status bucket_tensors(runner *r, int k)
{
    fleet_batcher *b = r->b;
    const fleet_model *m = b->model;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < fleet__model_io_count(m, pass); i++) {
            fleet_tensor **slot = pass ? &r->out[k][i] : &r->in[k][i];
            if (*slot != NULL)
                continue;
            fleet__model_io io = fleet__model_io_at(m, pass, i);
            int64_t shape[FLEET_MAX_DIMS];
            for (int d = 0; d < io.ndim; d++)
                shape[d] = d == 0 ? b->buckets[k] : io.shape[d]; /* [B, ...]: checked */
            fleet_status st = fleet__tensor_new(b->dev, io.dtype, io.ndim, shape, "fleet_batcher",
                                                slot);
            if (st != FLEET_OK)
                return st;
        }
    }
    return FLEET_OK;
}

/* Gather, run, scatter, wait: the status of the whole batch (a batch of one
 * request that fills its bucket runs on that request's tensors). The
 * requests' tensors are handles the tickets hold (never stale); the
 * runner's are its own. */
static fleet_status run_batch(runner *r, request_ticket *batch, int64_t rows)
{
    fleet_batcher *b = r->b;
    const fleet_model *m = b->model;
    int n_in = fleet__model_io_count(m, false), n_out = fleet__model_io_count(m, true);
    int k = 0;
    while (b->buckets[k] < rows)
        k++;
    fleet_stream *s = r->stream;
    if (batch->next == NULL && batch->rows == b->buckets[k]) {
        /* One request that fills its bucket (a lone batch-1 request, say):
         * the model runs on the request's own tensors, no gather or scatter. */
        const fleet_tensor *in[FLEET_MODEL_MAX_IO];
        fleet_tensor *out[FLEET_MODEL_MAX_IO];
        for (int i = 0; i < n_in; i++)
            in[i] = fleet__tensor_get(batch->in[i]);
        for (int i = 0; i < n_out; i++)
            out[i] = (fleet_tensor *)fleet__tensor_get(batch->out[i]);
        fleet_status st = fleet_stream_wait_event(s, batch->ready);
        if (st == FLEET_OK)
            st = fleet__model_run(b->model, s, rows, in, out);
        fleet_status sync = fleet_stream_synchronize(s);
        return st != FLEET_OK ? st : sync;
    }
    fleet__op_call call;
    fleet_status st = fleet__op_call_on(&call, "fleet_batcher", s);
    if (st == FLEET_OK)
        st = bucket_tensors(r, k);
    fleet__copy_list *copies = &r->copies;
    fleet__copy_list_begin(copies, &call);
    int64_t at = 0;
    for (request_ticket *t = batch; t != NULL && st == FLEET_OK; t = t->next) {
        st = fleet_stream_wait_event(s, t->ready);
        for (int i = 0; i < n_in && st == FLEET_OK; i++) {
            fleet_tensor dst = rows_view(r->in[k][i], at, t->rows);
            st = fleet__copy_list_add(copies, fleet__tensor_get(t->in[i]), &dst);
        }
        at += t->rows;
    }
    if (st == FLEET_OK)
        st = fleet__copy_list_flush(copies);
    if (st == FLEET_OK)
        st = fleet__model_run(b->model, s, b->buckets[k], (const fleet_tensor *const *)r->in[k],
                              r->out[k]);
    at = 0;
    for (request_ticket *t = batch; t != NULL && st == FLEET_OK; t = t->next) {
        for (int i = 0; i < n_out && st == FLEET_OK; i++) {
            fleet_tensor src = rows_view(r->out[k][i], at, t->rows);
            st = fleet__copy_list_add(copies, &src, (fleet_tensor *)fleet__tensor_get(t->out[i]));
        }
        at += t->rows;
    }
    if (st == FLEET_OK)
        st = fleet__copy_list_flush(copies);
    fleet_status sync = fleet_stream_synchronize(s); /* always: nothing left in flight */
    return st != FLEET_OK ? st : sync;
}

typedef struct work_watch {
    const fleet_batcher *b;
    uint64_t seen;
} work_watch;

static bool work_arrived(const void *arg)
{
    const work_watch *w = arg;
    return fleet_atomic_load_relaxed(&((fleet_batcher *)w->b)->work_seq) != w->seen;
}

/* An idle runner (lock held, nothing queued) spins a little for the next
 * request before it parks (core/spin.h: only while a core is idle), so a
 * request that arrives microseconds later costs no wake-up. Whether
 * something arrived (another runner may have taken it already). */
static bool idle_spin(fleet_batcher *b) FLEET_REQUIRES(b->lock)
{
    work_watch w = {b, fleet_atomic_load_relaxed(&b->work_seq)};
    b->spinning++;
    fleet__mutex_unlock(&b->lock);
    bool arrived = fleet__spin_until(work_arrived, &w);
    fleet__mutex_lock(&b->lock);
    b->spinning--;
    return arrived;
}

static void *runner_main(void *arg)
{
    runner *r = arg;
    fleet_batcher *b = r->b;
    fleet_status bound = fleet__stream_current(b->dev, &r->stream);
    fleet__mutex_lock(&b->lock);
    if (bound != FLEET_OK && b->start_status == FLEET_OK) {
        b->start_status = bound;
        snprintf(b->start_error, sizeof b->start_error, "fleet_batcher_create: runner %d: %s",
                 r->index, fleet_last_error());
    }
    b->n_started++;
    fleet__cond_broadcast(&b->started);
    if (bound != FLEET_OK) {
        fleet__mutex_unlock(&b->lock);
        return NULL;
    }
    for (;;) {
        /* Spin while requests keep arriving (one another runner took
         * leaves this one spinning again, not parked); once a spin saw
         * none, look at the queue again under the lock before parking: a
         * submit between the spin's last look and the relock signalled
         * nobody, this runner being counted as spinning (the soak test hung
         * there; verify/batcher.pml's BROKEN_SPIN_PARKS_BLIND). */
        bool parked = false;
        while (b->head == NULL && b->st == RUNNING) {
            if (!parked) {
                parked = !idle_spin(b);
                continue;
            }
            fleet__cond_wait(&b->work, &b->lock);
        }
        if (b->head == NULL)
            break; /* shut down and nothing left */
        /* An idle runner dispatches at once (Triton's default): batches
         * form while runners are busy. Only while another runner is running
         * a batch, so load is evident, give this one up to max_delay_us
         * from its first request to fill. */
        uint64_t until = b->head->enqueued_ns + (uint64_t)b->cfg.max_delay_us * 1000u;
        while (b->head != NULL && b->st == RUNNING && b->running > 0 &&
               b->queued_rows < b->cfg.max_batch && fleet__now_ns() < until)
            (void)fleet__cond_wait_until(&b->work, &b->lock, until);
        if (b->head == NULL)
            continue; /* another runner took them */
        int64_t rows;
        request_ticket *expired, *batch = take_batch(b, &rows, &expired);
        if (b->head != NULL) { /* more for another runner */
            fleet_atomic_add_relaxed(&b->work_seq, 1);
            if (b->spinning == 0)
                fleet__cond_signal(&b->work);
        }
        b->running += batch != NULL;
        fleet__mutex_unlock(&b->lock);

        complete_list(b, expired, FLEET_ERR_TIMEOUT);
        if (batch != NULL) {
            uint64_t start = fleet__now_ns();
            fleet_status st = run_batch(r, batch, rows);
            if (st != FLEET_OK)
                FLEET_LOG_WARNF("batcher: a batch of %lld rows failed: %s", (long long)rows,
                                fleet_last_error());
            uint64_t end = fleet__now_ns();
            fleet__mutex_lock(&b->lock);
            b->running--;
            b->batches++;
            b->rows += (uint64_t)rows;
            for (request_ticket *t = batch; t != NULL; t = t->next) {
                t->started_ns = start;
                t->finished_ns = end;
                add_sample(&b->wait_us, (double)(start - t->enqueued_ns) / 1e3);
                add_sample(&b->run_us, (double)(end - start) / 1e3);
            }
            fleet__mutex_unlock(&b->lock);
            complete_list(b, batch, st);
        }
        fleet__mutex_lock(&b->lock);
    }
    fleet__mutex_unlock(&b->lock);
    for (int k = 0; k < MAX_BUCKETS; k++)
        for (int i = 0; i < FLEET_MODEL_MAX_IO; i++) {
            if (r->in[k][i] != NULL)
                fleet__tensor_free(r->in[k][i]);
            if (r->out[k][i] != NULL)
                fleet__tensor_free(r->out[k][i]);
        }
    return NULL;
}

/* ---- shutdown, destroy, stats ------------------------------------------------------------ */

fleet_status fleet_batcher_shutdown(fleet_batcher *batcher, bool drain)
{
    FLEET_CHECK_ARG(batcher != NULL, FLEET_ERR_NULL_POINTER,
                    "fleet_batcher_shutdown: batcher is NULL");
    request_ticket *cancelled = NULL;
    fleet__mutex_lock(&batcher->lock);
    bool first = batcher->st == RUNNING;
    if (first) {
        batcher->st = drain ? DRAINING : CANCELLING;
        if (!drain) {
            cancelled = batcher->head;
            batcher->head = batcher->tail = NULL;
            batcher->queued = 0;
            batcher->queued_rows = 0;
        }
        fleet_atomic_add_relaxed(&batcher->work_seq, 1);
        fleet__cond_broadcast(&batcher->work);
    }
    fleet__mutex_unlock(&batcher->lock);
    if (!first)
        return FLEET_OK;
    complete_list(batcher, cancelled, FLEET_ERR_SHUTDOWN);
    for (int i = 0; i < batcher->cfg.max_inflight; i++)
        fleet__thread_join(&batcher->runners[i].thread);
    fleet__mutex_lock(&batcher->lock);
    FLEET_ASSERT(batcher->head == NULL); /* no ticket stranded */
    batcher->st = STOPPED;
    fleet__mutex_unlock(&batcher->lock);
    return FLEET_OK;
}

fleet_status fleet_batcher_destroy(fleet_batcher *batcher)
{
    if (batcher == NULL)
        return FLEET_OK;
    fleet_status st = fleet_batcher_shutdown(batcher, true);
    for (int i = 0; i < batcher->n_events; i++)
        (void)fleet_event_destroy(batcher->events[i]);
    fleet__cond_destroy(&batcher->started);
    fleet__cond_destroy(&batcher->work);
    fleet__mutex_destroy(&batcher->lock);
    free(batcher->events);
    free(batcher->runners);
    free(batcher);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void percentiles(const samples *s, double *p50, double *p99)
{
    size_t n = s->n < SAMPLES ? (size_t)s->n : SAMPLES;
    *p50 = *p99 = 0;
    if (n == 0)
        return;
    double *v = fleet__malloc(sizeof(double) * n);
    if (v == NULL)
        return;
    memcpy(v, s->v, sizeof(double) * n);
    qsort(v, n, sizeof *v, cmp_double);
    *p50 = v[n / 2];
    *p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
    free(v);
}

fleet_status fleet_batcher_get_stats(fleet_batcher *batcher, fleet_batcher_stats *out)
{
    FLEET_CHECK_ARG(batcher != NULL && out != NULL, FLEET_ERR_NULL_POINTER,
                    "fleet_batcher_get_stats: NULL argument");
    samples *w = fleet__malloc(sizeof *w), *r = fleet__malloc(sizeof *r);
    if (w == NULL || r == NULL) {
        free(w);
        free(r);
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "fleet_batcher_get_stats: no host memory");
    }
    fleet__mutex_lock(&batcher->lock);
    *out = (fleet_batcher_stats){
        .submitted = batcher->submitted, .completed_ok = batcher->completed_ok,
        .failed = batcher->failed, .timed_out = batcher->timed_out,
        .cancelled = batcher->cancelled, .rejected_full = batcher->rejected_full,
        .batches = batcher->batches, .rows = batcher->rows, .queued = batcher->queued,
    };
    *w = batcher->wait_us;
    *r = batcher->run_us;
    fleet__mutex_unlock(&batcher->lock);
    out->mean_batch_rows = out->batches ? (double)out->rows / (double)out->batches : 0.0;
    percentiles(w, &out->queue_wait_p50_us, &out->queue_wait_p99_us);
    percentiles(r, &out->run_p50_us, &out->run_p99_us);
    free(w);
    free(r);
    return FLEET_OK;
}
