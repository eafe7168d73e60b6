/* bench/model_reference.c — fleet's ready-made models against PyTorch.
 *
 *     python3 bench/model_reference.py DIR      # on a machine with torch
 *     ./build/model_reference DIR               # default backend
 *
 * For the MLP 256-512-512-256 and the encoder block (S16 D64 H4 F256) it
 * loads DIR/<model>.safetensors into the builder's model, runs DIR/<model>_x.bin
 * through it, and compares with PyTorch's float32 output (<model>_y.bin) and
 * its float64 output (<model>_y64.bin). Printed per model: the largest
 * absolute error, the largest relative error normwise (max |fleet - torch|
 * / max |torch|) and elementwise (|fleet - torch| / max(|torch|, 1e-3)).
 * Exits 1 if a normwise error against float64 exceeds 1e-4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fleet.h"

#define TOL 1e-4

static void *read_file(const char *dir, const char *name, const char *suffix, size_t want)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "model_reference: cannot open %s\n", path);
        exit(2);
    }
    void *p = malloc(want);
    size_t got = fread(p, 1, want, f);
    int extra = fgetc(f);
    fclose(f);
    if (got != want || extra != EOF) {
        fprintf(stderr, "model_reference: %s: expected exactly %zu bytes\n", path, want);
        exit(2);
    }
    return p;
}

static int check(fleet_status st, const char *what)
{
    if (st == FLEET_OK)
        return 0;
    fprintf(stderr, "model_reference: %s: %s: %s\n", what, fleet_status_str(st),
            fleet_last_error());
    exit(2);
}

typedef struct errors {
    double abs, norm_rel, elem_rel;
} errors;

static errors compare(const float *y, const void *ref, int is_double, size_t n)
{
    errors e = {0};
    double scale = 0;
    for (size_t i = 0; i < n; i++) {
        double r = is_double ? ((const double *)ref)[i] : ((const float *)ref)[i];
        double d = fabs(y[i] - r);
        scale = fmax(scale, fabs(r));
        e.abs = fmax(e.abs, d);
        e.elem_rel = fmax(e.elem_rel, d / fmax(fabs(r), 1e-3));
    }
    e.norm_rel = scale > 0 ? e.abs / scale : e.abs;
    return e;
}

static int run(fleet_device *dev, const char *dir, const char *name, fleet_model *m,
               int64_t batch)
{
    int loaded;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    check(fleet_model_load_safetensors(m, path, &loaded), path);
    check(fleet_model_finalize(m), "finalize");
    int64_t xs[FLEET_MAX_DIMS], ys[FLEET_MAX_DIMS];
    int xn, yn;
    check(fleet_model_input_shape(m, 0, batch, &xn, xs), "input shape");
    check(fleet_model_output_shape(m, 0, batch, &yn, ys), "output shape");
    fleet_tensor *tx, *ty;
    check(fleet_tensor_create(dev, FLEET_DTYPE_F32, xn, xs, &tx), "x");
    check(fleet_tensor_create(dev, FLEET_DTYPE_F32, yn, ys, &ty), "y");
    size_t nx = fleet_tensor_nbytes(tx) / sizeof(float), ny = fleet_tensor_nbytes(ty) / sizeof(float);
    float *x = read_file(dir, name, "_x.bin", nx * sizeof(float));
    float *y32 = read_file(dir, name, "_y.bin", ny * sizeof(float));
    double *y64 = read_file(dir, name, "_y64.bin", ny * sizeof(double));
    float *y = malloc(ny * sizeof(float));
    check(fleet_tensor_copy_from_host(tx, x, nx * sizeof(float)), "x upload");
    const fleet_tensor *in[1] = {tx};
    fleet_tensor *out[1] = {ty};
    /* twice: on cuda the first run launches kernels, the second replays the
     * captured graph; both must agree with the reference */
    errors e32 = {0}, e64 = {0};
    for (int pass = 0; pass < 3; pass++) {
        check(fleet_model_run(m, in, 1, out, 1), "run");
        check(fleet_tensor_copy_to_host(ty, y, ny * sizeof(float)), "y download");
        errors a = compare(y, y32, 0, ny), b = compare(y, y64, 1, ny);
        e32 = (errors){fmax(e32.abs, a.abs), fmax(e32.norm_rel, a.norm_rel),
                       fmax(e32.elem_rel, a.elem_rel)};
        e64 = (errors){fmax(e64.abs, b.abs), fmax(e64.norm_rel, b.norm_rel),
                       fmax(e64.elem_rel, b.elem_rel)};
    }
    fleet_model_stats st;
    check(fleet_model_get_stats(m, &st), "stats");
    int ok = e64.norm_rel <= TOL;
    printf("| %s | %s | %d | %.2e | %.2e | %.2e | %.2e | %.2e | %llu/%llu | %s |\n", name,
           fleet_device_name(dev), loaded, e32.abs, e32.norm_rel, e32.elem_rel, e64.abs,
           e64.norm_rel, (unsigned long long)st.graph_replays, (unsigned long long)st.runs,
           ok ? "PASS" : "FAIL");
    fleet_tensor_release(tx);
    fleet_tensor_release(ty);
    free(x);
    free(y32);
    free(y64);
    free(y);
    fleet_model_destroy(m);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR   (DIR written by bench/model_reference.py)\n", argv[0]);
        return 2;
    }
    fleet_device *dev;
    check(fleet_device_default(&dev), "device");
    printf("| model | device | weights | max abs err vs torch f32 | normwise rel | elementwise rel "
           "| max abs err vs torch f64 | normwise rel | graph replays/runs | result |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    const int64_t widths[] = {256, 512, 512, 256};
    fleet_model *mlp, *enc;
    check(fleet_model_build_mlp(dev, widths, 4, &mlp), "build mlp");
    int ok = run(dev, argv[1], "mlp", mlp, 8);
    check(fleet_model_build_encoder_block(dev, 16, 64, 4, 256, &enc), "build encoder");
    ok &= run(dev, argv[1], "encoder", enc, 4);
    return ok ? 0 : 1;
}
