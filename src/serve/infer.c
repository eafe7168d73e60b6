/* serve/infer.c — an infer request through its model's batcher: checked
 * against the model, submitted (the HTTP thread goes on at once), completed
 * by the model's completion thread, which builds the response and resumes
 * the connection. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "serve/serve.h"

struct fleet__serve_request {
    fleet_server *server;
    fleet__serve_model *m;
    fleet__serve_replica *rep; /* the copy of the model it runs on */
    struct MHD_Connection *conn;
    char *id;
    int64_t rows;
    fleet_tensor *in[FLEET_MODEL_MAX_IO], *out[FLEET_MODEL_MAX_IO];
    int n_send; /* outputs in the response, in order */
    int send[FLEET_MODEL_MAX_IO];
    bool send_binary[FLEET_MODEL_MAX_IO];
    fleet_ticket *ticket;
    uint64_t submit_ns;
    fleet__serve_response resp;
    fleet__serve_request *next; /* the completion list (m->lock)    */
};

void fleet__serve_error(fleet__serve_response *r, unsigned status, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(r->body);
    r->status = status;
    r->body = fleet__oip_error_json(text);
    r->len = r->body ? strlen(r->body) : 0;
    r->json_len = 0;
}

static void request_free(fleet__serve_request *q)
{
    if (q->ticket != NULL)
        fleet_ticket_release(q->ticket);
    for (int i = 0; i < FLEET_MODEL_MAX_IO; i++) {
        fleet_tensor_release(q->in[i]);
        fleet_tensor_release(q->out[i]);
    }
    free(q->resp.body);
    free(q->id);
    free(q);
}

/* The parsed request against the model: inputs by name, dtypes, shapes
 * (rows = the batch dimension, the same for every input), outputs asked
 * for. 400s. */
static bool check(fleet__serve_model *m, const fleet__oip_request *r, fleet__serve_request *q,
                  const fleet__oip_tensor **by_input, fleet__serve_response *resp)
{
    if (r->n_inputs != m->n_in) {
        fleet__serve_error(resp, 400, "model '%s' takes %d inputs, the request has %d", m->name,
                           m->n_in, r->n_inputs);
        return false;
    }
    q->rows = -1;
    for (int i = 0; i < m->n_in; i++) {
        const char *name;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        (void)fleet_model_input_info(m->model, i, &name, &dt, &ndim, shape);
        const fleet__oip_tensor *t = NULL;
        for (int j = 0; j < r->n_inputs && t == NULL; j++)
            if (strcmp(r->inputs[j].name, name) == 0)
                t = &r->inputs[j];
        if (t == NULL) {
            fleet__serve_error(resp, 400,
                               "model '%s' takes an input '%s', which the request "
                               "lacks",
                               m->name, name);
            return false;
        }
        if (t->dtype != dt) {
            fleet__serve_error(resp, 400, "input '%s': datatype %s, the model takes %s", name,
                               fleet__oip_dtype_name(t->dtype), fleet__oip_dtype_name(dt));
            return false;
        }
        bool same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++)
            same = shape[d] < 0 ? d == 0 : t->shape[d] == shape[d];
        if (!same) {
            char want[160] = "", got[160] = "";
            for (int d = 0; d < ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "",
                         (long long)shape[d]);
            for (int d = 0; d < t->ndim; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "",
                         (long long)t->shape[d]);
            fleet__serve_error(resp, 400,
                               "input '%s': shape [%s], the model takes [%s] (-1: the "
                               "batch)",
                               name, got, want);
            return false;
        }
        int64_t rows = ndim > 0 && shape[0] < 0 ? t->shape[0] : 1;
        if (q->rows >= 0 && rows != q->rows) {
            fleet__serve_error(resp, 400, "input '%s': batch %lld, another input's is %lld", name,
                               (long long)rows, (long long)q->rows);
            return false;
        }
        q->rows = rows;
        by_input[i] = t;
    }
    if (q->rows < 1 || q->rows > m->cfg.max_batch) {
        fleet__serve_error(resp, 400, "a batch of %lld rows: model '%s' takes 1..%d (max_batch)",
                           (long long)q->rows, m->name, m->cfg.max_batch);
        return false;
    }
    if (r->n_outputs == 0) {
        q->n_send = m->n_out;
        for (int i = 0; i < m->n_out; i++) {
            q->send[i] = i;
            q->send_binary[i] = r->binary_default;
        }
        return true;
    }
    for (int k = 0; k < r->n_outputs; k++) {
        int found = -1;
        for (int i = 0; i < m->n_out && found < 0; i++) {
            const char *name;
            fleet_dtype dt;
            int ndim;
            int64_t shape[FLEET_MAX_DIMS];
            (void)fleet_model_output_info(m->model, i, &name, &dt, &ndim, shape);
            if (strcmp(name, r->outputs[k].name) == 0)
                found = i;
        }
        if (found < 0) {
            fleet__serve_error(resp, 400, "model '%s' has no output '%s'", m->name,
                               r->outputs[k].name);
            return false;
        }
        q->send[q->n_send] = found;
        q->send_binary[q->n_send++] = r->outputs[k].binary;
    }
    return true;
}

