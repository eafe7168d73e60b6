#!/usr/bin/env python3
"""fleet's cpu rows against a direct-BLAS floor, PyTorch and onnxruntime, in one run.

    python3 bench/cpu_compare.py [--fleet build/fleet] [--rounds 3] [--threads 1,2]
        [--workloads linear64,linear2048,mlp] [--windows 1] [--window-ms 500]
        [--warmup-ms 200] [--out FILE.md] [--raw FILE.json]

Each round runs the four programs one after another, in an order that rotates
from round to round (the machine may be shared: interleaving spreads its
noise over all of them), each over every (workload, threads):

  fleet   `fleet bench --backend cpu --json` (cli/bench.c)
  floor   bench/cpu_floor.c, direct cblas calls, built here with gcc -O2
          (OpenBLAS through pkg-config, else -lopenblas, else -lblas); the
          best call per shape: sgemv at one row (the MLP), sgemm otherwise
  torch   PyTorch eager on cpu: torch.set_num_threads(1) in every thread,
          torch.inference_mode, nn.Linear / an nn.Sequential MLP
  ort     onnxruntime CPUExecutionProvider, a model per workload built with
          onnx.helper (Gemm transB=1, Relu), intra_op_num_threads=1,
          inter_op_num_threads=1, sequential execution

Workloads (cli/bench.c): linear64 = Linear 64->64 batch 4, linear2048 =
Linear 2048->2048 batch 64 (both y = x W^T + b), mlp = 512-1024-1024-512 with
ReLU between, batch 1. One op is one forward (fleet: plus its stream sync).
T threads: torch and ort share one model (one session) and each thread has
its own input, as fleet's mlp threads share one model; fleet's and the
floor's linear threads each have their own weights too.

Method, all four (as fleet bench): T threads loop { op } counting ops; after
the warm-up the main thread reads the summed count at the edges of each
window (a window lasts until it holds 8 ops) and takes the median window's
ops/s. The table is the median over rounds of those figures. torch and ort
run in a child process of this script (--worker), so neither is imported here
and one's thread pools cannot affect the other's; a missing one gives '-'.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAMS = ("fleet", "floor", "torch", "ort")
WORKLOADS = {  # name: (kind, in, out, batch), as cli/bench.c
    "linear64": ("linear", 64, 64, 4),
    "linear2048": ("linear", 2048, 2048, 64),
    "mlp": ("mlp", 0, 0, 1),
}
MLP_WIDTHS = (512, 1024, 1024, 512)
MIN_WINDOW_OPS = 8
MAX_WINDOW_S = 30.0


def log(msg):
    print("cpu_compare: " + msg, file=sys.stderr, flush=True)


# ---- the python workers (run as `cpu_compare.py --worker torch|ort ...`) ----------------

def measure(make_loop, threads, windows, window_ms, warmup_ms):
    """ops/s of the median window: T threads run make_loop(i, counts, stop)."""
    counts = [0] * threads
    stop = [False]
    errors = []
    ready = threading.Barrier(threads + 1)

    def run(i):
        try:
            loop = make_loop(i)  # set-up and a first checked op
        except Exception as e:  # report, and let the others stop
            errors.append(repr(e))
            stop[0] = True
            ready.wait()
            return
        ready.wait()
        loop(i, counts, stop)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    ready.wait()
    rates = []
    if not errors:
        time.sleep(warmup_ms / 1000)
        for _ in range(windows):
            c0, t0 = sum(counts), time.perf_counter()
            time.sleep(window_ms / 1000)
            while sum(counts) - c0 < MIN_WINDOW_OPS and time.perf_counter() - t0 < MAX_WINDOW_S:
                time.sleep(0.01)
            rates.append((sum(counts) - c0) / (time.perf_counter() - t0))
    stop[0] = True
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return statistics.median(rates)


def torch_worker(a):
    import torch
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    print(json.dumps({"version": torch.__version__}), flush=True)
    for name in a.workloads:
        kind, fin, fout, batch = WORKLOADS[name]
        torch.manual_seed(0)
        if kind == "linear":
            model = torch.nn.Linear(fin, fout)
        else:
            layers = []
            for l in range(len(MLP_WIDTHS) - 1):
                layers.append(torch.nn.Linear(MLP_WIDTHS[l], MLP_WIDTHS[l + 1]))
                if l + 2 < len(MLP_WIDTHS):
                    layers.append(torch.nn.ReLU())
            model = torch.nn.Sequential(*layers)
            fin = MLP_WIDTHS[0]
        model.eval()

        def make_loop(i):
            torch.set_num_threads(1)  # per thread, as asked
            x = torch.rand(batch, fin, generator=torch.Generator().manual_seed(7 + i)) * 2 - 1
            with torch.inference_mode():
                y = model(x)
                assert torch.isfinite(y).all()

            def loop(i, counts, stop):
                torch.set_num_threads(1)
                with torch.inference_mode():
                    while not stop[0]:
                        model(x)
                        counts[i] += 1
            return loop

        for t in a.threads:
            r = measure(make_loop, t, a.windows, a.window_ms, a.warmup_ms)
            print(json.dumps({"program": "torch", "workload": name, "threads": t,
                              "ops_per_s": r}), flush=True)


def ort_model(name):
    """(model bytes, input width, batch, numpy reference function) of a workload."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    kind, fin, fout, batch = WORKLOADS[name]
    widths = (fin, fout) if kind == "linear" else MLP_WIDTHS
    rng = np.random.default_rng(0)
    nodes, inits, ws = [], [], []
    cur = "x"
    for l in range(len(widths) - 1):
        w = (rng.uniform(-1, 1, (widths[l + 1], widths[l])) / np.sqrt(widths[l])).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, widths[l + 1]).astype(np.float32)
        ws.append((w, b))
        inits += [numpy_helper.from_array(w, "w%d" % l), numpy_helper.from_array(b, "b%d" % l)]
        last = l + 2 == len(widths)
        out = "y" if last else "h%d" % l
        nodes.append(helper.make_node("Gemm", [cur, "w%d" % l, "b%d" % l],
                                      [out if last else out + "g"], transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [out + "g"], [out]))
        cur = out
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, widths[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, widths[-1]])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8  # what any recent onnxruntime reads
    onnx.checker.check_model(m)

    def ref(x):
        h = x.astype(np.float64)
        for l, (w, b) in enumerate(ws):
            h = h @ w.T.astype(np.float64) + b
            if l + 1 < len(ws):
                h = np.maximum(h, 0)
        return h
    return m.SerializeToString(), widths[0], batch, ref


