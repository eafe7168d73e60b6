/* serve/serve.h — the server's private structures, shared by its files:
 * repository.c (loading the models), http.c (libmicrohttpd: routing,
 * limits, suspend/resume), infer.c (a request through a model's batcher
 * and its completion thread), metrics.c (Prometheus text).
 *
 * A request's life. The HTTP thread reads the body, parses it
 * (serve/oip_json.h), checks it against the model, copies the inputs into
 * tensors, submits them to the model's batcher and suspends the connection
 * (no thread waits for it). The model's completion thread waits on its
 * pending tickets, builds each response and resumes the connection; the
 * HTTP thread then sends it. In-flight count: from submit until the
 * response has been handed to the HTTP library, so draining can wait for
 * it to reach zero. */
#ifndef FLEET_SERVE_SERVE_H
#define FLEET_SERVE_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/assert.h"
#include "core/atomic.h"
#include "core/lock.h"
#include "core/prim.h"
#include "fleet.h"
#include "fleet/server.h"
#include "serve/oip_json.h"

struct MHD_Connection;
struct MHD_Daemon;
typedef struct fleet__serve_request fleet__serve_request;

#define FLEET__SERVE_MAX_REPLICAS 16

/* A model's config.json, after defaults. */
typedef struct fleet__serve_model_config {
    int max_batch;          /* 1..4096 (32)                                     */
    int64_t max_delay_us;   /* 0..10^7 (500)                                    */
    int instances;          /* batcher runners, batches in flight, 1..16 (2)     */
    int queue_capacity;     /* 1..2^20 (1024)                                   */
    int64_t timeout_ms;     /* a request's deadline in the queue, 0: none (0)   */
    int n_devices;          /* one replica of the model on each (1 at least)    */
    char devices[FLEET__SERVE_MAX_REPLICAS][32]; /* "default", "cpu[:N]", "cuda[:N]" */
    int n_dims;             /* ONNX dims bound by name                          */
    char dim_names[16][64];
    int64_t dim_values[16];
    /* builder models */
    char builder[16];       /* "" (ONNX) or "mlp"                               */
    int n_widths;
    int64_t widths[32];
} fleet__serve_model_config;

/* One copy of a model on one device, with its batcher. */
typedef struct fleet__serve_replica {
    fleet_device *device;
    fleet_model *model;
    fleet_batcher *batcher;
    fleet_atomic_i64 pending; /* its submitted, unanswered requests (relaxed) */
} fleet__serve_replica;

typedef struct fleet__serve_model {
    char name[128];
    const char *platform;   /* "onnx" or "fleet"                                 */
    fleet__serve_model_config cfg;
    int n_replicas;         /* one per configured device; a request goes to the
                             * one with the fewest pending                       */
    fleet__serve_replica rep[FLEET__SERVE_MAX_REPLICAS];
    fleet_model *model;     /* rep[0]'s: the names, dtypes and shapes (the same
                             * in every replica)                                 */
    int n_in, n_out;

    /* Counters (relaxed: read by /metrics only). */
    fleet_atomic_u64 success, failure;     /* infer requests answered 200 / not */
    fleet_atomic_u64 inference_count;      /* rows inferred                     */
    fleet_atomic_u64 queue_us, compute_us; /* cumulative, per request           */
    fleet_atomic_u64 request_us;           /* submit to response, per request   */
    fleet_atomic_i64 pending;              /* submitted, not yet answered       */

    /* The completion thread and its list of submitted requests.
     * rank 10 (leaf): guards head, tail, stopping; no fleet call is made
     * and no other lock taken while it is held. */
    fleet__mutex lock;
    fleet__cond cv;
    fleet__serve_request *head, *tail;
    bool stopping;
    bool thread_started;
    fleet__thread thread;
} fleet__serve_model;

struct fleet_server {
    fleet_server_config cfg;
    char *models_dir, *host;   /* the config's strings, owned              */
    int n_models;
    fleet__serve_model **models;
    struct MHD_Daemon *daemon;
    int port;
    bool stopped;
    fleet_atomic_bool draining;
    fleet_atomic_i64 in_flight;  /* requests between submit and response */
    fleet_atomic_u64 connections_refused_timeout;

    /* The request-time watchdog: a table of open connections with their
     * deadlines; the watchdog shuts down the socket of one whose request
     * did not arrive in time (libmicrohttpd then closes it).
     * rank 10 (leaf): guards conns, n_conns, cap_conns, watch_stop. */
    fleet__mutex watch_lock;
    fleet__cond watch_cv;
    struct fleet__serve_conn **conns;
    int n_conns, cap_conns;
    bool watch_stop, watch_started;
    fleet__thread watchdog;
};

/* One open connection: its socket and the deadline of the request it is
 * receiving (FLEET__FOREVER: none, a request being processed). Guarded by
 * the server's watch_lock. */
typedef struct fleet__serve_conn {
    int fd;
    uint64_t deadline_ns;
    int index;  /* in server->conns */
} fleet__serve_conn;

/* repository.c */
fleet_status fleet__serve_load_models(fleet_server *s);
void fleet__serve_free_models(fleet_server *s);
fleet__serve_model *fleet__serve_find_model(fleet_server *s, const char *name, size_t len);
/* Parse a config.json's text into *cfg (defaults first); err gets why not. */
fleet_status fleet__serve_parse_model_config(const char *text, size_t len,
                                             fleet__serve_model_config *cfg, char *err,
                                             size_t err_size);

/* A response ready to send: status, body (malloc'd), content type and the
 * binary extension's JSON length (0: not binary). */
typedef struct fleet__serve_response {
    unsigned status;
    char *body;
    size_t len;
    size_t json_len;
} fleet__serve_response;
void fleet__serve_error(fleet__serve_response *r, unsigned status, const char *fmt, ...)
    FLEET_PRINTF(3, 4);

/* infer.c: start an infer request on m with the body; on FLEET_OK the
 * request is submitted (*out_req: resume later; the caller suspends the
 * connection before the completion thread may resume it: see http.c),
 * otherwise *resp holds the error to send now. */
fleet_status fleet__serve_infer_start(fleet_server *s, fleet__serve_model *m,
                                      struct MHD_Connection *conn, const char *body, size_t len,
                                      int64_t header_len, fleet__serve_request **out_req,
                                      fleet__serve_response *resp);
/* The completed request's response (moved out) and free the request. */
void fleet__serve_infer_finish(fleet__serve_request *req, fleet__serve_response *resp);
/* Let the completion thread resume the connection: called after the
 * connection was suspended. */
void fleet__serve_infer_release(fleet__serve_request *req);
/* Free a request whose connection went away before finish. */
void fleet__serve_infer_abandon(fleet__serve_request *req);
fleet_status fleet__serve_completion_start(fleet__serve_model *m);
void fleet__serve_completion_stop(fleet__serve_model *m);
/* Model metadata JSON (GET /v2/models/{name}). */
char *fleet__serve_model_metadata(const fleet__serve_model *m);

/* metrics.c: the Prometheus text of /metrics, malloc'd. */
char *fleet__serve_metrics_text(fleet_server *s, size_t *len);

#endif /* FLEET_SERVE_SERVE_H */
