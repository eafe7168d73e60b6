#!/usr/bin/env python3
"""onnxruntime CPU reference of `fleet bench --model` (cli/bench.c).

    python3 bench/ort_bench.py model.onnx [--batch 1,32] [--dim sequence=128]
        [--threads 1,2,4,8,16] [--sessions shared|per-thread] [--name NAME]
        [--windows 5] [--window-ms 300] [--warmup-ms 200] [--quick] [--json FILE]

The same method and table as fleet's model rows: for each batch size and
thread count, N Python threads call one InferenceSession (--sessions shared,
the default: intra_op_num_threads=1, inter_op_num_threads=1, sequential
execution; onnxruntime releases the GIL inside run, so the calls proceed in
parallel) or one session each (--sessions per-thread: for when a shared
session serialises), on the same inputs as fleet makes them (floats uniform
in [-1, 1) from fleet's seed-17 linear congruential sequence, integers 1,
bools true: cli/model_inputs.h). Before timing, a first single run gives the
expected outputs (finite) and every thread's first run must give them again
(bitwise, or within 1e-6 normwise relative error). Then each thread loops
{ run } counting runs; after a warm-up the main thread reads the summed count
at the edges of --windows windows of --window-ms (a window lasts until it
holds 8 runs, 30 s at most, as fleet's do) and reports the median window's
runs/s with min and max, samples/s (runs x batch), p50/p99 latency of one
run, speedup over the first thread count and efficiency.

Named dimensions: the first dimension of the first input is the batch when
it is named or unknown (as fleet's importer takes it); every other named one
must be bound with --dim. Exit status: 0; 1 (a check or a run failed); 2
(bad usage); 77 (onnxruntime or numpy is not installed).
"""
import argparse
import datetime
import json
import os
import platform
import sys
import threading
import time

MIN_WINDOW_RUNS = 8
MAX_WINDOW_S = 30.0
NORMWISE = 1e-6
LATENCY_SAMPLES = 8192
SEED = 17


def log(msg):
    print("ort_bench: " + msg, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ort_bench.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--batch", action="append", default=None,
                   help="batch sizes, B[,B...] or the option again (default 1)")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=N",
                   help="bind a named dimension (e.g. sequence=128)")
    p.add_argument("--threads", default="1,2,4,8,16", help="thread counts (default 1,2,4,8,16)")
    p.add_argument("--sessions", choices=("shared", "per-thread"), default="shared")
    p.add_argument("--name", help="the rows' model name (default: as fleet bench names it)")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--window-ms", type=int, default=300)
    p.add_argument("--warmup-ms", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="3 windows of 100 ms after 50 ms")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args(argv)
    try:
        a.threads = [int(t) for t in a.threads.split(",")]
        a.batch = [int(b) for arg in (a.batch or ["1"]) for b in arg.split(",")]
        a.dim = dict((d.split("=", 1)[0], int(d.split("=", 1)[1])) for d in a.dim)
    except (ValueError, IndexError):
        p.error("--threads and --batch take integers, --dim name=N")
    if min(a.threads) < 1 or min(a.batch) < 1 or any(v < 1 for v in a.dim.values()):
        p.error("thread counts, batch sizes and dims are at least 1")
    if a.quick:
        a.windows, a.window_ms, a.warmup_ms = 3, 100, 50
    if a.windows < 1 or a.window_ms < 1 or a.warmup_ms < 0:
        p.error("--windows and --window-ms at least 1, --warmup-ms at least 0")
    return a


def model_name(path):
    """As cli/bench.c names a row: the file's name without .onnx, or for
    model.onnx its folder's without test_."""
    base = os.path.basename(path)
    if base.endswith(".onnx"):
        base = base[:-5]
    if base == "model":
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
        if folder:
            base = folder[5:] if folder.startswith("test_") and len(folder) > 5 else folder
    return base


def lcg_states(np, seed, n):
    """The n states after seed of fleet's sequence s' = s * 1103515245 +
    12345 (mod 2^32), vectorised by doubling; and the state after them."""
    a, c = 1103515245, 12345
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out, seed
    mul = np.array([a], dtype=np.uint64)  # the affine maps of steps 1..m
    add = np.array([c], dtype=np.uint64)
    mask = np.uint64(0xFFFFFFFF)
    out[0] = (a * seed + c) & 0xFFFFFFFF
    m = 1
    while m < n:
        k = min(m, n - m)
        # states m..m+k-1 are the maps of steps 1..k applied to state m-1
        out[m:m + k] = (mul[:k] * out[m - 1] + add[:k]) & mask
        if m + k < n:
            mul, add = (np.concatenate([mul, (mul * mul[-1]) & mask]),
                        np.concatenate([add, (mul * add[-1] + add) & mask]))
        m += k
    return out, int(out[-1])


