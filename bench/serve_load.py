#!/usr/bin/env python3
"""Load for fleet serve (a benchmark that prints a table, not a test).

N client threads, one HTTP/1.1 keep-alive connection each, send batch-1
infer requests (binary tensor extension, or JSON with --json) for S seconds
to a fleet serve it starts on 127.0.0.1 (and only there), for each N of
--connections; then the same model in-process, `fleet run --threads N
--batch 1` (N threads calling fleet_model_run directly, no server, no
batcher), for comparison. Prints requests/s, p50 and p99 latency, and the
server's rows per batch over the run (from /metrics) and the server
process's CPU time per request (user + system, /proc). Stops by itself.

    bench/serve_load.py --fleet build/fleet [--onnx model.onnx [--dim name=N]...]
                        [--connections 1,16,64] [--seconds 5] [--json] [--markdown]

Without --onnx the MLP of tests/serve/models.py (16 -> 32 -> 8) is served.
The client is Python (http.client, one thread per connection): on a small
machine it shares the cores with the server, so the figures are a floor for
the server, which the in-process row does not pay."""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "serve"))


def start_server(fleet, repo, extra):
    p = subprocess.Popen([fleet, "serve", "--models", repo, "--host", "127.0.0.1", "--port", "0", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    m = re.search(r":(\d+)$", p.stdout.readline().strip())
    if not m:
        p.kill()
        raise SystemExit("fleet serve did not start")
    return p, int(m.group(1))


def request_body(inputs, use_json):
    if use_json:
        body = json.dumps({"inputs": [{"name": n, "shape": list(a.shape), "datatype": dt,
                                        "data": a.ravel().tolist()} for n, a, dt in inputs]}).encode()
        return body, {"Content-Type": "application/json"}
    header = json.dumps({"inputs": [{"name": n, "shape": list(a.shape), "datatype": dt,
                                     "parameters": {"binary_data_size": a.nbytes}} for n, a, dt in inputs],
                         "parameters": {"binary_data_output": True}}).encode()
    body = header + b"".join(a.tobytes() for _, a, _ in inputs)
    return body, {"Inference-Header-Content-Length": str(len(header)),
                  "Content-Type": "application/octet-stream"}


def load(port, model, body, headers, n, seconds):
    lat = [[] for _ in range(n)]
    errors = [0] * n
    stop = time.monotonic() + seconds

    def worker(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        path = f"/v2/models/{model}/infer"
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            c.request("POST", path, body=body, headers=headers)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors[i] += 1
            lat[i].append(time.perf_counter() - t0)
        c.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    all_lat = np.array([x for xs in lat for x in xs])
    return len(all_lat) / wall, np.percentile(all_lat, 50) * 1e3, np.percentile(all_lat, 99) * 1e3, sum(errors)


def verify(port, model, body, headers, inputs, onnx_path):
    """One request's outputs against onnxruntime's for the same input:
    the largest normwise relative error, or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"verify: status {r.status}: {data[:200]!r}")
    hl = r.getheader("Inference-Header-Content-Length")
    head = json.loads(data[:int(hl)] if hl else data)
    at = int(hl) if hl else 0
    dt = {"FP32": np.float32, "INT64": np.int64, "INT32": np.int32, "FP16": np.float16}
    got = {}
    for o in head["outputs"]:
        if "data" in o:
            got[o["name"]] = np.array(o["data"], dt[o["datatype"]]).reshape(o["shape"])
        else:
            n = o["parameters"]["binary_data_size"]
            got[o["name"]] = np.frombuffer(data[at:at + n], dt[o["datatype"]]).reshape(o["shape"])
            at += n
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    want = sess.run(None, {n: a for n, a, _ in inputs})
    worst = 0.0
    for o, w in zip(sess.get_outputs(), want):
        y = got[o.name].astype(np.float64)
        worst = max(worst, float(np.linalg.norm((y - w).ravel()) / max(np.linalg.norm(w.ravel()), 1e-30)))
    return worst


def rows_and_batches(port, model):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    got = []
    for name in ("fleet_batcher_rows_total", "nv_inference_exec_count"):
        m = re.search(r'%s\{model="%s",version="1"\} ([0-9.]+)' % (name, re.escape(model)), text)
        got.append(float(m.group(1)) if m else float("nan"))
    return got


def cpu_seconds(pid):
    """user + system CPU seconds of a process so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(fleet, onnx_path, dims, n, seconds):
    args = [fleet, "run", onnx_path, "--threads", str(n), "--batch", "1", "--seconds", str(seconds)]
    for d in dims:
        args += ["--dim", d]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    m = re.search(r"([0-9.]+) runs/s.*p50 ([0-9.]+) ms, p99 ([0-9.]+) ms", out)
    return (float(m.group(1)), float(m.group(2)), float(m.group(3))) if m else (float("nan"),) * 3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fleet", default="build/fleet")
    ap.add_argument("--onnx", help="serve this ONNX model (default: the test MLP)")
    ap.add_argument("--dim", action="append", default=[], help="name=N for the model's other dims")
    ap.add_argument("--connections", default="1,16,64")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--json", action="store_true", help="JSON tensors instead of binary")
    ap.add_argument("--config", default="{}", help="the model's config.json (JSON text)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--verify", action="store_true",
                    help="first check one response against onnxruntime (normwise relative error)")
    a = ap.parse_args()
    conns = [int(x) for x in a.connections.split(",")]
    if a.seconds <= 0 or a.seconds > 600 or any(c < 1 or c > 1024 for c in conns):
        raise SystemExit("--seconds in (0, 600], connections in 1..1024")

    tmp = tempfile.mkdtemp(prefix="fleet-serve-load-")
    repo = os.path.join(tmp, "repo")
    cfg = json.loads(a.config)
    if a.onnx:
        import onnx
        os.makedirs(os.path.join(repo, "model"))
        os.symlink(os.path.abspath(a.onnx), os.path.join(repo, "model", "model.onnx"))
        cfg["dims"] = {d.split("=")[0]: int(d.split("=")[1]) for d in a.dim}
        m = onnx.load(a.onnx, load_external_data=False)
        init = {i.name for i in m.graph.initializer}
        rng = np.random.default_rng(0)
        inputs = []
        for i in m.graph.input:
            if i.name in init:
                continue
            shape = [1] + [d.dim_value or cfg["dims"].get(d.dim_param, 1) for d in i.type.tensor_type.shape.dim[1:]]
            et = i.type.tensor_type.elem_type
            if et == onnx.TensorProto.FLOAT:
                inputs.append((i.name, rng.standard_normal(shape).astype(np.float32), "FP32"))
            elif "mask" in i.name:
                arr = np.ones(shape, np.int64)
            elif "type" in i.name:
                arr = np.zeros(shape, np.int64)
            else:
                arr = rng.integers(1, 1000, shape).astype(np.int64)
            if et != onnx.TensorProto.FLOAT:
                inputs.append((i.name, arr, "INT64"))
        onnx_path, model = a.onnx, "model"
    else:
        import models
        models.make_repository(repo, builder=False, ints=False)
        onnx_path, model = os.path.join(repo, "mlp", "model.onnx"), "mlp"
        inputs = [("x", np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32), "FP32")]
    if cfg:
        with open(os.path.join(repo, model, "config.json"), "w") as f:
            json.dump(cfg, f)
    body, headers = request_body(inputs, a.json)
    proc, port = start_server(a.fleet, repo, [])
    rows = []
    checked = None
    try:
        if a.verify:
            checked = verify(port, model, body, headers, inputs, onnx_path)
        for n in conns:
            r0, b0 = rows_and_batches(port, model)
            c0 = cpu_seconds(proc.pid)
            rps, p50, p99, errs = load(port, model, body, headers, n, a.seconds)
            c1 = cpu_seconds(proc.pid)
            r1, b1 = rows_and_batches(port, model)
            per_batch = (r1 - r0) / max(b1 - b0, 1)
            cpu_us = (c1 - c0) / max(rps * a.seconds, 1) * 1e6
            rows.append((n, rps, p50, p99, errs, per_batch, cpu_us) +
                        in_process(a.fleet, onnx_path, a.dim, n, a.seconds))
            print(f"# {n} connections done", file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    load_avg = open("/proc/loadavg").read().split()[:3]
    hdr = ("connections", "server req/s", "p50 ms", "p99 ms", "errors", "rows/batch", "server cpu us/req",
           "in-process runs/s", "p50 ms", "p99 ms")
    if a.markdown:
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        for r in rows:
            print("| %d | %.0f | %.2f | %.2f | %d | %.2f | %.0f | %.0f | %.3f | %.3f |" % r)
    else:
        print(("%12s %13s %8s %8s %7s %10s %17s %18s %8s %8s") % hdr)
        for r in rows:
            print("%12d %13.0f %8.2f %8.2f %7d %10.2f %17.0f %18.0f %8.3f %8.3f" % r)
    print(f"model {model} ({'json' if a.json else 'binary'} tensors), {a.seconds:g} s each, "
          f"load average after: {' '.join(load_avg)}")
    if a.verify:
        print("verify: " + ("onnxruntime not installed" if checked is None else
                            f"normwise relative error {checked:.2e} against onnxruntime"))


if __name__ == "__main__":
    main()
