"""Load, run, and compare with onnxruntime (and numpy) on the ONNX test models."""
import glob
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import fleet
from conftest import MLP_WIDTHS, ONNX_NODE_TESTS, assert_close, mlp_input


def test_devices_and_default():
    devs = fleet.devices()
    assert devs and devs[0].name == "cpu:0" and devs[0].backend == "cpu"
    assert fleet.device("cpu") == devs[0] == fleet.device("cpu:0")
    assert fleet.default_device() in devs
    assert fleet.device(None) == fleet.default_device()
    assert os.path.exists(fleet.library_path) or fleet.library_path.startswith("libfleet")
    assert fleet.backend_kernels("cpu")


def test_io_info(mlp, pool_path):
    assert mlp.inputs == [fleet.IOInfo("x", (None, 16), np.dtype(np.float32))]
    assert mlp.outputs == [fleet.IOInfo("y", (None, 8), np.dtype(np.float32))]
    with fleet.Model.from_onnx(pool_path, dims={"seq": 5}) as m:
        assert [(i.name, i.shape, i.dtype) for i in m.inputs] == [
            ("ids", (None, 5), np.dtype(np.int64)), ("mask", (None, 5), np.dtype(np.float32))]
        assert [(o.name, o.shape, o.dtype) for o in m.outputs] == [
            ("pooled", (None, 8), np.dtype(np.float32)), ("tokens", (None,), np.dtype(np.int64)),
            ("keep", (None, 5), np.dtype(np.bool_))]


@pytest.mark.parametrize("batch", [1, 3, 17, 64])
def test_mlp_matches_onnxruntime(mlp, mlp_ort, batch):
    x = mlp_input(np.random.default_rng(batch), batch)
    out = mlp.run({"x": x})
    assert list(out) == ["y"]
    assert_close(out["y"], mlp_ort.run(None, {"x": x})[0])


def test_multi_input_output_dtypes(pool_path):
    rng = np.random.default_rng(7)
    sess = ort.InferenceSession(pool_path, providers=["CPUExecutionProvider"])
    with fleet.Model.from_onnx(pool_path, dims={"seq": 6}) as m:
        for batch in (1, 4):
            feeds = {"ids": rng.integers(0, 50, (batch, 6)).astype(np.int64),
                     "mask": (rng.random((batch, 6)) > 0.3).astype(np.float32)}
            got = m.run(feeds)
            want = dict(zip(["pooled", "tokens", "keep"], sess.run(None, feeds)))
            assert list(got) == ["pooled", "tokens", "keep"]
            for k in want:
                assert_close(got[k], want[k])
            only = m.run(feeds, outputs=["keep"])
            assert list(only) == ["keep"] and np.array_equal(only["keep"], want["keep"])


def test_non_contiguous_inputs_are_copied(mlp, mlp_ort):
    base = np.random.default_rng(3).standard_normal((8, 32)).astype(np.float32)
    for x in (base[:, ::2], base[:, :16].T.copy().T, np.asfortranarray(base[:, 16:])):
        assert not x.flags.c_contiguous
        want = mlp_ort.run(None, {"x": np.ascontiguousarray(x)})[0]
        assert_close(mlp.run({"x": x})["y"], want)


def test_outputs_are_fresh_arrays(mlp):
    x = mlp_input(np.random.default_rng(0))
    a = mlp.run({"x": x})["y"]
    b = mlp.run({"x": x})["y"]
    assert a is not b and not np.shares_memory(a, b)
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.owndata
    np.testing.assert_array_equal(a, b)


def test_build_mlp_matches_numpy():
    widths = [12, 20, 20, 6]
    w = fleet.mlp_weights(widths, seed=5)
    x = np.random.default_rng(1).standard_normal((3, 12)).astype(np.float32)
    h = x
    for i in range(3):
        h = h @ w["layers.%d.weight" % i].T + w["layers.%d.bias" % i]
        if i < 2:
            h = np.maximum(h, 0)
    with fleet.Model.build_mlp(widths, seed=5) as m:
        assert_close(m.run({"x": x})["y"], h.astype(np.float32), rtol=1e-4)
    w["layers.1.bias"] = w["layers.1.bias"] + 1
    with fleet.Model.build_mlp(widths, weights=w) as m:
        assert not np.allclose(m.run({"x": x})["y"], h, rtol=1e-4)


