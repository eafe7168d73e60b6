/* core/env.c — parse FLEET_* variables strictly: a typo is an error, not a
 * silently ignored setting. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/env.h"
#include "core/error.h"

/* One rule for every number: decimal digits, a '-' first where negative
 * values are allowed, nothing else (no blanks, no '+'). */
static bool plain_decimal(const char *text, bool negative_ok)
{
    const char *p = text + (negative_ok && text[0] == '-');
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    return *p == '\0';
}

fleet_status fleet__parse_int(const char *var, const char *text, int64_t lo, int64_t hi,
                              int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = plain_decimal(text, lo < 0) ? strtoll(text, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return fleet__error(FLEET_ERR_INVALID_CONFIG,
                            "%s=\"%s\": expected an integer in [%lld, %lld]", var, text,
                            (long long)lo, (long long)hi);
    *out = (int64_t)v;
    return FLEET_OK;
}

fleet_status fleet__parse_bytes(const char *var, const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (!isdigit((unsigned char)text[0]))
        goto bad;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || errno == ERANGE)
        goto bad;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    default: goto bad;
    }
    if (shift != 0 && toupper((unsigned char)*end) == 'B')
        end++;
    if (*end != '\0' || (shift != 0 && v > (UINT64_MAX >> shift)))
        goto bad;
    *out = (uint64_t)v << shift;
    return FLEET_OK;
bad:
    return fleet__error(FLEET_ERR_INVALID_CONFIG,
                        "%s=\"%s\": expected a byte count such as 1048576, 64K, 512M or 2G",
                        var, text);
}

static fleet_status parse_log_level(const char *text, fleet__log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *out = (fleet__log_level)i;
            return FLEET_OK;
        }
    }
    return fleet__error(FLEET_ERR_INVALID_CONFIG,
                        "FLEET_LOG_LEVEL=\"%s\": expected error, warn, info, debug or trace", text);
}

fleet_status fleet__config_from_env(fleet__config *cfg)
{
    fleet_status st;
    int64_t v;
    const char *s;

    *cfg = (fleet__config){
        .backend_set = 0,
        .backend = FLEET_BACKEND_CPU,
        .streams = FLEET__DEFAULT_STREAMS,
        .stream_wait_ms = 0,
        .memory_limit = 0,
        .cpu_devices = 1,
        .cpu_spin_us = FLEET__DEFAULT_CPU_SPIN_US,
        .cuda_small_gemm = FLEET__DEFAULT_CUDA_SMALL_GEMM,
        .graph_cache = FLEET__DEFAULT_GRAPH_CACHE,
        .model_graphs = 1,
        .log_level = FLEET_LOG_WARN,
    };
    if ((s = getenv("FLEET_BACKEND")) != NULL && *s != '\0') {
        if (strcasecmp(s, "cpu") == 0)
            cfg->backend = FLEET_BACKEND_CPU;
        else if (strcasecmp(s, "cuda") == 0)
            cfg->backend = FLEET_BACKEND_CUDA;
        else
            return fleet__error(FLEET_ERR_INVALID_CONFIG,
                                "FLEET_BACKEND=\"%s\": expected cpu or cuda", s);
        cfg->backend_set = 1;
    }
    if ((s = getenv("FLEET_STREAMS")) != NULL && *s != '\0') {
        if ((st = fleet__parse_int("FLEET_STREAMS", s, 2, FLEET__MAX_STREAMS, &v)) != FLEET_OK)
            return st;
        cfg->streams = (int)v;
    }
    if ((s = getenv("FLEET_STREAM_WAIT_MS")) != NULL && *s != '\0') {
        if ((st = fleet__parse_int("FLEET_STREAM_WAIT_MS", s, -1, INT64_C(86400000), &v)) != FLEET_OK)
            return st;
        cfg->stream_wait_ms = v;
    }
    if ((s = getenv("FLEET_MEMORY_LIMIT")) != NULL && *s != '\0') {
        if ((st = fleet__parse_bytes("FLEET_MEMORY_LIMIT", s, &cfg->memory_limit)) != FLEET_OK)
            return st;
    }
    if ((s = getenv("FLEET_CPU_DEVICES")) != NULL && *s != '\0') {
        if ((st = fleet__parse_int("FLEET_CPU_DEVICES", s, 1, FLEET__MAX_CPU_DEVICES, &v)) != FLEET_OK)
            return st;
        cfg->cpu_devices = (int)v;
    }
    if ((s = getenv("FLEET_CPU_SPIN_US")) != NULL && *s != '\0') {
        if ((st = fleet__parse_int("FLEET_CPU_SPIN_US", s, 0, FLEET__MAX_CPU_SPIN_US, &v)) != FLEET_OK)
            return st;
        cfg->cpu_spin_us = (int)v;
    }
    if ((s = getenv("FLEET_CUDA_SMALL_GEMM")) != NULL && *s != '\0') {
        if ((st = fleet__parse_int("FLEET_CUDA_SMALL_GEMM", s, 0, FLEET__MAX_CUDA_SMALL_GEMM, &v)) !=
            FLEET_OK)
            return st;
        cfg->cuda_small_gemm = v;
    }
    if ((s = getenv("FLEET_GRAPH_CACHE")) != NULL && *s != '\0') {
        if ((st = fleet__parse_int("FLEET_GRAPH_CACHE", s, 1, FLEET__MAX_GRAPH_CACHE, &v)) != FLEET_OK)
            return st;
        cfg->graph_cache = (int)v;
    }
    if ((s = getenv("FLEET_MODEL_GRAPHS")) != NULL && *s != '\0') {
        if ((st = fleet__parse_int("FLEET_MODEL_GRAPHS", s, 0, 1, &v)) != FLEET_OK)
            return st;
        cfg->model_graphs = (int)v;
    }
    if ((s = getenv("FLEET_LOG_LEVEL")) != NULL && *s != '\0') {
        if ((st = parse_log_level(s, &cfg->log_level)) != FLEET_OK)
            return st;
    }
    return FLEET_OK;
}