def ort_worker(a):
    import numpy as np
    import onnxruntime as ort
    print(json.dumps({"version": ort.__version__}), flush=True)
    for name in a.workloads:
        data, fin, batch, ref = ort_model(name)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])

        def make_loop(i):
            x = np.random.default_rng(7 + i).uniform(-1, 1, (batch, fin)).astype(np.float32)
            feed = {"x": x}
            y = sess.run(["y"], feed)[0]
            want = ref(x)
            err = np.abs(y - want).max() / (1 + np.abs(want).max())
            if not err < 1e-4:
                raise RuntimeError("%s: onnxruntime differs from numpy by %g" % (name, err))

            def loop(i, counts, stop):
                run, outs = sess.run, ["y"]
                while not stop[0]:
                    run(outs, feed)
                    counts[i] += 1
            return loop

        for t in a.threads:
            r = measure(make_loop, t, a.windows, a.window_ms, a.warmup_ms)
            print(json.dumps({"program": "ort", "workload": name, "threads": t,
                              "ops_per_s": r}), flush=True)


# ---- the driver ----------------------------------------------------------------------------

def build_floor(tmp):
    """bench/cpu_floor.c built with gcc -O2 into tmp: its path, or None."""
    src = os.path.join(HERE, "cpu_floor.c")
    exe = os.path.join(tmp, "cpu_floor")
    if not os.path.exists(src) or shutil.which("gcc") is None:
        return None
    flags = []
    try:
        flags.append(subprocess.run(["pkg-config", "--cflags", "--libs", "openblas"],
                                    capture_output=True, text=True, check=True).stdout.split())
    except (OSError, subprocess.CalledProcessError):
        pass
    flags += [["-lopenblas"], ["-lblas"]]
    for f in flags:
        cmd = ["gcc", "-O2", "-std=c11", src, "-o", exe] + f + ["-lpthread", "-lm", "-ldl"]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            log("floor built: " + " ".join(cmd))
            return exe
    log("could not build bench/cpu_floor.c: the floor column is '-'")
    return None


