/* core/env.h — fleet's configuration, read from the environment once. */
#ifndef FLEET_CORE_ENV_H
#define FLEET_CORE_ENV_H

#include <stdint.h>

#include "core/log.h"
#include "fleet/runtime.h"

typedef struct fleet__config {
    int backend_set;               /* FLEET_BACKEND given                    */
    fleet_backend_kind backend;    /* its value                              */
    int streams;                   /* FLEET_STREAMS, 2..FLEET__MAX_STREAMS   */
    int64_t stream_wait_ms;        /* FLEET_STREAM_WAIT_MS, -1 or >= 0       */
    uint64_t memory_limit;         /* FLEET_MEMORY_LIMIT, 0 = none           */
    int cpu_devices;               /* FLEET_CPU_DEVICES, 1..16               */
    int cpu_spin_us;               /* FLEET_CPU_SPIN_US, 0..100000           */
    int64_t cuda_small_gemm;       /* FLEET_CUDA_SMALL_GEMM, 0..2^24 mul-adds */
    int graph_cache;               /* FLEET_GRAPH_CACHE, 1..4096 instances   */
    int model_graphs;              /* FLEET_MODEL_GRAPHS, 0 or 1 (default 1) */
    fleet__log_level log_level;    /* FLEET_LOG_LEVEL                        */
} fleet__config;

#define FLEET__MAX_STREAMS 64
#define FLEET__DEFAULT_STREAMS 32
#define FLEET__MAX_CPU_DEVICES 16
#define FLEET__DEFAULT_GRAPH_CACHE 64
#define FLEET__DEFAULT_CPU_SPIN_US 50
#define FLEET__MAX_CPU_SPIN_US 100000
#define FLEET__DEFAULT_CUDA_SMALL_GEMM 65536
#define FLEET__MAX_CUDA_SMALL_GEMM (INT64_C(1) << 24)
#define FLEET__MAX_GRAPH_CACHE 4096

/* Fill *cfg from the environment. On a malformed value returns
 * FLEET_ERR_INVALID_CONFIG with the variable and value in the error text. */
fleet_status fleet__config_from_env(fleet__config *cfg);

/* Parsers, exposed for tests. Each returns FLEET_ERR_INVALID_CONFIG naming
 * `var` on bad text. */
fleet_status fleet__parse_int(const char *var, const char *text, int64_t lo, int64_t hi,
                              int64_t *out);
/* "1048576", "64K", "512M", "2G" (binary units, case-insensitive). */
fleet_status fleet__parse_bytes(const char *var, const char *text, uint64_t *out);

#endif /* FLEET_CORE_ENV_H */
