#!/usr/bin/env python3
"""PyTorch reference of `fleet bench` (run on the GPU machine).

The same workloads and method as cli/bench.c and bench/cuda_floor.cu, in
PyTorch eager (nn.Linear, a small nn.Module for the MLP) and, for mlp-graph,
the MLP captured with torch.cuda.CUDAGraph per thread. For each thread count
every Python thread owns a torch.cuda.Stream and its inputs (a Linear's
weights are per thread; the MLP is one module shared by all threads, as
fleet's model is), checks its op's result once against a CPU reference in
float64, then loops { op; synchronize } while the main thread times a warm-up
and `--windows` windows of `--window-ms`. All threads start each window
together (a barrier); a window's ops/s is the ops summed over threads over
its wall time. Reported: median window with min and max, speedup = median /
median at the smallest thread count (1 by default), efficiency = speedup per
thread relative to it.

Float32 with TF32 off (torch.backends.cuda.matmul.allow_tf32 = False): the
check's tolerance (5e-6 of the sum of |terms| of each output) catches TF32.
Uses torch only (no numpy). Exit status: 0, 1 (a check or a call failed),
2 (bad usage), 77 (no PyTorch or no CUDA device, or a model workload's
package, transformers or torchvision, missing).

Model workloads, the references of `fleet bench --model` (named in
--workloads only; one row per --batch, named "model:<workload> b<B>"):
minilm, a transformers BertModel with all-MiniLM-L6-v2's config (6 layers,
384 hidden, 12 heads, 1536 intermediate; no pooler, as the ONNX export has
none; random weights, or the real ones from --minilm-weights DIR) on
input_ids, attention_mask and token_type_ids of ones (as fleet makes integer
inputs) at batch B and sequence --seq (default 128); resnet50, torchvision's
ResNet-50 (random weights, eval) on [B, 3, 224, 224] uniform in [-1, 1).
One module shared by all threads (as fleet's model is), each thread with its
own inputs on its own stream; "-graph" (minilm-graph, resnet50-graph)
captures the forward as a torch.cuda.CUDAGraph per thread and replays it.
Their check: each thread's output against a first single run on the main
thread, normwise relative error <= 1e-5.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import traceback

# name -> (what, in, out, batch, sync, mode); in == 0: the MLP
WORKLOADS = {
    "seed-device-sync": ("nn.Linear(256,128) batch 4, device-wide sync", 256, 128, 4,
                         "device", "eager"),
    "seed-stream-sync": ("nn.Linear(256,128) batch 4, stream sync", 256, 128, 4,
                         "stream", "eager"),
    "linear64": ("nn.Linear(64,64) batch 4, stream sync", 64, 64, 4, "stream", "eager"),
    "linear2048": ("nn.Linear(2048,2048) batch 64, stream sync", 2048, 2048, 64,
                   "stream", "eager"),
    "mlp": ("MLP 512-1024-1024-512 batch 1 (ReLU between), eager, stream sync", 0, 0, 1,
            "stream", "eager"),
    "mlp-graph": ("the MLP as a torch.cuda.CUDAGraph per thread, replay + stream sync",
                  0, 0, 1, "stream", "graph"),
}
# model workloads: name -> what (mode "graph" when the name ends in -graph)
MODELS = {
    "minilm": "BertModel, all-MiniLM-L6-v2's config, batch B x --seq, eager",
    "minilm-graph": "the same as a torch.cuda.CUDAGraph per thread",
    "resnet50": "torchvision ResNet-50, batch B x 3 x 224 x 224, eager",
    "resnet50-graph": "the same as a torch.cuda.CUDAGraph per thread",
}
MLP_WIDTHS = (512, 1024, 1024, 512)
TOLERANCE = 5e-6
MODEL_NORMWISE = 1e-5


def log(msg):
    print("torch_bench: " + msg, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="torch_bench.py",
        description="PyTorch reference of `fleet bench`: each thread owns a CUDA stream "
                    "and loops { op; synchronize }. Prints a Markdown table of ops/s "
                    "(median window, min, max), speedup and efficiency.",
        epilog="workloads: " + "; ".join(f"{k}: {v[0]}" for k, v in WORKLOADS.items()) +
               "; model workloads (named only): " +
               "; ".join(f"{k}: {v}" for k, v in MODELS.items()))
    p.add_argument("--threads", default="1,2,4,8,16",
                   help="comma-separated thread counts (default 1,2,4,8,16)")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help="comma-separated workloads (default: all)")
    p.add_argument("--windows", type=int, default=5, help="timed windows (default 5)")
    p.add_argument("--window-ms", type=int, default=300, help="window length (default 300)")
    p.add_argument("--warmup-ms", type=int, default=200, help="warm-up (default 200)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--batch", default="1,32",
                   help="model workloads: comma-separated batch sizes (default 1,32)")
    p.add_argument("--seq", type=int, default=128, help="minilm: sequence length (default 128)")
    p.add_argument("--minilm-weights", metavar="DIR",
                   help="minilm: all-MiniLM-L6-v2's folder (config.json, model.safetensors); "
                        "default random weights")
    a = p.parse_args(argv)
    try:
        a.batch = [int(b) for b in a.batch.split(",")]
    except ValueError:
        p.error("--batch: comma-separated integers")
    if not a.batch or min(a.batch) < 1 or a.seq < 1:
        p.error("--batch and --seq: at least 1")
    try:
        a.threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        p.error("--threads: comma-separated integers")
    if not a.threads or min(a.threads) < 1:
        p.error("--threads: counts of at least 1")
    a.workloads = a.workloads.split(",")
    for w in a.workloads:
        if w not in WORKLOADS and w not in MODELS:
            p.error(f"unknown workload '{w}' (known: {', '.join(list(WORKLOADS) + list(MODELS))})")
    if a.windows < 1 or a.window_ms < 1 or a.warmup_ms < 0:
        p.error("--windows and --window-ms at least 1, --warmup-ms at least 0")
    return a


def driver_version():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30).stdout.strip().splitlines()
        if out:
            return out[0].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/driver/nvidia/version") as f:
            words = f.readline().split()
        return words[words.index("Module") + 1]
    except (OSError, ValueError, IndexError):
        return "?"


def build_model(name, args):
    """The shared module of a model workload, in eval mode on the CPU
    (float32, seeded random weights unless --minilm-weights)."""
    import torch
    torch.manual_seed(0)
    if name.startswith("minilm"):
        from transformers import BertConfig, BertModel
        if args.minilm_weights:
            m = BertModel.from_pretrained(args.minilm_weights, add_pooling_layer=False)
        else:
            m = BertModel(BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                                     num_attention_heads=12, intermediate_size=1536,
                                     max_position_embeddings=512), add_pooling_layer=False)

        class LastHiddenState(torch.nn.Module):  # the ONNX export's one output
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.m(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        return LastHiddenState(m).eval()
    import torchvision
    return torchvision.models.resnet50(weights=None).eval()


def model_inputs(name, batch, args, device):
    """A model workload's inputs: the same for every thread, as fleet makes
    them (integer inputs 1; floats uniform in [-1, 1), seeded)."""
    import torch
    if name.startswith("minilm"):
        ones = torch.ones((batch, args.seq), dtype=torch.int64, device=device)
        return {"input_ids": ones, "attention_mask": ones.clone(), "token_type_ids": ones.clone()}
    g = torch.Generator().manual_seed(17)
    x = torch.rand((batch, 3, 224, 224), generator=g, dtype=torch.float32) * 2 - 1
    return {"x": x.to(device)}


def normwise(got, ref):
    """||got - ref|| / ||ref|| in float64 (inf when got is not finite)."""
    import torch
    if got.shape != ref.shape or not bool(torch.isfinite(got).all()):
        return float("inf")
    g, r = got.to(torch.float64), ref.to(torch.float64)
    norm = float(r.norm())
    return float((g - r).norm()) / norm if norm > 0 else float("inf")


def main(argv):
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        log("PyTorch is not installed")
        return 77
    if not torch.cuda.is_available():
        log("no CUDA device")
        return 77
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    from model_reference import MLP  # beside this script; imports torch, present here

    def uniform(shape, seed, scale):
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * scale

    def init_linear(lin, seed):
        with torch.no_grad():
            lin.weight.copy_(uniform(lin.weight.shape, seed, lin.in_features ** -0.5))
            lin.bias.copy_(uniform(lin.bias.shape, seed + 1000, 0.1))

    def check(layers, x, got):
        """got against the float64 forward pass on the CPU, to TOLERANCE of
        sum |h w| + |b| of each output's terms (last layer)."""
        h = x.detach().to("cpu", torch.float64)
        for i, lin in enumerate(layers):
            w = lin.weight.detach().to("cpu", torch.float64)
            b = lin.bias.detach().to("cpu", torch.float64)
            scale = h.abs() @ w.abs().T + b.abs()
            h = h @ w.T + b
            if i + 1 < len(layers):
                h = torch.relu(h)
        err = (got.to(torch.float64) - h).abs() / (TOLERANCE * scale + 1e-300)
        worst = float(err.max()) if err.numel() else 0.0
        ok = bool(torch.isfinite(got).all()) and worst <= 1.0
        return ok, worst

    class Run:
        """One thread count of one workload."""

        def __init__(self, name, threads, mlp, model=None, batch=None, expected=None):
            self.name, self.threads, self.mlp = name, threads, mlp
            # a model workload: the shared module, its batch, the first run's output
            self.model, self.expected = model, expected
            if model is not None:
                self.what, self.n_in, self.n_out, self.batch, self.sync = \
                    MODELS[name], -1, 0, batch, "stream"
                self.mode = "graph" if name.endswith("-graph") else "eager"
            else:
                self.what, self.n_in, self.n_out, self.batch, self.sync, self.mode = \
                    WORKLOADS[name]
            self.barrier = threading.Barrier(threads + 1)
            self.setup_lock = threading.Lock()  # serialises setup and graph capture
            self.stop = False
            self.quit = False
            self.failed = None  # the first failure's text
            self.counts = [0] * threads

        def fail(self, text):
            if self.failed is None:
                self.failed = text
            self.barrier.abort()

        def setup(self, index, stream):
            """Builds this thread's op on its stream and checks it once."""
            if self.model is not None:
                module, layers, x = self.model, None, None
                feeds = model_inputs(self.name, self.batch, args, "cuda")

                def forward(module=module, feeds=feeds):
                    return module(**feeds)
            else:
                if self.n_in > 0:
                    module = torch.nn.Linear(self.n_in, self.n_out)
                    init_linear(module, 1000 + index)
                    module = module.to("cuda")
                    layers = [module]
                    x = uniform((self.batch, self.n_in), 1 + index, 1.0).to("cuda")
                else:
                    module = self.mlp
                    layers = list(module.layers)
                    x = uniform((self.batch, MLP_WIDTHS[0]), 7 + index, 1.0).to("cuda")
                feeds = x

                def forward(module=module, x=x):
                    return module(x)
            with torch.inference_mode():
                y = forward()
                y = forward()  # warm: the first use loads kernels
                stream.synchronize()
                if self.mode == "graph":
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, stream=stream,
                                          capture_error_mode="thread_local"):
                        y = forward()
                    y.fill_(float("nan"))  # check what the replay computes
                    graph.replay()
                    op = graph.replay
                    keep = (graph, feeds, y)
                else:
                    op = forward
                    keep = (module, feeds)
                got = y.to("cpu")  # synchronizes the stream
            if self.model is not None:
                err = normwise(got, self.expected)
                if not err <= MODEL_NORMWISE:
                    raise RuntimeError(f"CHECK FAILED, thread {index}: normwise relative error "
                                       f"{err:.3g} against the first run (bound "
                                       f"{MODEL_NORMWISE})")
                return op, keep
            ok, worst = check(layers, x, got)
            if not ok:
                raise RuntimeError(f"CHECK FAILED, thread {index}: worst error {worst:.3g} "
                                   "x the tolerance")
            return op, keep

        def worker(self, index, windows):
            try:
                stream = torch.cuda.Stream()
                with torch.cuda.stream(stream):
                    with self.setup_lock:
                        op, keep = self.setup(index, stream)
                    sync = (torch.cuda.synchronize if self.sync == "device"
                            else stream.synchronize)
                    self.barrier.wait()  # ready
                    self.barrier.wait()  # decided
                    if self.quit:
                        return
                    with torch.inference_mode():
                        for phase in range(windows + 1):  # the warm-up, then windows
                            if phase > 0:
                                self.barrier.wait()  # start
                            n = 0
                            while not self.stop:
                                op()
                                sync()
                                n += 1
                            self.counts[index] = n
                            self.barrier.wait()  # end
                    del keep
            except threading.BrokenBarrierError:
                pass
            except Exception:  # noqa: BLE001 - reported by the main thread
                self.fail(f"thread {index}: " + traceback.format_exc().strip())

        def measure(self, opts):
            pool = [threading.Thread(target=self.worker, args=(i, opts.windows), daemon=True)
                    for i in range(self.threads)]
            for t in pool:
                t.start()
            rates = []
            try:
                self.barrier.wait()  # ready
                self.quit = self.failed is not None
                self.barrier.wait()  # decided: the warm-up starts
                time.sleep(opts.warmup_ms / 1000)
                self.stop = True
                self.barrier.wait()  # end of the warm-up
                for _ in range(opts.windows):
                    self.stop = False
                    self.barrier.wait()  # start
                    t0 = time.perf_counter()
                    time.sleep(opts.window_ms / 1000)
                    self.stop = True
                    self.barrier.wait()  # end: every thread's last op is done
                    t1 = time.perf_counter()
                    rates.append(sum(self.counts) / (t1 - t0))
            except threading.BrokenBarrierError:
                self.stop = True
            for t in pool:
                t.join()
            if self.failed is not None:
                return None
            rates.sort()
            k = len(rates)
            median = rates[k // 2] if k % 2 else 0.5 * (rates[k // 2 - 1] + rates[k // 2])
            return {"median": median, "min": rates[0], "max": rates[-1]}

    card = torch.cuda.get_device_name(0)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    conns = os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS")
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), Python "
          f"{sys.version.split()[0]}, on {card}, driver {driver_version()}, {today}"
          f"{'; CUDA_DEVICE_MAX_CONNECTIONS=' + conns if conns else ''}; median of "
          f"{args.windows} windows of {args.window_ms} ms after {args.warmup_ms} ms "
          "warm-up\n")
    print("| workload | threads | ops/s | min | max | speedup | efficiency |")
    print("|---|---:|---:|---:|---:|---:|---:|", flush=True)

    results, rc = [], 0

    def report(row, threads, r, base, batch=None):
        speedup = r["median"] / base[0]
        efficiency = speedup * base[1] / threads
        def rate(x):  # a model row's rates may be a few per second
            return f"{x:.0f}" if not batch or x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"
        print(f"| {row} | {threads} | {rate(r['median'])} | {rate(r['min'])} | "
              f"{rate(r['max'])} | {speedup:.2f} | {efficiency:.2f} |", flush=True)
        out = {"program": "torch", "workload": row, "threads": threads,
               "ops_per_s": round(r["median"], 3 if batch else None),
               "min": round(r["min"], 3 if batch else None),
               "max": round(r["max"], 3 if batch else None), "speedup": round(speedup, 4),
               "efficiency": round(efficiency, 4), "card": card}
        if batch:
            out |= {"batch": batch, "samples_per_s": round(r["median"] * batch, 3)}
        results.append(out)

    def run_model(name):
        """A model workload's rows, one per batch; its exit status."""
        try:
            module = build_model(name, args).to("cuda")
        except ImportError as e:
            log(f"{name}: {e.name} is not installed: skipped")
            return 77
        status = 0
        for batch in args.batch:
            row = f"model:{name} b{batch}"
            with torch.inference_mode():
                expected = module(**model_inputs(name, batch, args, "cuda")).to("cpu")
            base = None
            for threads in args.threads:
                log(f"{row}, {threads} thread{'s' if threads > 1 else ''}...")
                run = Run(name, threads, None, module, batch, expected)
                r = run.measure(args)
                torch.cuda.synchronize()
                if r is None:
                    log(f"{row} failed, not timed: {run.failed}")
                    status = 1
                    break
                base = base or (r["median"], threads)
                report(row, threads, r, base, batch)
        del module
        torch.cuda.empty_cache()
        return status

    for name in args.workloads:
        if name in MODELS:
            status = run_model(name)
            rc = 1 if 1 in (rc, status) else rc or status
            continue
        mlp = None
        if WORKLOADS[name][1] == 0:  # one MLP shared by all threads
            mlp = MLP(MLP_WIDTHS)
            for i, lin in enumerate(mlp.layers):
                init_linear(lin, 300 + i)
            mlp = mlp.to("cuda")
            torch.cuda.synchronize()
        base = None
        for threads in args.threads:
            log(f"{name}, {threads} thread{'s' if threads > 1 else ''}...")
            run = Run(name, threads, mlp)
            r = run.measure(args)
            torch.cuda.synchronize()
            if r is None:
                log(f"{name} failed, not timed: {run.failed}")
                rc = 1
                break
            base = base or (r["median"], threads)
            report(name, threads, r, base)
        del mlp
        torch.cuda.empty_cache()

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
