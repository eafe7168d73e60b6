#!/usr/bin/env python3
"""make verify: fleet's verification suite and its report (VERIFICATION.md).

Builds the normal, ThreadSanitizer and AddressSanitizer+UBSan
configurations; runs the whole test suite on every backend present (cpu;
cuda when a GPU is there) and under both sanitizers on cpu; runs the Spin
models, the fuzzers (time-boxed), the static checks and `fleet bench` on the
default backend; writes verify-report.md with one line per named check.
Exits non-zero if anything failed. --quick: shorter fuzzing and bench (CI).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = str(os.cpu_count() or 2)

# (named check of VERIFICATION.md, CTest test or None, how it is decided)
NAMED_CHECKS = [
    ("Fork Safety", "fork_safety"),
    ("Simple Parallel", "simple_parallel"),
    ("Extended Stress", "extended_stress"),
    ("Thread Boundary", "thread_boundary"),
    ("Stream Assignment", "stream_assignment"),
    ("Benchmark (nn.Linear)", None),
    ("Real Models Parallel", "real_models_parallel"),
    ("Stream Pool Wraparound", "stream_pool_wraparound"),
    ("Thread Churn", "thread_churn"),
    ("Cross-Stream Tensor", "cross_stream_tensor"),
    ("Linalg Ops Parallel", "linalg_ops_parallel"),
    ("Large Workload Efficiency", None),
    ("Max Streams Stress (31t)", "max_streams_stress"),
    ("OOM Recovery Parallel", "oom_recovery_parallel"),
    ("Graph Compilation Stress", "graph_compilation_stress"),
    ("Stream Pool Round Robin", "stream_pool_round_robin"),
    ("Stream Pool Reuse Churn", "stream_pool_reuse_churn"),
    ("Stream Pool Sync Active", "stream_pool_sync_active"),
    ("Static Cleanup", "static_cleanup"),
    ("Static Atexit", "static_atexit"),
    ("Static Thread Cleanup", "static_thread_cleanup"),
    ("Fork Active Threads", "fork_active_threads"),
    ("Fork Parent Continues", "fork_parent_continues"),
    ("Fork MP Spawn", "fork_mp_spawn"),
]

SANITIZER_PATTERNS = {
    "thread": [r"WARNING: ThreadSanitizer"],
    "address": [r"ERROR: AddressSanitizer", r"ERROR: LeakSanitizer", r"runtime error:"],
}


def log(msg):
    print(f"verify: {msg}", file=sys.stderr, flush=True)


def sh(cmd, env=None, timeout=None, log_path=None):
    """Run cmd (a list), return (rc, output)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    t0 = time.time()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, text=True, errors="replace")
        rc, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        rc, out = 124, (e.stdout or "") if isinstance(e.stdout, str) else "timed out"
    if log_path:
        with open(log_path, "w") as f:
            f.write(out)
    log(f"{' '.join(cmd)[:90]}: rc {rc}, {time.time() - t0:.0f} s")
    return rc, out


def build(dirname, options):
    rc, out = sh(["cmake", "-S", ".", "-B", dirname] + options, log_path=f"{LOGS}/{dirname}-configure.log")
    if rc == 0:
        rc, out = sh(["cmake", "--build", dirname, "-j", JOBS], log_path=f"{LOGS}/{dirname}-build.log")
    return rc == 0


def run_suite(build_dir, label, env):
    """ctest with a JUnit file; {test: (status, seconds, output)}."""
    junit = f"{LOGS}/{label}.xml"
    # The figures of passed tests come from their output: keep it whole
    # (CTest cuts a passed test's output at 1 KiB by default).
    sh(["ctest", "--test-dir", build_dir, "-j", JOBS, "--timeout", "600", "--output-junit", junit,
        "--test-output-size-passed", "65536", "--test-output-size-failed", "262144"],
       env=env, log_path=f"{LOGS}/{label}.log")
    results = {}
    try:
        for tc in ET.parse(junit).getroot().iter("testcase"):
            out = tc.findtext("system-out") or ""
            status = {"run": "PASS", "fail": "FAIL"}.get(tc.get("status"), "SKIP")
            if tc.find("skipped") is not None:
                status = "SKIP"
            results[tc.get("name")] = (status, float(tc.get("time") or 0), out)
    except (ET.ParseError, FileNotFoundError) as e:
        log(f"{label}: no JUnit results ({e})")
    return results


