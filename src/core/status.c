/* core/status.c — status names and texts, the thread-local error text. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define FLEET_ERROR_TEXT_MAX 512

static _Thread_local char last_error[FLEET_ERROR_TEXT_MAX];

const char *fleet_status_str(fleet_status status)
{
    switch (status) {
#define FLEET_STATUS_TEXT_(name, value, text)                                  \
    case FLEET_##name:                                                         \
        return text;
        FLEET_STATUS_MAP(FLEET_STATUS_TEXT_)
#undef FLEET_STATUS_TEXT_
    }
    return "unknown status";
}

const char *fleet_status_name(fleet_status status)
{
    switch (status) {
#define FLEET_STATUS_NAME_(name, value, text)                                  \
    case FLEET_##name:                                                         \
        return "FLEET_" #name;
        FLEET_STATUS_MAP(FLEET_STATUS_NAME_)
#undef FLEET_STATUS_NAME_
    }
    return "FLEET_UNKNOWN_STATUS";
}

const char *fleet_last_error(void)
{
    return last_error;
}

void fleet__error_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

fleet_status fleet__error_prefix(fleet_status status, const char *prefix)
{
    /* Shift the old text right and write "prefix: " in front; what no
     * longer fits at the end is cut. */
    size_t plen = strlen(prefix) + 2;
    if (plen >= sizeof last_error)
        plen = sizeof last_error - 1;
    size_t keep = strlen(last_error);
    if (keep > sizeof last_error - 1 - plen)
        keep = sizeof last_error - 1 - plen;
    memmove(last_error + plen, last_error, keep);
    last_error[plen + keep] = '\0';
    memcpy(last_error, prefix, plen - 2);
    last_error[plen - 2] = ':';
    last_error[plen - 1] = ' ';
    return status;
}

void fleet__error_clear(void)
{
    last_error[0] = '\0';
}

void fleet__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "fleet: assertion failed at %s:%d: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}
