/* backend/cuda/cuda_staging.c — pinned staging for host transfers.
 *
 * Why: a cudaMemcpyAsync from pageable memory is staged by the driver
 * through its own small pinned buffers and is synchronous with respect to
 * the host; with a pinned buffer of the stream's own, the copy engine reads
 * it directly and the call returns as soon as the bytes are staged. */
#include <string.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_staging.h"
#include "core/error.h"
#include "core/prim.h"

void fleet__cuda_staging_init(fleet__cuda_staging *st)
{
    memset(st, 0, sizeof *st);
    fleet__mutex_init(&st->lock);
}

void fleet__cuda_staging_destroy(fleet__cuda_staging *st)
{
    if (st->have_event)
        cudaEventDestroy(st->done);
    if (st->buffer != NULL)
        cudaFreeHost(st->buffer);
    fleet__mutex_destroy(&st->lock);
}

static fleet_status ready(fleet__cuda_staging *st) FLEET_REQUIRES(st->lock)
{
    if (st->buffer == NULL) {
        if (fleet__fault())
            return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cudaHostAlloc: injected failure");
        FLEET_CUDA_TRY(cudaHostAlloc(&st->buffer, FLEET__CUDA_STAGING_BYTES, cudaHostAllocDefault));
    }
    if (!st->have_event) {
        FLEET_CUDA_TRY(cudaEventCreateWithFlags(&st->done, cudaEventDisableTiming));
        st->have_event = true;
    }
    return FLEET_OK;
}

static fleet_status to_device_locked(fleet__cuda_staging *st, cudaStream_t stream, char *dst,
                                     const char *src, size_t bytes) FLEET_REQUIRES(st->lock)
{
    fleet_status status = ready(st);
    if (status != FLEET_OK)
        return status;
    for (size_t off = 0; off < bytes; off += FLEET__CUDA_STAGING_BYTES) {
        size_t n = bytes - off < FLEET__CUDA_STAGING_BYTES ? bytes - off : FLEET__CUDA_STAGING_BYTES;
        /* The previous copy out of the buffer must have run before we refill it. */
        FLEET_CUDA_TRY(cudaEventSynchronize(st->done));
        memcpy(st->buffer, src + off, n);
        FLEET_CUDA_TRY(cudaMemcpyAsync(dst + off, st->buffer, n, cudaMemcpyHostToDevice, stream));
        FLEET_CUDA_TRY(cudaEventRecord(st->done, stream));
    }
    return FLEET_OK;
}

static fleet_status to_host_locked(fleet__cuda_staging *st, cudaStream_t stream, char *dst,
                                   const char *src, size_t bytes) FLEET_REQUIRES(st->lock)
{
    fleet_status status = ready(st);
    if (status != FLEET_OK)
        return status;
    for (size_t off = 0; off < bytes; off += FLEET__CUDA_STAGING_BYTES) {
        size_t n = bytes - off < FLEET__CUDA_STAGING_BYTES ? bytes - off : FLEET__CUDA_STAGING_BYTES;
        FLEET_CUDA_TRY(cudaMemcpyAsync(st->buffer, src + off, n, cudaMemcpyDeviceToHost, stream));
        FLEET_CUDA_TRY(cudaEventRecord(st->done, stream));
        FLEET_CUDA_TRY(cudaEventSynchronize(st->done));
        memcpy(dst + off, st->buffer, n);
    }
    return FLEET_OK;
}

fleet_status fleet__cuda_staging_to_device(fleet__cuda_staging *st, cudaStream_t stream,
                                           void *dst, const void *src, size_t bytes)
{
    fleet__mutex_lock(&st->lock);
    fleet_status status = to_device_locked(st, stream, dst, src, bytes);
    fleet__mutex_unlock(&st->lock);
    return status;
}

fleet_status fleet__cuda_staging_to_host(fleet__cuda_staging *st, cudaStream_t stream,
                                         void *dst, const void *src, size_t bytes)
{
    fleet__mutex_lock(&st->lock);
    fleet_status status = to_host_locked(st, stream, dst, src, bytes);
    fleet__mutex_unlock(&st->lock);
    return status;
}
