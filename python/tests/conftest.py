"""Test models for the binding's tests, made here with the onnx package, and their
references from onnxruntime.

The tests run against the libfleet.so that FLEET_LIBRARY names (CTest sets it to
the one just built) or, without it, the installed package's bundled copy.
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import fleet


def save(graph, path, opset=17):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def mlp_graph(widths, seed):
    """MatMul + Add (+ Relu between layers): x [N, widths[0]] -> y [N, widths[-1]]."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    cur = "x"
    for i in range(len(widths) - 1):
        w = (rng.standard_normal((widths[i], widths[i + 1])) / np.sqrt(widths[i])).astype(np.float32)
        b = rng.standard_normal(widths[i + 1]).astype(np.float32) * 0.1
        inits += [numpy_helper.from_array(w, "w%d" % i), numpy_helper.from_array(b, "b%d" % i)]
        last = i == len(widths) - 2
        nodes.append(helper.make_node("MatMul", [cur, "w%d" % i], ["mm%d" % i]))
        nodes.append(helper.make_node("Add", ["mm%d" % i, "b%d" % i], ["y" if last else "a%d" % i]))
        if not last:
            nodes.append(helper.make_node("Relu", ["a%d" % i], ["h%d" % i]))
            cur = "h%d" % i
    return helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", widths[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", widths[-1]])], inits)


def pool_graph(vocab=50, dim=8, seed=1):
    """Two inputs of two dtypes, a named dimension bound at load, three outputs of
    three dtypes: ids i64 [N, seq], mask f32 [N, seq] ->
      pooled f32 [N, dim] = sum_s emb[ids] * mask,  tokens i64 [N] = sum_s (mask > 0.5),
      keep bool [N, seq] = mask > 0.5."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((vocab, dim)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], axis=0),
        helper.make_node("Unsqueeze", ["mask", "ax2"], ["m3"]),
        helper.make_node("Mul", ["e", "m3"], ["em"]),
        helper.make_node("ReduceSum", ["em", "ax1"], ["pooled"], keepdims=0),
        helper.make_node("Greater", ["mask", "half"], ["keep"]),
        helper.make_node("Cast", ["keep"], ["keepf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["keepf", "ax1"], ["count"], keepdims=0),
        helper.make_node("Cast", ["count"], ["tokens"], to=TensorProto.INT64),
    ]
    inits = [numpy_helper.from_array(emb, "emb"),
             numpy_helper.from_array(np.array([2], np.int64), "ax2"),
             numpy_helper.from_array(np.array([1], np.int64), "ax1"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    return helper.make_graph(
        nodes, "pool",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "seq"]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", "seq"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["N", dim]),
         helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("keep", TensorProto.BOOL, ["N", "seq"])], inits)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


MLP_WIDTHS = [16, 32, 8]


@pytest.fixture(scope="session")
def mlp_path(models_dir):
    return save(mlp_graph(MLP_WIDTHS, seed=0), models_dir / "mlp.onnx")


@pytest.fixture(scope="session")
def pool_path(models_dir):
    return save(pool_graph(), models_dir / "pool.onnx")


@pytest.fixture(scope="session")
def mlp_ort(mlp_path):
    return ort.InferenceSession(mlp_path, providers=["CPUExecutionProvider"])


@pytest.fixture
def mlp(mlp_path):
    with fleet.Model.from_onnx(mlp_path) as m:
        yield m


def mlp_input(rng, batch=4):
    return rng.standard_normal((batch, MLP_WIDTHS[0])).astype(np.float32)


def assert_close(got, want, rtol=1e-5, atol=1e-5):
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


ONNX_NODE_TESTS = os.environ.get("FLEET_ONNX_NODE_DIR", "/usr/share/libonnx-testdata/data/node")
