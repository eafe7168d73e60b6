#!/usr/bin/env bash
# verify/run-spin.sh — exhaustive Spin model checking of fleet's concurrent
# protocols (issue 7; the project brief VERIFICATION.md, "Model checking with
# Spin").
#
#   verify/stream_pool.pml  stream-slot protocol (runtime/stream_pool.c)
#   verify/allocator.pml    allocator free/reuse, generations, record_stream
#                           events (runtime/allocator.c)
#   verify/batcher.pml      dynamic batcher queue, tickets, runners, shutdown
#                           drain/cancel (batch/batcher.c)
#   verify/capture_gate.pml the CUDA graph capture gate of a stream: sharers,
#                           foreign submitters, device syncs (stream_pool.c)
#   verify/cpu_stream.pml   a cpu stream's hand-off: waiters run tasks, spin,
#                           park; wake-ups only to the parked (cpu_stream.c)
#   No model for a TLS small-block cache: fleet has none.
#
# Every configuration of a correct model must finish an exhaustive search
# (no bitstate hashing, no depth or memory truncation) with 0 errors; every
# deliberately broken variant (-DBROKEN_*, and CHECK_STALE_RELEASE, which
# demonstrates a documented API limitation) must be rejected by Spin with at
# least one error. Prints a Markdown table and exits non-zero on any FAIL.
#
# Needs spin (Debian package `spin`) and a C compiler. Environment:
#   SPIN_MEMLIM  MB pan may use per run (default 2048); hitting it is a FAIL
#   SPIN_DEPTH   pan's -m search depth bound (default 100000); hitting it is a FAIL
#   SPIN_TIMEOUT seconds per pan run (default 300); hitting it is a FAIL
#   SPIN_JOBS    runs at a time (default: the number of CPUs, at most 4)
#   CC           C compiler for pan.c (default cc)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
memlim="${SPIN_MEMLIM:-2048}"
depth="${SPIN_DEPTH:-100000}"
timeout_s="${SPIN_TIMEOUT:-300}"
cc="${CC:-cc}"
njobs="${SPIN_JOBS:-$(nproc 2>/dev/null || echo 2)}"
[ "$njobs" -le 4 ] || njobs=4

for tool in spin "$cc"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run-spin.sh: '$tool' not found (apt-get install -y spin gcc)" >&2
        exit 2
    fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/fleet-spin.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start_all=$(date +%s)

n=0

# run MODEL EXPECT MODE LABEL PROCS DEFINES...  (in the background; the row
# goes to $work/N/row, the verdict to $work/N/result)
#   EXPECT: ok (exhaustive, 0 errors) | bug (>= 1 error)
#   MODE:   safety (assertions + invalid end states) | ltl (acceptance cycles
#           under weak fairness, the model's ltl claim)
run() {
    n=$((n + 1))
    while [ "$(jobs -rp | wc -l)" -ge "$njobs" ]; do
        wait -n || true
    done
    run_one "$n" "$@" &
}

