/* model/safetensors.h — reading .safetensors files (huggingface's format).
 *
 * Layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON (the header),
 * then the data section. The header is one object; each key is a tensor name
 * mapping to {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * with offsets relative to the start of the data section. An optional
 * "__metadata__" key maps to an object of string -> string and is skipped.
 *
 * The parser checks everything the format promises and trusts nothing: the
 * header is valid JSON (a small bounded reader of its own: objects, arrays,
 * strings with escapes, non-negative integers; nothing else), no name twice,
 * every tensor's byte count is numel * dtype size, and the tensors together
 * cover the data section exactly (no holes, no overlaps). Every length and
 * product is overflow-checked; no byte outside the buffer is read, on any
 * input. A malformed file is FLEET_ERR_INVALID_MODEL and fleet_last_error()
 * says what and where, for example
 *   "safetensors: tensor 'w1': data_offsets [0, 100] exceed the data section (64 bytes)".
 *
 *     fleet__st_file f;
 *     if (fleet__safetensors_open("model.safetensors", &f) != FLEET_OK)
 *         return ...;                         // nothing to close
 *     const fleet__st_tensor *w = fleet__safetensors_find(&f, "w1");
 *     if (w != NULL && w->dtype == FLEET_DTYPE_F32)
 *         memcpy(host, w->data, w->nbytes);  // data may be unaligned: copy
 *     fleet__safetensors_close(&f);
 *
 * Thread-safety: a parsed file is immutable; any number of threads may call
 * find and read tensors at once. Parse, open and close touch only their own
 * file (and the calling thread's error text).
 */
#ifndef FLEET_MODEL_SAFETENSORS_H
#define FLEET_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/status.h"
#include "fleet/tensor.h"

#define FLEET__ST_MAX_HEADER ((size_t)100 << 20) /* header size limit          */
#define FLEET__ST_MAX_TENSORS (1 << 20)          /* tensors in one file        */
#define FLEET__ST_MAX_NAME 1024                  /* bytes in a name (UTF-8)    */

typedef struct fleet__st_tensor {
    const char *name;          /* NUL-terminated, owned by the file          */
    int dtype;                 /* a fleet_dtype, or -1 if fleet has none     */
    const char *dtype_name;    /* as written in the file ("F32", "F64", ...) */
    int ndim;                  /* 0 (a scalar) .. FLEET_MAX_DIMS             */
    int64_t shape[FLEET_MAX_DIMS];
    uint64_t nbytes;           /* == data_offsets[1] - data_offsets[0]       */
    const void *data;          /* into the file's data section; unaligned   */
    uint64_t data_offsets[2];  /* [begin, end) in the data section           */
} fleet__st_tensor;

typedef struct fleet__st_file {
    int count;
    fleet__st_tensor *tensors; /* sorted by name (binary search in find)     */
    /* private */
    char *names_;              /* every name, NUL-terminated, back to back   */
    uint8_t *bytes_;           /* the whole file when opened from a path     */
    size_t size_;              /* bytes in the file                          */
} fleet__st_file;

/* Parse an in-memory file; buf must outlive *out (tensors point into it).
 * On error *out is left empty (nothing to close) and fleet_last_error() says
 * what and where. FLEET_ERR_INVALID_MODEL for any malformed file,
 * FLEET_ERR_NULL_POINTER for a NULL out (or a NULL buf with len > 0),
 * FLEET_ERR_OUT_OF_MEMORY. Dtypes fleet has no fleet_dtype for ("F64",
 * "U8", "F8_E4M3", ...) parse with dtype -1; a dtype name the format does
 * not define is an error (its size would be unknown). */
fleet_status fleet__safetensors_parse(const uint8_t *buf, size_t len, fleet__st_file *out);

/* Read a whole file (read() into malloc'd memory, bounded by its fstat size)
 * and parse it; the file owns those bytes. FLEET_ERR_IO if it cannot be read
 * (the message names the path and the errno text); parse's errors otherwise,
 * with the path in front of the message. */
fleet_status fleet__safetensors_open(const char *path, fleet__st_file *out);

/* Free what the file owns and empty it. NULL and an already closed or empty
 * (failed) file are fine; closing twice is fine. */
void fleet__safetensors_close(fleet__st_file *f);

/* The tensor called `name`, or NULL (also for a NULL f or name). O(log n). */
const fleet__st_tensor *fleet__safetensors_find(const fleet__st_file *f, const char *name);

#endif /* FLEET_MODEL_SAFETENSORS_H */
