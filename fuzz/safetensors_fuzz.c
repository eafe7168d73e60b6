/* safetensors_fuzz — libFuzzer target for the safetensors parser.
 *
 * Parses the input as a whole file; on success looks every tensor up by its
 * name and reads every data byte (so ASan sees a pointer outside the input),
 * and checks what the parser promises: sorted unique names, each tensor
 * inside the data section, the tensors covering it exactly. On failure the
 * output must be empty and the error text set. Any broken promise traps.
 * Built and run by scripts/fuzz.sh (`make fuzz`).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/safetensors.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fleet__st_file f;
    fleet_status st = fleet__safetensors_parse(data, size, &f);
    if (st != FLEET_OK) {
        CHECK(st == FLEET_ERR_INVALID_MODEL || st == FLEET_ERR_OUT_OF_MEMORY);
        CHECK(f.count == 0 && f.tensors == NULL);
        CHECK(fleet_last_error()[0] != '\0');
        fleet__safetensors_close(&f);
        return 0;
    }
    uint64_t header = 0;
    for (int k = 7; k >= 0; k--)
        header = header << 8 | data[k];
    const uint8_t *section = data + 8 + header;
    uint64_t section_size = size - 8 - header, total = 0;
    volatile uint8_t sink = 0;
    for (int i = 0; i < f.count; i++) {
        const fleet__st_tensor *t = &f.tensors[i];
        CHECK(fleet__safetensors_find(&f, t->name) == t);
        CHECK(i == 0 || strcmp(f.tensors[i - 1].name, t->name) < 0);
        CHECK(t->ndim >= 0 && t->ndim <= FLEET_MAX_DIMS && t->dtype_name != NULL);
        CHECK(t->data_offsets[0] <= t->data_offsets[1] && t->data_offsets[1] <= section_size);
        CHECK(t->data_offsets[1] - t->data_offsets[0] == t->nbytes);
        CHECK((const uint8_t *)t->data == section + t->data_offsets[0]);
        const uint8_t *p = t->data;
        for (uint64_t k = 0; k < t->nbytes; k++)
            sink ^= p[k];
        total += t->nbytes;
    }
    CHECK(total == section_size);
    (void)sink;
    fleet__safetensors_close(&f);
    fleet__safetensors_close(&f);
    return 0;
}