static unsigned status_http(fleet_status st)
{
    switch (st) {
    case FLEET_ERR_QUEUE_FULL:
        return 429;
    case FLEET_ERR_SHUTDOWN:
        return 503;
    case FLEET_ERR_TIMEOUT:
        return 503;
    case FLEET_ERR_OUT_OF_MEMORY:
        return 503;
    case FLEET_ERR_INVALID_ARGUMENT:
    case FLEET_ERR_SHAPE_MISMATCH:
    case FLEET_ERR_DTYPE_MISMATCH:
        return 400;
    default:
        return 500;
    }
}

fleet_status fleet__serve_infer_start(fleet_server *s, fleet__serve_model *m,
                                      struct MHD_Connection *conn, const char *body, size_t len,
                                      int64_t header_len, fleet__serve_request **out_req,
                                      fleet__serve_response *resp)
{
    *out_req = NULL;
    fleet__serve_request *q = fleet__calloc(1, sizeof *q);
    fleet__oip_request *r = fleet__malloc(sizeof *r);
    if (q == NULL || r == NULL) {
        free(q);
        free(r);
        fleet__serve_error(resp, 503, "out of memory");
        return FLEET_ERR_OUT_OF_MEMORY;
    }
    q->server = s;
    q->m = m;
    q->conn = conn;
    char err[512];
    fleet_status st = fleet__oip_parse_request(body, len, header_len, r, err, sizeof err);
    if (st != FLEET_OK) {
        free(r);
        free(q);
        fleet__serve_error(resp, st == FLEET_ERR_OUT_OF_MEMORY ? 503 : 400, "%s", err);
        return st;
    }
    q->id = r->id;
    r->id = NULL;
    const fleet__oip_tensor *by_input[FLEET_MODEL_MAX_IO];
    if (!check(m, r, q, by_input, resp)) {
        st = FLEET_ERR_INVALID_ARGUMENT;
        goto fail;
    }
    /* the replica with the fewest requests pending (the first among equals) */
    fleet__serve_replica *rep = &m->rep[0];
    for (int k = 1; k < m->n_replicas; k++)
        if (fleet_atomic_load_relaxed(&m->rep[k].pending) <
            fleet_atomic_load_relaxed(&rep->pending))
            rep = &m->rep[k];
    q->rep = rep;
    for (int i = 0; i < m->n_in && st == FLEET_OK; i++) {
        const fleet__oip_tensor *t = by_input[i];
        st = fleet_tensor_create(rep->device, t->dtype, t->ndim, t->shape, &q->in[i]);
        if (st == FLEET_OK)
            st = fleet_tensor_copy_from_host(q->in[i], t->data, t->nbytes);
    }
    for (int i = 0; i < m->n_out && st == FLEET_OK; i++) {
        const char *name;
        fleet_dtype dt;
        int ndim;
        int64_t shape[FLEET_MAX_DIMS];
        st = fleet_model_output_info(rep->model, i, &name, &dt, &ndim, shape);
        if (st == FLEET_OK)
            st = fleet_model_output_shape(rep->model, i, q->rows, &ndim, shape);
        if (st == FLEET_OK)
            st = fleet_tensor_create(rep->device, dt, ndim, shape, &q->out[i]);
    }
    if (st != FLEET_OK) {
        fleet__serve_error(resp, status_http(st), "%s", fleet_last_error());
        goto fail;
    }
    q->submit_ns = fleet__now_ns();
    st = fleet_batcher_submit(rep->batcher, (const fleet_tensor *const *)q->in, m->n_in, q->out,
                              m->n_out, m->cfg.timeout_ms * 1000, &q->ticket);
    if (st != FLEET_OK) {
        if (st == FLEET_ERR_QUEUE_FULL)
            fleet__serve_error(resp, 429, "model '%s': the queue is full (%d requests)", m->name,
                               m->cfg.queue_capacity);
        else if (st == FLEET_ERR_SHUTDOWN)
            fleet__serve_error(resp, 503, "the server is shutting down");
        else
            fleet__serve_error(resp, status_http(st), "%s", fleet_last_error());
        goto fail;
    }
    /* copy_from_host returned: the parsed data may go now. */
    fleet__oip_request_free(r);
    free(r);
    fleet_atomic_add_relaxed(&m->pending, 1);
    fleet_atomic_add_relaxed(&rep->pending, 1);
    fleet_atomic_add_acq_rel(&s->in_flight, 1);
    *out_req = q;
    return FLEET_OK;
fail:
    fleet__oip_request_free(r);
    free(r);
    request_free(q);
    return st == FLEET_OK ? FLEET_ERR_INVALID_ARGUMENT : st;
}

