/* serve/http.c — the server on libmicrohttpd: the routes of the Open
 * Inference Protocol's REST API, the limits, suspend/resume around the
 * batcher, the request-time watchdog, drain and the access log.
 *
 * Threads: libmicrohttpd's own (its internal polling thread, or a pool of
 * http_threads of them, epoll where available) run the handler; infer
 * requests suspend their connection once submitted, so no HTTP thread
 * waits for a model. */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "serve/serve.h"

enum route {
    R_NONE,
    R_LIVE,
    R_READY,
    R_SERVER,
    R_MODEL,
    R_MODEL_READY,
    R_CONFIG,
    R_INFER,
    R_METRICS
};

/* One HTTP request (MHD's con_cls). */
typedef struct http_ctx {
    enum route route;
    fleet__serve_model *m;
    char *body;
    size_t len, cap;
    int64_t header_len; /* Inference-Header-Content-Length, -1: none */
    bool too_large;
    fleet__serve_request *req;
    uint64_t start_ns;
    unsigned status;
    size_t bytes_out;
    char method[8];
    char path[200];
} http_ctx;

/* ---- the watchdog --------------------------------------------------------------------- */

static fleet__serve_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i != NULL ? i->socket_context : NULL;
}

static void conn_deadline(fleet_server *s, struct MHD_Connection *c, uint64_t deadline)
{
    fleet__serve_conn *k = conn_of(c);
    if (k == NULL)
        return;
    fleet__mutex_lock(&s->watch_lock);
    k->deadline_ns = deadline;
    fleet__cond_signal(&s->watch_cv);
    fleet__mutex_unlock(&s->watch_lock);
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    fleet_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        fleet__serve_conn *k = fleet__calloc(1, sizeof *k);
        const union MHD_ConnectionInfo *i =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (k == NULL || i == NULL) {
            free(k);
            return;
        }
        k->fd = i->connect_fd;
        k->deadline_ns = fleet__deadline_after_ms(s->cfg.request_timeout_ms);
        fleet__mutex_lock(&s->watch_lock);
        if (s->n_conns == s->cap_conns) {
            int cap = s->cap_conns ? 2 * s->cap_conns : 64;
            fleet__serve_conn **p = fleet__realloc(s->conns, sizeof *p * (size_t)cap);
            if (p == NULL) {
                fleet__mutex_unlock(&s->watch_lock);
                free(k);
                return;
            }
            s->conns = p;
            s->cap_conns = cap;
        }
        k->index = s->n_conns;
        s->conns[s->n_conns++] = k;
        fleet__cond_signal(&s->watch_cv);
        fleet__mutex_unlock(&s->watch_lock);
        *socket_context = k;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
        fleet__serve_conn *k = *socket_context;
        fleet__mutex_lock(&s->watch_lock);
        s->conns[k->index] = s->conns[--s->n_conns];
        s->conns[k->index]->index = k->index;
        fleet__mutex_unlock(&s->watch_lock);
        free(k);
        *socket_context = NULL;
    }
}

/* Shuts down the socket of a connection whose request has not arrived by
 * its deadline: libmicrohttpd sees the end of the stream and closes it.
 * The fd stays valid while in the table (removed before MHD closes it). */
static void *watchdog_main(void *arg)
{
    fleet_server *s = arg;
    fleet__mutex_lock(&s->watch_lock);
    while (!s->watch_stop) {
        uint64_t now = fleet__now_ns(), next = FLEET__FOREVER;
        for (int i = 0; i < s->n_conns; i++) {
            fleet__serve_conn *k = s->conns[i];
            if (k->deadline_ns <= now) {
                shutdown(k->fd, SHUT_RDWR);
                k->deadline_ns = FLEET__FOREVER;
                fleet_atomic_add_relaxed(&s->connections_refused_timeout, 1);
            } else if (k->deadline_ns < next) {
                next = k->deadline_ns;
            }
        }
        (void)fleet__cond_wait_until(&s->watch_cv, &s->watch_lock, next);
    }
    fleet__mutex_unlock(&s->watch_lock);
    return NULL;
}

/* ---- responses ------------------------------------------------------------------------ */