def key_figure(status, seconds, out):
    if status == "SKIP":
        m = re.search(r"SKIP: (.*)", out)
        return m.group(1).strip()[:110] if m else "skipped"
    lines = [l.strip() for l in out.splitlines() if l.startswith("  ") and l.strip()]
    fig = lines[-1] if lines else ""
    fig = re.sub(r"\s+", " ", fig)[:110]
    return f"{seconds:.1f} s" + (f"; {fig}" if fig else "")


def sanitizer_reports(results, kind):
    n = 0
    for _, (_, _, out) in results.items():
        for pat in SANITIZER_PATTERNS[kind]:
            n += len(re.findall(pat, out))
    return n


def system_info():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1) if m else cpu
    except OSError:
        pass
    gpu = "none"
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=30)
        if p.returncode == 0 and p.stdout.strip():
            gpu = "; ".join(l.strip() for l in p.stdout.strip().splitlines())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return cpu, os.cpu_count(), gpu


def main():
    global LOGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short fuzzing and bench (CI)")
    ap.add_argument("--out", default="verify-report.md")
    ap.add_argument("--fuzz-seconds", type=int, default=None)
    ap.add_argument("--cmake-args", default="", help="extra cmake options for every build")
    args = ap.parse_args()
    LOGS = os.path.join(ROOT, "build-verify-logs")
    os.makedirs(LOGS, exist_ok=True)
    t_start = time.time()
    failures = []

    # ---- builds
    configs = [("build", ["-DFLEET_WERROR=ON"]),
               # the sanitizers check fleet's host code on the cpu backend
               # (compute-sanitizer covers the GPU: scripts/gpu-check.sh)
               ("build-tsan-cpu", ["-DFLEET_WERROR=ON", "-DFLEET_SANITIZE=thread", "-DFLEET_CUDA=OFF"]),
               ("build-asan-cpu", ["-DFLEET_WERROR=ON", "-DFLEET_SANITIZE=address", "-DFLEET_CUDA=OFF"])]
    built = {}
    extra = args.cmake_args.split()
    configs = [(d, opts + extra) for d, opts in configs]
    for d, opts in configs:
        built[d] = build(d, opts)
        if not built[d]:
            failures.append(f"build {d}")
    cuda_built = False
    try:
        with open(os.path.join(ROOT, "build", "CMakeCache.txt")) as f:
            cuda_built = "FLEET_HAVE_CUDA" in f.read() or os.path.exists(
                os.path.join(ROOT, "build", "CMakeFiles", "fleet.dir", "src", "backend", "cuda"))
    except OSError:
        pass

    # ---- which backends have a device
    backends = ["cpu"]
    if built["build"]:
        rc, out = sh(["./build/fleet", "info"])
        if re.search(r"cuda:0", out):
            backends.append("cuda")

    # ---- suites
    suites = {}
    for b in backends:
        if built["build"]:
            suites[b] = run_suite("build", f"suite-{b}", {"FLEET_BACKEND": b})
    san = {}
    for kind, d in (("thread", "build-tsan-cpu"), ("address", "build-asan-cpu")):
        if not built[d]:
            continue
        env = {"FLEET_BACKEND": "cpu", "FLEET_TEST_SCALE": "0.25"}
        if kind == "thread":
            env["TSAN_OPTIONS"] = "halt_on_error=1 second_deadlock_stack=1"
        else:
            env["ASAN_OPTIONS"] = "detect_leaks=1 abort_on_error=1"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1 halt_on_error=1"
        res = run_suite(d, f"suite-{kind}", env)
        san[kind] = (res, sanitizer_reports(res, kind))

    # Every failed test by name, with the end of its output (the report's
    # "Failed tests" section).
    failed_tests = []
    for b, res in suites.items():
        for name, (status, _, out) in res.items():
            if status == "FAIL":
                failures.append(f"{name} on {b}")
                failed_tests.append((f"{name} (suite on {b})", out))
    for kind, (res, reports) in san.items():
        bad = sorted(n for n, (s, _, _) in res.items() if s == "FAIL")
        if bad or reports:
            failures.append(f"{kind} sanitizer: {len(bad)} failed" +
                            (f" ({', '.join(bad)})" if bad else "") + f", {reports} reports")
        failed_tests += [(f"{n} (under the {kind} sanitizer)", res[n][2]) for n in bad]

    # ---- soak: mixed work under a tight memory limit, every value checked;
    # under ASan+UBSan always, and in the normal build too in full mode.
    soaks = []
    soak_runs = [("build-asan-cpu", "ASan+UBSan", 60)]
    if not args.quick:
        soak_runs.append(("build", "normal build", 120))
    for d, label, secs in soak_runs:
        exe = os.path.join(ROOT, d, "tests", "fleet-soak")
        if not built.get(d) or not os.path.exists(exe):
            soaks.append((label, "FAIL", ["not built"]))
            failures.append(f"soak ({label}): not built")
            continue
        # ASan's quarantine (256 MB by default) keeps freed memory resident
        # and fills for minutes, which the soak's RSS check would read as
        # fleet growing: a 16 MB quarantine is full within the warm-up.
        env = {"FLEET_BACKEND": "cpu",
               "ASAN_OPTIONS": "detect_leaks=1 abort_on_error=1 quarantine_size_mb=16",
               "UBSAN_OPTIONS": "print_stacktrace=1 halt_on_error=1"}
        rc, out = sh([exe, str(secs)], env=env, timeout=secs + 600,
                     log_path=f"{LOGS}/soak-{d}.log")
        figs = [l[len("soak: "):] for l in out.splitlines() if l.startswith("soak: ")]
        reports = sum(len(re.findall(p, out)) for p in SANITIZER_PATTERNS["address"])
        status = "PASS" if rc == 0 and reports == 0 else "FAIL"
        if status == "FAIL":
            failures.append(f"soak ({label})")
            failed_tests.append((f"soak ({label})", out))
        soaks.append((label, status, figs + ([f"{reports} sanitizer reports"] if reports else [])))

    # The fault-injection walk's figures, from its output in each suite.
    walks = []
    for label, res in [(f"suite on {b}", r) for b, r in suites.items()] + \
                      [(f"{k} sanitizer", r) for k, (r, _) in san.items()]:
        out = res.get("fault_injection_walk", ("", 0, ""))[2]
        for l in out.splitlines():
            if "allocation points walked" in l:
                walks.append(f"{label}: {l.strip()}")

    # Tools `make verify` installs; where they cannot be installed (the GPU
    # machine has no package registry) their part is SKIP, saying so.
    def missing(*tools):
        return [t for t in tools if shutil.which(t) is None]

    # ---- Spin
    spin_table, spin_summary = [], ""
    if missing("spin", "cc"):
        spin_summary = f"SKIP: {', '.join(missing('spin', 'cc'))} not installed"
    else:
        rc_spin, spin_out = sh(["./verify/run-spin.sh"], log_path=f"{LOGS}/spin.log", timeout=1200)
        spin_table = [l for l in spin_out.splitlines() if l.startswith("|")]
        spin_summary = next((l for l in spin_out.splitlines() if "runs," in l), "no summary")
        if rc_spin != 0:
            failures.append("Spin models")

    # ---- fuzzing
    fuzz_s = args.fuzz_seconds or (20 if args.quick else 60)
    if missing("clang"):
        fuzz_lines = ["fuzz all: SKIP: clang (libFuzzer) not installed"]
    else:
        rc_fuzz, fuzz_out = sh(["./scripts/fuzz.sh", str(fuzz_s)], log_path=f"{LOGS}/fuzz.log",
                               timeout=fuzz_s + 900)
        fuzz_lines = [l for l in fuzz_out.splitlines() if l.startswith("fuzz ")]
        if rc_fuzz != 0:
            failures.append("fuzzing")

    # ---- static checks
    if missing("clang", "cppcheck"):
        static_table = [f"SKIP: {', '.join(missing('clang', 'cppcheck'))} not installed"]
    else:
        rc_static, static_out = sh(["./scripts/static-checks.sh"], log_path=f"{LOGS}/static.log",
                                   timeout=1800)
        static_table = [l for l in static_out.splitlines() if l.startswith("|")]
        if rc_static != 0:
            failures.append("static checks")

    # ---- bench (default backend)
    bench_json = f"{LOGS}/bench.json"
    bench_args = ["./build/fleet", "bench", "--json", bench_json]
    if args.quick:
        bench_args += ["--quick", "--threads", "1,2"]
    rc_bench, bench_out = (sh(bench_args, log_path=f"{LOGS}/bench.log", timeout=1800)
                           if built["build"] else (1, ""))
    bench_table = [l for l in bench_out.splitlines() if l.startswith("|")]
    bench_rows = []
    try:
        with open(bench_json) as f:
            bench_rows = json.load(f)
    except (OSError, ValueError):
        pass
    if rc_bench != 0:
        failures.append("fleet bench")

    def bench_figure(workloads):
        rows = [r for r in bench_rows if r["workload"] in workloads]
        if not rows:
            return "FAIL", "no bench result"
        parts = [f"{r['workload']} {r['threads']}t {r['ops_per_s']:.0f}/s" for r in rows
                 if r["threads"] in (1, 2)]
        return "PASS", "; ".join(parts)

    # ---- report
    cpu, ncpu, gpu = system_info()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    lines = []
    w = lines.append
    w("# fleet verification report")
    w("")
    w(f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    w(f"- system: {cpu}, {ncpu} CPUs, {platform.system()} {platform.release()}")
    w(f"- GPU: {gpu}")
    w(f"- backends tested: {', '.join(backends)}" + ("" if "cuda" in backends else
      f" (cuda {'built, no GPU present' if cuda_built else 'not built'})"))
    w(f"- mode: {'quick' if args.quick else 'full'}; took {time.time() - t_start:.0f} s")
    w("")
    w("## Summary")
    w("")
    w("**PASS**" if not failures else "**FAIL**: " + "; ".join(failures))
    w("")
    w("## Named checks")
    w("")
    w("| check | " + " | ".join(backends) + " | key figure |")
    w("|---|" + "---|" * len(backends) + "---|")
    default = "cuda" if "cuda" in backends else "cpu"  # fleet bench's device
    for title, test in NAMED_CHECKS:
        cells, fig = [], ""
        for b in backends:
            if test is None:
                if b != default:
                    cells.append("(bench runs on the default backend)")
                    continue
                status, fig = bench_figure(
                    ["seed-device-sync", "seed-stream-sync"] if title.startswith("Benchmark")
                    else ["linear2048"])
                if status == "FAIL":
                    failures.append(title)
            else:
                status, secs, out = suites.get(b, {}).get(test, ("FAIL", 0, "not run"))
                if test not in suites.get(b, {}):
                    failures.append(f"{title} on {b}: not run")
                f = key_figure(status, secs, out)
                fig = f if status != "SKIP" or not fig else fig  # the last backend's
                if status == "SKIP":
                    status = f"SKIP ({f})"
            cells.append(status)
        w(f"| {title} | " + " | ".join(cells) + f" | {fig} |")
    w("")
    w("Other tests: " + ", ".join(
        f"{n} {s}" + ("" if b == "cpu" else f" ({b})")
        for b, res in suites.items() for n, (s, _, _) in sorted(res.items())
        if n not in {t for _, t in NAMED_CHECKS}))
    w("")
    w("## Sanitizers (whole suite, cpu, FLEET_TEST_SCALE=0.25)")
    w("")
    w("| sanitizer | tests passed | failed | reports found |")
    w("|---|---|---|---|")
    for kind, label in (("thread", "ThreadSanitizer"), ("address", "AddressSanitizer + UBSan")):
        if kind not in san:
            w(f"| {label} | build failed | - | - |")
            continue
        res, reports = san[kind]
        passed = sum(1 for s, _, _ in res.values() if s == "PASS")
        failed = sum(1 for s, _, _ in res.values() if s == "FAIL")
        w(f"| {label} | {passed} of {len(res)} | {failed} | {reports} |")
    w("")
    w("## Robustness")
    w("")
    w("Soak (tests/soak/soak.c: 16 threads of op chains, model runs, batcher requests and")
    w("record_stream churn under FLEET_MEMORY_LIMIT=32M with empty_cache every 50 ms; every")
    w("value checked; allocator, handles and RSS back to baseline at the end):")
    w("")
    w("| build | result | figures |")
    w("|---|---|---|")
    for label, status, figs in soaks:
        w(f"| {label} | {status} | {'; '.join(figs)} |")
    w("")
    w("Fault injection (tests/fault_injection_walk: each raw allocation failing in turn):")
    w("")
    for l in walks or ["(no figures: fault_injection_walk did not run)"]:
        w(f"- {l}")
    w("")
    leaks = sum(len(re.findall(r"ERROR: LeakSanitizer", o)) for _, _, o in
                san.get("address", ({}, 0))[0].values())
    w(f"Leaks (LeakSanitizer over the whole suite): {leaks}; sanitizer reports: " +
      ", ".join(f"{k} {n}" for k, (_, n) in san.items()))
    w("")
    if failed_tests:
        w("## Failed tests")
        w("")
        for name, out in failed_tests:
            tail = [l for l in out.rstrip().splitlines() if l.strip()][-8:]
            w(f"- {name}, last lines:")
            w("")
            w("```")
            lines.extend(tail or ["(no output)"])
            w("```")
            w("")
    w("## Model checking (Spin, exhaustive)")
    w("")
    lines.extend(spin_table or ["(no table: see build-verify-logs/spin.log)"])
    w("")
    w(spin_summary)
    w("")
    w("## Fuzzing")
    w("")
    w("| target | result |")
    w("|---|---|")
    for l in fuzz_lines or ["fuzz: no summary (see build-verify-logs/fuzz.log)"]:
        m = re.match(r"fuzz (\S+): (.*)", l)
        w(f"| {m.group(1) if m else '?'} | {m.group(2) if m else l} |")
    w("")
    w("## Static checks")
    w("")
    lines.extend(static_table or ["(no table: see build-verify-logs/static.log)"])
    w("")
    w(f"## Efficiency (`{' '.join(bench_args[1:])}`)")
    w("")
    lines.extend(bench_table or ["(fleet bench failed: see build-verify-logs/bench.log)"])
    w("")
    w("## Artifacts")
    w("")
    w(f"- git commit: {commit}{' (with uncommitted changes)' if dirty else ''}")
    for d, opts in configs:
        w(f"- {d}: cmake {' '.join(opts)}; {'built' if built[d] else 'FAILED'}")
    w(f"- logs and JUnit files: build-verify-logs/")
    if failures:
        lines[lines.index("## Summary") + 2] = "**FAIL**: " + "; ".join(dict.fromkeys(failures))
    with open(os.path.join(ROOT, args.out), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    log(f"wrote {args.out}: {'PASS' if not failures else 'FAIL'} in {time.time() - t_start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
