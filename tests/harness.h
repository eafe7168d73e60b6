/* tests/harness.h — fleet's tiny test harness.
 *
 *     TEST(matmul_small) { ASSERT_EQ(1 + 1, 2); }
 *     int main(int argc, char **argv) { return test_main(argc, argv); }
 *
 * Each test file is one CTest executable; `prog NAME` runs one test. Every
 * test runs under a timeout (FLEET_TEST_TIMEOUT seconds, default 120), with a
 * seeded random generator (FLEET_TEST_SEED, printed). Stress sizes scale with
 * FLEET_TEST_SCALE (a float, default 1; sanitizer builds set it lower):
 * use test_scaled(n). A failed assertion prints file:line and the values and
 * ends the process with status 1. The last line is "N passed, N failed".
 */
#ifndef FLEET_TEST_HARNESS_H
#define FLEET_TEST_HARNESS_H

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"

typedef void (*test_fn)(void);
typedef struct test_case {
    const char *name;
    test_fn fn;
} test_case;

#define TEST_MAX_CASES 256
static test_case test_cases_[TEST_MAX_CASES];
static int test_case_count_;
static const char *test_current_;

static inline void test_register_(const char *name, test_fn fn)
{
    if (test_case_count_ < TEST_MAX_CASES)
        test_cases_[test_case_count_++] = (test_case){name, fn};
}

#define TEST(name)                                                                       \
    static void test_##name(void);                                                       \
    __attribute__((constructor)) static void test_register_##name(void)                  \
    {                                                                                    \
        test_register_(#name, test_##name);                                             \
    }                                                                                    \
    static void test_##name(void)

static inline void test_fail_(const char *file, int line, const char *msg)
{
    fprintf(stderr, "FAIL %s at %s:%d: %s\n", test_current_ ? test_current_ : "?", file, line,
            msg);
    if (fleet_last_error()[0])
        fprintf(stderr, "  fleet_last_error: %s\n", fleet_last_error());
    fflush(stderr);
    fprintf(stdout, "0 passed, 1 failed\n");
    fflush(stdout);
    _exit(1);
}

#define ASSERT_TRUE(cond)                                                                \
    do {                                                                                 \
        if (!(cond))                                                                     \
            test_fail_(__FILE__, __LINE__, "expected true: " #cond);                     \
    } while (0)

#define ASSERT_EQ(a, b)                                                                  \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_) {                                                                  \
            char m_[512];                                                                \
            snprintf(m_, sizeof m_, "%s == %s: %lld != %lld", #a, #b, a_, b_);           \
            test_fail_(__FILE__, __LINE__, m_);                                          \
        }                                                                                \
    } while (0)

#define ASSERT_NE(a, b)                                                                  \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ == b_) {                                                                  \
            char m_[512];                                                                \
            snprintf(m_, sizeof m_, "%s != %s: both %lld", #a, #b, a_);                  \
            test_fail_(__FILE__, __LINE__, m_);                                          \
        }                                                                                \
    } while (0)

#define ASSERT_GE(a, b)                                                                  \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (!(a_ >= b_)) {                                                               \
            char m_[512];                                                                \
            snprintf(m_, sizeof m_, "%s >= %s: %lld < %lld", #a, #b, a_, b_);            \
            test_fail_(__FILE__, __LINE__, m_);                                          \
        }                                                                                \
    } while (0)

#define ASSERT_LE(a, b) ASSERT_GE(b, a)

/* Status check that shows the status name and fleet_last_error on failure. */
#define ASSERT_OK(expr)                                                                  \
    do {                                                                                 \
        fleet_status st_ = (expr);                                                       \
        if (st_ != FLEET_OK) {                                                           \
            char m_[768];                                                                \
            snprintf(m_, sizeof m_, "%s returned %s (%s)", #expr, fleet_status_name(st_), \
                     fleet_last_error());                                                \
            test_fail_(__FILE__, __LINE__, m_);                                          \
        }                                                                                \
    } while (0)

