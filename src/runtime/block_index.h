/* runtime/block_index.h — the caching allocator's index of free blocks.
 *
 * A sorted array of (size, address) keys with binary search: best fit is the
 * first entry whose size is >= the request, which is the smallest fitting
 * block and, among blocks of that size, the lowest address (so reuse is
 * deterministic and packs towards the start of segments). Search is
 * O(log n); insert and remove shift the tail of the array (a memmove of a few
 * cache lines for the free lists a shard holds in practice).
 *
 * Memory is reserved ahead: insert never allocates, so freeing a block can
 * never fail. The allocator reserves as many entries as it has block
 * metadata, which bounds the number of free blocks.
 *
 * Not thread-safe: each index belongs to one allocator shard and is used under
 * that shard's lock.
 *
 *     fleet__block_index idx;
 *     fleet__block_index_init(&idx);
 *     if (!fleet__block_index_reserve(&idx, 64)) ... host out of memory ...
 *     fleet__block_index_insert(&idx, 4096, addr, block);
 *     struct fleet__block *b = fleet__block_index_best_fit(&idx, 1024);  // block
 *     fleet__block_index_remove(&idx, 4096, addr);
 *     fleet__block_index_destroy(&idx);
 */
#ifndef FLEET_RUNTIME_BLOCK_INDEX_H
#define FLEET_RUNTIME_BLOCK_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fleet__block;

typedef struct fleet__block_index_entry {
    size_t size;
    uintptr_t addr;
    struct fleet__block *block;
} fleet__block_index_entry;

typedef struct fleet__block_index {
    fleet__block_index_entry *entries; /* sorted by (size, addr), no duplicates */
    size_t count;
    size_t capacity;
} fleet__block_index;

void fleet__block_index_init(fleet__block_index *idx);
void fleet__block_index_destroy(fleet__block_index *idx);

/* Make room for at least `capacity` entries. false (index unchanged) when the
 * host is out of memory. */
bool fleet__block_index_reserve(fleet__block_index *idx, size_t capacity);

/* Add a block. The key must not be present and count < capacity (both are
 * allocator bugs otherwise: abort). */
void fleet__block_index_insert(fleet__block_index *idx, size_t size, uintptr_t addr,
                               struct fleet__block *block);

/* Remove the entry with exactly this key (must be present). */
void fleet__block_index_remove(fleet__block_index *idx, size_t size, uintptr_t addr);

/* The smallest block with size >= `size` (lowest address among equals), or
 * NULL when none fits. The entry stays in the index. */
struct fleet__block *fleet__block_index_best_fit(const fleet__block_index *idx, size_t size);

#endif /* FLEET_RUNTIME_BLOCK_INDEX_H */
