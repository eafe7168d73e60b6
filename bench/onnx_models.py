#!/usr/bin/env python3
"""Export real models to ONNX and record onnxruntime's outputs beside them, in
the layout of ONNX's node tests, for tests/onnx_node_tests to check fleet
against (FLEET_ONNX_TESTDATA=<folder>, FLEET_ONNX_NORMWISE=1e-5):

    <folder>/test_<name>/model.onnx
    <folder>/test_<name>/test_data_set_0/input_<i>.pb, output_<i>.pb

Models (eval mode, exported with torch.onnx.export, the batch and sequence
dimensions dynamic, each model's own mask builder exported from the 2-D
padding mask): all-MiniLM-L6-v2 (its real weights with --minilm-weights,
else random) at opsets 14 (layer norm spelled out), 17 and 18 with the
TorchScript exporter and at 18 with the default (dynamo) one; with random
weights a BERT-base-sized BertModel, a GPT-2-small-sized GPT2Model (no KV
cache, its causal mask; dynamo exporter) and torchvision's ResNet-50 (both
exporters). Needs torch, transformers, torchvision, onnx, onnxscript and
onnxruntime (test and benchmark references only).

    python3 bench/onnx_models.py FOLDER [--only name,...] [--seq 32] [--batch 2]
                                        [--minilm-weights DIR]
"""
import argparse
import os
import sys
import time


def save_case(folder, name, model_path_tmp, inputs, outputs):
    import onnx
    from onnx import numpy_helper
    d = os.path.join(folder, "test_" + name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    os.replace(model_path_tmp, os.path.join(d, "model.onnx"))
    for i, a in enumerate(inputs):
        t = numpy_helper.from_array(a)
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % i), "wb") as f:
            f.write(t.SerializeToString())
    for i, a in enumerate(outputs):
        t = numpy_helper.from_array(a)
        with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % i), "wb") as f:
            f.write(t.SerializeToString())
    onnx.checker.check_model(os.path.join(d, "model.onnx"))


def export(module, args, names_in, names_out, path, opset, dynamic, dynamo=False):
    """dynamic: {name: {axis: dim name}}. dynamo=True is torch.onnx.export's
    default since torch 2.9 (the torch.export-based exporter: needs
    onnxscript); False the TorchScript-based one."""
    import inspect
    import torch
    if dynamo:
        params = list(inspect.signature(module.forward).parameters)
        dims = {}
        for axes in dynamic.values():
            for d in axes.values():
                dims.setdefault(d, torch.export.Dim(d) if d == "batch"
                                else torch.export.Dim(d, max=4096))
        shapes = {params[i]: {a: dims[d] for a, d in dynamic[n].items()}
                  for i, n in enumerate(names_in)}
        torch.onnx.export(module, args, path, input_names=names_in, output_names=names_out,
                          opset_version=opset, dynamo=True, dynamic_shapes=shapes,
                          external_data=False)
        return
    kw = dict(input_names=names_in, output_names=names_out, opset_version=opset,
              dynamic_axes=dynamic, do_constant_folding=True)
    try:
        torch.onnx.export(module, args, path, dynamo=False, **kw)
    except TypeError:  # an older torch without the dynamo argument
        torch.onnx.export(module, args, path, **kw)


