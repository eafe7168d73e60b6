"""The batcher: many threads' small requests run together as one batch."""
import ctypes
import threading
import time

import numpy as np

from . import _lib
from ._errors import FleetError, InvalidArgumentError, NotReadyError, TimeoutError, check, error
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
        g = self._guard
        h = g.enter()
        try:
            mh = m._guard.enter()  # the model's handle outlives this call: close waits
            try:
                shapes = m._output_shapes(mh, rows)
            finally:
                m._guard.exit()
            dev = m.device._handle
            n_in, n_out = len(arrays), len(m._out)
            tin = (c_void_p * n_in)()
            # The ticket owns the output tensors from the start, and its C handle from the
            # moment submit returns (no Python call in between for a Ctrl-C to land in):
            # whatever happens, its __del__ releases what was made.
            ticket = Ticket(self, shapes, (c_void_p * n_out)())
            handle = c_void_p()
            try:
                for i, a in enumerate(arrays):
                    new_tensor(dev, m._in[i].code, a.shape, tin, i)
                    check(lib.fleet_tensor_copy_from_host(tin[i], a.ctypes.data, a.nbytes))
                for i, s in enumerate(m._out):
                    new_tensor(dev, s.code, shapes[i], ticket._tensors, i)
                st = lib.fleet_batcher_submit(h, tin, n_in, ticket._tensors, n_out,
                                              int(timeout_us), byref(handle))
                ticket._handle = handle.value if st == 0 else None
                if st != 0:
                    raise error(st)
            finally:
                release_tensors(tin)  # the request holds its own references
        finally:
            with g._lock:
                g._users -= 1
        return ticket

    def run(self, feeds):
        """run_async(feeds).result()."""
        return self.run_async(feeds).result()

    def stats(self):
        """fleet_batcher_get_stats as a dict (submitted, batches, mean_batch_rows, p50/p99)."""
        return self._guard.stats(lib.fleet_batcher_get_stats, _lib.BatcherStats)

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

    def __init__(self, batcher, shapes, out_tensors):
        # Made by Batcher.run_async, which sets _handle once the request is queued.
        self._batcher = batcher  # keeps the batcher, and so the model, alive
        self._lock = threading.Lock()
        self._handle = None
        self._tensors = out_tensors  # a c_void_p array; entries zeroed as released
        self._shapes = shapes
        self._result = None
        self._error = None
        self._finished = False

    def done(self):
        """Whether the request has completed (ok or not)."""
        h = self._handle  # a handle released meanwhile polls as stale: done
        return self._finished or h is None or lib.fleet_ticket_poll(h) != _NOT_READY

    def result(self, timeout=None):
        """Wait for the request (releasing the GIL; Ctrl-C interrupts the wait, not the
        request) and return its outputs, or raise its error. timeout in seconds, None
        for as long as it takes: past it, fleet.TimeoutError, the ticket still pending.
        An interrupted result() leaves the ticket as it was: call it again."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._finished:
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
        """The request completed with status st: read its outputs, then release it all.
        Nothing is released until the outcome is stored, so an interrupt on the way
        leaves the ticket whole (a second result() redoes this)."""
        out, err = None, None
        if st != 0:
            err = error(st)
        else:
            m = self._batcher.model
            out = {}
            try:
                for s, t, shape in zip(m._out, self._tensors, self._shapes):
                    r = np.empty(shape, s.dtype)
                    check(lib.fleet_tensor_copy_to_host(t, r.ctypes.data, r.nbytes))
                    out[s.name] = r
            except FleetError as e:  # a failed copy is the request's error
                out, err = None, e
        self._result, self._error = out, err
        self._finished = True
        self._release()

    def _release(self):
        h, self._handle = self._handle, None
        if h is not None:
            lib.fleet_ticket_release(h)  # waits for the request if still pending
        tensors = self._tensors
        for i in range(len(tensors)):
            t = tensors[i]
            if t:
                tensors[i] = None
                lib.fleet_tensor_release(t)

    def __del__(self):
        if getattr(self, "_tensors", None) is not None:
            self._release()