def make_inputs(np, session, batch, dims):
    """Every input of the session as fleet makes it (cli/model_inputs.h)."""
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
             "tensor(bool)": np.bool_, "tensor(float16)": np.float16}
    inputs, seed, batch_name, batched = {}, SEED, None, False
    for i, inp in enumerate(session.get_inputs()):
        shape = []
        for d, s in enumerate(inp.shape):
            if isinstance(s, int) and s >= 0:
                shape.append(s)
            elif isinstance(s, str) and s in dims:
                shape.append(dims[s])
            elif i == 0 and d == 0 or (s is not None and s == batch_name):
                batch_name = s if i == 0 else batch_name
                batched = True
                shape.append(batch)
            else:
                raise ValueError(f"input '{inp.name}' dimension {d} ({s}) is "
                                 "neither the batch nor bound: give --dim NAME=N")
        if inp.type not in types:
            raise ValueError(f"input '{inp.name}' has type {inp.type}, not made here")
        n = int(np.prod(shape, dtype=np.int64))
        states, seed = lcg_states(np, seed, n)
        dt = types[inp.type]
        if dt is np.float32:
            v = (((states >> np.uint64(8)) & np.uint64(0xFFFF)).astype(np.float32) / 32768.0
                 - 1.0).astype(np.float32)
        elif dt is np.float16:  # the integer 1 in two bytes, as fleet writes it
            v = np.ones(n, dtype=np.uint16).view(np.float16)
        else:
            v = np.ones(n, dtype=dt)
        inputs[inp.name] = v.reshape(shape)
    if not batched and batch != 1:
        raise ValueError("the model has no batch dimension: --batch 1 only")
    return inputs


def same(np, got, ref):
    """0 when bitwise equal, else the normwise relative error (inf when not
    finite or not comparable)."""
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return float("inf")
    if np.array_equal(got.view(np.uint8), ref.view(np.uint8)):
        return 0.0
    if got.dtype.kind != "f" or not np.isfinite(got).all():
        return float("inf")
    g, r = got.astype(np.float64), ref.astype(np.float64)
    norm = float(np.linalg.norm(r))
    return float(np.linalg.norm(g - r)) / norm if norm > 0 else float("inf")


