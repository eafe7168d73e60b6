#!/usr/bin/env bash
# Fuzz the safetensors parser with libFuzzer, time-boxed, and print one line:
#   fuzz safetensors: <execs> executions, <crashes> crashes, <seconds> s
#
#   scripts/fuzz.sh [seconds]        (default 60; `make fuzz FUZZ_SECONDS=...`)
#
# Builds fuzz/safetensors_fuzz.c with the parser and the error functions it
# uses (src/model/safetensors.c, src/core/status.c, src/core/prim.c) under clang's
# -fsanitize=fuzzer,address,undefined into build-fuzz/, then runs it on a copy
# of fuzz/corpus/safetensors/ (the committed seeds stay as they are; what the
# run adds stays in build-fuzz/corpus-safetensors/). A crash, leak, timeout or
# broken check leaves its input in build-fuzz/artifacts/ and exits non-zero;
# reproduce with `build-fuzz/safetensors_fuzz build-fuzz/artifacts/<file>`.
# CLANG names another clang binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

secs=${1:-60}
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [seconds > 0]" >&2
    exit 2
fi

CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
    ./scripts/install-deps.sh clang
fi

out=build-fuzz
mkdir -p "$out"
# The library's warning flags, as errors; the library's defines.
"$CLANG" -std=c11 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
    -Wformat=2 -Wvla -Werror \
    -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L -DFLEET_DEBUG_INVARIANTS=1 \
    fuzz/safetensors_fuzz.c src/model/safetensors.c src/core/status.c src/core/prim.c -lpthread \
    -o "$out/safetensors_fuzz"

corpus=$out/corpus-safetensors
rm -rf "$corpus" "$out/artifacts"
mkdir -p "$corpus" "$out/artifacts"
cp fuzz/corpus/safetensors/* "$corpus/"

log=$out/safetensors_fuzz.log
start=$SECONDS
rc=0
"$out/safetensors_fuzz" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
    -dict=fuzz/safetensors.dict -artifact_prefix="$out/artifacts/" "$corpus" 2>"$log" || rc=$?
elapsed=$((SECONDS - start))

execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
if [ -z "$execs" ]; then # no final stats (it crashed): the last "#N" status line
    execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
fi
crashes=$(find "$out/artifacts" -type f | wc -l)
echo "fuzz safetensors: ${execs:-0} executions, $crashes crashes, $elapsed s"

if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: failed (exit $rc); inputs in $out/artifacts/, full log in $log" >&2
    exit 1
fi
