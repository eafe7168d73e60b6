/* fleet/dtype.h — element types and the most dimensions a tensor has.
 *
 * Its own small header: the backend layer needs the dtypes, not tensors. */
#ifndef FLEET_DTYPE_H
#define FLEET_DTYPE_H

#include <stddef.h>

#include "fleet/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLEET_MAX_DIMS 8

typedef enum fleet_dtype {
    FLEET_DTYPE_F32 = 0,
    FLEET_DTYPE_F16 = 1,  /* arithmetic on cuda devices only; casts and copies on all */
    FLEET_DTYPE_BF16 = 2, /* likewise                                             */
    FLEET_DTYPE_I32 = 3,  /* indices (fleet_embedding, fleet_gather), fleet_cast,    */
    FLEET_DTYPE_I64 = 4,  /* copies, and the integer ops: add, sub, mul, div, max,
                           * min, neg, abs, comparisons (exact, wrapping)       */
    FLEET_DTYPE_BOOL = 5, /* one byte, 0 or 1: comparisons' results, fleet_where   */
} fleet_dtype;

/* Bytes per element; 0 for an unknown dtype. */
FLEET_API size_t fleet_dtype_size(fleet_dtype dtype);
/* "f32", "f16", "bf16", "i32", "i64", "bool"; "unknown" otherwise. */
FLEET_API const char *fleet_dtype_name(fleet_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_DTYPE_H */