class Run:
    """One batch size and thread count."""

    def __init__(self, ort, np, sessions, inputs, expected, threads):
        self.ort, self.np = ort, np
        self.sessions, self.inputs, self.expected = sessions, inputs, expected
        self.threads = threads
        self.counts = [0] * threads
        self.latencies = [[] for _ in range(threads)]
        self.ready = threading.Barrier(threads + 1)
        self.stop = False
        self.recording = False
        self.failed = None

    def worker(self, i):
        np = self.np
        session = self.sessions[i if len(self.sessions) > 1 else 0]
        entered = False
        try:
            outs = session.run(None, self.inputs)  # the check: the first run again
            for k, (got, ref) in enumerate(zip(outs, self.expected)):
                e = same(np, np.asarray(got), ref)
                if not e <= NORMWISE:
                    raise RuntimeError(f"thread {i}: output {k} differs from the first run's "
                                       f"(normwise relative error {e:.3g}, bound {NORMWISE})")
            entered = True
            self.ready.wait()
            lat, n = self.latencies[i], 0
            while not self.stop:
                t0 = time.perf_counter()
                session.run(None, self.inputs)
                if self.recording:
                    if len(lat) < LATENCY_SAMPLES:
                        lat.append(time.perf_counter() - t0)
                    else:
                        lat[n % LATENCY_SAMPLES] = time.perf_counter() - t0
                    n += 1
                self.counts[i] += 1
        except threading.BrokenBarrierError:
            pass
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            if self.failed is None:
                self.failed = f"{type(e).__name__}: {e}"
            if not entered:
                self.ready.abort()

    def measure(self, opts):
        pool = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                for i in range(self.threads)]
        for t in pool:
            t.start()
        rates = []
        try:
            self.ready.wait()
            time.sleep(opts.warmup_ms / 1000)
            self.recording = True
            for _ in range(opts.windows):
                c0, t0 = sum(self.counts), time.perf_counter()
                time.sleep(opts.window_ms / 1000)
                while (sum(self.counts) - c0 < MIN_WINDOW_RUNS and self.failed is None and
                       time.perf_counter() - t0 < MAX_WINDOW_S):
                    time.sleep(0.01)
                c1, t1 = sum(self.counts), time.perf_counter()
                rates.append((c1 - c0) / (t1 - t0))
        except threading.BrokenBarrierError:
            pass
        self.stop = True
        for t in pool:
            t.join()
        if self.failed is not None:
            return None
        rates.sort()
        lat = sorted(x for per in self.latencies for x in per)
        return {"median": rates[len(rates) // 2], "min": rates[0], "max": rates[-1],
                "p50_us": lat[len(lat) // 2] * 1e6 if lat else 0.0,
                "p99_us": lat[len(lat) * 99 // 100] * 1e6 if lat else 0.0}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def rate(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def main(argv):
    args = parse_args(argv)
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        log(f"{e.name} is not installed")
        return 77
    if not os.path.isfile(args.model):
        log(f"cannot open '{args.model}'")
        return 1

    def session():
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])

    name = args.name or model_name(args.model)
    t0 = time.perf_counter()
    first = session()
    load_ms = (time.perf_counter() - t0) * 1e3
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                     "OMP_NUM_THREADS") if k in os.environ)
    print(f"onnxruntime {ort.__version__} (CPUExecutionProvider, 1 intra-op and 1 inter-op "
          f"thread per session, sessions {args.sessions}), Python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, on {cpu_name()} ({os.cpu_count()} CPUs), {today}"
          f"{'; ' + env if env else ''}; median of {args.windows} windows of {args.window_ms} "
          f"ms after {args.warmup_ms} ms warm-up\n")
    dims = "".join(f"; {k}={v}" for k, v in args.dim.items())
    print(f"model {args.model}: session created in {load_ms:.0f} ms{dims}; inputs made as "
          "`fleet run` makes them, each thread's outputs checked against a first run\n")
    print("| model | threads | runs/s | min | max | samples/s | p50 ms | p99 ms | speedup | "
          "efficiency |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)

    results, rc = [], 0
    for batch in args.batch:
        row = f"model:{name} b{batch}"
        try:
            inputs = make_inputs(np, first, batch, args.dim)
            expected = [np.asarray(o) for o in first.run(None, inputs)]
        except Exception as e:  # noqa: BLE001 - one batch failing is reported
            log(f"{row}: the first run: {type(e).__name__}: {e}")
            rc = 1
            break
        bad = [k for k, o in enumerate(expected) if o.dtype.kind == "f" and
               not np.isfinite(o).all()]
        if bad:
            log(f"{row}: output {bad[0]} of the first run is not finite")
            rc = 1
            break
        base = None
        for threads in args.threads:
            log(f"{row}, {threads} thread{'s' if threads > 1 else ''}...")
            sessions = ([first] if args.sessions == "shared" else
                        [first] + [session() for _ in range(threads - 1)])
            r = Run(ort, np, sessions, inputs, expected, threads).measure(args)
            if r is None:
                log(f"{row} failed, not timed")
                rc = 1
                break
            base = base or (r["median"], threads)
            speedup = r["median"] / base[0] if base[0] > 0 else float("nan")
            efficiency = speedup * base[1] / threads
            print(f"| {row} | {threads} | {rate(r['median'])} | {rate(r['min'])} | "
                  f"{rate(r['max'])} | {rate(r['median'] * batch)} | {r['p50_us'] / 1e3:.3f} | "
                  f"{r['p99_us'] / 1e3:.3f} | {speedup:.2f} | {efficiency:.2f} |", flush=True)
            results.append({"program": "onnxruntime", "workload": row, "threads": threads,
                            "ops_per_s": round(r["median"], 3), "min": round(r["min"], 3),
                            "max": round(r["max"], 3), "speedup": round(speedup, 4),
                            "efficiency": round(efficiency, 4), "p50_us": round(r["p50_us"], 1),
                            "p99_us": round(r["p99_us"], 1), "batch": batch,
                            "samples_per_s": round(r["median"] * batch, 3),
                            "sessions": args.sessions, "model": args.model,
                            "device": cpu_name()})
        if rc:
            break
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
