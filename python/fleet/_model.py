"""Devices, models and their runs from numpy arrays."""
import collections
import collections.abc
import ctypes
import os
import threading
import time
import weakref

import numpy as np

from . import _lib
from ._errors import (ClosedError, DtypeMismatchError, InvalidArgumentError,
                      InvalidDeviceError, ShapeMismatchError, UnsupportedError, check)

lib = _lib.lib
byref = ctypes.byref
c_void_p = ctypes.c_void_p
c_int64 = ctypes.c_int64
c_size_t = ctypes.c_size_t

# fleet_dtype -> (name, numpy dtype or None where numpy has none)
DTYPES = {
    0: ("f32", np.dtype(np.float32)),
    1: ("f16", np.dtype(np.float16)),
    2: ("bf16", None),
    3: ("i32", np.dtype(np.int32)),
    4: ("i64", np.dtype(np.int64)),
    5: ("bool", np.dtype(np.bool_)),
}


# ---- devices -------------------------------------------------------------------------

class Device:
    """One fleet device ("cpu:0", "cuda:0"). Valid for the life of the process."""
    __slots__ = ("_handle", "name", "backend", "ordinal")

    def __init__(self, handle):
        self._handle = handle
        self.name = lib.fleet_device_name(handle).decode()
        self.backend = _lib.BACKENDS.get(lib.fleet_device_backend(handle), "unknown")
        self.ordinal = lib.fleet_device_ordinal(handle)

    def __repr__(self):
        return "fleet.Device(%r)" % self.name

    def __str__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, Device) and other._handle == self._handle

    def __hash__(self):
        return hash(self._handle)

    def synchronize(self):
        """Wait for all work queued on the device."""
        check(lib.fleet_device_synchronize(self._handle))


def _device_get(backend, ordinal):
    h = c_void_p()
    check(lib.fleet_device_get(backend, ordinal, byref(h)))
    return Device(h.value)


def devices():
    """Every usable device, cpu first: [fleet.Device('cpu:0'), fleet.Device('cuda:0'), ...]."""
    out = []
    for backend in (_lib.BACKEND_CPU, _lib.BACKEND_CUDA):
        n = ctypes.c_int()
        check(lib.fleet_device_count(backend, byref(n)))
        out.extend(_device_get(backend, i) for i in range(n.value))
    return out


def default_device():
    """Device 0 of the default backend (cuda when a GPU is present; FLEET_BACKEND picks)."""
    h = c_void_p()
    check(lib.fleet_device_default(byref(h)))
    return Device(h.value)


def device(spec=None):
    """A Device from None (the default), "cpu", "cuda", "cpu:1", "cuda:0" or a Device."""
    if spec is None:
        return default_device()
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise InvalidDeviceError("device must be None, a str like 'cuda:0' or a fleet.Device, "
                                 "not %s" % type(spec).__name__)
    name, _, ordinal = spec.partition(":")
    backends = {v: k for k, v in _lib.BACKENDS.items()}
    if name not in backends or (ordinal and not ordinal.isdigit()):
        raise InvalidDeviceError("device %r: expected 'cpu', 'cuda', 'cpu:N' or 'cuda:N'" % spec)
    return _device_get(backends[name], int(ordinal or 0))


_resolve_device = device  # for the functions whose argument is called device


def stats():
    """Per device ("cpu:0", ...): its allocator's stats ("memory", fleet_memory_stats) and
    its stream pool's ("streams", fleet_stream_pool_stats), as dicts."""
    out = {}
    for d in devices():
        m = _lib.MemoryStats()
        check(lib.fleet_memory_get_stats(d._handle, byref(m)))
        s = _lib.StreamPoolStats()
        check(lib.fleet_stream_pool_get_stats(d._handle, byref(s)))
        out[d.name] = {"memory": _lib.struct_dict(m), "streams": _lib.struct_dict(s)}
    return out


# ---- a handle that closes once, after the calls that use it ---------------------------

