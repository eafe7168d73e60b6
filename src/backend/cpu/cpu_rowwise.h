/* backend/cpu/cpu_rowwise.h — cpu softmax, layer norm, sum and mean. */
#ifndef FLEET_BACKEND_CPU_ROWWISE_H
#define FLEET_BACKEND_CPU_ROWWISE_H

#include "backend/backend.h"

/* f32 only; one stream task per call. */
fleet_status fleet__cpu_rowwise(void *stream, const fleet__rowwise_args *args);

#endif /* FLEET_BACKEND_CPU_ROWWISE_H */
