/* ops/ref.h — plain-C reference kernels: simple loops, double accumulation,
 * host memory. The backend-ops test runs every op on every backend against
 * these; they are not used on any op path. */
#ifndef FLEET_OPS_REF_H
#define FLEET_OPS_REF_H

#include <stdint.h>

#include "backend/kernel_args.h"

/* Views over host f32 buffers, with the broadcast conventions of
 * fleet__elementwise_args (a and b have out's shape, zero strides repeat). */
void fleet__ref_elementwise(int op, const fleet__view *out, const fleet__view *a,
                            const fleet__view *b);

/* c[m,n] = a[m,k] @ b[k,n] (+ bias[n] if not NULL), row-major contiguous. */
void fleet__ref_matmul(const float *a, const float *b, const float *bias, float *c, int64_t m,
                       int64_t k, int64_t n);

#endif /* FLEET_OPS_REF_H */