/* The response of a completed request, into q->resp. */
static void build(fleet__serve_request *q)
{
    fleet__serve_model *m = q->m;
    fleet_status st = fleet_ticket_poll(q->ticket);
    double queue_us = 0, compute_us = 0;
    (void)fleet_ticket_get_times(q->ticket, &queue_us, &compute_us);
    fleet_atomic_add_relaxed(&m->queue_us, (uint64_t)queue_us);
    fleet_atomic_add_relaxed(&m->compute_us, (uint64_t)compute_us);
    if (st != FLEET_OK) {
        if (st == FLEET_ERR_TIMEOUT)
            fleet__serve_error(&q->resp, 503,
                               "model '%s': timed out in the queue (timeout_ms %lld)", m->name,
                               (long long)m->cfg.timeout_ms);
        else if (st == FLEET_ERR_SHUTDOWN)
            fleet__serve_error(&q->resp, 503, "the server is shutting down");
        else
            fleet__serve_error(&q->resp, status_http(st), "model '%s': %s", m->name,
                               fleet_last_error());
        return;
    }
    fleet__oip_output outs[FLEET_MODEL_MAX_IO];
    void *host[FLEET_MODEL_MAX_IO] = {0};
    int64_t shapes[FLEET_MODEL_MAX_IO][FLEET_MAX_DIMS];
    for (int k = 0; k < q->n_send && st == FLEET_OK; k++) {
        int i = q->send[k];
        const char *name;
        fleet_dtype dt;
        int ndim;
        (void)fleet_model_output_info(m->model, i, &name, &dt, &ndim, shapes[k]);
        for (int d = 0; d < ndim; d++)
            shapes[k][d] = fleet_tensor_dim(q->out[i], d);
        size_t nbytes = fleet_tensor_nbytes(q->out[i]);
        host[k] = fleet__malloc(nbytes ? nbytes : 1);
        st = host[k] ? fleet_tensor_copy_to_host(q->out[i], host[k], nbytes)
                     : FLEET_ERR_OUT_OF_MEMORY;
        outs[k] =
            (fleet__oip_output){name, dt, ndim, shapes[k], host[k], nbytes, q->send_binary[k]};
    }
    if (st == FLEET_OK)
        st = fleet__oip_build_response(m->name, "1", q->id, outs, q->n_send, &q->resp.body,
                                       &q->resp.len, &q->resp.json_len);
    for (int k = 0; k < q->n_send; k++)
        free(host[k]);
    if (st != FLEET_OK) {
        fleet__serve_error(&q->resp, 503, "model '%s': the response: %s", m->name,
                           fleet_status_str(st));
        return;
    }
    q->resp.status = 200;
    bool binary = false;
    for (int k = 0; k < q->n_send; k++)
        binary = binary || q->send_binary[k];
    if (!binary)
        q->resp.json_len = 0;
    fleet_atomic_add_relaxed(&m->inference_count, (uint64_t)q->rows);
}

