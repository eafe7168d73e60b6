/* npy_numpy — the fleet tool's .npy files (cli/npy.c) against numpy itself,
 * a test-only reference: files np.save writes (each dtype fleet reads, a
 * scalar, an empty array, format versions 2.0 and 3.0) open here with
 * numpy's values, and numpy loads what fleet_cli_npy_save writes (each
 * dtype, bf16 widened to f32, a scalar, an empty array) with fleet's values.
 * Skipped when numpy is not importable; FLEET_TEST_PYTHON names the Python
 * to use (default python3 on PATH). */
#include <dirent.h>

#include "npy.h"
#include "test_util.h"

static char dir[] = "/tmp/fleet-npy-numpy-XXXXXX";
static test_proc_result r;

static const char *python(void)
{
    const char *p = getenv("FLEET_TEST_PYTHON");
    return p != NULL && p[0] != '\0' ? p : "python3";
}

/* Runs the Python code with the folder as sys.argv[1]. */
static void run_python(const char *code)
{
    char *argv[] = {"/usr/bin/env", (char *)python(), "-c", (char *)code, dir, NULL};
    test_proc_spawn(argv, NULL, 120000, &r);
}

/* The values both sides compute for element k of each dtype. */
static float f4_at(int k) { return (float)k * 0.5f - 1.0f; }
static double f8_at(int k) { return (double)k * 0.1 - 0.3; }
static int32_t i4_at(int k) { return k * 1000 - 2000; }
static int64_t i8_at(int k) { return (int64_t)k * ((int64_t)1 << 40) - 3; }
static uint8_t b1_at(int k) { return k % 3 == 0; }
/* (k - 2) / 4 as f16 bits: exact in f16 for k in 0..5 */
static uint16_t f2_at(int k)
{
    static const uint16_t bits[6] = {0xb800, 0xb400, 0x0000, 0x3400, 0x3800, 0x3a00};
    return bits[k];
}

#define PY_VALUES                                                                        \
    "import sys, numpy as np\n"                                                          \
    "d = sys.argv[1]\n"                                                                  \
    "k = np.arange(6)\n"                                                                 \
    "want = {'f4': (k * np.float32(0.5) - np.float32(1)).astype('<f4'),\n"               \
    "        'f8': (k * 0.1 - 0.3).astype('<f8'),\n"                                     \
    "        'i4': (k * 1000 - 2000).astype('<i4'),\n"                                   \
    "        'i8': (k * (1 << 40) - 3).astype('<i8'),\n"                                 \
    "        'b1': (k % 3 == 0),\n"                                                      \
    "        'f2': ((k - 2) / 4).astype('<f2')}\n"

TEST(files_numpy_writes_open_with_numpys_values)
{
    run_python(PY_VALUES
               "for name, a in want.items():\n"
               "    np.save(f'{d}/{name}.npy', a.reshape(2, 3))\n"
               "np.save(f'{d}/scalar.npy', np.float32(2.5))\n"
               "np.save(f'{d}/empty.npy', np.zeros((0, 3), np.int32))\n"
               "for v in (2, 3):\n"
               "    with open(f'{d}/v{v}.npy', 'wb') as f:\n"
               "        np.lib.format.write_array(f, want['i8'], version=(v, 0))\n"
               "np.save(f'{d}/fortran.npy', np.asfortranarray(want['f4'].reshape(2, 3)))\n"
               "np.save(f'{d}/big.npy', want['f4'].astype('>f4'))\n"
               "np.save(f'{d}/u8.npy', np.arange(3, dtype=np.uint8))\n");
    ASSERT_PROC_OK(&r);
    const char *names[] = {"f4", "f8", "i4", "i8", "b1", "f2"};
    const fleet_dtype dtypes[] = {FLEET_DTYPE_F32, FLEET_DTYPE_F32, FLEET_DTYPE_I32,
                                  FLEET_DTYPE_I64, FLEET_DTYPE_BOOL, FLEET_DTYPE_F16};
    char path[256], err[FLEET_CLI_NPY_ERR_SIZE];
    fleet_cli_npy_file f;
    for (int t = 0; t < 6; t++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[t]);
        ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
        ASSERT_EQ(f.array.dtype, dtypes[t]);
        ASSERT_TRUE(f.array.ndim == 2 && f.array.shape[0] == 2 && f.array.shape[1] == 3);
        unsigned char got[6 * 8];
        fleet_cli_npy_copy_out(&f.array, got);
        for (int k = 0; k < 6; k++) {
            if (t == 0 || t == 1) {
                float v, want = t == 0 ? f4_at(k) : (float)f8_at(k);
                memcpy(&v, got + 4 * k, 4);
                ASSERT_TRUE(v == want);
            } else if (t == 2) {
                int32_t v;
                memcpy(&v, got + 4 * k, 4);
                ASSERT_EQ(v, i4_at(k));
            } else if (t == 3) {
                int64_t v;
                memcpy(&v, got + 8 * k, 8);
                ASSERT_EQ(v, i8_at(k));
            } else if (t == 4) {
                ASSERT_EQ(got[k], b1_at(k));
            } else {
                uint16_t v;
                memcpy(&v, got + 2 * k, 2);
                ASSERT_EQ(v, f2_at(k));
            }
        }
        fleet_cli_npy_close(&f);
    }
    snprintf(path, sizeof path, "%s/scalar.npy", dir);
    ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
    float s;
    memcpy(&s, f.array.data, 4);
    ASSERT_TRUE(f.array.ndim == 0 && f.array.numel == 1 && s == 2.5f);
    fleet_cli_npy_close(&f);
    snprintf(path, sizeof path, "%s/empty.npy", dir);
    ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
    ASSERT_TRUE(f.array.ndim == 2 && f.array.shape[0] == 0 && f.array.shape[1] == 3 &&
                f.array.numel == 0 && f.array.dtype == FLEET_DTYPE_I32);
    fleet_cli_npy_close(&f);
    for (int v = 2; v <= 3; v++) {
        snprintf(path, sizeof path, "%s/v%d.npy", dir, v);
        ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_OK);
        ASSERT_TRUE(f.array.version == v && f.array.ndim == 1 && f.array.numel == 6);
        int64_t last;
        memcpy(&last, (const char *)f.array.data + 40, 8);
        ASSERT_EQ(last, i8_at(5));
        fleet_cli_npy_close(&f);
    }
    static const struct {
        const char *file, *why;
    } refused[] = {{"fortran", "fortran_order is True"},
                   {"big", "dtype '>f4' is big-endian"},
                   {"u8", "dtype '|u1' is not supported"}};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, refused[k].file);
        ASSERT_EQ(fleet_cli_npy_open(path, &f, err, sizeof err), FLEET_ERR_INVALID_ARGUMENT);
        ASSERT_STR_CONTAINS(err, refused[k].why);
    }
}

