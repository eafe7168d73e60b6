#!/usr/bin/env bash
# fleet serve on the GPU machine: build fleet with cuda and the server,
# export MiniLM (opset 17) and ResNet-50 with bench/onnx_models.py, check one
# response of each against onnxruntime, then bench/serve_load.py at 1, 16
# and 64 connections (binary tensors) beside `fleet run` in-process; the
# tables go to $OUT/serve-gpu.md.
#
#   bench/serve_gpu.sh [DEPS]    DEPS: a folder of Debian packages to unpack
#                                when libmicrohttpd, cJSON or cblas.h are missing
#                                (the GPU machine has no registry):
#     mkdir -p build-gpudeps && (cd build-gpudeps && apt-get download libmicrohttpd12 \
#       libmicrohttpd-dev libcjson1 libcjson-dev libgnutls30 libblas3 libblas-dev \
#       liblapack3 liblapack-dev libgfortran5 libquadmath0)
#     device run: carry ["build-gpudeps"], command: OUT=$OUT bash bench/serve_gpu.sh
# SERVE_SECONDS (default 5) per row; SERVE_MODELS (default /tmp/serve-models)
# holds or receives the exports.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/serve-gpu}
mkdir -p "$OUT"
deps=${1:-build-gpudeps}
secs=${SERVE_SECONDS:-5}
mdir=${SERVE_MODELS:-/tmp/serve-models}
D=/opt/fleetdeps
L=$D/usr/lib/x86_64-linux-gnu
EXTRA=()
unpack() { for f in "$@"; do [ -f "$f" ] && dpkg -x "$f" "$D"; done; }

if ! pkg-config --exists libmicrohttpd libcjson 2>/dev/null; then
  mkdir -p "$D/pc"
  unpack "$deps"/libmicrohttpd*.deb "$deps"/libcjson*.deb
  ldconfig -p | grep -q 'libgnutls.so.30 ' || unpack "$deps"/libgnutls30*.deb
  # The packaged .pc files say prefix=/usr (and name gnutls's .pc): these
  # point into $D.
  printf 'Name: libmicrohttpd\nDescription: carried\nVersion: 0.9.75\nLibs: -L%s -lmicrohttpd\nCflags: -I%s/usr/include\n' \
    "$L" "$D" > "$D/pc/libmicrohttpd.pc"
  printf 'Name: libcjson\nDescription: carried\nVersion: 1.7.15\nLibs: -L%s -lcjson\nCflags: -I%s/usr/include -I%s/usr/include/cjson\n' \
    "$L" "$D" "$D" > "$D/pc/libcjson.pc"
  export PKG_CONFIG_PATH="$D/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if ! ls /usr/include/cblas.h /usr/include/*/cblas.h >/dev/null 2>&1; then
  unpack "$deps"/libblas*.deb "$deps"/liblapack*.deb "$deps"/libgfortran5*.deb "$deps"/libquadmath0*.deb
  ln -sf "$L/blas/libblas.so.3" "$L/libblas.so"
  ln -sf "$L/lapack/liblapack.so.3" "$L/liblapack.so"
  ln -sf "$L/blas/libblas.so.3" "$L/libblas.so.3"
  ln -sf "$L/lapack/liblapack.so.3" "$L/liblapack.so.3"
  export LD_LIBRARY_PATH="$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  EXTRA+=(-DCMAKE_PREFIX_PATH=$D/usr -DCMAKE_C_FLAGS=-I$D/usr/include/x86_64-linux-gnu)
fi

md=$OUT/serve-gpu.md
{
  echo "# fleet serve on the GPU machine, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- card: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1)"
  echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
  echo "- commit: ${FLEET_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  echo
} > "$md"

echo "== build (cuda + server)"
if ! cmake -S . -B build-serve-gpu -DFLEET_CUDA=ON -DFLEET_BUILD_TESTS=OFF -DFLEET_EXAMPLES=OFF \
       "${EXTRA[@]}" > "$OUT/build.log" 2>&1 ||
   ! cmake --build build-serve-gpu -j "$(nproc)" --target fleet_cli >> "$OUT/build.log" 2>&1; then
  tail -30 "$OUT/build.log"; echo "- build: FAILED" >> "$md"; exit 1
fi
grep -E "fleet: (server|cuda)" "$OUT/build.log" | sed 's/^-- /- /' >> "$md"
build-serve-gpu/fleet info 2>&1 | head -3 | sed 's/^/    /' >> "$md"

echo "== export MiniLM and ResNet-50"
if [ ! -f "$mdir/test_minilm_opset17/model.onnx" ] || [ ! -f "$mdir/test_resnet50/model.onnx" ]; then
  mkdir -p "$mdir"
  python3 bench/onnx_models.py "$mdir" --only minilm_opset17,resnet50 --seq 32 --batch 2 \
    > "$OUT/export.log" 2>&1 || { tail -20 "$OUT/export.log"; echo "- export: FAILED" >> "$md"; exit 1; }
fi

for m in "minilm test_minilm_opset17 --dim sequence=128" "resnet50 test_resnet50"; do
  set -- $m
  name=$1 folder=$2; shift 2
  echo "== $name"
  { echo; echo "## $name (batch-1 requests, binary tensors, ${secs} s per row)"; echo; } >> "$md"
  timeout 580 python3 bench/serve_load.py --fleet build-serve-gpu/fleet --onnx "$mdir/$folder/model.onnx" \
    "$@" --connections 1,16,64 --seconds "$secs" --verify --markdown >> "$md" 2> "$OUT/load-$name.log" ||
    echo "- $name: FAILED (load-$name.log)" >> "$md"
done
cat "$md"
