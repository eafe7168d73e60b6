/* npy_fuzz — libFuzzer target for the fleet tool's .npy parser (cli/npy.c).
 *
 * Parses the input as a whole file; on success converts every element
 * (fleet_cli_npy_copy_out into a malloc of exactly the converted size, so
 * ASan sees a read outside the input or a write outside the buffer) and
 * checks what the parser promises: a descr it reads and the dtype that
 * loads, at most FLEET_MAX_DIMS non-negative dimensions whose product is
 * numel, nbytes = numel * the file's element size, the data ending exactly
 * at the end of the input; and that the header fleet writes for that dtype
 * and shape, with the converted data after it, parses back to the same
 * array and values. On failure the array must be zeroed and the error text
 * set. A broken promise traps. Built and run by scripts/fuzz.sh
 * (`make fuzz`).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "fuzz.h"

static void check_zeroed(const fleet_cli_npy_array *a)
{
    CHECK(a->data == NULL && a->nbytes == 0 && a->numel == 0 && a->ndim == 0);
    CHECK(a->descr[0] == '\0' && a->file_elem_size == 0 && a->version == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fleet_cli_npy_array a;
    char err[FLEET_CLI_NPY_ERR_SIZE];
    fleet_status st = fleet_cli_npy_parse(data, size, &a, err, sizeof err);
    if (st != FLEET_OK) {
        CHECK(st == FLEET_ERR_INVALID_ARGUMENT);
        CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
        check_zeroed(&a);
        return 0;
    }
    CHECK(err[0] == '\0');
    CHECK(a.version >= 1 && a.version <= 3);
    CHECK(a.ndim >= 0 && a.ndim <= FLEET_MAX_DIMS);
    size_t es = fleet_dtype_size(a.dtype);
    CHECK(es > 0 && (a.file_elem_size == es ||
                     (a.dtype == FLEET_DTYPE_F32 && a.file_elem_size == sizeof(double))));
    CHECK(strcmp(a.descr, a.file_elem_size == es ? fleet_cli_npy_descr(a.dtype) : "<f8") == 0);
    bool empty = false;
    for (int d = 0; d < a.ndim; d++) {
        CHECK(a.shape[d] >= 0);
        empty = empty || a.shape[d] == 0;
    }
    int64_t numel = 1; /* the parser promises that the nonzero ones fit */
    for (int d = 0; d < a.ndim; d++)
        numel *= a.shape[d] != 0 ? a.shape[d] : 1;
    numel = empty ? 0 : numel;
    CHECK(numel == a.numel && (uint64_t)a.nbytes == (uint64_t)a.numel * a.file_elem_size);
    CHECK((const uint8_t *)a.data >= data && (const uint8_t *)a.data + a.nbytes == data + size);

    /* every element converted, and written back as fleet writes it */
    size_t converted = (size_t)a.numel * es;
    char head[FLEET_CLI_NPY_HEADER_CAP];
    size_t head_len = fleet_cli_npy_header(a.dtype, a.ndim, a.shape, head, sizeof head);
    CHECK(head_len > 0 && head_len % 64 == 0);
    uint8_t *file = malloc(head_len + converted + 1);
    CHECK(file != NULL);
    memcpy(file, head, head_len);
    uint8_t *values = file + head_len;
    fleet_cli_npy_copy_out(&a, values);
    for (size_t k = 0; a.dtype == FLEET_DTYPE_BOOL && k < converted; k++)
        CHECK(values[k] <= 1);
    fleet_cli_npy_array b;
    CHECK(fleet_cli_npy_parse(file, head_len + converted, &b, err, sizeof err) == FLEET_OK);
    CHECK(b.version == 1 && b.dtype == a.dtype && b.file_elem_size == es);
    CHECK(b.ndim == a.ndim && memcmp(b.shape, a.shape, sizeof a.shape) == 0);
    CHECK(b.numel == a.numel && b.data == values);
    uint8_t *again = malloc(converted + 1);
    CHECK(again != NULL);
    fleet_cli_npy_copy_out(&b, again);
    CHECK(memcmp(again, values, converted) == 0);
    free(again);
    free(file);
    return 0;
}
