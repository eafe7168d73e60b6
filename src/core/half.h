/* core/half.h — f16 and bf16 to and from f32 on the host, bit for bit.
 *
 * The one home of the 16-bit float formats on the cpu side (the cpu cast
 * kernel; the cuda kernels use CUDA's own conversions, which round the same
 * way). Narrowing rounds to nearest, ties to even, as CUDA's __float2half_rn
 * and __float2bfloat16_rn and numpy's astype do; overflow gives infinity and
 * NaN stays a (quiet) NaN of the same sign. */
#ifndef FLEET_CORE_HALF_H
#define FLEET_CORE_HALF_H

#include <stdint.h>

/* Bit casts through a union (defined behaviour in C11). */
typedef union fleet__f32_pun {
    float f;
    uint32_t u;
} fleet__f32_pun;

static inline uint32_t fleet__f32_bits(float f)
{
    return (fleet__f32_pun){.f = f}.u;
}

static inline float fleet__f32_from_bits(uint32_t u)
{
    return (fleet__f32_pun){.u = u}.f;
}

static inline float fleet__bf16_to_f32(uint16_t h)
{
    return fleet__f32_from_bits((uint32_t)h << 16); /* bf16 is f32's upper half */
}

static inline uint16_t fleet__f32_to_bf16(float f)
{
    uint32_t u = fleet__f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* NaN: keep it one, quiet */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

static inline float fleet__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) /* infinity or NaN */
        return fleet__f32_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp != 0)
        return fleet__f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
    /* zero or subnormal: man * 2^-24, exact in f32 */
    float v = (float)man * 0x1p-24f;
    return sign ? -v : v;
}

static inline uint16_t fleet__f32_to_f16(float f)
{
    uint32_t u = fleet__f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: quiet, with the top of its payload */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* rounds to 65520 or more, or infinity: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below 2^-14: an f16 subnormal or zero */
        if (a < 0x33000000u) /* at most 2^-25: rounds to zero */
            return sign;
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24: m * 2^(e-150) in units of 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        q += rem > half || (rem == half && (q & 1u));
        return (uint16_t)(sign | q);
    }
    /* normal: rebias the exponent, round the 13 dropped bits to even; a
     * carry out of the mantissa steps the exponent, as it should */
    uint32_t r = a - 0x38000000u;
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

#endif
