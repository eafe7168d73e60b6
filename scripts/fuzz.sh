#!/usr/bin/env bash
# Fuzz fleet's parsers of untrusted files with libFuzzer, each time-boxed,
# and print one line per target:
#   fuzz <target>: <execs> executions, <crashes> crashes, <seconds> s
#
#   scripts/fuzz.sh [seconds] [target...]   (default 60 s each; targets:
#                                             safetensors onnx onnx_import npy oip,
#                                             default all;
#                                             `make fuzz FUZZ_SECONDS=...`)
#
# Targets: safetensors (fuzz/safetensors_fuzz.c: the safetensors parser),
# onnx (fuzz/onnx_fuzz.c: the protobuf wire reader and the ONNX message
# decoder), onnx_import (fuzz/onnx_import_fuzz.c: the whole importer and
# a run of what loads, on the cpu backend; seeded from onnx's corpus),
# npy (fuzz/npy_fuzz.c: the fleet tool's .npy parser, cli/npy.c) and oip
# (fuzz/oip_fuzz.c: fleet serve's infer request parser, the JSON envelope
# and the binary tensor extension, src/serve/oip_json.c; needs libcjson,
# skipped with a note when it is absent). Each is
# built with the sources it uses under clang's
# -fsanitize=fuzzer,address,undefined into build-fuzz/, then run on a copy of
# fuzz/corpus/<target>/ (the committed seeds stay as they are; what the run
# adds stays in build-fuzz/corpus-<target>/); the onnx target also takes
# every model of Debian's libonnx-testdata when it is installed. A crash,
# leak, timeout or broken check leaves its input in build-fuzz/artifacts/
# and exits non-zero; reproduce with
# `build-fuzz/<target>_fuzz build-fuzz/artifacts/<file>`. CLANG names
# another clang binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

secs=${1:-60}
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [seconds > 0] [target...]" >&2
    exit 2
fi
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(safetensors onnx onnx_import npy)
    if pkg-config --exists libcjson 2>/dev/null; then
        targets+=(oip)
    else
        echo "fuzz oip: skipped (libcjson not installed: scripts/install-deps.sh)"
    fi
fi

CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
    ./scripts/install-deps.sh clang
fi

out=build-fuzz
mkdir -p "$out"
rm -rf "$out/artifacts"
mkdir -p "$out/artifacts"
failed=0

# The library sources each target's parser needs, beyond the target itself.
sources_of() {
    case "$1" in
    safetensors) echo "src/model/safetensors.c src/core/status.c src/core/prim.c" ;;
    onnx) echo "src/onnx/pb.c src/onnx/onnx_proto.c src/core/status.c src/core/prim.c" ;;
    # the importer runs the whole library (the cpu backend; not the server,
    # whose HTTP half the parsers do not need)
    onnx_import) find src -name '*.c' ! -path 'src/backend/cuda/*' ! -path 'src/serve/*' | sort |
        tr '\n' ' ' ;;
    # the tool's parser, and the library for its dtype helpers
    npy) echo "cli/npy.c $(sources_of onnx_import)" ;;
    # the server's request parser stands alone (cJSON)
    oip) echo "src/serve/oip_json.c src/serve/oip_data.c src/core/status.c src/core/prim.c" ;;
    *) echo "fuzz.sh: unknown target '$1'" >&2; exit 2 ;;
    esac
}

# Libraries a target needs beyond BLAS, LAPACK, libm and pthreads.
libs_of() {
    case "$1" in
    oip) pkg-config --libs libcjson ;;
    esac
}

for target in "${targets[@]}"; do
    srcs=$(sources_of "$target")
    libs=$(libs_of "$target")
    # The library's warning flags, as errors; the library's defines.
    # shellcheck disable=SC2086
    "$CLANG" -std=c11 -g -O1 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
        -Wformat=2 -Wvla -Werror \
        -Iinclude -Isrc -Icli -D_POSIX_C_SOURCE=200809L -DFLEET_DEBUG_INVARIANTS=1 \
        "fuzz/${target}_fuzz.c" $srcs $libs -llapack -lblas -lm -lpthread -o "$out/${target}_fuzz"

    corpus=$out/corpus-$target
    rm -rf "$corpus"
    mkdir -p "$corpus"
    seeds=$target
    [ "$target" = onnx_import ] && seeds=onnx
    cp fuzz/corpus/"$seeds"/* "$corpus/"
    if [ "$seeds" = onnx ] && [ -d /usr/share/libonnx-testdata/data ]; then
        find /usr/share/libonnx-testdata/data -name model.onnx -size -64k | while read -r f; do
            cp "$f" "$corpus/$(echo "$f" | tr / _)"
        done
    fi
    dict=()
    [ -f "fuzz/$seeds.dict" ] && dict=("-dict=fuzz/$seeds.dict")

    log=$out/${target}_fuzz.log
    start=$SECONDS
    rc=0
    before=$(find "$out/artifacts" -type f | wc -l)
    "$out/${target}_fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${dict[@]}" -artifact_prefix="$out/artifacts/${target}-" \
        "$corpus" 2>"$log" || rc=$?
    elapsed=$((SECONDS - start))

    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then # no final stats (it crashed): the last "#N" status line
        execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    fi
    crashes=$(( $(find "$out/artifacts" -type f | wc -l) - before ))
    echo "fuzz $target: ${execs:-0} executions, $crashes crashes, $elapsed s"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz $target: failed (exit $rc); inputs in $out/artifacts/, full log in $log" >&2
        failed=1
    fi
done
exit "$failed"
