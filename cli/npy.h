/* cli/npy.h — NumPy .npy files for the fleet tool (`fleet run --input`,
 * `--output`): parsed from memory, mapped from and written to files.
 *
 *     fleet_cli_npy_file f;
 *     char err[FLEET_CLI_NPY_ERR_SIZE];
 *     if (fleet_cli_npy_open("x.npy", &f, err, sizeof err) != FLEET_OK)
 *         fprintf(stderr, "%s\n", err);          // "x.npy: truncated: ..."
 *     ... f.array.dtype, f.array.ndim, f.array.shape, f.array.numel ...
 *     fleet_cli_npy_copy_out(&f.array, host);  // numel * dtype size bytes
 *     fleet_cli_npy_close(&f);
 *
 *     fleet_cli_npy_save("out/y.npy", FLEET_DTYPE_F32, 2, shape, host, err, sizeof err);
 *
 * The format (numpy.lib.format): the magic "\x93NUMPY", a version byte pair,
 * the header's length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and
 * 3.0), the header — a Python dict literal {'descr': '<f4',
 * 'fortran_order': False, 'shape': (2, 3), } padded with spaces and ending
 * in a newline — then the elements, C order, nothing after them.
 *
 * The bytes are untrusted (fuzz/npy_fuzz.c). fleet_cli_npy_parse reads
 * versions 1.0, 2.0 and 3.0 and is bounded everywhere: the header at most
 * FLEET_CLI_NPY_MAX_HEADER bytes, at most FLEET_MAX_DIMS dimensions, the
 * element count and byte size checked for overflow (as numpy checks them:
 * the dimensions other than 0 multiply to a size that fits even when a 0
 * makes the array empty), the data exactly as long as the shape says. The
 * header is parsed as numpy writes it, tolerant of blanks (spaces, tabs,
 * newlines) between tokens, of the three keys in any order, of either
 * quote and of a trailing comma, and of the `L` suffix Python 2's numpy
 * put on integers; anything else is refused: another key,
 * a key twice or missing, a 1-d shape without its comma ("(3)"), a
 * structured descr, fortran_order True (column-major data), a byte outside
 * printable ASCII. Element types (descr, as numpy writes them on a
 * little-endian machine), and what each loads as:
 *
 *     '<f4' f32    '<f2' f16    '<i4' i32    '<i8' i64    '|b1' bool
 *     '<f8' f32 (rounded to nearest: fleet has no f64)
 *
 * Big-endian ('>f4'), bf16 (numpy has no such dtype) and every other type
 * are refused; so is '|u1' (fleet has no u8). Bools load as 0 or 1 (any
 * nonzero byte is true, as in numpy).
 *
 * fleet_cli_npy_save writes format 1.0, the header padded to a multiple of
 * 64 bytes as numpy pads it; bf16 data is written as '<f4' (exact). It
 * writes a temporary file beside the target (".<name>.<pid>-<n>.tmp" in
 * the same folder, created exclusively), syncs it and renames it over the
 * target, so the target is either the whole new file or untouched; on
 * failure the temporary file is removed.
 *
 * Errors: FLEET_ERR_INVALID_ARGUMENT for a malformed or unsupported file,
 * FLEET_ERR_IO for a file that cannot be opened, mapped or written,
 * FLEET_ERR_OUT_OF_MEMORY; the reason in err (at most err_size bytes, NUL
 * terminated). All functions are thread-safe (no shared state). The host is
 * little-endian (checked at build time). */
#ifndef FLEET_CLI_NPY_H
#define FLEET_CLI_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/dtype.h"
#include "fleet/status.h"

#define FLEET_CLI_NPY_MAX_HEADER 10000 /* header bytes, numpy's own read limit */
#define FLEET_CLI_NPY_ERR_SIZE 256     /* room for any error text              */

typedef struct fleet_cli_npy_array {
    char descr[4];          /* the file's element type, "<f4"                   */
    fleet_dtype dtype;      /* what the elements load as                        */
    size_t file_elem_size;  /* bytes per element in the file (8 for '<f8')      */
    int ndim;               /* 0 (a scalar) .. FLEET_MAX_DIMS                   */
    int64_t shape[FLEET_MAX_DIMS];
    int64_t numel;          /* the product of shape (1 for a scalar)            */
    const void *data;       /* numel * file_elem_size bytes inside the buffer   */
    size_t nbytes;          /* numel * file_elem_size: the rest of the buffer   */
    int version;            /* 1, 2 or 3 (the format's major version)           */
} fleet_cli_npy_array;

/* Parses the size bytes at buf as a whole .npy file into *out, whose data
 * then points into buf (nothing is allocated). On failure *out is zeroed
 * and err holds the reason ("shape (3) is not a tuple ..."). */
fleet_status fleet_cli_npy_parse(const void *buf, size_t size, fleet_cli_npy_array *out,
                                 char *err, size_t err_size);

/* Writes the array's elements as its dtype to dst, which holds
 * a->numel * fleet_dtype_size(a->dtype) bytes: copied, bools made 0 or 1,
 * '<f8' rounded to f32. */
void fleet_cli_npy_copy_out(const fleet_cli_npy_array *a, void *dst);

/* The descr a file of dtype holds: "<f4", "<f2", "<i4", "<i8", "|b1"; for
 * bf16 "<f4" (fleet_cli_npy_save widens it); NULL for an unknown dtype. */
const char *fleet_cli_npy_descr(fleet_dtype dtype);

/* Writes the format 1.0 preamble and header of an array (ndim 0..
 * FLEET_MAX_DIMS, each dim >= 0) of dtype to buf: returns its length, a
 * multiple of 64, or 0 when it does not fit in cap or the arguments are
 * invalid. FLEET_CLI_NPY_HEADER_CAP bytes always suffice. */
#define FLEET_CLI_NPY_HEADER_CAP 512
size_t fleet_cli_npy_header(fleet_dtype dtype, int ndim, const int64_t *shape, char *buf,
                            size_t cap);

/* A .npy file mapped read-only, its array parsed. */
typedef struct fleet_cli_npy_file {
    void *map;
    size_t size;
    fleet_cli_npy_array array;
} fleet_cli_npy_file;

/* Maps and parses the regular file at path (err starts with the path). On
 * failure nothing is left mapped and *f is zeroed. */
fleet_status fleet_cli_npy_open(const char *path, fleet_cli_npy_file *f, char *err,
                                size_t err_size);
/* Unmaps it; a zeroed file (a failed open) is ignored. */
void fleet_cli_npy_close(fleet_cli_npy_file *f);

/* Writes the array (numel(shape) * fleet_dtype_size(dtype) bytes at data)
 * to path through a temporary file and a rename (see above). */
fleet_status fleet_cli_npy_save(const char *path, fleet_dtype dtype, int ndim,
                                const int64_t *shape, const void *data, char *err,
                                size_t err_size);

#endif /* FLEET_CLI_NPY_H */
