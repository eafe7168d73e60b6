/* runtime/event_pool.c — recycled backend events of a device.
 *
 * The allocator records an event per using stream on every cross-stream
 * free; creating a cudaEvent_t each time would put a driver call on that
 * path, so events are kept and reused. */
#include <stdlib.h>

#include "core/error.h"
#include "runtime/device.h"
#include "runtime/dispatch.h"
#include "core/prim.h"

struct fleet__event_pool {
    struct fleet_device *device;
    fleet__mutex lock;    /* rank 5 */
    /* Guarded by lock (a comment: see core/lock.h on member guards in C). */
    void **free_events;
    size_t count, capacity;
};

fleet_status fleet__event_pool_create(struct fleet_device *device, struct fleet__event_pool **out)
{
    struct fleet__event_pool *p = fleet__calloc(1, sizeof *p);
    if (p == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: cannot allocate the event pool", device->name);
    p->device = device;
    fleet__mutex_init(&p->lock);
    *out = p;
    return FLEET_OK;
}

void fleet__event_pool_destroy(struct fleet__event_pool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        fleet__backend_event_destroy(p->device, p->free_events[i]);
    free(p->free_events);
    fleet__mutex_destroy(&p->lock);
    free(p);
}

fleet_status fleet__event_pool_get(struct fleet__event_pool *p, void **native_event)
{
    void *e = NULL;
    fleet__mutex_lock(&p->lock);
    if (p->count > 0)
        e = p->free_events[--p->count];
    fleet__mutex_unlock(&p->lock);
    if (e != NULL) {
        *native_event = e;
        return FLEET_OK;
    }
    return fleet__backend_event_create(p->device, native_event);
}

void fleet__event_pool_put(struct fleet__event_pool *p, void *native_event)
{
    fleet__mutex_lock(&p->lock);
    if (p->count == p->capacity) {
        size_t cap = p->capacity ? p->capacity * 2 : 16;
        void **grown = fleet__realloc(p->free_events, cap * sizeof *grown);
        if (grown == NULL) {
            fleet__mutex_unlock(&p->lock);
            fleet__backend_event_destroy(p->device, native_event);
            return;
        }
        p->free_events = grown;
        p->capacity = cap;
    }
    p->free_events[p->count++] = native_event;
    fleet__mutex_unlock(&p->lock);
}

void fleet__event_pool_atfork_prepare(struct fleet__event_pool *p) FLEET_ACQUIRE(p->lock)
{
    fleet__mutex_lock(&p->lock);
}

void fleet__event_pool_atfork_release(struct fleet__event_pool *p) FLEET_RELEASE(p->lock)
{
    fleet__mutex_unlock(&p->lock);
}