def json_lines(text):
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def run_program(prog, a, fleet, floor, tmp):
    """Rows [{workload, threads, ops_per_s}] of one program over the selection, and a
    version/library string where it gave one."""
    common = ["--windows", str(a.windows), "--window-ms", str(a.window_ms),
              "--warmup-ms", str(a.warmup_ms)]
    threads, workloads = ",".join(map(str, a.threads)), ",".join(a.workloads)
    if prog == "fleet":
        if fleet is None:
            return [], None
        out = os.path.join(tmp, "fleet.json")
        p = subprocess.run([fleet, "bench", "--backend", "cpu", "--threads", threads,
                            "--workloads", workloads, "--json", out] + common,
                           capture_output=True, text=True)
        if p.returncode != 0:
            log("fleet bench failed (%d): %s" % (p.returncode, p.stderr.strip()[-500:]))
            return [], None
        with open(out) as f:
            return json.load(f), None
    if prog == "floor":
        if floor is None:
            return [], None
        cmd = [floor, "--threads", threads, "--workloads", workloads] + common
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", prog,
               "--threads", threads, "--workloads", workloads] + common
    p = subprocess.run(cmd, capture_output=True, text=True)
    rows = json_lines(p.stdout)
    if p.returncode != 0:
        why = "not installed" if p.returncode == 77 else p.stderr.strip()[-500:]
        log("%s failed (%d): %s" % (prog, p.returncode, why))
    version = next((r["version"] for r in rows if "version" in r), None)
    if prog == "floor":
        version = next((r.get("blas") for r in rows if "blas" in r), None)
    return [r for r in rows if "workload" in r], version


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        n = re.search(r"^CPU\(s\):\s*(\d+)$", out, re.M)
        return "%s, %s cpus" % (m.group(1).strip() if m else "unknown",
                                n.group(1) if n else os.cpu_count())
    except OSError:
        return "unknown, %s cpus" % os.cpu_count()


def fleet_blas(fleet):
    """The line of `fleet info` (else `fleet bench --help`) that names the BLAS."""
    if fleet is None:
        return "unknown"
    for args in (["info"], ["bench", "--help"]):
        p = subprocess.run([fleet] + args, capture_output=True, text=True)
        for line in (p.stdout + p.stderr).splitlines():
            if "BLAS" in line:
                return line.strip()
    return "unknown"


def fmt_rate(x):
    if x is None:
        return "-"
    return "%.0f" % x if x >= 100 else "%.1f" % x if x >= 10 else "%.2f" % x


def fmt_ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