static enum MHD_Result send_response(http_ctx *x, struct MHD_Connection *c,
                                     fleet__serve_response *r, const char *type)
{
    if (r->body == NULL && r->status != 200) { /* the error text itself ran out of memory */
        r->body = strdup("{\"error\":\"out of memory\"}");
        r->len = r->body ? strlen(r->body) : 0;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body ? r->body : (char *)"",
                                        r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL;
    if (r->json_len > 0) {
        char n[32];
        snprintf(n, sizeof n, "%zu", r->json_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", n);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    } else if (type != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    }
    x->status = r->status;
    x->bytes_out = r->len;
    enum MHD_Result ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_json(http_ctx *x, struct MHD_Connection *c, unsigned status, char *json)
{
    fleet__serve_response r = {status, json, json ? strlen(json) : 0, 0};
    return send_response(x, c, &r, "application/json");
}

static enum MHD_Result send_error(http_ctx *x, struct MHD_Connection *c, unsigned status,
                                  const char *fmt, ...) FLEET_PRINTF(4, 5);
static enum MHD_Result send_error(http_ctx *x, struct MHD_Connection *c, unsigned status,
                                  const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fleet__serve_response r = {0};
    fleet__serve_error(&r, status, "%s", text);
    return send_response(x, c, &r, "application/json");
}

/* ---- routing -------------------------------------------------------------------------- */

/* /v2/models/{name}[/versions/{v}][/ready|/infer|/config] */
static enum route model_route(fleet_server *s, const char *url, fleet__serve_model **m,
                              bool *bad_version)
{
    const char *name = url + strlen("/v2/models/");
    const char *end = strchr(name, '/');
    size_t len = end ? (size_t)(end - name) : strlen(name);
    *m = fleet__serve_find_model(s, name, len);
    const char *rest = end ? end : "";
    if (strncmp(rest, "/versions/", 10) == 0) {
        const char *v = rest + 10;
        const char *vend = strchr(v, '/');
        size_t vlen = vend ? (size_t)(vend - v) : strlen(v);
        *bad_version = !(vlen == 1 && v[0] == '1');
        rest = vend ? vend : "";
    }
    if (rest[0] == '\0')
        return R_MODEL;
    if (strcmp(rest, "/ready") == 0)
        return R_MODEL_READY;
    if (strcmp(rest, "/infer") == 0)
        return R_INFER;
    if (strcmp(rest, "/config") == 0)
        return R_CONFIG;
    return R_NONE;
}

static char *server_metadata(void)
{
    return strdup("{\"name\":\"fleet\",\"version\":\"0.1.0\",\"extensions\":"
                  "[\"binary_tensor_data\",\"model_configuration\"]}");
}

/* Triton's model configuration, in the parts fleet has: one instance group
 * per replica (its device), `instances` batches in flight each. */
static char *model_config(const fleet__serve_model *m)
{
    size_t size = 512 + 96 * (size_t)m->n_replicas, len = 0;
    char *buf = fleet__malloc(size);
    if (buf == NULL)
        return NULL;
    len += (size_t)snprintf(buf, size,
                            "{\"name\":\"%s\",\"platform\":\"%s\",\"max_batch_size\":%d,"
                            "\"dynamic_batching\":{\"max_queue_delay_microseconds\":%lld},"
                            "\"queue_capacity\":%d,\"instance_group\":[",
                            m->name, m->platform, m->cfg.max_batch,
                            (long long)m->cfg.max_delay_us, m->cfg.queue_capacity);
    for (int r = 0; r < m->n_replicas; r++) {
        const fleet_device *d = m->rep[r].device;
        bool gpu = fleet_device_backend(d) == FLEET_BACKEND_CUDA;
        len += (size_t)snprintf(buf + len, size - len,
                                "%s{\"count\":%d,\"kind\":\"%s\",\"gpus\":[%d],\"device\":\"%s\"}",
                                r ? "," : "", m->cfg.instances, gpu ? "KIND_GPU" : "KIND_CPU",
                                gpu ? fleet_device_ordinal(d) : 0, fleet_device_name(d));
    }
    snprintf(buf + len, size - len, "]}");
    return buf; /* names are [A-Za-z0-9_.-] and device names fleet's: nothing to escape */
}

static enum MHD_Result handle_get(fleet_server *s, http_ctx *x, struct MHD_Connection *c)
{
    bool draining = fleet_atomic_load_acquire(&s->draining);
    switch (x->route) {
    case R_LIVE:
        return send_json(x, c, 200, strdup("{\"live\":true}"));
    case R_READY:
        return draining ? send_error(x, c, 503, "%s", "the server is draining")
                        : send_json(x, c, 200, strdup("{\"ready\":true}"));
    case R_SERVER:
        return send_json(x, c, 200, server_metadata());
    case R_MODEL:
        return send_json(x, c, 200, fleet__serve_model_metadata(x->m));
    case R_CONFIG:
        return send_json(x, c, 200, model_config(x->m));
    case R_MODEL_READY:
        return draining ? send_error(x, c, 503, "%s", "the server is draining")
                        : send_json(x, c, 200, strdup("{\"ready\":true}"));
    case R_METRICS: {
        size_t len = 0;
        char *text = fleet__serve_metrics_text(s, &len);
        fleet__serve_response r = {text ? 200 : 503, text, len, 0};
        return send_response(x, c, &r, "text/plain; version=0.0.4");
    }
    default:
        return send_error(x, c, 404, "%s", "not found");
    }
}

/* The first call of a request: route it and check what the headers say. */
static enum MHD_Result begin(fleet_server *s, http_ctx *x, struct MHD_Connection *c,
                             const char *url, const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    bool bad_version = false;
    x->route = R_NONE;
    if (strcmp(url, "/v2/health/live") == 0)
        x->route = R_LIVE;
    else if (strcmp(url, "/v2/health/ready") == 0)
        x->route = R_READY;
    else if (strcmp(url, "/v2") == 0 || strcmp(url, "/v2/") == 0)
        x->route = R_SERVER;
    else if (strcmp(url, "/metrics") == 0)
        x->route = R_METRICS;
    else if (strncmp(url, "/v2/models/", 11) == 0)
        x->route = model_route(s, url, &x->m, &bad_version);
    if (x->route == R_NONE)
        return send_error(x, c, 404, "no such path: %s", x->path);
    if (x->route >= R_MODEL && x->route <= R_INFER && x->m == NULL)
        return send_error(x, c, 404, "unknown model in %s", x->path);
    if (bad_version)
        return send_error(x, c, 404, "unknown version in %s (models have version 1)", x->path);
    if ((x->route == R_INFER) != post || (!post && !get))
        return send_error(x, c, 405, "method not allowed on %s", x->path);
    if (x->route != R_INFER)
        return MHD_YES; /* answered once the (ignored) body is in */

    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end == '\0' && n > s->cfg.max_body_bytes) {
            x->too_large = true;
            return send_error(x, c, 413,
                              "the body (%llu bytes) is larger than the limit (%zu bytes)", n,
                              s->cfg.max_body_bytes);
        }
    }
    x->header_len = -1;
    const char *hl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    if (hl != NULL) {
        char *end;
        long long n = strtoll(hl, &end, 10);
        if (hl[0] < '0' || hl[0] > '9' || *end != '\0' || n < 0)
            return send_error(x, c, 400, "Inference-Header-Content-Length '%s' is not a size", hl);
        x->header_len = n;
    }
    if (fleet_atomic_load_acquire(&s->draining))
        return send_error(x, c, 503, "%s", "the server is draining");
    conn_deadline(s, c, fleet__deadline_after_ms(s->cfg.request_timeout_ms));
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    fleet_server *s = cls;
    http_ctx *x = *con_cls;
    if (x == NULL) {
        x = fleet__calloc(1, sizeof *x);
        if (x == NULL)
            return MHD_NO;
        *con_cls = x;
        x->start_ns = fleet__now_ns();
        snprintf(x->method, sizeof x->method, "%s", method);
        snprintf(x->path, sizeof x->path, "%s", url);
        return begin(s, x, c, url, method);
    }
    if (x->req != NULL) { /* resumed: the model is done */
        fleet__serve_response r;
        fleet__serve_infer_finish(x->req, &r);
        x->req = NULL;
        return send_response(x, c, &r, "application/json");
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (x->route != R_INFER)
            return MHD_YES; /* a body nobody reads */
        if (x->len + n > s->cfg.max_body_bytes) {
            /* A chunked body past the limit (a declared one got its 413
             * already): the library takes no response mid-body, so close. */
            x->too_large = true;
            x->status = 413;
            return MHD_NO;
        }
        if (x->len + n > x->cap) {
            size_t cap = x->cap ? x->cap : 4096;
            while (cap < x->len + n)
                cap *= 2;
            if (cap > s->cfg.max_body_bytes)
                cap = s->cfg.max_body_bytes;
            char *p = fleet__realloc(x->body, cap);
            if (p == NULL)
                return MHD_NO;
            x->body = p;
            x->cap = cap;
        }
        memcpy(x->body + x->len, upload_data, n);
        x->len += n;
        return MHD_YES;
    }
    /* the whole request is in */
    conn_deadline(s, c, FLEET__FOREVER);
    if (x->route != R_INFER)
        return handle_get(s, x, c);
    if (fleet_atomic_load_acquire(&s->draining))
        return send_error(x, c, 503, "%s", "the server is draining");
    fleet__serve_response r = {0};
    fleet__serve_request *req;
    fleet_status st = fleet__serve_infer_start(s, x->m, c, x->body ? x->body : "", x->len,
                                               x->header_len, &req, &r);
    free(x->body);
    x->body = NULL;
    if (st != FLEET_OK) {
        fleet_atomic_add_relaxed(&x->m->failure, 1);
        return send_response(x, c, &r, "application/json");
    }
    x->req = req;
    MHD_suspend_connection(c);
    fleet__serve_infer_release(req); /* from here the completion thread may resume it */
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    fleet_server *s = cls;
    http_ctx *x = *con_cls;
    if (x == NULL)
        return;
    if (x->req != NULL) /* the connection went away before the response */
        fleet__serve_infer_abandon(x->req);
    if (fleet__log_enabled(FLEET_LOG_INFO)) {
        const union MHD_ConnectionInfo *a =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char peer[64] = "-";
        if (a != NULL && a->client_addr != NULL && a->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)a->client_addr)->sin_addr, peer,
                      sizeof peer);
        FLEET_LOG_INFOF("serve: access peer=%s method=%s path=%s model=%s status=%u "
                        "bytes_in=%zu bytes_out=%zu duration_us=%llu%s",
                        peer, x->method, x->path, x->m ? x->m->name : "-",
                        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? x->status : 0, x->len,
                        x->bytes_out, (unsigned long long)((fleet__now_ns() - x->start_ns) / 1000),
                        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " closed=1");
    }
    /* The next request on this connection: its headers within the idle
     * bound plus the request bound. */
    conn_deadline(s, c,
                  fleet__deadline_after_ms((int64_t)s->cfg.idle_timeout_s * 1000 +
                                           s->cfg.request_timeout_ms));
    free(x->body);
    free(x);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) FLEET_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    if (fleet__log_enabled(FLEET_LOG_DEBUG)) {
        char text[512];
        vsnprintf(text, sizeof text, fmt, ap);
        FLEET_LOG_DEBUGF("serve: libmicrohttpd: %s", text);
    }
}

