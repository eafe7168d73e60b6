/* fleet/server.h — an inference server speaking the Open Inference Protocol
 * (KServe v2, the REST protocol Triton speaks), embeddable in an application;
 * `fleet serve` is this server behind a command line.
 *
 *     fleet_server_config cfg = fleet_server_config_default();
 *     cfg.models_dir = "models";          // models/<name>/model.onnx (+ config.json)
 *     cfg.port = 0;                       // 0: an ephemeral port
 *     fleet_server *s;
 *     if (fleet_server_create(&cfg, &s) == FLEET_OK && fleet_server_start(s) == FLEET_OK) {
 *         printf("listening on %d\n", fleet_server_port(s));
 *         ...                             // until asked to stop
 *         fleet_server_stop(s, 10000);    // drain: finish in-flight requests
 *     }
 *     fleet_server_destroy(s);
 *
 * Models. Every subfolder of models_dir is one model named after the folder
 * (names of A-Z a-z 0-9 _ . -, not starting with '.'), version "1". It holds
 * model.onnx, or a builder model ("builder": "mlp" in config.json, with its
 * weights in model.safetensors), and optionally config.json (docs/SERVING.md
 * lists its keys: max_batch, max_delay_us, instances, queue_capacity,
 * timeout_ms, device or devices, dims). Each model gets a fleet_batcher
 * (fleet/batch.h) on each of its devices (a replica each, a request going
 * to the one with the fewest pending); models share their devices. A model that fails to load fails create, with
 * its folder and the reason in fleet_last_error().
 *
 * Protocol (REST): GET /v2/health/live, /v2/health/ready, /v2,
 * /v2/models/{name}[/versions/{v}], .../ready, POST .../infer with JSON
 * tensors or the binary tensor extension, GET /metrics (Prometheus text).
 * Errors are {"error": "..."} with 400 (bad request or tensor), 404 (unknown
 * model or path), 405, 413 (body over max_body_bytes), 429 (the model's
 * queue is full), 503 (draining), 504 (the request's timeout passed).
 *
 * Limits. max_connections at once (beyond: the connection is closed);
 * headers beyond max_header_bytes get 431 from the HTTP library; a request
 * whose headers and body have not arrived within request_timeout_ms has its
 * connection closed; an idle keep-alive connection is closed after
 * idle_timeout_s.
 *
 * Thread-safety: create, start, stop and destroy from one thread; the
 * server runs on threads of its own. Requires the HTTP and JSON libraries
 * at build time: a build without them returns FLEET_ERR_UNSUPPORTED from
 * fleet_server_create, saying so. */
#ifndef FLEET_SERVER_H
#define FLEET_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fleet_server fleet_server;

typedef struct fleet_server_config {
    const char *models_dir;      /* the model repository (required)                */
    const char *host;            /* address to listen on (default "127.0.0.1")      */
    int port;                    /* 0..65535, 0: ephemeral (default 8000)           */
    int http_threads;            /* threads serving connections, 1..64 (default 2)  */
    size_t max_body_bytes;       /* larger bodies: 413 (default 64 MiB)             */
    size_t max_header_bytes;     /* per-connection header memory (default 32 KiB)   */
    int max_connections;         /* 1..65536 (default 512)                          */
    int64_t request_timeout_ms;  /* headers + body must arrive within (default 30000) */
    int idle_timeout_s;          /* idle keep-alive connections closed (default 60) */
} fleet_server_config;

FLEET_API fleet_server_config fleet_server_config_default(void);

/* Load every model of cfg->models_dir (each finalized, with its batcher);
 * does not listen yet. On failure *out is NULL and nothing is kept. */
FLEET_API fleet_status fleet_server_create(const fleet_server_config *cfg, fleet_server **out);

/* Listen and serve, on the server's own threads; returns at once.
 * FLEET_ERR_IO when the address cannot be bound (the text says why). */
FLEET_API fleet_status fleet_server_start(fleet_server *server);

/* The port listened on (the ephemeral one when cfg.port was 0); -1 before
 * start. */
FLEET_API int fleet_server_port(const fleet_server *server);

/* Drain and stop: stop accepting connections, answer new requests on open
 * ones with 503 (and /v2/health/ready with 503), let every accepted request
 * finish for up to drain_ms (-1: no bound), then cancel what remains (those
 * requests get 503) and stop the threads. Every accepted request gets a
 * response or its connection closed. FLEET_ERR_TIMEOUT if the bound passed
 * (the server is stopped either way). Idempotent. */
FLEET_API fleet_status fleet_server_stop(fleet_server *server, int64_t drain_ms);

/* Stop (draining without bound) if running, then free the models and the
 * server. NULL ignored. */
FLEET_API fleet_status fleet_server_destroy(fleet_server *server);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_SERVER_H */
