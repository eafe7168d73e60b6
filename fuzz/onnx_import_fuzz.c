/* onnx_import_fuzz — libFuzzer target for the ONNX importer
 * (fleet_model_load_onnx_memory on the cpu device): every input is a model
 * file. The load must return FLEET_OK or a refusal with its text set (never
 * crash, never leak: LeakSanitizer runs at exit); a model that loads is run
 * once at batch 1 on zeroed inputs (when they are small), which compiles
 * its plan and runs every step, and must run or refuse cleanly. Built with
 * the whole library and run by scripts/fuzz.sh (`make fuzz`); its corpus is
 * fuzz/corpus/onnx (shared with the reader's target). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/runtime.h"
#include "fleet/onnx.h"
#include "fuzz.h"

static fleet_device *dev;

static void run_once(fleet_model *m)
{
    int ni = fleet_model_input_count(m), no = fleet_model_output_count(m);
    fleet_tensor *in[FLEET_MODEL_MAX_IO] = {0}, *out[FLEET_MODEL_MAX_IO] = {0};
    bool ok = true;
    for (int pass = 0; pass < 2 && ok; pass++)
        for (int i = 0; i < (pass ? no : ni) && ok; i++) {
            int ndim;
            int64_t shape[FLEET_MAX_DIMS], numel = 1;
            fleet_dtype dt;
            const char *name;
            ok = (pass ? fleet_model_output_info(m, i, &name, &dt, &ndim, shape)
                       : fleet_model_input_info(m, i, &name, &dt, &ndim, shape)) == FLEET_OK;
            for (int d = 0; ok && d < ndim; d++) {
                shape[d] = shape[d] == FLEET_DIM_BATCH ? 1 : shape[d];
                ok = shape[d] <= (1 << 16) && (numel *= shape[d]) <= (1 << 16);
            }
            fleet_tensor **t = pass ? &out[i] : &in[i];
            ok = ok && fleet_tensor_create(dev, dt, ndim, shape, t) == FLEET_OK;
            if (ok && !pass) {
                size_t bytes = fleet_tensor_nbytes(*t);
                void *zeros = calloc(1, bytes + 1);
                CHECK(zeros != NULL);
                ok = fleet_tensor_copy_from_host(*t, zeros, bytes) == FLEET_OK;
                free(zeros);
            }
        }
    if (ok) {
        fleet_status st = fleet_model_run(m, (const fleet_tensor *const *)in, ni, out, no);
        CHECK(st == FLEET_OK || fleet_last_error()[0] != '\0');
    }
    for (int i = 0; i < FLEET_MODEL_MAX_IO; i++) {
        if (in[i] != NULL)
            CHECK(fleet_tensor_release(in[i]) == FLEET_OK);
        if (out[i] != NULL)
            CHECK(fleet_tensor_release(out[i]) == FLEET_OK);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dev == NULL) {
        setenv("FLEET_BACKEND", "cpu", 1);
        setenv("FLEET_MEMORY_LIMIT", "256M", 1);
        CHECK(fleet_device_default(&dev) == FLEET_OK);
    }
    fleet_model *m = NULL;
    static const uint8_t empty[1];
    fleet_status st = fleet_model_load_onnx_memory(dev, size ? data : empty, size, NULL, &m);
    if (st != FLEET_OK) {
        CHECK(m == NULL && fleet_last_error()[0] != '\0');
        return 0;
    }
    run_once(m);
    CHECK(fleet_model_destroy(m) == FLEET_OK);
    return 0;
}