/* ---- the server's life ------------------------------------------------------------------ */

fleet_status fleet_server_create(const fleet_server_config *cfg, fleet_server **out)
{
    static const char fn[] = "fleet_server_create";
    FLEET_CHECK_ARG(cfg != NULL && out != NULL, FLEET_ERR_NULL_POINTER, "%s: NULL argument", fn);
    *out = NULL;
    FLEET_CHECK_ARG(cfg->models_dir != NULL, FLEET_ERR_INVALID_ARGUMENT, "%s: no models_dir", fn);
    FLEET_CHECK_ARG(cfg->port >= 0 && cfg->port <= 65535, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: port %d is outside 0..65535", fn, cfg->port);
    FLEET_CHECK_ARG(cfg->http_threads >= 1 && cfg->http_threads <= 64, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: http_threads %d is outside 1..64", fn, cfg->http_threads);
    FLEET_CHECK_ARG(cfg->max_connections >= 1 && cfg->max_connections <= 65536,
                    FLEET_ERR_INVALID_ARGUMENT, "%s: max_connections %d is outside 1..65536", fn,
                    cfg->max_connections);
    FLEET_CHECK_ARG(cfg->max_body_bytes >= 64, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: max_body_bytes %zu is under 64", fn, cfg->max_body_bytes);
    FLEET_CHECK_ARG(cfg->max_header_bytes >= 4096, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: max_header_bytes %zu is under 4096", fn, cfg->max_header_bytes);
    FLEET_CHECK_ARG(cfg->request_timeout_ms >= 1 && cfg->idle_timeout_s >= 1,
                    FLEET_ERR_INVALID_ARGUMENT, "%s: timeouts must be >= 1", fn);
    fleet_status st = fleet_init();
    if (st != FLEET_OK)
        return st;
    fleet_server *s = fleet__calloc(1, sizeof *s);
    if (s == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    s->cfg = *cfg;
    s->models_dir = strdup(cfg->models_dir);
    s->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    s->cfg.models_dir = s->models_dir;
    s->cfg.host = s->host;
    s->port = -1;
    fleet__mutex_init(&s->watch_lock);
    fleet__cond_init(&s->watch_cv);
    st = s->models_dir && s->host ? fleet__serve_load_models(s)
                                  : fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    if (st != FLEET_OK) {
        s->stopped = true;
        fleet_server_destroy(s);
        return st;
    }
    *out = s;
    return FLEET_OK;
}

fleet_status fleet_server_start(fleet_server *s)
{
    static const char fn[] = "fleet_server_start";
    FLEET_CHECK_ARG(s != NULL, FLEET_ERR_NULL_POINTER, "%s: server is NULL", fn);
    FLEET_CHECK_ARG(s->daemon == NULL && !s->stopped, FLEET_ERR_INVALID_ARGUMENT,
                    "%s: already started (or stopped)", fn);
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int rc = getaddrinfo(s->host, port, &hints, &ai);
    if (rc != 0)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT,
                            "%s: host '%s' is not a numeric address: %s", fn, s->host,
                            gai_strerror(rc));
    fleet_status st = fleet__thread_start(&s->watchdog, watchdog_main, s, "fleet-serve-watch");
    if (st != FLEET_OK) {
        freeaddrinfo(ai);
        return st;
    }
    s->watch_started = true;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    size_t mem = s->cfg.max_header_bytes;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->cfg.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (s->daemon == NULL)
        return fleet__error(FLEET_ERR_IO,
                            "%s: cannot listen on %s port %d (in use, or not an "
                            "address of this host)",
                            fn, s->host, s->cfg.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di != NULL ? di->port : s->cfg.port;
    FLEET_LOG_INFOF("serve: listening on %s port %d, %d models", s->host, s->port, s->n_models);
    return FLEET_OK;
}

int fleet_server_port(const fleet_server *s)
{
    return s != NULL ? s->port : -1;
}

/* Wait until no request is in flight, up to the deadline. */
static bool wait_idle(fleet_server *s, uint64_t deadline)
{
    while (fleet_atomic_load_acquire(&s->in_flight) > 0) {
        if (fleet__now_ns() >= deadline)
            return false;
        fleet__sleep_ns(2 * 1000 * 1000);
    }
    return true;
}

fleet_status fleet_server_stop(fleet_server *s, int64_t drain_ms)
{
    static const char fn[] = "fleet_server_stop";
    FLEET_CHECK_ARG(s != NULL, FLEET_ERR_NULL_POINTER, "%s: server is NULL", fn);
    if (s->stopped)
        return FLEET_OK;
    s->stopped = true;
    fleet_atomic_store_release(&s->draining, true);
    bool drained = true;
    MHD_socket ls = MHD_INVALID_SOCKET;
    if (s->daemon != NULL) {
        /* No new connections. The listening socket is ours to close, but
         * only after MHD_stop_daemon: its threads may still hold it. */
        ls = MHD_quiesce_daemon(s->daemon);
        uint64_t deadline = drain_ms < 0 ? FLEET__FOREVER : fleet__deadline_after_ms(drain_ms);
        drained = wait_idle(s, deadline);
    }
    /* What is still queued (the bound passed) completes with SHUTDOWN:
     * a 503 each; batches in flight finish. Then every response is handed
     * over before the daemon (and its connections) go. */
    for (int i = 0; i < s->n_models; i++)
        for (int r = 0; r < s->models[i]->n_replicas; r++)
            fleet_batcher_shutdown(s->models[i]->rep[r].batcher, drained);
    for (int i = 0; i < s->n_models; i++)
        fleet__serve_completion_stop(s->models[i]);
    if (s->daemon != NULL) {
        (void)wait_idle(s, fleet__deadline_after_ms(2000));
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    if (s->watch_started) {
        fleet__mutex_lock(&s->watch_lock);
        s->watch_stop = true;
        fleet__cond_signal(&s->watch_cv);
        fleet__mutex_unlock(&s->watch_lock);
        fleet__thread_join(&s->watchdog);
        s->watch_started = false;
    }
    FLEET_LOG_INFOF("serve: stopped (%s)", drained ? "drained" : "drain bound passed");
    return drained ? FLEET_OK
                   : fleet__error(FLEET_ERR_TIMEOUT,
                                  "%s: requests still in flight after %lld ms "
                                  "were cancelled",
                                  fn, (long long)drain_ms);
}

fleet_status fleet_server_destroy(fleet_server *s)
{
    if (s == NULL)
        return FLEET_OK;
    fleet_status st = fleet_server_stop(s, -1);
    fleet__serve_free_models(s);
    free(s->conns);
    fleet__cond_destroy(&s->watch_cv);
    fleet__mutex_destroy(&s->watch_lock);
    free(s->models_dir);
    free(s->host);
    free(s);
    return st;
}
