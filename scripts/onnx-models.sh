#!/usr/bin/env bash
# Real exported models against onnxruntime (`make onnx-models`, and CI): export
# them with bench/onnx_models.py (torch.onnx.export; random weights) into a
# cache outside the clone, with onnxruntime's outputs beside each, then load
# and run each with fleet on the default backend (FLEET_BACKEND picks another)
# and compare: normwise relative error <= 1e-5, from one thread and then
# from 1, 4 and 16 threads at once sharing the model, three runs each
# (tests/onnx_node_tests in its real-model mode; FLEET_ONNX_THREADS changes
# the list). The Python packages are test references only; they are
# installed with pip when missing. The export is redone when the export
# script changes.
#
#   scripts/onnx-models.sh [build-dir]      (default build)
#   FLEET_MODEL_CACHE=dir                   (default ~/.cache/fleet/onnx-models)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cache=${FLEET_MODEL_CACHE:-$HOME/.cache/fleet/onnx-models}

if ! python3 -c 'import torch, torchvision, transformers, onnx, onnxruntime' 2>/dev/null; then
    echo "onnx-models: installing torch, torchvision, transformers, onnx, onnxruntime (pip)" >&2
    python3 -m pip install -q torch torchvision transformers onnx onnxruntime
fi
key=$(sha256sum bench/onnx_models.py | cut -c1-16)
dir=$cache/$key
if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 bench/onnx_models.py "$dir" --seq 32 --batch 2 2>&1 | grep -E '^(exported|FAILED)'
    touch "$dir/.done"
fi
FLEET_TEST_TIMEOUT=${FLEET_TEST_TIMEOUT:-1800} FLEET_ONNX_TESTDATA=$dir FLEET_ONNX_NORMWISE=1e-5 FLEET_ONNX_THREADS=${FLEET_ONNX_THREADS:-1,4,16} \
    "$build/tests/onnx_node_tests"
