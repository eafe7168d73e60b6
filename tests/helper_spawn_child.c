/* helper_spawn_child — a child program for fork_mp_spawn.
 *
 *     helper_spawn_child DEVICE M K N SALT
 *
 * DEVICE is "default" (the default backend: cuda when a GPU is present) or
 * "cpu:I" / "cuda:I". Computes out = a @ b for the exactly representable
 * inputs test_fill_exact(a, M*K, SALT) and test_fill_exact(b, K*N, SALT+1)
 * with fleet, checks it against the plain-C reference (bit for bit: the
 * inputs make every sum exact), and prints
 *
 *     device=cpu:0 hash=0123456789abcdef sum=1234.5
 *     PASS
 *
 * Exit status 0 on success; 2 on a fleet error, 3 on a wrong value, 64 on
 * bad arguments.
 */
#include "test_util.h"

static int fail(const char *what, fleet_status st)
{
    printf("FAIL %s: %s (%s)\n", what, fleet_status_name(st), fleet_last_error());
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 6)
        return 64;
    int64_t m = atoll(argv[2]), k = atoll(argv[3]), n = atoll(argv[4]);
    uint32_t salt = (uint32_t)atoi(argv[5]);
    if (m <= 0 || k <= 0 || n <= 0 || k > 1024)
        return 64;
    fleet_device *dev = NULL;
    fleet_status st;
    if (strcmp(argv[1], "default") == 0)
        st = fleet_device_default(&dev);
    else if (strncmp(argv[1], "cpu:", 4) == 0)
        st = fleet_device_get(FLEET_BACKEND_CPU, atoi(argv[1] + 4), &dev);
    else if (strncmp(argv[1], "cuda:", 5) == 0)
        st = fleet_device_get(FLEET_BACKEND_CUDA, atoi(argv[1] + 5), &dev);
    else
        return 64;
    if (st != FLEET_OK)
        return fail("device", st);

    float *a = malloc(sizeof(float) * (size_t)(m * k));
    float *b = malloc(sizeof(float) * (size_t)(k * n));
    float *got = malloc(sizeof(float) * (size_t)(m * n));
    float *want = malloc(sizeof(float) * (size_t)(m * n));
    if (!a || !b || !got || !want)
        return 2;
    test_fill_exact(a, m * k, salt);
    test_fill_exact(b, k * n, salt + 1);
    ref_matmul(a, b, NULL, want, m, k, n);

    int64_t sa[2] = {m, k}, sb[2] = {k, n}, sc[2] = {m, n};
    fleet_tensor *ta, *tb, *tc;
    if ((st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, sa, &ta)) != FLEET_OK ||
        (st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, sb, &tb)) != FLEET_OK ||
        (st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, sc, &tc)) != FLEET_OK)
        return fail("fleet_tensor_create", st);
    if ((st = fleet_tensor_copy_from_host(ta, a, sizeof(float) * (size_t)(m * k))) != FLEET_OK ||
        (st = fleet_tensor_copy_from_host(tb, b, sizeof(float) * (size_t)(k * n))) != FLEET_OK)
        return fail("fleet_tensor_copy_from_host", st);
    if ((st = fleet_matmul(ta, tb, tc)) != FLEET_OK)
        return fail("fleet_matmul", st);
    if ((st = fleet_tensor_copy_to_host(tc, got, sizeof(float) * (size_t)(m * n))) != FLEET_OK)
        return fail("fleet_tensor_copy_to_host", st);
    if (memcmp(got, want, sizeof(float) * (size_t)(m * n)) != 0) {
        printf("FAIL wrong values\n");
        return 3;
    }
    uint64_t hash = 1469598103934665603ull;
    double sum = 0;
    for (int64_t i = 0; i < m * n; i++) {
        uint32_t bits;
        memcpy(&bits, &got[i], sizeof bits);
        hash = (hash ^ bits) * 1099511628211ull;
        sum += got[i];
    }
    fleet_tensor_release(ta);
    fleet_tensor_release(tb);
    fleet_tensor_release(tc);
    char name[32];
    snprintf(name, sizeof name, "%s", fleet_device_name(dev));
    if ((st = fleet_shutdown()) != FLEET_OK)
        return fail("fleet_shutdown", st);
    printf("device=%s hash=%016llx sum=%.17g\nPASS\n", name, (unsigned long long)hash, sum);
    free(a), free(b), free(got), free(want);
    return 0;
}
