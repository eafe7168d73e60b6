#!/usr/bin/env bash
# Install what fleet needs to build and test on a fresh Debian machine:
# a C compiler, cmake, make, and the system BLAS/LAPACK (with cblas.h).
# Does nothing when everything is present. Needs root (or sudo) otherwise.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v make >/dev/null 2>&1 || need+=(make)
[ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ] ||
  [ -e "/usr/include/$(uname -m)-linux-gnu/cblas.h" ] || need+=(libblas-dev)
ls /usr/lib/*/liblapack.so* /usr/lib/liblapack.so* >/dev/null 2>&1 || need+=(liblapack-dev)
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
