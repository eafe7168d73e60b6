"""The batcher: many threads' small requests run together as one batch."""
import ctypes
import threading
import time

import numpy as np

from . import _lib
from ._errors import InvalidArgumentError, NotReadyError, TimeoutError, check, error
from ._model import Model, _Guard, new_tensor, release_tensors

lib = _lib.lib
c_void_p = ctypes.c_void_p
byref = ctypes.byref
_NOT_READY = NotReadyError.status
_WAIT_SLICE_MS = 100  # a wait returns to Python this often, so Ctrl-C gets through


class Batcher:
    """A fleet_batcher in front of a Model whose inputs and outputs all have the batch
    dimension first. run_async(feeds) queues a request of any number of rows
    (1..max_batch) and returns a Ticket at once; runner threads in C batch what is
    queued and run it. Keeps the model alive; Model.close() closes it first."""

    def __init__(self, model, max_batch=None, max_delay_us=None, queue_capacity=None,
                 max_inflight=None):
        if not isinstance(model, Model):
            raise InvalidArgumentError("Batcher: model must be a fleet.Model, not %s"
                                       % type(model).__name__)
        cfg = lib.fleet_batcher_config_default()
        for name, v in (("max_batch", max_batch), ("max_delay_us", max_delay_us),
                        ("queue_capacity", queue_capacity), ("max_inflight", max_inflight)):
            if v is not None:
                if not isinstance(v, int) or isinstance(v, bool):
                    raise InvalidArgumentError("Batcher: %s must be an int, not %r" % (name, v))
                setattr(cfg, name, v)
        self.model = model
        self.max_batch = cfg.max_batch
        h = c_void_p()
        mh = model._guard.enter()
        try:
            check(lib.fleet_batcher_create(mh, byref(cfg), byref(h)))
        finally:
            model._guard.exit()
        self._guard = _Guard(h.value, lib.fleet_batcher_destroy, "the batcher")
        self._close_lock = threading.Lock()
        with model._batchers_lock:
            model._batchers.add(self)

    def run_async(self, feeds, timeout_us=0):
        """Queue a request ({input name: array}, rows = its batch size) and return its
        Ticket. timeout_us > 0: a deadline, after which it fails with fleet.TimeoutError
        unless a batch has taken it. The inputs are copied to the device before it
        returns, so the arrays may be reused at once."""
        m = self.model
        arrays, rows = m._check_feeds(feeds, "Batcher.run_async")
        h = self._guard.enter()
        try:
            mh = m._guard.enter()  # the model's handle outlives this call: close waits
            try:
                shapes = m._output_shapes(mh, rows)
            finally:
                m._guard.exit()
            dev = m.device._handle
            n_in, n_out = len(arrays), len(m._out)
            tin = (c_void_p * n_in)()
            tout = (c_void_p * n_out)()
            ticket = c_void_p()
            try:
                for i, a in enumerate(arrays):
                    new_tensor(dev, m._in[i].code, a.shape, tin, i)
                    check(lib.fleet_tensor_copy_from_host(tin[i], a.ctypes.data, a.nbytes))
                for i, s in enumerate(m._out):
                    new_tensor(dev, s.code, shapes[i], tout, i)
                check(lib.fleet_batcher_submit(h, tin, n_in, tout, n_out, int(timeout_us),
                                               byref(ticket)))
            except BaseException:
                release_tensors(tout)
                raise
            finally:
                release_tensors(tin)  # the request holds its own references
        finally:
            self._guard.exit()
        return Ticket(self, ticket.value, tout, shapes)

    def run(self, feeds):
        """run_async(feeds).result()."""
        return self.run_async(feeds).result()

    def stats(self):
        """fleet_batcher_get_stats as a dict (submitted, batches, mean_batch_rows, p50/p99)."""
        h = self._guard.enter()
        try:
            s = _lib.BatcherStats()
            check(lib.fleet_batcher_get_stats(h, byref(s)))
        finally:
            self._guard.exit()
        return _lib.struct_dict(s)

    @property
    def closed(self):
        return self._guard.closed

    def close(self, drain=True):
        """Stop accepting requests; drain=True runs every queued one, False completes them
        with fleet.ShutdownError. Then frees the batcher. Tickets stay valid. Idempotent."""
        with self._close_lock:
            g = self._guard
            if g.closed:
                return
            # Submits racing this get FLEET_ERR_SHUTDOWN; the guard then waits for them.
            check(lib.fleet_batcher_shutdown(g.handle, bool(drain)))
            g.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        g = getattr(self, "_guard", None)
        if g is not None and not g.closed:
            try:
                g.close()
            except Exception:
                pass


class Ticket:
    """One request's future: result(timeout=None) -> {output name: array}, done().
    The C ticket is released once, when the result is first taken (or at __del__)."""

    def __init__(self, batcher, handle, out_tensors, shapes):
        self._batcher = batcher  # keeps the batcher, and so the model, alive
        self._lock = threading.Lock()
        self._handle = handle
        self._tensors = out_tensors
        self._shapes = shapes
        self._result = None
        self._error = None

    def done(self):
        """Whether the request has completed (ok or not)."""
        h = self._handle  # a handle released meanwhile polls as stale: done
        return h is None or lib.fleet_ticket_poll(h) != _NOT_READY

    def result(self, timeout=None):
        """Wait for the request (releasing the GIL; Ctrl-C interrupts the wait, not the
        request) and return its outputs, or raise its error. timeout in seconds, None
        for as long as it takes: past it, fleet.TimeoutError, the ticket still pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._handle is not None:
                if deadline is None:
                    ms = _WAIT_SLICE_MS
                else:
                    left = deadline - time.monotonic()
                    ms = max(0, min(_WAIT_SLICE_MS, int(left * 1000)))
                st = lib.fleet_ticket_wait(self._handle, ms)
                if st == _NOT_READY:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError("Ticket.result: not done after %g s" % timeout)
                    continue
                self._finish(st)
            if self._error is not None:
                raise self._error
            return self._result

    def _finish(self, st):
        """The request is complete with status st: read its outputs, release it all."""
        try:
            if st != 0:
                self._error = error(st)
            else:
                m = self._batcher.model
                out = {}
                for s, t, shape in zip(m._out, self._tensors, self._shapes):
                    r = np.empty(shape, s.dtype)
                    check(lib.fleet_tensor_copy_to_host(t, r.ctypes.data, r.nbytes))
                    out[s.name] = r
                self._result = out
        except Exception as e:  # a failed copy is the request's error
            self._error = e
        finally:
            h, self._handle = self._handle, None
            lib.fleet_ticket_release(h)
            release_tensors(self._tensors)
            self._tensors = ()

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h is not None:
            lib.fleet_ticket_release(h)  # waits for the request if still pending
            release_tensors(self._tensors)
