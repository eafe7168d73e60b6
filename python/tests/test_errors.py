"""Bad input raises the right fleet.FleetError subclass, with text, and leaves the model
usable; a closed model raises and does not crash; C's errors carry fleet_last_error()."""
import os

import numpy as np
import pytest

import fleet
from fleet import _lib
from conftest import assert_close, mlp_input


def still_works(model, ort_sess):
    x = mlp_input(np.random.default_rng(99), 3)
    assert_close(model.run({"x": x})["y"], ort_sess.run(None, {"x": x})[0])


def test_status_classes_match_the_c_enum():
    """Every fleet_status (status.h's map) has its class, named as C names it."""
    for status, cls in fleet._errors.BY_STATUS.items():
        name = _lib.lib.fleet_status_name(status).decode()
        assert name.startswith("FLEET_ERR_")
        assert cls(status=status, detail="x").status_name == name
    # The map ends at the last code: the one past it is unknown to C too.
    past = min(fleet._errors.BY_STATUS) - 1
    assert _lib.lib.fleet_status_str(past).decode() == "unknown status"


@pytest.mark.parametrize("feeds, cls, words", [
    ({"x": np.zeros((2, 16), np.float64)}, fleet.DtypeMismatchError, "float64"),
    ({"x": np.zeros((2, 16), np.int32)}, fleet.DtypeMismatchError, "int32"),
    ({"x": np.zeros((2, 16), ">f4")}, fleet.DtypeMismatchError, ">f4"),
    ({"x": np.zeros((2, 15), np.float32)}, fleet.ShapeMismatchError, "(2, 15)"),
    ({"x": np.zeros((2, 16, 1), np.float32)}, fleet.ShapeMismatchError, "(2, 16, 1)"),
    ({"x": np.zeros(16, np.float32)}, fleet.ShapeMismatchError, "(16,)"),
    ({}, fleet.InvalidArgumentError, "missing input 'x'"),
    ({"x": np.zeros((2, 16), np.float32), "z": 1}, fleet.InvalidArgumentError, "unknown input 'z'"),
    ([np.zeros((2, 16), np.float32)], fleet.InvalidArgumentError, "dict"),
])
def test_bad_input_raises_and_model_stays_usable(mlp, mlp_ort, feeds, cls, words):
    runs = mlp.stats()["runs"]
    with pytest.raises(cls) as e:
        mlp.run(feeds)
    assert words in str(e.value) and isinstance(e.value, fleet.FleetError)
    assert e.value.status == cls.status and e.value.status_name.startswith("FLEET_ERR_")
    assert mlp.stats()["runs"] == runs  # nothing ran
    still_works(mlp, mlp_ort)


def test_python_exception_families(mlp):
    with pytest.raises(TypeError):
        mlp.run({"x": np.zeros((2, 16), np.float64)})
    with pytest.raises(ValueError):
        mlp.run({"x": np.zeros((2, 3), np.float32)})


def test_unknown_output_name(mlp, mlp_ort):
    with pytest.raises(fleet.InvalidArgumentError, match="unknown output 'nope'"):
        mlp.run({"x": mlp_input(np.random.default_rng(0))}, outputs=["nope"])
    still_works(mlp, mlp_ort)


def test_batch_sizes_must_agree(pool_path):
    with fleet.Model.from_onnx(pool_path, dims={"seq": 4}) as m:
        with pytest.raises(fleet.ShapeMismatchError, match="batch 3, an earlier input 2"):
            m.run({"ids": np.zeros((2, 4), np.int64), "mask": np.ones((3, 4), np.float32)})
        out = m.run({"ids": np.zeros((3, 4), np.int64), "mask": np.ones((3, 4), np.float32)})
        np.testing.assert_array_equal(out["tokens"], [4, 4, 4])


