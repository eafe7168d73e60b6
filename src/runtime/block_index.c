/* runtime/block_index.c — sorted array of free blocks, best fit by binary
 * search. See block_index.h for the contract. */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "runtime/block_index.h"
#include "core/prim.h"

void fleet__block_index_init(fleet__block_index *idx)
{
    idx->entries = NULL;
    idx->count = 0;
    idx->capacity = 0;
}

void fleet__block_index_destroy(fleet__block_index *idx)
{
    free(idx->entries);
    fleet__block_index_init(idx);
}

bool fleet__block_index_reserve(fleet__block_index *idx, size_t capacity)
{
    if (capacity <= idx->capacity)
        return true;
    /* Grow geometrically so that a shard adding metadata chunk by chunk
     * reallocates O(log n) times. */
    size_t want = idx->capacity * 2;
    if (want < capacity)
        want = capacity;
    fleet__block_index_entry *p = fleet__realloc(idx->entries, want * sizeof *p);
    if (p == NULL)
        return false;
    idx->entries = p;
    idx->capacity = want;
    return true;
}

static int key_less(size_t size_a, uintptr_t addr_a, size_t size_b, uintptr_t addr_b)
{
    return size_a < size_b || (size_a == size_b && addr_a < addr_b);
}

/* First position whose key is >= (size, addr). */
static size_t lower_bound(const fleet__block_index *idx, size_t size, uintptr_t addr)
{
    size_t lo = 0, hi = idx->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const fleet__block_index_entry *e = &idx->entries[mid];
        if (key_less(e->size, e->addr, size, addr))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void fleet__block_index_insert(fleet__block_index *idx, size_t size, uintptr_t addr,
                               struct fleet__block *block)
{
    FLEET_ASSERT(idx->count < idx->capacity);
    size_t pos = lower_bound(idx, size, addr);
    FLEET_ASSERT(pos == idx->count || idx->entries[pos].size != size ||
                 idx->entries[pos].addr != addr);
    memmove(&idx->entries[pos + 1], &idx->entries[pos],
            (idx->count - pos) * sizeof idx->entries[0]);
    idx->entries[pos] = (fleet__block_index_entry){.size = size, .addr = addr, .block = block};
    idx->count++;
}

void fleet__block_index_remove(fleet__block_index *idx, size_t size, uintptr_t addr)
{
    size_t pos = lower_bound(idx, size, addr);
    FLEET_ASSERT(pos < idx->count && idx->entries[pos].size == size &&
                 idx->entries[pos].addr == addr);
    memmove(&idx->entries[pos], &idx->entries[pos + 1],
            (idx->count - pos - 1) * sizeof idx->entries[0]);
    idx->count--;
}

struct fleet__block *fleet__block_index_best_fit(const fleet__block_index *idx, size_t size)
{
    size_t pos = lower_bound(idx, size, 0);
    return pos < idx->count ? idx->entries[pos].block : NULL;
}
