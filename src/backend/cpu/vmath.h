/* backend/cpu/vmath.h — exp and erf in float, branch-free so that a loop
 * over a contiguous row vectorises (libm's expf and erff are calls per
 * element: erff alone was 12% of MiniLM's cpu time).
 *
 * fleet__vexpf: Cephes' expf — x = n ln2 + r, |r| <= ln2/2 (n rounded to
 * nearest with the 1.5 * 2^23 trick, ln2 split in two for an exact r), a
 * degree-6 polynomial for e^r, times 2^n built in the exponent bits (as
 * two factors, so subnormal results come out too); a few ulp of expf
 * (tests/vmath.c bounds it); +inf above 88.72, 0 below -103.97; NaN stays
 * NaN. fleet__verff: the odd/even rational approximation Eigen and
 * TensorFlow use (x clamped to [-4, 4]; exactly +-1 from |x| = 3.92, where
 * float's erf is), within 4e-7 of erf (absolute and relative); NaN stays NaN. tests/vmath.c checks
 * both on a dense grid against libm. */
#ifndef FLEET_BACKEND_CPU_VMATH_H
#define FLEET_BACKEND_CPU_VMATH_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* A loop written once and built twice: FLEET__AVX2 marks the AVX2 build of
 * a function (whose body is an always-inline function: inlined there, it is
 * compiled for AVX2), fleet__cpu_avx2() says at run time which to call.
 * Plain dispatch, not ifunc/target_clones: an ifunc resolver runs while the
 * program is relocated, before a sanitizer's runtime is up, and crashed
 * every TSan test. */
#if defined(__x86_64__) && defined(__GNUC__)
#define FLEET__AVX2 __attribute__((target("avx2")))
static inline bool fleet__cpu_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}
#else
#define FLEET__AVX2
static inline bool fleet__cpu_avx2(void)
{
    return false;
}
#endif

static inline float fleet__vexpf(float x)
{
    const float log2e = 1.44269504088896341f, round = 12582912.0f; /* 1.5 * 2^23 */
    const float hi = 88.7228391f, lo = -103.972084f; /* beyond: inf, 0 */
    float xc = x > hi ? hi : (x < lo ? lo : x);
    float n = (xc * log2e + round) - round;
    float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * z + r + 1.0f;
    /* 2^n as two factors 2^n1 2^n2 (n in -150..128): each a normal float,
     * so the product reaches FLT_MAX and the subnormals too. */
    int32_t ni = (int32_t)n, n1 = ni / 2, n2 = ni - n1;
    int32_t b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    y = y * s1 * s2;
    y = x > hi ? __builtin_inff() : (x < lo ? 0.0f : y);
    return x != x ? x : y;
}

static inline float fleet__verff(float x)
{
    float xc = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
    float x2 = xc * xc;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    float y = xc * p / q;
    /* erf rounds to +-1 in float from 3.92 on: exactly that there, not the
     * approximation's last-ulp wobble (GELU's tail is x/2 (1 + erf)). */
    y = x >= 3.92f ? 1.0f : (x <= -3.92f ? -1.0f : y);
    return x != x ? x : y;
}

#endif /* FLEET_BACKEND_CPU_VMATH_H */
