/* backend/cuda/cuda_staging.h — host transfers through a pinned staging
 * buffer per stream: pageable host memory is copied into page-locked memory
 * that the copy engine reads (or writes) directly. */
#ifndef FLEET_BACKEND_CUDA_STAGING_H
#define FLEET_BACKEND_CUDA_STAGING_H

#include <stdbool.h>
#include <stddef.h>

#include <cuda_runtime_api.h>

#include "core/lock.h"
#include "fleet/status.h"

#define FLEET__CUDA_STAGING_BYTES ((size_t)2 << 20)

typedef struct fleet__cuda_staging {
    /* rank 6 (like a cpu stream's queue lock): threads sharing the stream
     * take turns with the buffer. Guards everything below. */
    fleet__mutex lock;
    void *buffer;       /* cudaHostAlloc'd, FLEET__CUDA_STAGING_BYTES, lazily */
    cudaEvent_t done;   /* recorded after the last copy that read the buffer  */
    bool have_event;
} fleet__cuda_staging;

void fleet__cuda_staging_init(fleet__cuda_staging *st);
/* Free the buffer and event (shutdown, after the stream was synchronized). */
void fleet__cuda_staging_destroy(fleet__cuda_staging *st);

/* Host to device, on `stream`: returns once src may be reused (its bytes are
 * in the staging buffer or already copied), in chunks of the buffer's size. */
fleet_status fleet__cuda_staging_to_device(fleet__cuda_staging *st, cudaStream_t stream,
                                           void *dst, const void *src, size_t bytes);

/* Device to host, on `stream`: returns with the bytes in dst (it waits for
 * the stream to reach each chunk's copy). */
fleet_status fleet__cuda_staging_to_host(fleet__cuda_staging *st, cudaStream_t stream,
                                         void *dst, const void *src, size_t bytes);

#endif /* FLEET_BACKEND_CUDA_STAGING_H */