/* Expect a specific status and a non-empty error text. */
#define ASSERT_STATUS(expr, want)                                                        \
    do {                                                                                 \
        fleet_status st_ = (expr);                                                       \
        if (st_ != (want)) {                                                             \
            char m_[768];                                                                \
            snprintf(m_, sizeof m_, "%s returned %s, expected %s (%s)", #expr,           \
                     fleet_status_name(st_), fleet_status_name(want), fleet_last_error()); \
            test_fail_(__FILE__, __LINE__, m_);                                          \
        }                                                                                \
        if ((want) != FLEET_OK && (want) != FLEET_ERR_NOT_READY && fleet_last_error()[0] == 0) \
            test_fail_(__FILE__, __LINE__, #expr ": error text is empty");             \
    } while (0)

#define ASSERT_STR_CONTAINS(haystack, needle)                                            \
    do {                                                                                 \
        const char *h_ = (haystack), *n_ = (needle);                                     \
        if (h_ == NULL || strstr(h_, n_) == NULL) {                                      \
            char m_[768];                                                                \
            snprintf(m_, sizeof m_, "\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
            test_fail_(__FILE__, __LINE__, m_);                                          \
        }                                                                                \
    } while (0)

/* The call is refused with `want` and fleet_last_error() contains `needle`
 * (the function's name, or the words that tell the user what to do). */
#define ASSERT_REFUSED(expr, want, needle)                                               \
    do {                                                                                 \
        ASSERT_STATUS(expr, want);                                                       \
        ASSERT_STR_CONTAINS(fleet_last_error(), needle);                                 \
    } while (0)

/* |a - b| <= atol + rtol * |b| elementwise; reports the first mismatch. */
static inline void test_assert_close_(const char *file, int line, const float *got,
                                      const float *want, int64_t n, double rtol, double atol)
{
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
            char m_[256];
            snprintf(m_, sizeof m_, "element %" PRId64 " of %" PRId64 ": got %.9g, want %.9g", i,
                     n, g, w);
            test_fail_(file, line, m_);
        }
    }
}
#define ASSERT_CLOSE(got, want, n, rtol, atol)                                           \
    test_assert_close_(__FILE__, __LINE__, (got), (want), (n), (rtol), (atol))

/* ---- seeded random numbers (xorshift64*) ---------------------------------- */

static uint64_t test_seed_ = 0x9e3779b97f4a7c15ull;

typedef struct test_rng {
    uint64_t s;
} test_rng;

static inline test_rng test_rng_make(uint64_t stream)
{
    test_rng r = {test_seed_ ^ (stream * 0xd1b54a32d192ed03ull)};
    if (r.s == 0)
        r.s = 1;
    return r;
}

static inline uint64_t test_rng_next(test_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

/* Uniform in [-1, 1). */
static inline float test_rng_float(test_rng *r)
{
    return (float)((double)(test_rng_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline void test_fill_random(float *p, int64_t n, test_rng *r)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = test_rng_float(r);
}

/* ---- scaling and environment ---------------------------------------------- */

static inline int test_scaled(int n)
{
    const char *s = getenv("FLEET_TEST_SCALE");
    double f = s ? atof(s) : 1.0;
    if (f <= 0)
        f = 1.0;
    int v = (int)(n * f);
    return v < 1 ? 1 : v;
}

static inline int test_env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    return s ? atoi(s) : dflt;
}

/* ---- main ------------------------------------------------------------------ */

/* Line-buffered from the start (a program's main may print before
 * test_main), so a test that hangs and is ended by the alarm still shows
 * every line it printed. */
__attribute__((constructor)) static void test_line_buffered_(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static void test_alarm_(int sig)
{
    (void)sig;
    static const char head[] = "FAIL: test timed out: ";
    (void)!write(2, head, sizeof head - 1);
    if (test_current_ != NULL)
        (void)!write(2, test_current_, strlen(test_current_));
    static const char tail[] = "\n0 passed, 1 failed\n";
    (void)!write(2, tail, sizeof tail - 1);
    _exit(124);
}

static inline int test_main(int argc, char **argv)
{
    const char *seed = getenv("FLEET_TEST_SEED");
    if (seed)
        test_seed_ = strtoull(seed, NULL, 0);
    int timeout = test_env_int("FLEET_TEST_TIMEOUT", 120);
    signal(SIGALRM, test_alarm_);
    printf("seed 0x%" PRIx64 "\n", test_seed_);
    int passed = 0, ran = 0;
    for (int i = 0; i < test_case_count_; i++) {
        if (argc > 1 && strcmp(argv[1], test_cases_[i].name) != 0)
            continue;
        test_current_ = test_cases_[i].name;
        printf("RUN  %s\n", test_current_);
        alarm((unsigned)timeout);
        test_cases_[i].fn();
        alarm(0);
        printf("OK   %s\n", test_current_);
        passed++;
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(any)");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("%d passed, 0 failed\n", passed);
    return 0;
}

#define TEST_MAIN()                                                                      \
    int main(int argc, char **argv)                                                      \
    {                                                                                    \
        return test_main(argc, argv);                                                    \
    }


/* End the test program as skipped (CTest SKIP_RETURN_CODE 77), saying why. */
#define TEST_SKIP(...)                                                                   \
    do {                                                                                 \
        printf("SKIP: ");                                                                \
        printf(__VA_ARGS__);                                                             \
        printf("\n0 passed, 0 failed, 1 skipped\n");                                     \
        fflush(stdout);                                                                  \
        _exit(77);                                                                       \
    } while (0)

#endif /* FLEET_TEST_HARNESS_H */
