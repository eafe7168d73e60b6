/* backend/cpu/cpu_linalg.h — dense linear algebra on cpu streams through the
 * system LAPACK (and BLAS strsm), queued as stream tasks. */
#ifndef FLEET_BACKEND_CPU_LINALG_H
#define FLEET_BACKEND_CPU_LINALG_H

#include "backend/backend.h"

fleet_status fleet__cpu_linalg_workspace_size(void *stream, const fleet__linalg_args *args,
                                              size_t *bytes);
fleet_status fleet__cpu_linalg(void *stream, const fleet__linalg_args *args);

#endif /* FLEET_BACKEND_CPU_LINALG_H */