/* Build the response, free what the model no longer needs, resume the
 * connection: the last touch of q by this thread (the HTTP thread takes it
 * from there). */
static void complete(fleet__serve_request *q)
{
    build(q);
    fleet__serve_model *m = q->m;
    fleet_atomic_add_relaxed(q->resp.status == 200 ? &m->success : &m->failure, 1);
    fleet_atomic_add_relaxed(&m->request_us, (fleet__now_ns() - q->submit_ns) / 1000);
    fleet_atomic_sub_relaxed(&m->pending, 1);
    fleet_atomic_sub_relaxed(&q->rep->pending, 1);
    fleet_ticket_release(q->ticket);
    q->ticket = NULL;
    for (int i = 0; i < FLEET_MODEL_MAX_IO; i++) {
        fleet_tensor_release(q->in[i]);
        fleet_tensor_release(q->out[i]);
        q->in[i] = q->out[i] = NULL;
    }
    MHD_resume_connection(q->conn);
}

void fleet__serve_infer_release(fleet__serve_request *q)
{
    fleet__serve_model *m = q->m;
    fleet__mutex_lock(&m->lock);
    bool inline_ = m->stopping;
    if (!inline_) {
        q->next = NULL;
        if (m->tail != NULL)
            m->tail->next = q;
        else
            m->head = q;
        m->tail = q;
        fleet__cond_signal(&m->cv);
    }
    fleet__mutex_unlock(&m->lock);
    if (inline_) { /* the completion thread is gone; the batcher is shut down */
        (void)fleet_ticket_wait(q->ticket, -1);
        complete(q);
    }
}

void fleet__serve_infer_finish(fleet__serve_request *q, fleet__serve_response *resp)
{
    *resp = q->resp;
    q->resp.body = NULL;
    fleet_atomic_sub_acq_rel(&q->server->in_flight, 1);
    request_free(q);
}

void fleet__serve_infer_abandon(fleet__serve_request *q)
{
    fleet__serve_response r;
    fleet__serve_infer_finish(q, &r);
    free(r.body);
}

/* Takes the submitted requests in order; waits on the oldest a little,
 * then completes every one that is done (batches of two runners may
 * finish out of order). */
static void *completion_main(void *arg)
{
    fleet__serve_model *m = arg;
    fleet__serve_request *mine = NULL, *mine_tail = NULL;
    for (;;) {
        fleet__mutex_lock(&m->lock);
        while (m->head == NULL && mine == NULL && !m->stopping)
            fleet__cond_wait(&m->cv, &m->lock);
        bool stop = m->stopping && m->head == NULL && mine == NULL;
        if (m->head != NULL) {
            if (mine_tail != NULL)
                mine_tail->next = m->head;
            else
                mine = m->head;
            mine_tail = m->tail;
            m->head = m->tail = NULL;
        }
        fleet__mutex_unlock(&m->lock);
        if (stop)
            break;
        if (mine == NULL) /* woken with nothing (stopping, work still queued) */
            continue;
        (void)fleet_ticket_wait(mine->ticket, 2);
        fleet__serve_request **link = &mine;
        mine_tail = NULL;
        while (*link != NULL) {
            fleet__serve_request *q = *link;
            if (fleet_ticket_poll(q->ticket) != FLEET_ERR_NOT_READY) {
                *link = q->next;
                complete(q);
            } else {
                mine_tail = q;
                link = &q->next;
            }
        }
    }
    return NULL;
}

fleet_status fleet__serve_completion_start(fleet__serve_model *m)
{
    fleet_status st = fleet__thread_start(&m->thread, completion_main, m, "fleet-serve-done");
    m->thread_started = st == FLEET_OK;
    return st;
}

void fleet__serve_completion_stop(fleet__serve_model *m)
{
    if (!m->thread_started)
        return;
    fleet__mutex_lock(&m->lock);
    m->stopping = true;
    fleet__cond_signal(&m->cv);
    fleet__mutex_unlock(&m->lock);
    fleet__thread_join(&m->thread);
    m->thread_started = false;
}
