/* runtime/event.c — public events over backend events. */
#include <stdlib.h>

#include "core/error.h"
#include "runtime/device.h"

struct fleet_event {
    struct fleet_device *device;
    void *native;
};

fleet_status fleet_event_create(fleet_device *device, fleet_event **out)
{
    fleet_status st = fleet__enter_device(device, "fleet_event_create");
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(out != NULL, FLEET_ERR_NULL_POINTER, "fleet_event_create: out is NULL");
    fleet_event *e = malloc(sizeof *e);
    if (e == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "fleet_event_create: out of host memory");
    e->device = device;
    if ((st = device->backend->event_create(device->ordinal, &e->native)) != FLEET_OK) {
        free(e);
        return st;
    }
    *out = e;
    return FLEET_OK;
}

fleet_status fleet_event_destroy(fleet_event *event)
{
    if (event == NULL)
        return FLEET_OK;
    fleet_status st = fleet__enter_device(event->device, "fleet_event_destroy");
    if (st != FLEET_OK)
        return st;
    event->device->backend->event_destroy(event->native);
    free(event);
    return FLEET_OK;
}

static fleet_status enter_pair(fleet_event *event, fleet_stream *stream, const char *fn)
{
    fleet_status st = fleet__enter_stream(stream, fn);
    if (st != FLEET_OK)
        return st;
    if (event == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "%s: event is NULL", fn);
    if (event->device != stream->device)
        return fleet__error(FLEET_ERR_INVALID_DEVICE, "%s: event of %s, stream of %s", fn,
                            event->device->name, stream->device->name);
    return FLEET_OK;
}

fleet_status fleet_event_record(fleet_event *event, fleet_stream *stream)
{
    fleet_status st = enter_pair(event, stream, "fleet_event_record");
    void *native;
    if (st == FLEET_OK && (st = fleet__stream_native(stream, &native)) == FLEET_OK) {
        fleet__stream_foreign_enter(stream);
        st = stream->device->backend->event_record(event->native, native);
        fleet__stream_foreign_leave(stream);
    }
    return st;
}

fleet_status fleet_stream_wait_event(fleet_stream *stream, fleet_event *event)
{
    fleet_status st = enter_pair(event, stream, "fleet_stream_wait_event");
    void *native;
    if (st == FLEET_OK && (st = fleet__stream_native(stream, &native)) == FLEET_OK) {
        fleet__stream_foreign_enter(stream);
        st = stream->device->backend->stream_wait_event(native, event->native);
        fleet__stream_foreign_leave(stream);
    }
    return st;
}

fleet_status fleet_event_query(fleet_event *event)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(event != NULL, FLEET_ERR_NULL_POINTER, "fleet_event_query: event is NULL");
    if ((st = fleet__enter_device(event->device, "fleet_event_query")) != FLEET_OK)
        return st;
    return event->device->backend->event_query(event->native);
}

fleet_status fleet_event_synchronize(fleet_event *event)
{
    fleet_status st = fleet__enter();
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(event != NULL, FLEET_ERR_NULL_POINTER, "fleet_event_synchronize: event is NULL");
    if ((st = fleet__enter_device(event->device, "fleet_event_synchronize")) != FLEET_OK)
        return st;
    return event->device->backend->event_synchronize(event->native);
}