class _Guard:
    """A C handle used by any number of threads and destroyed once: enter() counts a
    user in (ClosedError once closing began), exit() out, close() refuses new users,
    waits for those in flight, then destroys (fleet_model_destroy must not race a run).

    A plain Lock, never a Condition: a lock's with-block runs no Python code on its
    way out, so a KeyboardInterrupt cannot land between the count and the unlock
    (Condition.__exit__ is Python, where one can). close() polls instead of waiting
    on a condition."""

    def __init__(self, handle, destroy, what):
        self.handle = handle
        self._destroy = destroy
        self._what = what
        self._lock = threading.Lock()
        self._users = 0
        self._closing = False

    def enter(self):
        with self._lock:
            if self._closing:
                raise ClosedError("%s is closed" % self._what)
            self._users += 1
            return self.handle

    def exit(self):
        with self._lock:
            self._users -= 1

    def stats(self, get_stats, struct_type):
        """get_stats(handle, &struct) on this handle, as a dict."""
        h = self.enter()
        try:
            s = struct_type()
            check(get_stats(h, byref(s)))
        finally:
            self.exit()
        return _lib.struct_dict(s)

    @property
    def closed(self):
        return self._closing

    def close(self):
        with self._lock:
            if self._closing:
                return False
            self._closing = True
        while True:
            with self._lock:
                if self._users == 0:
                    handle, self.handle = self.handle, None
                    break
            time.sleep(0.001)
        check(self._destroy(handle))
        return True


# ---- tensors ---------------------------------------------------------------------------

_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def _address(a):
    """The address of a C-contiguous array's first byte: through ctypes' buffer view
    (a third of ndarray.ctypes.data's cost), or ctypes.data for a read-only or empty one."""
    try:
        return _addressof(_from_buffer(a))
    except (TypeError, ValueError):
        return a.ctypes.data


def _shape_array(shape):
    return (c_int64 * len(shape))(*shape)


def new_tensor(dev, code, shape, slots, i):
    """Create a contiguous tensor into slots[i] (a c_void_p array)."""
    t = c_void_p()
    check(lib.fleet_tensor_create(dev, code, len(shape), _shape_array(shape), byref(t)))
    slots[i] = t.value


def release_tensors(slots):
    for t in slots:
        if t:
            lib.fleet_tensor_release(t)


# ---- models ----------------------------------------------------------------------------

IOInfo = collections.namedtuple("IOInfo", "name shape dtype")
IOInfo.__doc__ = ("A model input or output: name, shape (None where the batch goes) and "
                  "dtype (a numpy dtype, or the string 'bfloat16', which numpy lacks).")


class _Spec:
    __slots__ = ("name", "code", "dtype", "shape", "info")

    def __init__(self, name, code, shape):
        self.name = name
        self.code = code
        self.dtype = DTYPES[code][1] if code in DTYPES else None
        self.shape = tuple(shape)
        shown = self.dtype if self.dtype is not None else (
            "bfloat16" if code == 2 else "fleet dtype %d" % code)
        self.info = IOInfo(name, tuple(None if d == _lib.DIM_BATCH else d for d in shape), shown)


def _io_specs(handle, count, info_fn):
    specs = []
    for i in range(count):
        name = ctypes.c_char_p()
        code = ctypes.c_int()
        ndim = ctypes.c_int()
        shape = (c_int64 * _lib.MAX_DIMS)()
        check(info_fn(handle, i, byref(name), byref(code), byref(ndim), shape))
        specs.append(_Spec(name.value.decode(), code.value, shape[:ndim.value]))
    return specs