def test_c_errors_carry_last_error_text(tmp_path, mlp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12\xff\xff\xff\xff\x0f garbage")
    with pytest.raises(fleet.InvalidModelError) as e:
        fleet.Model.from_onnx(bad)
    assert "onnx" in e.value.detail and "at byte" in e.value.detail
    with pytest.raises(fleet.InputOutputError, match="no-such-file"):
        fleet.Model.from_onnx(tmp_path / "no-such-file.onnx")
    with pytest.raises(fleet.InvalidArgumentError, match="sizes are integers"):
        fleet.Model.from_onnx(mlp_path, dims={"N": "four"})


def test_unsupported_op_is_named(tmp_path):
    from onnx import TensorProto, helper
    from conftest import save
    g = helper.make_graph([helper.make_node("Det", ["x"], ["y"])], "det",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    with pytest.raises(fleet.UnsupportedError, match="Det"):
        fleet.Model.from_onnx(save(g, tmp_path / "det.onnx"))


def test_bad_devices():
    with pytest.raises(fleet.InvalidDeviceError, match="tpu"):
        fleet.device("tpu")
    with pytest.raises(fleet.InvalidDeviceError):
        fleet.device("cpu:99")  # from C: ordinal out of range, with its reason
    with pytest.raises(fleet.InvalidDeviceError):
        fleet.device(3)
    if not any(d.backend == "cuda" for d in fleet.devices()):
        with pytest.raises(fleet.InvalidDeviceError) as e:
            fleet.device("cuda:0")
        assert e.value.detail  # C says why (no GPU, or a build without cuda)


def test_closed_model_raises(mlp_path):
    m = fleet.Model.from_onnx(mlp_path)
    x = mlp_input(np.random.default_rng(0))
    m.run({"x": x})
    m.close()
    assert m.closed
    for call in (lambda: m.run({"x": x}), m.stats):
        with pytest.raises(fleet.ClosedError, match="closed"):
            call()
    with pytest.raises(fleet.StaleHandleError):  # ClosedError is one
        m.run({"x": x})
    m.close()  # idempotent
    with pytest.raises(fleet.ClosedError):
        fleet.Batcher(m)


def test_context_manager_closes(mlp_path):
    with fleet.Model.from_onnx(mlp_path) as m:
        pass
    assert m.closed


def test_closing_a_model_closes_its_batcher(mlp_path, mlp_ort):
    m = fleet.Model.from_onnx(mlp_path)
    b = fleet.Batcher(m, max_batch=4)
    x = mlp_input(np.random.default_rng(0), 2)
    t = b.run_async({"x": x})
    m.close()
    assert b.closed
    assert_close(t.result()["y"], mlp_ort.run(None, {"x": x})[0])  # drained, then closed
    with pytest.raises(fleet.ClosedError):
        b.run_async({"x": x})


def test_batcher_bad_requests(mlp, mlp_ort):
    with fleet.Batcher(mlp, max_batch=4, max_delay_us=100) as b:
        with pytest.raises(fleet.InvalidArgumentError, match="max_batch"):  # C's check
            b.run_async({"x": mlp_input(np.random.default_rng(0), 5)})
        with pytest.raises(fleet.DtypeMismatchError):
            b.run_async({"x": np.zeros((1, 16), np.float64)})
        with pytest.raises(fleet.InvalidArgumentError):
            fleet.Batcher(mlp, max_batch=0)  # C refuses the config
        x = mlp_input(np.random.default_rng(1), 3)
        assert_close(b.run({"x": x})["y"], mlp_ort.run(None, {"x": x})[0])
    with pytest.raises(fleet.InvalidArgumentError, match="max_batch must be an int"):
        fleet.Batcher(mlp, max_batch=2.5)


def test_a_bad_fleet_library_is_a_clear_import_error(tmp_path):
    import subprocess
    import sys
    env = dict(os.environ, FLEET_LIBRARY=str(tmp_path / "nope.so"))
    r = subprocess.run([sys.executable, "-c", "import fleet"], env=env, capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "nope.so" in r.stderr and "FLEET_LIBRARY" in r.stderr


def test_model_freed_by_the_garbage_collector(mlp_path):
    import gc
    x = mlp_input(np.random.default_rng(0))
    fleet.Model.from_onnx(mlp_path).run({"x": x})  # never closed: __del__ frees it
    b = fleet.Batcher(fleet.Model.from_onnx(mlp_path), max_batch=2)
    t = b.run_async({"x": x[:1]})
    del b  # the ticket keeps the batcher, which keeps the model
    gc.collect()
    assert t.result()["y"].shape == (1, 8)
    del t
    gc.collect()
    before = fleet.stats()["cpu:0"]["memory"]["live_blocks"]
    for _ in range(3):
        fleet.Model.from_onnx(mlp_path).run({"x": x})
        gc.collect()
    assert fleet.stats()["cpu:0"]["memory"]["live_blocks"] == before