def reference(path, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 4
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def bert_case(folder, name, layers, hidden, heads, inter, opset, seq, batch, weights=None,
              dynamo=False):
    import numpy as np
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    if weights is not None:
        m = BertModel.from_pretrained(weights, attn_implementation="eager").eval()
        cfg = m.config
    else:
        cfg = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, intermediate_size=inter,
                         max_position_embeddings=512, attn_implementation="eager")
        m = BertModel(cfg).eval()

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            # the 2-D padding mask as users pass it: the model's own mask
            # builder is exported (in transformers 5, integer index
            # arithmetic over a Range of the batch)
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    rng = np.random.default_rng(1)
    ids = rng.integers(0, cfg.vocab_size, size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[-1, seq - seq // 4:] = 0  # padding on the last row
    types = np.zeros((batch, seq), dtype=np.int64)
    tmp = os.path.join(folder, name + ".tmp.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad():
        export(Wrap(m).eval(), tuple(torch.from_numpy(a) for a in (ids, mask, types)), names,
               ["last_hidden_state"], tmp, opset,
               {n: {0: "batch", 1: "sequence"} for n in names} |
               {"last_hidden_state": {0: "batch", 1: "sequence"}}, dynamo)
    outs = reference(tmp, dict(zip(names, (ids, mask, types))))
    save_case(folder, name, tmp, [ids, mask, types], outs)


def gpt2_case(folder, name, opset, seq, batch, dynamo=False):
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2Model
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024, use_cache=False,
                     attn_implementation="eager")
    m = GPT2Model(cfg).eval()

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            # no mask: the model's own causal mask builder is exported
            return self.m(input_ids=input_ids, use_cache=False).last_hidden_state

    rng = np.random.default_rng(2)
    ids = rng.integers(0, cfg.vocab_size, size=(batch, seq), dtype=np.int64)
    tmp = os.path.join(folder, name + ".tmp.onnx")
    with torch.no_grad():
        export(Wrap(m).eval(), (torch.from_numpy(ids),), ["input_ids"], ["last_hidden_state"], tmp,
               opset, {"input_ids": {0: "batch", 1: "sequence"},
                       "last_hidden_state": {0: "batch", 1: "sequence"}}, dynamo)
    outs = reference(tmp, {"input_ids": ids})
    save_case(folder, name, tmp, [ids], outs)


def resnet_case(folder, name, opset, batch, dynamo=False):
    import numpy as np
    import torch
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None).eval()
    x = np.random.default_rng(3).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    tmp = os.path.join(folder, name + ".tmp.onnx")
    with torch.no_grad():
        export(m, (torch.from_numpy(x),), ["pixels"], ["logits"], tmp, opset,
               {"pixels": {0: "batch"}, "logits": {0: "batch"}}, dynamo)
    outs = reference(tmp, {"pixels": x})
    save_case(folder, name, tmp, [x], outs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--only", default="")
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--minilm-weights", default=None,
                    help="all-MiniLM-L6-v2's folder (config.json, model.safetensors): "
                         "else random weights")
    a = ap.parse_args()
    os.makedirs(a.folder, exist_ok=True)
    w = a.minilm_weights
    print("MiniLM weights: %s" % (w or "random"), flush=True)

    def minilm(name, opset, dynamo=False):
        return lambda: bert_case(a.folder, name, 6, 384, 12, 1536, opset, a.seq, a.batch, w,
                                 dynamo)
    cases = {
        "minilm_opset17": minilm("minilm_opset17", 17),
        "minilm_opset18": minilm("minilm_opset18", 18),
        # before opset 17 torch spells layer norm out (ReduceMean, Sub, Pow, ...)
        "minilm_opset14": minilm("minilm_opset14", 14),
        # torch.onnx.export's default exporter since torch 2.9
        "minilm_dynamo": minilm("minilm_dynamo", 18, True),
        "bert_base": lambda: bert_case(a.folder, "bert_base", 12, 768, 12, 3072, 17, a.seq,
                                       a.batch),
        # the TorchScript exporter cannot export GPT-2's own causal mask
        # builder (aten::diff): the default exporter can
        "gpt2_small": lambda: gpt2_case(a.folder, "gpt2_small", 18, a.seq, a.batch, True),
        "resnet50": lambda: resnet_case(a.folder, "resnet50", 17, a.batch),
        "resnet50_dynamo": lambda: resnet_case(a.folder, "resnet50_dynamo", 18, a.batch, True),
    }
    only = [s for s in a.only.split(",") if s]
    failed = 0
    for name, fn in cases.items():
        if only and name not in only:
            continue
        t0 = time.time()
        try:
            fn()
            print("exported %s in %.1f s" % (name, time.time() - t0), flush=True)
        except Exception as e:  # one model failing should not hide the others
            failed += 1
            print("FAILED to export %s: %s: %s" % (name, type(e).__name__, e), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