def mlp_weights(widths, seed=0):
    """The weights Model.build_mlp uses when given none: for layer i,
    "layers.<i>.weight" [widths[i+1], widths[i]] and "layers.<i>.bias", f32, drawn
    uniform in +-1/sqrt(widths[i]) (PyTorch's nn.Linear init) from numpy's
    default_rng(seed)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(len(widths) - 1):
        bound = 1.0 / np.sqrt(widths[i])
        out["layers.%d.weight" % i] = rng.uniform(
            -bound, bound, (widths[i + 1], widths[i])).astype(np.float32)
        out["layers.%d.bias" % i] = rng.uniform(-bound, bound, (widths[i + 1],)).astype(np.float32)
    return out


class Model:
    """A finalized fleet model: load it once, run it from any number of threads.

    Model.from_onnx(path, device=None, dims={...}) or Model.build_mlp(widths, ...);
    model.inputs / model.outputs; model.run({"name": array, ...}) -> {"name": array};
    model.stats(); model.close() (or use it as a context manager)."""

    def __init__(self, handle, dev):
        # Not for direct use: from_onnx and build_mlp make models.
        self.device = dev
        self._guard = _Guard(handle, lib.fleet_model_destroy, "the model")
        self._in = _io_specs(handle, lib.fleet_model_input_count(handle), lib.fleet_model_input_info)
        self._out = _io_specs(handle, lib.fleet_model_output_count(handle),
                              lib.fleet_model_output_info)
        self._in_names = {s.name: s for s in self._in}
        self._out_index = {s.name: i for i, s in enumerate(self._out)}
        self._out_shapes = {}  # batch -> [shape tuple per output]
        n_in, n_out = max(1, len(self._in)), max(1, len(self._out))
        self._array_types = (c_void_p * n_in, c_size_t * n_in, c_void_p * n_out, c_size_t * n_out)
        self._batchers = weakref.WeakSet()
        self._batchers_lock = threading.Lock()

    # -- construction --

    @classmethod
    def from_onnx(cls, path, device=None, dims=None, batch_dim=None):
        """Load an ONNX model. dims binds named dimensions to sizes ({"sequence": 128});
        batch_dim names the one that stays symbolic (default: the first input's first,
        when it is named). The model is on `device` (see fleet.device)."""
        dev = _resolve_device(device)
        path = os.fspath(path)
        dims = dict(dims or {})
        opts = _lib.OnnxOptions()
        names = [str(k).encode() for k in dims]
        for k, v in dims.items():
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise InvalidArgumentError("dims[%r] = %r: sizes are integers" % (k, v))
        opts.n_dims = len(names)
        opts.dim_names = (ctypes.c_char_p * max(1, len(names)))(*names)
        opts.dim_values = (c_int64 * max(1, len(names)))(*[int(v) for v in dims.values()])
        opts.batch_dim = batch_dim.encode() if batch_dim is not None else None
        h = c_void_p()
        check(lib.fleet_model_load_onnx(dev._handle, path.encode(), byref(opts), byref(h)))
        return cls(h.value, dev)

    @classmethod
    def build_mlp(cls, widths, device=None, weights=None, seed=0):
        """fleet's ready-made MLP: widths[0] -> ... -> widths[-1], ReLU between layers,
        input "x" [batch, widths[0]], output "y", f32. weights: {name: array} as
        fleet.mlp_weights gives (its default, drawn from seed)."""
        dev = _resolve_device(device)
        widths = [int(w) for w in widths]
        if weights is None:
            weights = mlp_weights(widths, seed)
        h = c_void_p()
        check(lib.fleet_model_build_mlp(dev._handle, _shape_array(widths), len(widths), byref(h)))
        try:
            for i in range(len(widths) - 1):
                for name, shape in (("layers.%d.weight" % i, (widths[i + 1], widths[i])),
                                    ("layers.%d.bias" % i, (widths[i + 1],))):
                    if name not in weights:
                        raise InvalidArgumentError("build_mlp: weight %r missing" % name)
                    w = np.ascontiguousarray(weights[name])
                    if w.dtype != np.float32 or w.shape != shape:
                        raise InvalidArgumentError("build_mlp: weight %r is %s %s, expected "
                                                   "float32 %s" % (name, w.dtype, w.shape, shape))
                    check(lib.fleet_model_set_weight(h, name.encode(), w.ctypes.data, w.nbytes))
            check(lib.fleet_model_finalize(h))
        except BaseException:
            lib.fleet_model_destroy(h)
            raise
        return cls(h.value, dev)

    # -- facts --

    @property
    def inputs(self):
        """[IOInfo(name, shape, dtype)] in declaration order; None marks the batch."""
        return [s.info for s in self._in]

    @property
    def outputs(self):
        return [s.info for s in self._out]

    @property
    def closed(self):
        return self._guard.closed

    def stats(self):
        """fleet_model_get_stats as a dict (runs, compiles, plans, graph replays, ...)."""
        return self._guard.stats(lib.fleet_model_get_stats, _lib.ModelStats)

    # -- running --

    def _check_feeds(self, feeds, where):
        """The feeds as C-contiguous arrays in declaration order, and the batch size.
        Raises (nothing run) on a missing or unknown name, a wrong dtype or shape."""
        if not isinstance(feeds, collections.abc.Mapping):
            raise InvalidArgumentError("%s: feeds must be a dict {input name: array}, not %s"
                                       % (where, type(feeds).__name__))
        unknown = [k for k in feeds if k not in self._in_names]
        if unknown:
            raise InvalidArgumentError("%s: unknown input %r (the model takes %s)"
                                       % (where, unknown[0], ", ".join(repr(s.name) for s in self._in)))
        arrays = []
        batch = None
        for s in self._in:
            if s.name not in feeds:
                raise InvalidArgumentError("%s: missing input %r (the model takes %s)"
                                           % (where, s.name, ", ".join(repr(x.name) for x in self._in)))
            a = feeds[s.name]
            if not isinstance(a, np.ndarray):
                a = np.asarray(a)
            if s.dtype is None:
                raise UnsupportedError("%s: input %r is %s, which numpy has no dtype for"
                                       % (where, s.name, s.info.dtype))
            if a.dtype != s.dtype:
                raise DtypeMismatchError("%s: input %r is %s, the model takes %s"
                                         % (where, s.name, a.dtype, s.dtype))
            if a.ndim != len(s.shape) or any(d != _lib.DIM_BATCH and d != n
                                             for d, n in zip(s.shape, a.shape)):
                raise ShapeMismatchError("%s: input %r has shape %s, the model takes %s"
                                         % (where, s.name, a.shape, s.info.shape))
            for d, n in zip(s.shape, a.shape):
                if d == _lib.DIM_BATCH:
                    if batch is not None and n != batch:
                        raise ShapeMismatchError("%s: input %r has batch %d, an earlier input %d"
                                                 % (where, s.name, n, batch))
                    batch = n
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)  # the one copy a strided array costs
            arrays.append(a)
        return arrays, (1 if batch is None else batch)

    def _output_shapes(self, handle, batch):
        shapes = self._out_shapes.get(batch)
        if shapes is None:
            shapes = []
            ndim = ctypes.c_int()
            buf = (c_int64 * _lib.MAX_DIMS)()
            for i in range(len(self._out)):
                check(lib.fleet_model_output_shape(handle, i, batch, byref(ndim), buf))
                shapes.append(tuple(buf[:ndim.value]))
            for s in self._out:
                if s.dtype is None:
                    raise UnsupportedError("output %r is %s, which numpy has no dtype for"
                                           % (s.name, s.info.dtype))
            if len(self._out_shapes) < 64:
                self._out_shapes[batch] = shapes
        return shapes

    def _select(self, outputs):
        if outputs is None:
            return None
        for n in outputs:
            if n not in self._out_index:
                raise InvalidArgumentError("unknown output %r (the model gives %s)"
                                           % (n, ", ".join(repr(s.name) for s in self._out)))
        return list(outputs)

    def run(self, feeds, outputs=None):
        """Run the model on host arrays: {input name: numpy array} -> {output name: array}.

        Every input by name, C-contiguous or not (a strided one is copied once), with the
        declared dtype exactly and the declared shape (any batch size where the batch
        goes, the same for every input). outputs: names to return (default all). The whole
        run is one C call (fleet_model_run_host: device tensors made, inputs copied in,
        the run, outputs copied into the arrays returned), the GIL released for all of
        it. Thread-safe: any number of threads may run one model at once."""
        arrays, batch = self._check_feeds(feeds, "Model.run")
        wanted = self._select(outputs)
        g = self._guard
        h = g.enter()
        try:
            shapes = self._output_shapes(h, batch)
            results = [np.empty(shape, s.dtype) for shape, s in zip(shapes, self._out)]
            ptrs_in, sizes_in, ptrs_out, sizes_out = self._array_types
            # One foreign call: tensors made, filled, run, read back and released in C
            # (fleet_model_run_host), the GIL released throughout.
            check(lib.fleet_model_run_host(
                h, batch, ptrs_in(*[_address(a) for a in arrays]),
                sizes_in(*[a.nbytes for a in arrays]), len(arrays),
                ptrs_out(*[_address(r) for r in results]),
                sizes_out(*[r.nbytes for r in results]), len(results)))
        finally:
            with g._lock:  # inline, not g.exit(): no Python call for a Ctrl-C to land in
                g._users -= 1
        if wanted is None:
            return {s.name: r for s, r in zip(self._out, results)}
        return {n: results[self._out_index[n]] for n in wanted}

    # -- lifetime --

    def close(self):
        """Close the batchers in front of the model (draining them), wait for runs in
        flight, and free the model. Idempotent; later calls raise fleet.ClosedError."""
        with self._batchers_lock:
            batchers = list(self._batchers)
        for b in batchers:
            b.close()
        self._guard.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        g = getattr(self, "_guard", None)
        if g is not None and not g.closed and g.handle is not None:
            try:
                g.close()
            except Exception:
                pass

    def __repr__(self):
        state = "closed" if self.closed else str(self.device)
        return "fleet.Model(inputs=%s, outputs=%s, %s)" % (
            [s.name for s in self._in], [s.name for s in self._out], state)
