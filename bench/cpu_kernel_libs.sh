#!/usr/bin/env bash
# Build and run bench/cpu_kernel_libs.c: OpenBLAS vs BLIS vs oneDNN for
# fleet's cpu backend (linear/matmul, conv2d, two-thread MLP).
#
#   bash bench/cpu_kernel_libs.sh [all|linear|conv|mlp]   (from the repo root)
#   BENCH_ROUNDS=9 BENCH_MIN_MS=25 OUT=dir bash bench/cpu_kernel_libs.sh
#
# Needs (Debian bookworm): apt-get install -y libdnnl-dev libblis-dev libopenblas-dev
# libblis-dev pulls BLIS's openmp flavour and registers BLIS as a libblas.so.3
# alternative at priority 80 (OpenBLAS pthread: 100); this script links every
# library by its own name and never through -lblas, and checks that
# libblas.so.3 still resolves to OpenBLAS (fleet itself links -lblas).
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=x86_64-linux-gnu
LIB=/usr/lib/$ARCH
OB_INC=/usr/include/$ARCH/openblas-pthread
OB_LIB=$LIB/openblas-pthread
BLIS_INC=/usr/include/$ARCH/blis-openmp
BLIS_LIB=$LIB/blis-openmp
BUILD=${BUILD_DIR:-build-kernel-libs}
mkdir -p "$BUILD"

for f in "$OB_INC/cblas.h" "$OB_LIB/libopenblas.so" "$BLIS_INC/blis.h" "$BLIS_LIB/libblis.so" \
         /usr/include/oneapi/dnnl/dnnl.h "$LIB/libdnnl.so"; do
    [ -e "$f" ] || { echo "missing $f: apt-get install -y libdnnl-dev libblis-dev libopenblas-dev" >&2; exit 1; }
done

blas3=$(readlink -f "$LIB/libblas.so.3")
case "$blas3" in
    */openblas-pthread/*) ;;
    *) echo "WARNING: libblas.so.3 -> $blas3 (not OpenBLAS); fix with:" >&2
       echo "  update-alternatives --set libblas.so.3-$ARCH $OB_LIB/libblas.so.3" >&2 ;;
esac

CFLAGS="-std=c11 -O2 -march=native -Wall -Wextra"
# 1. the hand-written BLIS prototypes in the .c must agree with blis.h
sed -n '/BEGIN BLIS PROTOS/,/END BLIS PROTOS/p' bench/cpu_kernel_libs.c > "$BUILD/blis_protos.h"
printf '#include <blis.h>\n#include "blis_protos.h"\n_Static_assert(sizeof(dim_t) == 8, "dim_t");\n_Static_assert(sizeof(inc_t) == 8, "inc_t");\n_Static_assert(sizeof(trans_t) == sizeof(int), "trans_t");\n_Static_assert(BLIS_NO_TRANSPOSE == 0 && BLIS_NO_CONJUGATE == 0, "enums");\n' \
    > "$BUILD/blis_protos_check.c"
gcc -std=c11 -fsyntax-only -I"$BLIS_INC" -I"$BUILD" "$BUILD/blis_protos_check.c"

# 2. the benchmark
GCCV=$(gcc -dumpfullversion)
gcc $CFLAGS -DBUILD_INFO="\"gcc $GCCV $CFLAGS\"" -I"$OB_INC" bench/cpu_kernel_libs.c -o "$BUILD/cpu_kernel_libs" \
    -L"$OB_LIB" -Wl,-rpath,"$OB_LIB" -lopenblas \
    -L"$BLIS_LIB" -Wl,-rpath,"$BLIS_LIB" -lblis \
    -ldnnl -lgomp -lpthread -lm -ldl

echo "== libraries the binary loads"
ldd "$BUILD/cpu_kernel_libs" | grep -E 'openblas|blis|dnnl|gomp|gfortran' || true
echo "== Debian packages"
dpkg-query -W -f='${Package} ${Version}\n' libopenblas0-pthread libopenblas-dev libblis4-openmp \
    libblis-dev libdnnl2 libdnnl-dev 2>/dev/null || true
echo "== libblas.so.3 -> $blas3"
echo

# One thread per calling thread: OpenBLAS reads OPENBLAS_NUM_THREADS when it is
# loaded (its worker pool is created then); BLIS and oneDNN (OpenMP runtime)
# read BLIS_NUM_THREADS / OMP_NUM_THREADS; the program also sets all three
# through the APIs (openblas_set_num_threads, bli_thread_set_num_threads,
# omp_set_num_threads in every calling thread).
export OPENBLAS_NUM_THREADS=1 BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    "$BUILD/cpu_kernel_libs" "${1:-all}" | tee "$OUT/table.md"
else
    "$BUILD/cpu_kernel_libs" "${1:-all}"
fi
