/* runtime/allocator.h — the per-device caching allocator (internal side).
 *
 * The public side is fleet/memory.h (fleet_memory_*), implemented in
 * allocator.c. The allocator is sharded by stream: each pool stream of the
 * device has its own lock, free lists and segments, since a block is only
 * reused on the stream that allocated it. Threads on different streams never
 * contend. Device-wide totals are sums over shards.
 */
#ifndef FLEET_RUNTIME_ALLOCATOR_H
#define FLEET_RUNTIME_ALLOCATOR_H

#include <stdint.h>

#include "fleet/memory.h"

struct fleet_device;
struct fleet__allocator;

/* Create the device's allocator with a limit on reserved bytes (0 = none). */
fleet_status fleet__allocator_create(struct fleet_device *device, uint64_t limit,
                                     struct fleet__allocator **out);

/* Free every segment (live blocks included) and the allocator itself.
 * Called by fleet_shutdown after the device was synchronized. */
void fleet__allocator_destroy(struct fleet__allocator *allocator);

/* Fork handlers: take every shard lock of the allocator (rank 4, in stream-id
 * order) / release them. */
void fleet__allocator_atfork_prepare(struct fleet__allocator *allocator);
void fleet__allocator_atfork_release(struct fleet__allocator *allocator);

#endif /* FLEET_RUNTIME_ALLOCATOR_H */
