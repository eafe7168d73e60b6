/* core/log.c — one line per message, whole lines even across threads. */
#include <stdarg.h>
#include <stdio.h>

#include "core/atomic.h"
#include "core/lock.h"
#include "core/log.h"

static fleet_atomic_int log_level = FLEET_LOG_WARN;
/* rank 8: innermost, may be taken while holding any other lock. */
static fleet__mutex log_lock = {PTHREAD_MUTEX_INITIALIZER};

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void fleet__log_set_level(fleet__log_level level)
{
    fleet_atomic_store_relaxed(&log_level, (int)level);
}

int fleet__log_enabled(fleet__log_level level)
{
    return (int)level <= fleet_atomic_load_relaxed(&log_level);
}

void fleet__log(fleet__log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fleet__mutex_lock(&log_lock);
    fprintf(stderr, "fleet [%s] %s\n", level_names[level], line);
    fleet__mutex_unlock(&log_lock);
}

/* Held across fork() on purpose: the handlers in runtime/lifecycle.c pair
 * these two. */
void fleet__log_atfork_prepare(void) FLEET_ACQUIRE(log_lock)
{
    fleet__mutex_lock(&log_lock);
}

void fleet__log_atfork_release(void) FLEET_RELEASE(log_lock)
{
    fleet__mutex_unlock(&log_lock);
}
