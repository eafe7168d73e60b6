/* casts_16bit — fleet_cast between f32 and the 16-bit floats on every
 * device present: the values IEEE 754 and the bfloat16 format fix (rounding
 * to nearest with ties to even, at the normal/subnormal edge, overflow to
 * infinity, signed zeros, NaN), every one of the 65536 f16 and bf16 bit
 * patterns widened and narrowed back unchanged (NaNs staying NaNs), and the
 * cpu and cuda results bit for bit the same where both are present. */
#include <math.h>

#include "test_util.h"

static fleet_device *devs[2];
static int ndevs;

static void find_devices(void)
{
    ndevs = test_devices(devs);
}

/* out = cast(in) on dev, through device tensors of n elements. */
static void cast_on(fleet_device *dev, fleet_dtype from, const void *in, fleet_dtype to,
                    void *out, int64_t n)
{
    fleet_tensor *a, *b;
    ASSERT_OK(fleet_tensor_create(dev, from, 1, &n, &a));
    ASSERT_OK(fleet_tensor_create(dev, to, 1, &n, &b));
    ASSERT_OK(fleet_tensor_copy_from_host(a, in, (size_t)n * fleet_dtype_size(from)));
    ASSERT_OK(fleet_cast(a, b));
    ASSERT_OK(fleet_tensor_copy_to_host(b, out, (size_t)n * fleet_dtype_size(to)));
    ASSERT_OK(fleet_tensor_release(a));
    ASSERT_OK(fleet_tensor_release(b));
}

typedef struct narrowing {
    float x;
    uint16_t f16, bf16;
} narrowing;

/* f32 values and their f16 and bf16 nearest (ties to even) encodings. */
static const narrowing cases[] = {
    {0.0f, 0x0000, 0x0000},
    {-0.0f, 0x8000, 0x8000},
    {1.0f, 0x3c00, 0x3f80},
    {-2.5f, 0xc100, 0xc020},
    {65504.0f, 0x7bff, 0x4780},         /* f16's largest; bf16 rounds up to 2^16 */
    {65519.0f, 0x7bff, 0x4780},         /* below the f16 half-way point to 2^16 */
    {65520.0f, 0x7c00, 0x4780},         /* f16: the tie rounds to infinity */
    {1e6f, 0x7c00, 0x4974},             /* f16 overflow; bf16 0x4974 = 999424 */
    {0x1p-14f, 0x0400, 0x3880},         /* f16's smallest normal */
    {0x1p-24f, 0x0001, 0x3380},         /* f16's smallest subnormal */
    {0x1p-25f, 0x0000, 0x3300},         /* f16: half of it, a tie, to even (zero) */
    {0x1.8p-24f, 0x0002, 0x33c0},       /* 1.5 ulp: a tie, to even (2) */
    {0x1.0p-14f - 0x1p-25f, 0x0400, 0x3880}, /* f16: rounds up into the normals */
    {1.0f + 0x1p-11f, 0x3c00, 0x3f80},  /* f16: a tie, to even (down) */
    {1.0f + 0x1.8p-10f, 0x3c02, 0x3f80}, /* f16: a tie, to even (up) */
    {1.0f + 0x1p-8f, 0x3c04, 0x3f80},   /* bf16: a tie, to even (down) */
    {1.0f + 0x1.8p-7f, 0x3c0c, 0x3f82}, /* bf16: a tie, to even (up) */
    {3.4028235e38f, 0x7c00, 0x7f80},    /* f32's largest: bf16 rounds to infinity */
    {1e-30f, 0x0000, 0x0da2},           /* far below f16's subnormals */
    {INFINITY, 0x7c00, 0x7f80},
    {-INFINITY, 0xfc00, 0xff80},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

static bool f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0; }
static bool bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x007f) != 0; }

TEST(narrowing_rounds_to_nearest_even)
{
    find_devices();
    float x[NCASES + 2];
    for (int i = 0; i < NCASES; i++)
        x[i] = cases[i].x;
    x[NCASES] = NAN;
    x[NCASES + 1] = -NAN;
    for (int d = 0; d < ndevs; d++) {
        uint16_t h[NCASES + 2], b[NCASES + 2];
        cast_on(devs[d], FLEET_DTYPE_F32, x, FLEET_DTYPE_F16, h, NCASES + 2);
        cast_on(devs[d], FLEET_DTYPE_F32, x, FLEET_DTYPE_BF16, b, NCASES + 2);
        for (int i = 0; i < NCASES; i++) {
            ASSERT_EQ(h[i], cases[i].f16);
            ASSERT_EQ(b[i], cases[i].bf16);
        }
        ASSERT_TRUE(f16_is_nan(h[NCASES]) && bf16_is_nan(b[NCASES]));
        ASSERT_TRUE(f16_is_nan(h[NCASES + 1]) && bf16_is_nan(b[NCASES + 1]));
    }
}

/* Every bit pattern widens to the value the format defines and narrows back
 * to itself; the widened values are checked against the formula
 * (-1)^s * 2^(e - bias) * (1.m) (or the subnormal 0.m * 2^(1 - bias)). */
TEST(every_16_bit_pattern_round_trips)
{
    find_devices();
    enum { N = 65536 };
    uint16_t *bits = malloc(N * 2), *back = malloc(N * 2);
    float *wide = malloc(N * 4), *first = malloc(N * 4);
    for (int i = 0; i < N; i++)
        bits[i] = (uint16_t)i;
    for (int fmt = 0; fmt < 2; fmt++) {
        fleet_dtype dt = fmt == 0 ? FLEET_DTYPE_F16 : FLEET_DTYPE_BF16;
        int mbits = fmt == 0 ? 10 : 7, ebits = fmt == 0 ? 5 : 8, bias = (1 << (ebits - 1)) - 1;
        for (int d = 0; d < ndevs; d++) {
            cast_on(devs[d], dt, bits, FLEET_DTYPE_F32, wide, N);
            cast_on(devs[d], FLEET_DTYPE_F32, wide, dt, back, N);
            for (int i = 0; i < N; i++) {
                int s = i >> 15, e = (i >> mbits) & ((1 << ebits) - 1), m = i & ((1 << mbits) - 1);
                bool nan = e == (1 << ebits) - 1 && m != 0;
                if (nan) {
                    ASSERT_TRUE(isnan(wide[i]));
                    ASSERT_TRUE(fmt == 0 ? f16_is_nan(back[i]) : bf16_is_nan(back[i]));
                    continue;
                }
                double v = e == (1 << ebits) - 1 ? INFINITY
                           : e == 0 ? ldexp(m, 1 - bias - mbits)
                                    : ldexp(m + (1 << mbits), e - bias - mbits);
                ASSERT_TRUE((double)wide[i] == (s ? -v : v));
                ASSERT_TRUE((signbit(wide[i]) != 0) == (s != 0));
                ASSERT_EQ(back[i], i);
            }
            if (d == 0)
                memcpy(first, wide, N * 4);
            else /* cpu and cuda agree bit for bit, NaN payloads aside */
                for (int i = 0; i < N; i++)
                    ASSERT_TRUE(isnan(first[i]) ? isnan(wide[i])
                                                : memcmp(&first[i], &wide[i], 4) == 0);
        }
    }
    free(bits);
    free(back);
    free(wide);
    free(first);
}

TEST_MAIN()
