/* core/assert.h — the one way fleet aborts: a broken internal invariant. */
#ifndef FLEET_CORE_ASSERT_H
#define FLEET_CORE_ASSERT_H

#ifdef __GNUC__
#define FLEET_NORETURN __attribute__((noreturn))
#define FLEET_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define FLEET_LIKELY(x) __builtin_expect(!!(x), 1)
#define FLEET_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define FLEET_NORETURN
#define FLEET_PRINTF(fmt, args)
#define FLEET_LIKELY(x) (x)
#define FLEET_UNLIKELY(x) (x)
#endif

/* Prints "fleet: assertion failed at file:line: expr" and aborts. */
FLEET_NORETURN void fleet__assert_fail(const char *expr, const char *file, int line);

/* Always checked: a failure is a bug in fleet, never a user error. */
#define FLEET_ASSERT(expr)                                                     \
    do {                                                                       \
        if (FLEET_UNLIKELY(!(expr)))                                           \
            fleet__assert_fail(#expr, __FILE__, __LINE__);                     \
    } while (0)

/* Checked in debug builds, and in any build configured with
 * FLEET_DEBUG_INVARIANTS (the CMake default): invariants that cost time. */
#if defined(NDEBUG) && !defined(FLEET_DEBUG_INVARIANTS)
#define FLEET_DEBUG_ASSERT(expr) ((void)0)
#else
#define FLEET_DEBUG_ASSERT(expr) FLEET_ASSERT(expr)
#endif

#endif /* FLEET_CORE_ASSERT_H */