def test_model_stats(mlp):
    x = mlp_input(np.random.default_rng(0), 2)
    before = mlp.stats()
    for _ in range(3):
        mlp.run({"x": x})
    s = mlp.stats()
    assert s["runs"] == before["runs"] + 3
    assert s["compiles"] >= 1 and s["weight_bytes"] == 4 * (16 * 32 + 32 + 32 * 8 + 8)
    assert s["load_fused"] >= 2  # each MatMul's bias Add fused into one linear


def test_global_stats(mlp):
    st = fleet.stats()
    cpu = st["cpu:0"]
    assert cpu["memory"]["reserved"] == (cpu["memory"]["allocated"] + cpu["memory"]["pending"]
                                         + cpu["memory"]["cached"])
    assert cpu["streams"]["capacity"] >= 2


def node_tests():
    names = ["test_matmul_2d", "test_matmul_3d", "test_gemm_default_vector_bias",
             "test_gemm_transposeB", "test_relu", "test_softmax_axis_1", "test_gather_0",
             "test_add_bcast", "test_layer_normalization_2d_axis1", "test_sigmoid"]
    return [n for n in names if os.path.isdir(os.path.join(ONNX_NODE_TESTS, n))]


@pytest.mark.skipif(not node_tests(), reason="no ONNX node tests at %s (Debian's "
                    "libonnx-testdata; scripts/install-deps.sh installs it)" % ONNX_NODE_TESTS)
@pytest.mark.parametrize("name", node_tests())
def test_onnx_node_models(name):
    """ONNX's own node test models: fleet's outputs against the stored outputs and
    onnxruntime's."""
    d = os.path.join(ONNX_NODE_TESTS, name)
    path = os.path.join(d, "model.onnx")
    proto = onnx.load(path)
    names = [i.name for i in proto.graph.input
             if i.name not in {t.name for t in proto.graph.initializer}]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    with fleet.Model.from_onnx(path) as m:
        for case in sorted(glob.glob(os.path.join(d, "test_data_set_*"))):
            ins = [numpy_helper.to_array(onnx.load_tensor(p))
                   for p in sorted(glob.glob(os.path.join(case, "input_*.pb")))]
            outs = [numpy_helper.to_array(onnx.load_tensor(p))
                    for p in sorted(glob.glob(os.path.join(case, "output_*.pb")))]
            feeds = dict(zip(names, ins))
            got = m.run(feeds)
            ref = sess.run(None, feeds)
            assert len(got) == len(outs)
            for g, want, r in zip(got.values(), outs, ref):
                assert_close(g, want, rtol=1e-4, atol=1e-5)
                assert_close(g, r, rtol=1e-4, atol=1e-5)


MINILM = os.path.join(os.path.expanduser(os.environ.get(
    "FLEET_MODEL_CACHE", "~/.cache/fleet/onnx-models")), "*", "test_minilm_opset17", "model.onnx")


@pytest.mark.skipif(not glob.glob(MINILM), reason="no MiniLM export at %s (make onnx-models "
                    "makes it)" % MINILM)
def test_minilm_matches_onnxruntime():
    """all-MiniLM-L6-v2 as make onnx-models exports it, batch 2 with padding on a row:
    normwise relative error <= 1e-5 against onnxruntime, as scripts/onnx-models.sh."""
    path = sorted(glob.glob(MINILM))[0]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    with fleet.Model.from_onnx(path, dims={"sequence": 32}) as m:
        ids = np.random.default_rng(0).integers(0, 30522, (2, 32))
        mask = np.ones_like(ids)
        mask[1, 20:] = 0
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        got = m.run(feeds)["last_hidden_state"]
        want = sess.run(None, feeds)[0]
        assert got.shape == want.shape == (2, 32, 384)
        assert np.linalg.norm(got - want) / np.linalg.norm(want) <= 1e-5


def test_read_only_and_broadcast_inputs(mlp, mlp_ort):
    x = mlp_input(np.random.default_rng(11), 3)
    want = mlp_ort.run(None, {"x": x})[0]
    ro = x.copy()
    ro.flags.writeable = False
    assert_close(mlp.run({"x": ro})["y"], want)
    row = np.broadcast_to(x[:1], (3, 16))  # read-only, stride 0: copied once
    assert_close(mlp.run({"x": row})["y"], mlp_ort.run(None, {"x": np.ascontiguousarray(row)})[0])
    with pytest.raises(fleet.InvalidArgumentError, match="batch 0"):  # C's refusal
        mlp.run({"x": np.zeros((0, 16), np.float32)})
    assert_close(mlp.run({"x": x})["y"], want)