run_one() {
    local dir="$work/$1" model="$2" expect="$3" mode="$4" label="$5" procs="$6"
    shift 6
    mkdir -p "$dir"
    cp "$here/$model.pml" "$dir/"
    # Broken variants stop at their first error after a few thousand states:
    # compiling pan.c fast matters more there than running it fast.
    # Exhaustive runs store states with COLLAPSE compression (exact, not an
    # approximation like hash compaction): the allocator model needs ~1.3 GB
    # so, 2.0 GB without.
    local opt=(-O2 -DCOLLAPSE)
    [ "$expect" = ok ] || opt=(-O0)
    local out="$dir/pan.out" ccflags=("${opt[@]}" -w "-DMEMLIM=$memlim") panflags=("-m$depth" -n)
    if [ "$mode" = safety ]; then
        ccflags+=(-DSAFETY)
    else
        panflags+=(-a -f)
    fi
    local status=ok
    if ! (cd "$dir" && spin -a "$@" "$model.pml" >spin.out 2>&1); then
        status="spin -a failed: $(tail -n 1 "$dir/spin.out")"
    elif ! (cd "$dir" && "$cc" "${ccflags[@]}" -o pan pan.c >cc.out 2>&1); then
        status="cc failed: $(tail -n 1 "$dir/cc.out")"
    else
        local rc=0
        (cd "$dir" && timeout "$timeout_s" ./pan "${panflags[@]}" >"$out" 2>&1) || rc=$?
        if [ "$rc" -eq 124 ]; then
            status="timed out after ${timeout_s}s"
        fi
    fi

    local states=- dep=- errors=- finding="" incomplete=""
    if [ -f "$out" ]; then
        states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | head -n 1)
        dep=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out" | head -n 1)
        errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | head -n 1)
        finding=$(grep -m 1 '^pan:1:' "$out" | sed 's/^pan:1: //; s/ (at depth [0-9]*)//; s/|/\\|/g' || true)
        if grep -qiE 'search not completed|max search depth too small|depth too small|out of memory|MEMLIM|hash table is full|bitstate' "$out"; then
            incomplete=yes
        fi
        [ -n "$states" ] || states=-
        [ -n "$dep" ] || dep=-
        [ -n "$errors" ] || errors=-
    fi

    local result=FAIL
    if [ "$status" = ok ] && [ "$errors" != - ]; then
        if [ "$expect" = ok ] && [ "$errors" -eq 0 ] && [ -z "$incomplete" ]; then
            result=PASS
        elif [ "$expect" = bug ] && [ "$errors" -ge 1 ]; then
            result=PASS
        fi
    fi
    if [ "$status" != ok ]; then
        finding="$status"
    elif [ "$expect" = ok ] && [ -n "$incomplete" ]; then
        finding="search incomplete: $(grep -m 1 -iE 'search not completed|depth too small|out of memory|MEMLIM|hash table' "$out" | sed 's/|/\\|/g')"
    elif [ "$expect" = bug ] && [ "$errors" = 0 ]; then
        finding="broken variant NOT detected"
    fi
    echo "| $model | $label | $procs | $states | $dep | $errors | $result | ${finding:--} |" >"$dir/row"
    echo "$result" >"$dir/result"
    printf '%-12s %-58s %s\n' "$model" "$label" "$result" >&2
}

# ---- stream pool -------------------------------------------------------------
# A: capacity 3 (2 pool slots), thread 0 runs 2 rounds, threads 1-2 one each.
# B: capacity 2 (1 pool slot, so 2 threads can wait at once), 2 rounds each.
A=(-DCAP=3 -DROUNDS0=2 -DROUNDS=1)
B=(-DCAP=2 -DROUNDS0=2 -DROUNDS=2)
P="3 threads + init"
sp=stream_pool
run $sp ok safety "correct, cap 3, wait -1"                    "$P" "${A[@]}" -DWAIT_INF
run $sp ok ltl    "correct, cap 3, wait -1, LTL nolost (-a -f)" "$P" "${A[@]}" -DWAIT_INF -DLTL_NOLOST
run $sp ok safety "correct, cap 3, timed wait"                 "$P" "${A[@]}" -DWAIT_TIMED
run $sp ok safety "correct, cap 3, wait 0 (sharing)"           "$P" "${A[@]}" -DWAIT_SHARE
run $sp ok safety "correct, cap 2, wait -1"                    "$P" "${B[@]}" -DWAIT_INF
run $sp ok ltl    "correct, cap 2, wait -1, LTL nolost (-a -f)" "$P" "${B[@]}" -DWAIT_INF -DLTL_NOLOST
run $sp ok safety "correct, cap 2, timed wait"                 "$P" "${B[@]}" -DWAIT_TIMED
run $sp ok safety "correct, cap 2, wait 0 (sharing)"           "$P" "${B[@]}" -DWAIT_SHARE
for v in BROKEN_PLAIN_TAKE BROKEN_NO_WAKE BROKEN_UNLOCKED_BROADCAST BROKEN_WAITERS_FIRST \
         BROKEN_LATE_ANNOUNCE BROKEN_NO_EXIT_RELEASE BROKEN_RELEASE_NO_CAS; do
    run $sp bug safety "$v (cap 3, wait -1)" "$P" "${A[@]}" -DWAIT_INF "-D$v"
done
for v in BROKEN_UNLOCKED_BROADCAST BROKEN_LATE_ANNOUNCE; do
    run $sp bug ltl "$v (cap 2, wait -1, LTL nolost)" "$P" "${B[@]}" -DWAIT_INF -DLTL_NOLOST "-D$v"
done
run $sp bug safety "CHECK_STALE_RELEASE: API limitation (cap 3)" "$P" "${A[@]}" -DWAIT_INF -DCHECK_STALE_RELEASE

