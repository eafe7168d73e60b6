/* tests/ref/ref.h — plain-C reference kernels: simple loops, double accumulation,
 * host memory. The op tests run every op on every backend against these;
 * they are built into the tests only (fleet_test_refs), never into libfleet. */
#ifndef FLEET_TEST_REF_H
#define FLEET_TEST_REF_H

#include <stddef.h>
#include <stdint.h>

#include "backend/kernel_args.h"

/* Views over host f32 buffers, with the broadcast conventions of
 * fleet__elementwise_args (a and b have out's shape, zero strides repeat). */
void ref_elementwise(int op, const fleet__view *out, const fleet__view *a,
                     const fleet__view *b);
/* Any op of fleet__ew_op (WHERE reads c, bool), a's and b's elements of
 * in_dtype and out's of out_dtype (f32, i32, i64, bool), LEAKY_RELU's and
 * CLIP's alpha and beta. */
void ref_elementwise_ex(int op, double alpha, double beta, int in_dtype, int out_dtype,
                        const fleet__view *out, const fleet__view *a, const fleet__view *b,
                        const fleet__view *c);

/* c[m,n] = a[m,k] @ b[k,n] (+ bias[n] if not NULL), row-major contiguous. */
void ref_matmul(const float *a, const float *b, const float *bias, float *c, int64_t m,
                int64_t k, int64_t n);
/* y[m,n] = x[m,k] @ w[n,k]^T (+ bias[n] if not NULL): fleet_linear's layout. */
void ref_linear(const float *x, const float *w, const float *bias, float *y, int64_t m,
                int64_t k, int64_t n);

/* ref_rowwise.c: contiguous host buffers seen as [outer, n, inner], the op's
 * dimension of size n in the middle; layer norm over rows of n. out of sum
 * (mean: nonzero) is [outer, inner]. Layer norm's out may be x. */
void ref_softmax(const float *x, float *out, int64_t outer, int64_t n, int64_t inner);
void ref_layer_norm(const float *x, const float *gamma, const float *beta, double eps,
                    float *out, int64_t rows, int64_t n);
void ref_sum(const float *x, float *out, int64_t outer, int64_t n, int64_t inner, int mean);
void ref_log_softmax(const float *x, float *out, int64_t outer, int64_t n, int64_t inner);
void ref_max(const float *x, float *out, int64_t outer, int64_t n, int64_t inner);

/* ref_conv.c. Embedding: out[r, :] = w[idx[r], :] (zeros for an index
 * outside [0, v)); idx is int32_t (index_dtype FLEET_DTYPE_I32) or int64_t. */
void ref_embedding(const float *w, int64_t v, int64_t d, const void *idx, int index_dtype,
                   int64_t n, float *out);
/* numpy.take along a dimension, x as [outer, v, inner] of elem_size bytes:
 * negative indices count from the end, ones outside give zeros. */
void ref_gather(const void *x, size_t elem_size, int64_t outer, int64_t v, int64_t inner,
                const int64_t *indices, int64_t n, void *out);
/* Concatenation of host views along dim into out (views of one ndim). */
void ref_concat(const fleet__view *const *inputs, int n, int dim, const fleet__view *out);
/* Direct 2-D cross-correlation, contiguous host buffers: x [n, c, h, w],
 * wt [cout, c, kh, kw], bias [cout] or NULL, out [n, cout, oh, ow] (geom as
 * fleet__conv_geom; a 1-D convolution has h = kh = 1). */
void ref_conv2d(const fleet__conv_geom *g, const float *x, const float *wt,
                const float *bias, float *out);
/* The same with the channels in `groups` groups: g->c and g->cout are the
 * totals, wt is [cout, c / groups, kh, kw]. */
void ref_conv2d_groups(const fleet__conv_geom *g, int64_t groups, const float *x,
                       const float *wt, const float *bias, float *out);
/* 2-D pooling by the rules of fleet__pool_args (op a fleet__pool_op), written
 * over each window's positions. */
void ref_pool2d(int op, const fleet__pool_args *a, const float *x, float *out);

/* out[b,i,:] = softmax_j(scale * q[b,i,:].k[b,j,:] + mask[b,i,j]) @ v[b,:,:] for
 * contiguous [batch, L, D] arrays; mask NULL or [batch, lq, lk]. */
void ref_attention(const float *q, const float *k, const float *v, const float *mask,
                   int64_t batch, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                   double scale, float *out);

#endif /* FLEET_TEST_REF_H */
