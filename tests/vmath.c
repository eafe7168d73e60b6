/* vmath — backend/cpu/vmath.h's branch-free exp and erf against libm on a
 * dense grid: exp within 2 ulp of expf over its whole finite range
 * (subnormal results included) and +inf / 0 / NaN beyond; erf within 5e-7
 * (absolute and relative) of the double-precision erf; then the cpu ops
 * that use them (fleet_exp, fleet_erf, fleet_gelu, fleet_sigmoid) on a
 * tensor, element for element. */
#include <float.h>
#include <math.h>

#include "backend/cpu/vmath.h"
#include "test_util.h"

/* |a - b| in units of b's last place (the smallest subnormal below FLT_MIN). */
static double ulps(float a, float b)
{
    if (a == b)
        return 0.0;
    float m = fabsf(b);
    float unit = m < FLT_MIN ? 1.4e-45f : nextafterf(m, INFINITY) - m;
    return fabs((double)a - (double)b) / unit;
}

TEST(exp_within_2_ulp_of_libm)
{
    double worst = 0.0;
    for (float x = -104.0f; x <= 88.72f; x += 0.0007f)
        worst = fmax(worst, ulps(fleet__vexpf(x), expf(x)));
    printf("exp: worst %.2f ulp\n", worst);
    ASSERT_TRUE(worst <= 2.0);
    ASSERT_TRUE(fleet__vexpf(0.0f) == 1.0f);
    ASSERT_TRUE(isinf(fleet__vexpf(89.0f)) && fleet__vexpf(89.0f) > 0);
    ASSERT_TRUE(isinf(fleet__vexpf(INFINITY)));
    ASSERT_TRUE(fleet__vexpf(-105.0f) == 0.0f && fleet__vexpf(-INFINITY) == 0.0f);
    ASSERT_TRUE(isnan(fleet__vexpf(NAN)));
    ASSERT_TRUE(fleet__vexpf(88.7f) == expf(88.7f) || ulps(fleet__vexpf(88.7f), expf(88.7f)) <= 2);
}

TEST(erf_within_5e_7_of_libm)
{
    double worst_abs = 0.0, worst_rel = 0.0;
    for (float x = -6.0f; x <= 6.0f; x += 0.00003f) {
        double want = erf((double)x), got = fleet__verff(x), e = fabs(got - want);
        worst_abs = fmax(worst_abs, e);
        if (want != 0.0)
            worst_rel = fmax(worst_rel, e / fabs(want));
    }
    printf("erf: worst %.3g absolute, %.3g relative\n", worst_abs, worst_rel);
    ASSERT_TRUE(worst_abs <= 5e-7 && worst_rel <= 5e-7);
    ASSERT_TRUE(fleet__verff(0.0f) == 0.0f);
    ASSERT_TRUE(fleet__verff(INFINITY) == 1.0f && fleet__verff(-INFINITY) == -1.0f);
    ASSERT_TRUE(isnan(fleet__verff(NAN)));
}

/* The ops on the cpu device, every element against libm (the vectorised
 * loop and its scalar tail both: n is not a multiple of the lane count). */
TEST(cpu_ops_use_them_elementwise)
{
    fleet_device *cpu = test_cpu_device(0);
    enum { N = 4099 };
    static float in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = -12.0f + 24.0f * (float)i / (float)(N - 1);
    int64_t n = N;
    fleet_tensor *x, *y;
    ASSERT_OK(fleet_tensor_create(cpu, FLEET_DTYPE_F32, 1, &n, &x));
    ASSERT_OK(fleet_tensor_create(cpu, FLEET_DTYPE_F32, 1, &n, &y));
    ASSERT_OK(fleet_tensor_copy_from_host(x, in, sizeof in));
    fleet_status (*ops[])(const fleet_tensor *, fleet_tensor *) = {fleet_exp, fleet_erf, fleet_gelu,
                                                                   fleet_sigmoid};
    for (int k = 0; k < 4; k++) {
        ASSERT_OK(ops[k](x, y));
        ASSERT_OK(fleet_tensor_copy_to_host(y, out, sizeof out));
        for (int i = 0; i < N; i++) {
            double v = in[i], want = k == 0   ? exp(v)
                                     : k == 1 ? erf(v)
                                     : k == 2 ? 0.5 * v * (1.0 + erf(v / sqrt(2.0)))
                                              : 1.0 / (1.0 + exp(-v));
            /* GELU's tail x/2 (1 + erf) cancels: erf's 4e-7 becomes up to
             * |x|/2 * 4e-7 there (its values are below 1e-6 anyway) */
            double atol = k == 2 ? 1e-6 : 2e-7;
            if (!(fabs(out[i] - want) <= 1e-6 * fabs(want) + atol))
                printf("op %d x %g got %.9g want %.9g\n", k, (double)in[i], (double)out[i], want);
            ASSERT_TRUE(fabs(out[i] - want) <= 1e-6 * fabs(want) + atol);
        }
    }
    ASSERT_OK(fleet_tensor_release(x));
    ASSERT_OK(fleet_tensor_release(y));
}

TEST_MAIN()
