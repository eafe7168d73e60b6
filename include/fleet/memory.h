/* fleet/memory.h — the stream-ordered caching allocator.
 *
 * Each device has a caching allocator above the backend's raw allocation
 * (cudaMalloc, or aligned host memory on cpu). Memory is reserved from the
 * backend in segments and handed out in blocks:
 *   - small requests (<= 1 MiB) are rounded up to 512 bytes and packed into
 *     shared 2 MiB segments;
 *   - large requests are rounded up to 512 bytes and carved from 20 MiB
 *     segments (requests under 10 MiB) or from a segment of their own
 *     (rounded up to 2 MiB);
 *   - a free block is found best-fit, split when the rest is worth keeping,
 *     and merged with free neighbours when freed.
 *
 * Stream-ordered reuse. A block belongs to the stream it was allocated on.
 * When freed it returns at once to that stream's cache, because later work on
 * the same stream runs after earlier work that used the block. If other
 * streams used the block, say so with fleet_memory_record_stream(): the free
 * then records an event on each of those streams and the block is withheld
 * ("pending") until every event has passed.
 *
 * Handles. A fleet_allocation is a small value: the pointer plus the block's
 * generation. Freeing a handle whose block was freed (and perhaps reused)
 * since returns FLEET_ERR_STALE_HANDLE and touches nothing.
 *
 * Out of memory. When the backend refuses (or FLEET_MEMORY_LIMIT would be
 * exceeded) the allocator (1) releases cached free segments of every stream
 * and retries if that released anything, (2) synchronizes the device,
 * releases everything unused and retries if that released anything, (3)
 * returns FLEET_ERR_OUT_OF_MEMORY whose message gives requested, allocated,
 * cached and limit bytes. It never aborts; other threads go on.
 *
 * Invariant, per device, at every moment outside the allocator's locks:
 *     allocated + pending + cached == reserved
 *
 *     fleet_stream *s;  fleet_stream_current(dev, &s);
 *     fleet_allocation a;
 *     if (fleet_memory_alloc(s, 4096, &a) == FLEET_OK) {
 *         ... enqueue work on s that uses a.ptr ...
 *         fleet_memory_free(&a);          // safe at once: stream-ordered
 *     }
 *
 * Thread-safety: all functions may be called from any thread. Threads bound
 * to different streams do not contend: each stream has its own free lists and
 * lock.
 */
#ifndef FLEET_MEMORY_H
#define FLEET_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "fleet/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fleet_allocation {
    void *ptr;          /* device memory (host memory on cpu), 256-byte aligned */
    size_t size;        /* bytes requested                                     */
    void *block_;       /* private: the block                                  */
    uint64_t generation_; /* private: the block's generation at allocation      */
} fleet_allocation;

/* Allocate `bytes` (> 0) for use on `stream`. On failure *out is zeroed. */
FLEET_API fleet_status fleet_memory_alloc(fleet_stream *stream, size_t bytes, fleet_allocation *out);

/* Free an allocation (stream-ordered, see above). Zeroes *allocation on
 * success. FLEET_ERR_STALE_HANDLE if it was already freed; a zeroed handle
 * (ptr == NULL) is FLEET_ERR_INVALID_ARGUMENT. */
FLEET_API fleet_status fleet_memory_free(fleet_allocation *allocation);

/* Note that `stream` uses the allocation, so its free waits for the work that
 * `stream` has submitted by the time of the free. Recording the allocation's
 * own stream, or the same stream twice, changes nothing. The stream must be
 * on the same device. */
FLEET_API fleet_status fleet_memory_record_stream(const fleet_allocation *allocation, fleet_stream *stream);

typedef struct fleet_memory_stats {
    uint64_t allocated;      /* bytes in live blocks (rounded sizes)         */
    uint64_t pending;        /* bytes in freed blocks whose events have not passed (as of this call) */
    uint64_t cached;         /* bytes in free blocks ready for reuse         */
    uint64_t reserved;       /* bytes in segments from the backend           */
    uint64_t peak_allocated; /* highest `allocated` since start/reset        */
    uint64_t limit;          /* FLEET_MEMORY_LIMIT, 0 = none                 */
    uint64_t segments;       /* segments held now                            */
    uint64_t live_blocks;    /* blocks allocated now                         */
    uint64_t alloc_requests; /* successful fleet_memory_alloc calls           */
    uint64_t cache_hits;     /* of those, served without a new segment       */
    uint64_t segment_allocs; /* raw allocations from the backend             */
    uint64_t segment_frees;  /* raw frees to the backend                     */
    uint64_t alloc_retries;  /* allocations that needed the OOM cascade      */
    uint64_t ooms;           /* FLEET_ERR_OUT_OF_MEMORY returned             */
} fleet_memory_stats;

FLEET_API fleet_status fleet_memory_get_stats(fleet_device *device, fleet_memory_stats *out);

/* Reset peak_allocated to the current allocated bytes. */
FLEET_API fleet_status fleet_memory_reset_peak(fleet_device *device);

/* Return every cached free segment to the backend. Pending blocks whose
 * events have passed are freed first; blocks still pending stay. */
FLEET_API fleet_status fleet_memory_empty_cache(fleet_device *device);

/* Set the device's cap on reserved bytes (0 = none). Lowering it below what
 * is reserved now frees nothing; later segment allocations fail until
 * reserved falls under it. */
FLEET_API fleet_status fleet_memory_set_limit(fleet_device *device, uint64_t bytes);

/* Fault injection, for tests: make the nth raw segment allocation from now
 * fail as if the backend were out of memory (1 = the next one). 0 disarms. */
FLEET_API fleet_status fleet_memory_inject_failure(fleet_device *device, uint64_t nth);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_MEMORY_H */
