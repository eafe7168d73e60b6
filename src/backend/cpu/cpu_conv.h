/* backend/cpu/cpu_conv.h — cpu kernels of the gather and convolution ops
 * (cpu_conv.c), queued as stream tasks. */
#ifndef FLEET_BACKEND_CPU_CONV_H
#define FLEET_BACKEND_CPU_CONV_H

#include "backend/backend.h"

fleet_status fleet__cpu_gather(void *stream, const fleet__gather_args *args);
fleet_status fleet__cpu_range(void *stream, const fleet__range_args *args);
fleet_status fleet__cpu_im2col(void *stream, const fleet__im2col_args *args);
fleet_status fleet__cpu_pool2d(void *stream, const fleet__pool_args *args);

#endif /* FLEET_BACKEND_CPU_CONV_H */
