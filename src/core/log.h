/* core/log.h — leveled logging to stderr (FLEET_LOG_LEVEL). */
#ifndef FLEET_CORE_LOG_H
#define FLEET_CORE_LOG_H

#include "core/assert.h"

typedef enum fleet__log_level {
    FLEET_LOG_ERROR = 0,
    FLEET_LOG_WARN = 1,
    FLEET_LOG_INFO = 2,
    FLEET_LOG_DEBUG = 3,
    FLEET_LOG_TRACE = 4,
} fleet__log_level;

void fleet__log_set_level(fleet__log_level level);
int fleet__log_enabled(fleet__log_level level);
void fleet__log(fleet__log_level level, const char *fmt, ...) FLEET_PRINTF(2, 3);

/* Fork handlers for the output lock (rank 8). */
void fleet__log_atfork_prepare(void);
void fleet__log_atfork_release(void);

#define FLEET_LOG(level, ...)                                                  \
    do {                                                                       \
        if (fleet__log_enabled(level))                                         \
            fleet__log(level, __VA_ARGS__);                                    \
    } while (0)
#define FLEET_LOG_ERRORF(...) FLEET_LOG(FLEET_LOG_ERROR, __VA_ARGS__)
#define FLEET_LOG_WARNF(...) FLEET_LOG(FLEET_LOG_WARN, __VA_ARGS__)
#define FLEET_LOG_INFOF(...) FLEET_LOG(FLEET_LOG_INFO, __VA_ARGS__)
#define FLEET_LOG_DEBUGF(...) FLEET_LOG(FLEET_LOG_DEBUG, __VA_ARGS__)

#endif /* FLEET_CORE_LOG_H */
