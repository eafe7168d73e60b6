#!/usr/bin/env bash
# scripts/house-rules.sh — the written contract, checked (make static runs it).
#
#   scripts/house-rules.sh [RULE...]     rules: atomics ranks ring vtable exports (default: all)
#
# Each rule prints its violations as path:line: message and a count line
# "rule NAME: N violations"; the script exits non-zero if any rule has one.
#   atomics   the C11 atomic functions are called only through core/atomic.h,
#             whose wrappers name the memory order at the call
#   ranks     a lock declared with a "rank N" comment has that rank in the
#             lock-order table of core/lock.h, for that file
#   ring      docs/ARCHITECTURE.md states the cpu task ring's size and argument
#             bytes that backend/cpu/cpu_stream.h defines
#   vtable    only src/backend/ and the dispatch layer (runtime/dispatch.c)
#             call through the backend vtable's function slots
#   exports   libfleet.so exports exactly the FLEET_API functions of include/
#             (nothing internal, nothing missing); it is built into
#             build-exports/ (cpu only) unless FLEET_SHARED_LIB names one
set -uo pipefail
cd "$(dirname "$0")/.."
rules=("$@")
[ ${#rules[@]} -gt 0 ] || rules=(atomics ranks ring vtable exports)
failed=0

report() { # NAME COUNT
    echo "rule $1: $2 violations"
    [ "$2" -eq 0 ] || failed=1
}

for rule in "${rules[@]}"; do
    case "$rule" in
    atomics)
        out=$(grep -rnE '\batomic_(load|store|fetch_[a-z]+|compare_exchange_[a-z]+|exchange)(_explicit)?\(' \
                  src --include='*.c' --include='*.h' --include='*.cu' | grep -v '^src/core/atomic.h:' || true)
        [ -z "$out" ] || echo "$out" | sed 's/$/: a C11 atomic call outside core\/atomic.h (use its wrappers)/'
        report atomics "$(printf '%s' "$out" | grep -c . || true)"
        ;;
    ranks)
        out=$(python3 - <<'PY'
import glob, re
table = {}  # path -> set of ranks, from core/lock.h's comment table
rank = None
for line in open("src/core/lock.h"):
    m = re.match(r"\s*\*\s+(\d+)\s", line)
    if m:  # a row of the table: its rank holds for the lines below it
        rank = int(m.group(1))
    elif not re.match(r"\s*\*\s{4,}\S", line):
        rank = None  # out of the table
    m = re.search(r"\s(\S+/\S+\.[ch])\s*$", line)
    if m and rank is not None:
        table.setdefault("src/" + m.group(1), set()).add(rank)
for path in sorted(glob.glob("src/**/*.[ch]", recursive=True)):
    lines = open(path).read().split("\n")
    for i, line in enumerate(lines):
        m = re.search(r"\b[Rr]ank (\d+)", line)
        if not m:
            continue
        near = " ".join(lines[i:i + 7])
        if "fleet__mutex" not in near or "fleet__mutex_" in near:
            continue  # not at a lock's declaration
        want = int(m.group(1))
        if want not in table.get(path, set()):
            print(f"{path}:{i + 1}: says rank {want}; core/lock.h's table gives "
                  f"{sorted(table.get(path, set())) or 'no rank'} for this file")
PY
)
        [ -z "$out" ] || echo "$out"
        report ranks "$(printf '%s' "$out" | grep -c . || true)"
        ;;
    ring)
        cap=$(sed -n 's/^#define FLEET__CPU_QUEUE_CAPACITY \([0-9]*\).*/\1/p' src/backend/cpu/cpu_stream.h)
        args=$(sed -n 's/^#define FLEET__CPU_TASK_ARGS \([0-9]*\).*/\1/p' src/backend/cpu/cpu_stream.h)
        doc=$(tr '\n' ' ' < docs/ARCHITECTURE.md | grep -oE 'ring of [0-9]+ fixed-size tasks \(function pointer \+ [0-9]+ bytes' | head -1)
        want="ring of $cap fixed-size tasks (function pointer + $args bytes"
        n=0
        if [ "$doc" != "$want" ]; then
            echo "docs/ARCHITECTURE.md: says '${doc:-nothing about the ring}'; cpu_stream.h defines $cap tasks of $args bytes"
            n=1
        fi
        report ring "$n"
        ;;
    vtable)
        # The slots are the function-pointer fields of struct fleet__backend.
        slots=$(sed -n '/^typedef struct fleet__backend {/,/^} fleet__backend;/p' src/backend/backend.h |
                    grep -oE '\(\*[a-z_]+\)' | tr -d '(*)' | paste -sd'|')
        out=$(grep -rnE "(->|\.)($slots)[[:space:]]*\(" src --include='*.c' --include='*.h' |
                  grep -vE '^src/(backend/|runtime/dispatch\.c:)' || true)
        [ -z "$out" ] || echo "$out" | sed 's/$/: a backend slot called outside the dispatch layer (use runtime\/dispatch.h)/'
        report vtable "$(printf '%s' "$out" | grep -c . || true)"
        ;;
    exports)
        lib=${FLEET_SHARED_LIB:-}
        if [ -z "$lib" ]; then
            cmake -S . -B build-exports -DBUILD_SHARED_LIBS=ON -DFLEET_CUDA=OFF \
                -DFLEET_BUILD_TESTS=OFF >build-exports.log 2>&1 &&
                cmake --build build-exports -j "$(nproc)" --target fleet >>build-exports.log 2>&1 ||
                { echo "exports: the shared library did not build (build-exports.log)"; report exports 1; continue; }
            lib=build-exports/libfleet.so
        fi
        exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TtDdBbRrVvWw]$/ {print $3}' | sort)
        # every function a public header declares (at column 0), marked or not
        declared=$(grep -rhE '^[A-Za-z_][A-Za-z0-9_ *]*\bfleet_[a-z0-9_]+\(' include/fleet | \
                   grep -v '^typedef' | grep -oE '\bfleet_[a-z0-9_]+\(' | head -n -0 | \
                   awk '{print}' | tr -d '(' | sort -u)
        out=$(comm -23 <(echo "$exported") <(echo "$declared") | sed 's/^/exported but not public API: /')
        missing=$(comm -13 <(echo "$exported") <(echo "$declared") | sed 's/^/public API not exported: /')
        out=$(printf '%s\n%s' "$out" "$missing" | grep . || true)
        [ -z "$out" ] || echo "$out"
        echo "exports: $(echo "$exported" | grep -c .) symbols exported, $(echo "$declared" | grep -c .) functions declared in include/"
        report exports "$(printf '%s' "$out" | grep -c . || true)"
        ;;
    *)
        echo "house-rules.sh: unknown rule '$rule'" >&2
        exit 2
        ;;
    esac
done
exit "$failed"