def report(a, med, per_round, header):
    lines = header + ["",
                      "| workload | threads | fleet ops/s | floor | torch | ort | fleet/ort "
                      "| fleet/torch | fleet/floor |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in a.workloads:
        for t in a.threads:
            f, fl, to, o = (med.get((p, w, t)) for p in PROGRAMS)
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                w, t, fmt_rate(f), fmt_rate(fl), fmt_rate(to), fmt_rate(o),
                fmt_ratio(f, o), fmt_ratio(f, to), fmt_ratio(f, fl)))

    def goal(text, prog, w, t, need):
        f, other = med.get(("fleet", w, t)), med.get((prog, w, t))
        if w not in a.workloads or t not in a.threads or f is None or not other:
            return "- n/a  %s (not measured)" % text
        return "- %s %s: %.2fx" % ("PASS" if f / other >= need else "MISS", text, f / other)

    lines += ["", "Goals:",
              goal("fleet >= 1.0x onnxruntime, mlp, 1 thread", "ort", "mlp", 1, 1.0),
              goal("fleet >= 1.0x onnxruntime, linear2048, 1 thread", "ort", "linear2048", 1, 1.0),
              goal("fleet >= 1.0x onnxruntime, linear2048, 2 threads", "ort", "linear2048", 2, 1.0),
              goal("fleet >= 0.5x the floor, linear64, 1 thread", "floor", "linear64", 1, 0.5),
              "", "Every round (ops/s, in round order):", "",
              "| workload | threads | fleet | floor | torch | ort |", "|---|---:|---|---|---|---|"]
    for w in a.workloads:
        for t in a.threads:
            cells = [" / ".join(fmt_rate(x) for x in per_round.get((p, w, t), [])) or "-"
                     for p in PROGRAMS]
            lines.append("| %s | %d | %s |" % (w, t, " | ".join(cells)))
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="cpu_compare.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fleet", default="build/fleet", help="the fleet binary (default build/fleet)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--workloads", default="linear64,linear2048,mlp")
    p.add_argument("--windows", type=int, default=1, help="windows per (workload, threads)")
    p.add_argument("--window-ms", type=int, default=500)
    p.add_argument("--warmup-ms", type=int, default=200)
    p.add_argument("--out", metavar="FILE.md", help="also write the table there")
    p.add_argument("--raw", metavar="FILE.json", help="write every round's figures there")
    p.add_argument("--worker", choices=("torch", "ort"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    try:
        a.threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        p.error("--threads takes integers, e.g. 1,2")
    a.workloads = [w for w in a.workloads.split(",") if w]
    bad = [w for w in a.workloads if w not in WORKLOADS]
    if bad or not a.workloads:
        p.error("unknown workload %s (have %s)" % (",".join(bad), ",".join(WORKLOADS)))
    if a.rounds < 1 or a.windows < 1 or a.window_ms < 1 or a.warmup_ms < 0 or min(a.threads) < 1:
        p.error("--rounds, --windows, --window-ms and --threads at least 1")
    return a


def main(argv):
    a = parse_args(argv)
    if a.worker is not None:
        try:
            (torch_worker if a.worker == "torch" else ort_worker)(a)
        except ImportError as e:
            print("cpu_compare worker: %s" % e, file=sys.stderr)
            return 77
        return 0

    fleet = a.fleet
    if not os.path.isabs(fleet) and not os.path.exists(fleet):
        fleet = os.path.join(ROOT, fleet)  # build/fleet from the repository root
    if not os.access(fleet, os.X_OK):
        log("no fleet binary at %s: the fleet column is '-'" % a.fleet)
        fleet = None
    per_round, versions = {}, {}
    with tempfile.TemporaryDirectory(prefix="cpu_compare.") as tmp:
        floor = build_floor(tmp)
        for r in range(a.rounds):
            order = PROGRAMS[r % 4:] + PROGRAMS[:r % 4]  # rotate: no program always first
            for prog in order:
                log("round %d/%d: %s" % (r + 1, a.rounds, prog))
                rows, version = run_program(prog, a, fleet, floor, tmp)
                if version:
                    versions[prog] = version
                for row in rows:
                    key = (prog, row["workload"], int(row["threads"]))
                    per_round.setdefault(key, []).append(float(row["ops_per_s"]))
    med = {k: statistics.median(v) for k, v in per_round.items()}

    env = " ".join("%s=%s" % (k, v) for k, v in sorted(os.environ.items())
                   if k.startswith("OPENBLAS_")) or "none"
    header = [
        "# fleet cpu vs floor / PyTorch / onnxruntime",
        "",
        "- CPU: %s" % cpu_model(),
        "- date: %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "- fleet: %s; BLAS: %s" % (a.fleet, fleet_blas(fleet)),
        "- floor: bench/cpu_floor.c, %s; sgemv at batch 1 (mlp), sgemm otherwise"
        % versions.get("floor", "not built"),
        "- OPENBLAS_* in force: %s" % env,
        "- torch %s, onnxruntime %s" % (versions.get("torch", "-"), versions.get("ort", "-")),
        "- method: median over %d round(s) (programs interleaved, order rotated) of each "
        "program's median of %d window(s) of %d ms after %d ms warm-up"
        % (a.rounds, a.windows, a.window_ms, a.warmup_ms),
    ]
    text = report(a, med, per_round, header)
    print(text, end="")
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)
    if a.raw:
        with open(a.raw, "w") as f:
            json.dump([{"program": k[0], "workload": k[1], "threads": k[2], "ops_per_s": v}
                       for k, v in sorted(per_round.items())], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
