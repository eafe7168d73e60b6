/* core/error.h — setting the thread-local error text. */
#ifndef FLEET_CORE_ERROR_H
#define FLEET_CORE_ERROR_H

#include "core/assert.h"
#include "fleet/status.h"

/* Store "fmt..." as the calling thread's last error and return `status`, so
 * that `return fleet__error(FLEET_ERR_X, "...")` reads as one step. A macro,
 * so that the caller's compiler sees which status comes back (gcc's analyzer
 * would otherwise follow a `return fleet__error(...)` as if it could be
 * FLEET_OK); `status` is evaluated once, after the text is set. */
void fleet__error_set(const char *fmt, ...) FLEET_PRINTF(1, 2);
#define fleet__error(status, ...) (fleet__error_set(__VA_ARGS__), (fleet_status)(status))

/* Prefix the current last-error text with "prefix: " (keeps the status). */
fleet_status fleet__error_prefix(fleet_status status, const char *prefix);

/* Clear the calling thread's last error. */
void fleet__error_clear(void);

/* Shorthand for argument checks in public functions. */
#define FLEET_CHECK_ARG(cond, status, ...)                                     \
    do {                                                                       \
        if (FLEET_UNLIKELY(!(cond)))                                           \
            return fleet__error((status), __VA_ARGS__);                        \
    } while (0)

#endif /* FLEET_CORE_ERROR_H */
