"""fleet: multi-threaded neural-network inference, from Python.

    import fleet, numpy as np
    model = fleet.Model.from_onnx("model.onnx", dims={"sequence": 128})
    print(model.inputs, model.outputs)
    out = model.run({"input_ids": ids, "attention_mask": mask})   # dict of numpy arrays

Every call into the C library releases the GIL, so Python threads sharing one
model run it at once (each on its own fleet stream). docs/PYTHON.md has the
whole reference.
"""
from . import _lib
from ._errors import (BackendError, ClosedError, DtypeMismatchError, FleetError,
                      ForkedError, InputOutputError, InternalError, InvalidArgumentError,
                      InvalidConfigError, InvalidDeviceError, InvalidModelError, NotReadyError,
                      NullPointerError, OutOfMemoryError, PoolExhaustedError, QueueFullError,
                      ShapeMismatchError, ShutdownError, StaleHandleError, TimeoutError,
                      UnsupportedError)
from ._model import Device, IOInfo, Model, default_device, device, devices, mlp_weights, stats
from ._batch import Batcher, Ticket

__version__ = "0.1.0"
library_path = _lib.path  # the libfleet.so this process loaded


def backend_kernels(backend="cpu"):
    """The kernel libraries a backend runs on ("OpenBLAS 0.3.21 (...)")."""
    codes = {v: k for k, v in _lib.BACKENDS.items()}
    if backend not in codes:
        raise InvalidArgumentError("backend %r: expected 'cpu' or 'cuda'" % (backend,))
    return _lib.lib.fleet_backend_kernels(codes[backend]).decode()


__all__ = [
    "Batcher", "BackendError", "ClosedError", "Device", "DtypeMismatchError", "FleetError",
    "ForkedError", "IOInfo", "InputOutputError", "InternalError", "InvalidArgumentError",
    "InvalidConfigError", "InvalidDeviceError", "InvalidModelError", "Model", "NotReadyError",
    "NullPointerError", "OutOfMemoryError", "PoolExhaustedError", "QueueFullError",
    "ShapeMismatchError", "ShutdownError", "StaleHandleError", "Ticket", "TimeoutError",
    "UnsupportedError", "backend_kernels", "default_device", "device", "devices",
    "library_path", "mlp_weights", "stats",
]