# ---- allocator ------------------------------------------------------------------
P="owner, stale, streams A and B + init"
al=allocator
run $al ok safety "correct, 2 blocks, 3 rounds, segment release" "$P"
for v in BROKEN_NO_GENERATION BROKEN_NO_STATE_CHECK BROKEN_HANDOUT_NO_BUMP \
         BROKEN_RECLAIM_NO_WAIT BROKEN_IGNORE_USES BROKEN_LIST_BEFORE_SYNC \
         BROKEN_RELEASE_NO_WAIT BROKEN_RELEASE_LATE_SEQ; do
    run $al bug safety "$v" "$P" "-D$v"
done

# ---- capture gate ----------------------------------------------------------------
P="capturer, sharer, foreign, foreign try, syncer"
cg=capture_gate
run $cg ok safety "correct, 2 captures, 2 submits" "$P"
run $cg ok safety "correct, 3 captures, 3 submits" "$P" -DCAPTURES=3 -DSUBMITS=3
for v in BROKEN_LATE_ANNOUNCE BROKEN_NO_RECHECK BROKEN_TRY_LOOK_FIRST BROKEN_SYNC_NO_WAIT; do
    run $cg bug safety "$v" "$P" "-D$v"
done

# ---- cpu stream ------------------------------------------------------------------
P="worker, 2 callers, poller, shutdown"
cs=cpu_stream
run $cs ok safety "correct, 3 kernels + a host function" "$P"
run $cs ok safety "correct, 4 kernels + a host function" "$P" -DK=4
for v in BROKEN_NO_SIGNAL BROKEN_NO_HAND_BACK BROKEN_HELPER_TAKES_HOST BROKEN_NO_EXECUTING \
         BROKEN_PARK_FLAG_LATE; do
    run $cs bug safety "$v" "$P" "-D$v"
done

# ---- batcher --------------------------------------------------------------------
# Queue capacity 2, max_batch 3 rows, requests of 1 or 2 rows; every run
# explores drain and cancel, shutdown at any moment or only after every
# client got its answers. N clients x K requests, R runners.
bt=batcher
run $bt ok safety "correct, N=3 K=2, 1 runner"                      "3 clients, 1 runner, shutdown + init" -DN=3 -DK=2 -DR=1
run $bt ok safety "correct, N=3 K=2, 1 runner, client 0 pipelines" "3 clients, 1 runner, shutdown + init" -DN=3 -DK=2 -DR=1 -DPIPELINE=1
run $bt ok safety "correct, N=3 K=2, 2 runners"                     "3 clients, 2 runners, shutdown + init" -DN=3 -DK=2 -DR=2
run $bt ok safety "correct, N=3 K=1, 2 runners, unreduced run phase" "3 clients, 2 runners, shutdown + init" -DN=3 -DK=1 -DR=2 -DSPLIT_RUN
run $bt ok safety "correct, N=4 K=1, 1 runner"                      "4 clients, 1 runner, shutdown + init" -DN=4 -DK=1 -DR=1
run $bt ok safety "correct, N=4 K=1, 2 runners"                     "4 clients, 2 runners, shutdown + init" -DN=4 -DK=1 -DR=2
P="3 clients, 2 runners, shutdown + init"
for v in BROKEN_EXIT_EARLY BROKEN_CANCEL_SKIPS_QUEUE BROKEN_CHECK_OUTSIDE_LOCK BROKEN_SPLIT_OFFSET \
         BROKEN_DOUBLE_COMPLETE BROKEN_NO_SIGNAL BROKEN_SHUTDOWN_SIGNAL BROKEN_NEXT_AFTER_COMPLETE \
         BROKEN_WAIT_IF BROKEN_SPIN_PARKS_BLIND; do
    run $bt bug safety "$v (N=3 K=2)" "$P" -DN=3 -DK=2 -DR=2 "-D$v"
done

wait
failures=0
elapsed=$(( $(date +%s) - start_all ))
echo
echo "| model | variant | processes | states | depth | errors | result | first error found by pan |"
echo "|---|---|---|---|---|---|---|---|"
for i in $(seq 1 "$n"); do
    if [ -f "$work/$i/row" ]; then
        cat "$work/$i/row"
    else
        echo "| ? | run $i did not report | - | - | - | - | FAIL | - |"
    fi
    [ "$(cat "$work/$i/result" 2>/dev/null)" = PASS ] || failures=$((failures + 1))
done
echo
echo "$n runs, $failures FAIL, ${elapsed}s wall, $njobs at a time (spin $(spin -V | sed -n 's/Spin Version \([^ ]*\).*/\1/p'))"
[ "$failures" -eq 0 ]
