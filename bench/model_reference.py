#!/usr/bin/env python3
"""PyTorch reference for fleet's ready-made models (run on the GPU machine).

Builds the MLP 256-512-512-256 and a transformer encoder block
(torch.nn.TransformerEncoderLayer, d_model 64, 4 heads, feed-forward 256,
GELU, post-norm, no dropout, batch_first) with seeded weights, and writes for
each, into OUTDIR:
  <model>.safetensors   the weights under the names fleet's builders use
                        (the encoder's in_proj split into q/k/v_proj)
  <model>_x.bin         an input batch, float32 little-endian
  <model>_y.bin         PyTorch's output in float32 on cuda (cpu if none)
  <model>_y64.bin       PyTorch's output in float64 on cpu
bench/model_reference.c loads these into fleet and reports the error.
The safetensors writer is this file's own (json + struct): no extra package.
"""
import argparse
import array
import json
import os
import struct

import torch


def raw(t, code):
    """Little-endian bytes of a tensor ('f' float32, 'd' float64), without numpy."""
    kind = torch.float32 if code == "f" else torch.float64
    return array.array(code, t.detach().to("cpu", kind).flatten().tolist()).tobytes()


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = raw(tensors[name], "f")
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


class MLP(torch.nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = torch.relu(x)
        return x


def encoder_weights(layer, d):
    sd = {k: v for k, v in layer.state_dict().items()}
    w, b = sd.pop("self_attn.in_proj_weight"), sd.pop("self_attn.in_proj_bias")
    for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
        sd[f"self_attn.{name}.weight"] = w[i * d:(i + 1) * d]
        sd[f"self_attn.{name}.bias"] = b[i * d:(i + 1) * d]
    return sd


def save(outdir, name, model, weights, x):
    write_safetensors(os.path.join(outdir, f"{name}.safetensors"), weights)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.no_grad():
        y = model.to(dev).float()(x.to(dev)).cpu()
        y64 = model.to("cpu").double()(x.double())
    for suffix, t, code in (("_x", x, "f"), ("_y", y, "f"), ("_y64", y64, "d")):
        with open(os.path.join(outdir, f"{name}{suffix}.bin"), "wb") as f:
            f.write(raw(t, code))
    print(f"{name}: x {tuple(x.shape)} -> y {tuple(y.shape)} (torch {torch.__version__}, {dev})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 stays float32
    torch.backends.cudnn.allow_tf32 = False

    mlp = MLP([256, 512, 512, 256]).eval()
    save(args.outdir, "mlp", mlp, dict(mlp.state_dict()), torch.randn(8, 256))

    enc = torch.nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=256, dropout=0.0,
                                           activation="gelu", batch_first=True).eval()
    with torch.no_grad():  # non-trivial norm parameters
        for norm in (enc.norm1, enc.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    save(args.outdir, "encoder", enc, encoder_weights(enc, 64), torch.randn(4, 16, 64))


if __name__ == "__main__":
    main()
