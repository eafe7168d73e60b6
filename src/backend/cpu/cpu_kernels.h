/* backend/cpu/cpu_kernels.h — cpu kernels, queued as stream tasks. */
#ifndef FLEET_BACKEND_CPU_KERNELS_H
#define FLEET_BACKEND_CPU_KERNELS_H

#include "backend/backend.h"

fleet_status fleet__cpu_gemm(void *stream, const fleet__gemm_args *args);
/* cpu_elementwise.c */
fleet_status fleet__cpu_elementwise(void *stream, const fleet__elementwise_args *args);
bool fleet__cpu_elementwise_supports(int op, int dtype, int out_dtype);

fleet_status fleet__cpu_copy(void *stream, void *dst, const void *src, size_t bytes);

/* Parallelism comes from fleet's streams (a worker thread each): make a
 * multi-threaded BLAS (OpenBLAS) run each call on its calling thread, unless
 * OPENBLAS_NUM_THREADS says otherwise (no-op for a single-threaded BLAS);
 * and note which BLAS it is. */
void fleet__cpu_blas_single_threaded(void);
/* The BLAS in use, with its version (fleet_backend_kernels). */
const char *fleet__cpu_kernels(void);

#endif /* FLEET_BACKEND_CPU_KERNELS_H */
