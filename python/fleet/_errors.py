"""fleet.FleetError and its subclasses, one per fleet_status (status.h).

A failed C call raises the subclass of its status, carrying the status and
the text of fleet_last_error(), read on the same thread right after the
call (the text is thread-local in C, and a ctypes call runs on the calling
Python thread's own OS thread). Checks the binding makes before calling C
raise the same classes with their own text.
"""
from . import _lib


class FleetError(Exception):
    """A fleet call failed. .status is the fleet_status value (negative int),
    .status_name its name ("FLEET_ERR_SHAPE_MISMATCH"), .detail the text."""
    status = None

    def __init__(self, detail, status=None):
        if status is not None:
            self.status = status
        self.detail = detail
        super().__init__(detail)

    @property
    def status_name(self):
        return _NAMES.get(self.status, "unknown status")

    def __str__(self):
        return "%s: %s" % (self.status_name, self.detail)


def _cls(name, status, *bases):
    return type(name, (FleetError,) + bases, {"status": status, "__module__": "fleet"})


InvalidArgumentError = _cls("InvalidArgumentError", -1, ValueError)
NullPointerError = _cls("NullPointerError", -2, ValueError)
ShapeMismatchError = _cls("ShapeMismatchError", -3, ValueError)
DtypeMismatchError = _cls("DtypeMismatchError", -4, TypeError)
InvalidDeviceError = _cls("InvalidDeviceError", -5, ValueError)
OutOfMemoryError = _cls("OutOfMemoryError", -6, MemoryError)
StaleHandleError = _cls("StaleHandleError", -7)
PoolExhaustedError = _cls("PoolExhaustedError", -8)
NotReadyError = _cls("NotReadyError", -9)
TimeoutError = _cls("TimeoutError", -10)
ShutdownError = _cls("ShutdownError", -11)
ForkedError = _cls("ForkedError", -12)
UnsupportedError = _cls("UnsupportedError", -13)
BackendError = _cls("BackendError", -14)
InvalidConfigError = _cls("InvalidConfigError", -15)
QueueFullError = _cls("QueueFullError", -16)
InternalError = _cls("InternalError", -17)
InvalidModelError = _cls("InvalidModelError", -18)
InputOutputError = _cls("InputOutputError", -19)
# A closed Model or Batcher: its handle is gone, as a stale one's is.
ClosedError = type("ClosedError", (StaleHandleError,), {"__module__": "fleet"})

BY_STATUS = {c.status: c for c in (
    InvalidArgumentError, NullPointerError, ShapeMismatchError, DtypeMismatchError,
    InvalidDeviceError, OutOfMemoryError, StaleHandleError, PoolExhaustedError, NotReadyError,
    TimeoutError, ShutdownError, ForkedError, UnsupportedError, BackendError,
    InvalidConfigError, QueueFullError, InternalError, InvalidModelError, InputOutputError)}
_NAMES = {s: _lib.lib.fleet_status_name(s).decode() for s in BY_STATUS}


def error(status, detail=None):
    """The exception for a status; detail None: fleet_last_error() now."""
    if detail is None:
        detail = _lib.lib.fleet_last_error().decode("utf-8", "replace")
        if not detail:
            detail = _lib.lib.fleet_status_str(status).decode()
    return BY_STATUS.get(status, FleetError)(detail, status)


def check(status):
    """Raise the status's exception unless it is FLEET_OK."""
    if status != 0:
        raise error(status)
