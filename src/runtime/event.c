/* runtime/event.c — public events over backend events.
 *
 * A fleet_event * is a handle in `events` (core/handle.h): a destroyed
 * event's handle is FLEET_ERR_STALE_HANDLE, never a read of freed memory. */
#include <stdlib.h>

#include "core/error.h"
#include "core/handle.h"
#include "runtime/device.h"
#include "runtime/dispatch.h"

typedef struct event {
    struct fleet_device *device;
    void *native;
} event;

static fleet__handle_table events = FLEET__HANDLE_TABLE_INIT("event", event);

/* The event of a handle, or NULL (stale). */
static event *resolve(const fleet_event *h)
{
    return fleet__handle_get(&events, (uintptr_t)h);
}

fleet_status fleet_event_create(fleet_device *device, fleet_event **out)
{
    fleet_status st = fleet__enter_device(device, "fleet_event_create");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_event_create: out is NULL");
    void *p;
    uintptr_t h;
    if ((st = fleet__handle_new(&events, &p, &h)) != FLEET_OK)
        return fleet__error_prefix(st, "fleet_event_create");
    event *e = p;
    e->device = device;
    if ((st = fleet__backend_event_create(device, &e->native)) != FLEET_OK) {
        (void)fleet__handle_put(&events, e);
        fleet__handle_recycle(&events, e);
        return st;
    }
    *out = (fleet_event *)h;
    return FLEET_OK;
}

/* Also after fleet_shutdown and in a fork child: the handle and its host
 * memory are freed (the backend event too where its device still works, or
 * was shut down: a fork child's cuda events are the parent's). */
fleet_status fleet_event_destroy(fleet_event *handle)
{
    static const char fn[] = "fleet_event_destroy";
    if (handle == NULL)
        return FLEET_OK;
    void *p;
    bool last;
    fleet_status st = fleet__handle_close(&events, (uintptr_t)handle, fn, &p, &last);
    if (st != FLEET_OK)
        return st;
    event *e = p;
    if (fleet__enter_device(e->device, fn) != FLEET_ERR_FORKED)
        fleet__backend_event_destroy(e->device, e->native);
    FLEET_ASSERT(last); /* no call keeps an event across a destroy */
    fleet__handle_recycle(&events, e);
    return FLEET_OK;
}

static fleet_status enter_pair(const fleet_event *handle, fleet_stream *stream, const char *fn,
                               event **out)
{
    fleet_status st = fleet__enter_stream(stream, fn);
    if (st != FLEET_OK)
        return st;
    if (handle == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "%s: event is NULL", fn);
    event *e = resolve(handle);
    if (e == NULL)
        return fleet__handle_stale(&events, fn, "event");
    if (e->device != stream->device)
        return fleet__error(FLEET_ERR_INVALID_DEVICE, "%s: event of %s, stream of %s", fn,
                            e->device->name, stream->device->name);
    *out = e;
    return FLEET_OK;
}

fleet_status fleet_event_record(fleet_event *handle, fleet_stream *stream)
{
    event *e;
    fleet_status st = enter_pair(handle, stream, "fleet_event_record", &e);
    void *native;
    if (st == FLEET_OK && (st = fleet__stream_native(stream, &native)) == FLEET_OK) {
        fleet__stream_foreign_enter(stream);
        st = fleet__backend_event_record(stream->device, e->native, native);
        fleet__stream_foreign_leave(stream);
    }
    return st;
}

fleet_status fleet_stream_wait_event(fleet_stream *stream, fleet_event *handle)
{
    event *e;
    fleet_status st = enter_pair(handle, stream, "fleet_stream_wait_event", &e);
    void *native;
    if (st == FLEET_OK && (st = fleet__stream_native(stream, &native)) == FLEET_OK) {
        fleet__stream_foreign_enter(stream);
        st = fleet__backend_stream_wait_event(stream->device, native, e->native);
        fleet__stream_foreign_leave(stream);
    }
    return st;
}

/* Resolve a handle for a call that names no stream. */
static fleet_status enter_event(const fleet_event *handle, const char *fn, event **out)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(handle != NULL, FLEET_ERR_NULL_POINTER, "%s: event is NULL", fn);
    event *e = resolve(handle);
    if (e == NULL)
        return fleet__handle_stale(&events, fn, "event");
    if ((st = fleet__enter_device(e->device, fn)) != FLEET_OK)
        return st;
    *out = e;
    return FLEET_OK;
}

fleet_status fleet_event_query(fleet_event *handle)
{
    event *e;
    fleet_status st = enter_event(handle, "fleet_event_query", &e);
    return st != FLEET_OK ? st : fleet__backend_event_query(e->device, e->native);
}

fleet_status fleet_event_synchronize(fleet_event *handle)
{
    event *e;
    fleet_status st = enter_event(handle, "fleet_event_synchronize", &e);
    return st != FLEET_OK ? st : fleet__backend_event_synchronize(e->device, e->native);
}
