"""Finding libfleet.so and declaring the C functions the package calls.

The library is loaded with ctypes.CDLL, never PyDLL: every foreign call
releases the GIL while it runs, so Python threads run models at once.

Where the library comes from, first found wins:
  1. FLEET_LIBRARY, a path to a libfleet.so (tests run the just-built one);
  2. the copy bundled into the package at install (fleet/_lib/libfleet.so);
  3. the system's (ctypes.util.find_library("fleet"), libfleet.so.0).
"""
import ctypes
import ctypes.util
import os

c_int = ctypes.c_int
c_int64 = ctypes.c_int64
c_uint64 = ctypes.c_uint64
c_size_t = ctypes.c_size_t
c_double = ctypes.c_double
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_bool = ctypes.c_bool
P = ctypes.POINTER


def _candidates():
    env = os.environ.get("FLEET_LIBRARY")
    if env:
        return [env], True
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", "libfleet.so")
    out = [here] if os.path.exists(here) else []
    found = ctypes.util.find_library("fleet")
    if found:
        out.append(found)
    out.append("libfleet.so.0")
    return out, False


def _load():
    names, explicit = _candidates()
    errors = []
    for name in names:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            errors.append("%s: %s" % (name, e))
            if explicit:
                break
    raise ImportError(
        "fleet: cannot load libfleet.so (%s). Install the package with "
        "`pip install ./python` (it builds and bundles the library), install "
        "fleet with `make install`, or set FLEET_LIBRARY to a libfleet.so"
        % "; ".join(errors))


lib, path = _load()


class OnnxOptions(ctypes.Structure):
    _fields_ = [("dim_names", P(c_char_p)), ("dim_values", P(c_int64)), ("n_dims", c_int),
                ("batch_dim", c_char_p), ("external_data_dir", c_char_p)]


class ModelStats(ctypes.Structure):
    _fields_ = [(n, c_uint64) for n in (
        "runs", "compiles", "plans", "instances_created", "graph_captures", "graph_replays",
        "eager_runs", "evictions", "fusions")] + [
        ("arena_bytes_max", c_size_t), ("weight_bytes", c_size_t),
        ("load_folded", c_uint64), ("load_fused", c_uint64)]


class MemoryStats(ctypes.Structure):
    _fields_ = [(n, c_uint64) for n in (
        "allocated", "pending", "cached", "reserved", "peak_allocated", "limit", "segments",
        "live_blocks", "alloc_requests", "cache_hits", "segment_allocs", "segment_frees",
        "alloc_retries", "ooms")]


class StreamPoolStats(ctypes.Structure):
    _fields_ = [(n, c_int) for n in (
        "capacity", "pool_slots", "exclusive_in_use", "acquired_in_use", "shared_bindings",
        "streams_created")] + [(n, c_uint64) for n in (
        "bindings_total", "shared_total", "waits_total", "timeouts_total")]


class BatcherConfig(ctypes.Structure):
    _fields_ = [("max_batch", c_int), ("max_delay_us", c_int64), ("queue_capacity", c_int),
                ("max_inflight", c_int)]


class BatcherStats(ctypes.Structure):
    _fields_ = [(n, c_uint64) for n in (
        "submitted", "completed_ok", "failed", "timed_out", "cancelled", "rejected_full",
        "batches", "rows")] + [("mean_batch_rows", c_double), ("queued", c_int)] + [
        (n, c_double) for n in (
            "queue_wait_p50_us", "queue_wait_p99_us", "run_p50_us", "run_p99_us")]


def _declare(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


_S = c_int  # fleet_status
_TENSORS = P(c_void_p)
for _name, _res, _args in [
    ("fleet_init", _S, ()),
    ("fleet_status_str", c_char_p, (c_int,)),
    ("fleet_status_name", c_char_p, (c_int,)),
    ("fleet_last_error", c_char_p, ()),
    ("fleet_device_count", _S, (c_int, P(c_int))),
    ("fleet_device_get", _S, (c_int, c_int, P(c_void_p))),
    ("fleet_device_default", _S, (P(c_void_p),)),
    ("fleet_device_backend", c_int, (c_void_p,)),
    ("fleet_device_ordinal", c_int, (c_void_p,)),
    ("fleet_device_name", c_char_p, (c_void_p,)),
    ("fleet_device_synchronize", _S, (c_void_p,)),
    ("fleet_backend_kernels", c_char_p, (c_int,)),
    ("fleet_memory_get_stats", _S, (c_void_p, P(MemoryStats))),
    ("fleet_memory_empty_cache", _S, (c_void_p,)),
    ("fleet_stream_pool_get_stats", _S, (c_void_p, P(StreamPoolStats))),
    ("fleet_dtype_size", c_size_t, (c_int,)),
    ("fleet_tensor_create", _S, (c_void_p, c_int, c_int, P(c_int64), P(c_void_p))),
    ("fleet_tensor_release", _S, (c_void_p,)),
    ("fleet_tensor_copy_from_host", _S, (c_void_p, c_void_p, c_size_t)),
    ("fleet_tensor_copy_to_host", _S, (c_void_p, c_void_p, c_size_t)),
    ("fleet_model_load_onnx", _S, (c_void_p, c_char_p, P(OnnxOptions), P(c_void_p))),
    ("fleet_model_build_mlp", _S, (c_void_p, P(c_int64), c_int, P(c_void_p))),
    ("fleet_model_set_weight", _S, (c_void_p, c_char_p, c_void_p, c_size_t)),
    ("fleet_model_finalize", _S, (c_void_p,)),
    ("fleet_model_destroy", _S, (c_void_p,)),
    ("fleet_model_run", _S, (c_void_p, _TENSORS, c_int, _TENSORS, c_int)),
    ("fleet_model_run_host", _S, (c_void_p, c_int64, P(c_void_p), P(c_size_t), c_int,
                                  P(c_void_p), P(c_size_t), c_int)),
    ("fleet_model_input_count", c_int, (c_void_p,)),
    ("fleet_model_output_count", c_int, (c_void_p,)),
    ("fleet_model_output_shape", _S, (c_void_p, c_int, c_int64, P(c_int), P(c_int64))),
    ("fleet_model_input_info", _S, (c_void_p, c_int, P(c_char_p), P(c_int), P(c_int), P(c_int64))),
    ("fleet_model_output_info", _S, (c_void_p, c_int, P(c_char_p), P(c_int), P(c_int), P(c_int64))),
    ("fleet_model_get_stats", _S, (c_void_p, P(ModelStats))),
    ("fleet_batcher_config_default", BatcherConfig, ()),
    ("fleet_batcher_create", _S, (c_void_p, P(BatcherConfig), P(c_void_p))),
    ("fleet_batcher_submit", _S, (c_void_p, _TENSORS, c_int, _TENSORS, c_int, c_int64, P(c_void_p))),
    ("fleet_batcher_shutdown", _S, (c_void_p, c_bool)),
    ("fleet_batcher_destroy", _S, (c_void_p,)),
    ("fleet_batcher_get_stats", _S, (c_void_p, P(BatcherStats))),
    ("fleet_ticket_wait", _S, (c_void_p, c_int64)),
    ("fleet_ticket_poll", _S, (c_void_p,)),
    ("fleet_ticket_release", _S, (c_void_p,)),
]:
    _declare(_name, _res, *_args)

MAX_DIMS = 8
DIM_BATCH = -1
BACKEND_CPU, BACKEND_CUDA = 0, 1
BACKENDS = {BACKEND_CPU: "cpu", BACKEND_CUDA: "cuda"}


def struct_dict(s):
    return {name: getattr(s, name) for name, _ in s._fields_}