TEST(numpy_loads_what_fleet_writes)
{
    char path[256], err[FLEET_CLI_NPY_ERR_SIZE];
    float f4[6];
    int32_t i4[6];
    int64_t i8[6];
    uint8_t b1[6];
    uint16_t f2[6], bf[6];
    for (int k = 0; k < 6; k++) {
        f4[k] = f4_at(k), i4[k] = i4_at(k), i8[k] = i8_at(k), b1[k] = b1_at(k);
        f2[k] = f2_at(k);
        uint32_t bits;
        memcpy(&bits, &f4[k], 4);
        bf[k] = (uint16_t)(bits >> 16); /* f4_at's values are exact in bf16 */
    }
    const struct {
        const char *name;
        fleet_dtype dtype;
        const void *data;
    } arrays[] = {{"f4", FLEET_DTYPE_F32, f4}, {"i4", FLEET_DTYPE_I32, i4},
                  {"i8", FLEET_DTYPE_I64, i8}, {"b1", FLEET_DTYPE_BOOL, b1},
                  {"f2", FLEET_DTYPE_F16, f2}, {"bf16", FLEET_DTYPE_BF16, bf}};
    int64_t shape[2] = {3, 2};
    for (int t = 0; t < 6; t++) {
        snprintf(path, sizeof path, "%s/out_%s.npy", dir, arrays[t].name);
        ASSERT_EQ(fleet_cli_npy_save(path, arrays[t].dtype, 2, shape, arrays[t].data, err,
                                     sizeof err),
                  FLEET_OK);
    }
    const float scalar = -0.75f;
    int64_t empty[3] = {2, 0, 5};
    snprintf(path, sizeof path, "%s/out_scalar.npy", dir);
    ASSERT_EQ(fleet_cli_npy_save(path, FLEET_DTYPE_F32, 0, NULL, &scalar, err, sizeof err),
              FLEET_OK);
    snprintf(path, sizeof path, "%s/out_empty.npy", dir);
    ASSERT_EQ(fleet_cli_npy_save(path, FLEET_DTYPE_I64, 3, empty, NULL, err, sizeof err),
              FLEET_OK);
    run_python(PY_VALUES
               "want['bf16'] = want['f4']\n"
               "for name, w in want.items():\n"
               "    if name == 'f8': continue\n"
               "    a = np.load(f'{d}/out_{name}.npy')\n"
               "    assert a.dtype == w.dtype and a.shape == (3, 2), (name, a.dtype, a.shape)\n"
               "    assert np.array_equal(a, w.reshape(3, 2)), (name, a)\n"
               "s = np.load(f'{d}/out_scalar.npy')\n"
               "assert s.shape == () and s.dtype == np.float32 and s == -0.75, s\n"
               "e = np.load(f'{d}/out_empty.npy')\n"
               "assert e.shape == (2, 0, 5) and e.dtype == np.int64, e\n"
               "print('numpy read all', len(want) - 1 + 2, 'files')\n");
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "numpy read all 8 files");
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    char path[512];
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    run_python("import numpy");
    if (r.timed_out || !r.exited || r.code != 0) {
        remove_dir();
        TEST_SKIP("numpy is not importable by %s (FLEET_TEST_PYTHON names another Python)",
                  python());
    }
    int rc = test_main(argc, argv);
    remove_dir();
    return rc;
}
