/* core/error.h — setting the thread-local error text. */
#ifndef FLEET_CORE_ERROR_H
#define FLEET_CORE_ERROR_H

#include "core/assert.h"
#include "fleet/status.h"

/* Store "fmt..." as the calling thread's last error and return `status`, so
 * that `return fleet__error(FLEET_ERR_X, "...")` reads as one step. */
fleet_status fleet__error(fleet_status status, const char *fmt, ...) FLEET_PRINTF(2, 3);

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
