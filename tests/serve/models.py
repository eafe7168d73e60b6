"""Model repositories for the server tests (tests/serve/) and bench/serve_load.py.

make_repository(path, ...) writes:
  mlp/model.onnx          x FP32 [N, 16] -> relu(x W1 + b1) W2 + b2 -> y FP32 [N, 8]
  mlp_builder/            the same network as a builder model: config.json
                          {"builder": "mlp", "widths": [16, 32, 8]} and model.safetensors
  ints/model.onnx         a INT64 [N, 4], b INT64 [N, 4] -> sum = a + b, prod = a * b (INT64)
and returns the weights, so tests compute the expected values themselves
(numpy: reference()) and compare with onnxruntime when it is there."""
import json
import os
import struct

import numpy as np


def _mlp_weights(seed=7, widths=(16, 32, 8)):
    rng = np.random.default_rng(seed)
    w = []
    for i in range(len(widths) - 1):
        w.append((rng.standard_normal((widths[i + 1], widths[i])) / np.sqrt(widths[i])).astype(np.float32))
        w.append((rng.standard_normal(widths[i + 1]) * 0.1).astype(np.float32))
    return w


def reference_mlp(weights, x):
    h = x.astype(np.float64)
    n = len(weights) // 2
    for i in range(n):
        h = h @ weights[2 * i].astype(np.float64).T + weights[2 * i + 1]
        if i < n - 1:
            h = np.maximum(h, 0)
    return h.astype(np.float32)


def _onnx_mlp(path, weights):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    n = len(weights) // 2
    inits, nodes = [], []
    cur = "x"
    for i in range(n):
        w, b = weights[2 * i], weights[2 * i + 1]
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), f"w{i}"))
        inits.append(numpy_helper.from_array(b, f"b{i}"))
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]))
        out = "y" if i == n - 1 else f"a{i}"
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [out if i == n - 1 else f"l{i}"]))
        if i < n - 1:
            nodes.append(helper.make_node("Relu", [f"l{i}"], [out]))
        cur = out
    g = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", weights[0].shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", weights[-1].shape[0]])],
        inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def _onnx_ints(path):
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["prod"])],
        "ints",
        [helper.make_tensor_value_info("a", TensorProto.INT64, ["N", 4]),
         helper.make_tensor_value_info("b", TensorProto.INT64, ["N", 4])],
        [helper.make_tensor_value_info("sum", TensorProto.INT64, ["N", 4]),
         helper.make_tensor_value_info("prod", TensorProto.INT64, ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def _safetensors(path, tensors):
    header, blob = {}, b""
    for name, a in tensors.items():
        data = np.ascontiguousarray(a, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def make_repository(path, config=None, builder=True, ints=True):
    """config: dict written as mlp/config.json (and mlp_builder's, merged)."""
    weights = _mlp_weights()
    os.makedirs(os.path.join(path, "mlp"), exist_ok=True)
    _onnx_mlp(os.path.join(path, "mlp", "model.onnx"), weights)
    if config:
        with open(os.path.join(path, "mlp", "config.json"), "w") as f:
            json.dump(config, f)
    if builder:
        d = os.path.join(path, "mlp_builder")
        os.makedirs(d, exist_ok=True)
        cfg = dict(config or {})
        cfg.update({"builder": "mlp", "widths": [16, 32, 8]})
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        _safetensors(os.path.join(d, "model.safetensors"),
                     {f"layers.{i}.{k}": weights[2 * i + (k == "bias")]
                      for i in range(2) for k in ("weight", "bias")})
    if ints:
        os.makedirs(os.path.join(path, "ints"), exist_ok=True)
        _onnx_ints(os.path.join(path, "ints", "model.onnx"))
    return weights
