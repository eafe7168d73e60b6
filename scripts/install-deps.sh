#!/usr/bin/env bash
# Install what fleet needs to build and test on a fresh Debian machine:
# a C compiler, cmake, make, pkg-config, OpenBLAS (the cpu backend's GEMM and
# LAPACK, linked by name), ONNX's conformance test data, and the server's
# libraries (libmicrohttpd for HTTP, cJSON for JSON: fleet serve).
# Does nothing when everything is present. Needs root (or sudo) otherwise.
set -euo pipefail

have() { compgen -G "$1" >/dev/null; }  # does the glob match anything?

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v make >/dev/null 2>&1 || need+=(make)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev)
# ONNX's backend node tests (test data only: tests/onnx_node_tests.c runs them)
have '/usr/share/libonnx-testdata/data/node' || need+=(libonnx-testdata)
# the inference server (optional at build time; without them, no fleet serve)
pkg-config --exists libmicrohttpd 2>/dev/null || need+=(libmicrohttpd-dev)
pkg-config --exists libcjson 2>/dev/null || need+=(libcjson-dev)
for pkg in "$@"; do  # extra packages asked for by the caller (e.g. CI)
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done

[ ${#need[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${need[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
