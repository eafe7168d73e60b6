#!/usr/bin/env python3
"""fleet serve, driven by clients nobody here wrote: tritonclient[http] (the
official Open Inference Protocol client, from PyPI) and curl, plus raw
sockets for what no client sends on purpose (lying sizes, slow-loris, drops).

    test_serve.py GROUP FLEET_BINARY [MODEL.onnx]

GROUP: protocol   metadata, health, JSON and binary infer (tritonclient and
                  curl), values against numpy, onnxruntime and `fleet run`
                  (the same model in-process, no server), 404/400s, metrics
       bad_input  malformed JSON, overflowing shapes, short/long data, lying
                  binary sizes, 413 (a small limit, and a 1 GB Content-Length
                  refused unread), 431, slow-loris, drops mid-request; the
                  server keeps serving and exits 0 (no leak under ASan)
       concurrency  64 threads, a connection each, batch-1 requests on the
                  MLP: every response is its own input's; batches > 1 row
       drain      SIGTERM under load: every request completes or gets an
                  error, exit 0 within the drain bound
       onnx MODEL.onnx  64 threads x batch-1 requests on any ONNX model
                  (scripts/onnx-models.sh runs it on MiniLM) against
                  onnxruntime
Exits 77 (CTest: skipped) when numpy, onnx or tritonclient is missing."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
try:
    import numpy as np
    import onnx  # noqa: F401  (models.py writes the models with it)
    import tritonclient.http as tc
    from tritonclient.utils import InferenceServerException
except ImportError as e:
    print(f"SKIP: {e.name} is not installed (pip install numpy onnx 'tritonclient[http]')")
    sys.exit(SKIP)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

SCALE = float(os.environ.get("FLEET_TEST_SCALE", "1"))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)


class Server:
    all = []

    def __init__(self, binary, repo, *args, env=None):
        Server.all.append(self)
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([binary, "serve", "--models", repo, "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if not m:
            err = self.proc.stderr.read()
            raise RuntimeError(f"fleet serve did not start: {line!r} {err}")
        self.port = int(m.group(1))
        self.url = f"127.0.0.1:{self.port}"
        self.stderr = []
        self._t = threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True)
        self._t.start()

    def stop(self, sig=signal.SIGTERM, bound=30):
        t0 = time.time()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=bound)
        self._t.join(5)
        return rc, time.time() - t0

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data, r


def error_of(data):
    try:
        return json.loads(data)["error"]
    except Exception:
        return None


def metrics(server):
    st, data, _ = server.request("GET", "/metrics")
    out = {}
    for line in data.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return st, out


def fleet_run(binary, model_path, x, tmp):
    """The same model run in-process by fleet (fleet run), no server."""
    np.save(os.path.join(tmp, "x.npy"), x)
    out = os.path.join(tmp, "run_out")
    subprocess.run([binary, "run", model_path, "--input", f"x={tmp}/x.npy", "--output", out,
                    "--seconds", "0.05", "--backend", "cpu"], check=True, capture_output=True)
    return np.load(os.path.join(out, "y.npy"))


# ---- protocol ------------------------------------------------------------------------------

def test_protocol(binary, tmp):
    repo = os.path.join(tmp, "repo")
    w = models.make_repository(repo)
    s = Server(binary, repo, env={"FLEET_LOG_LEVEL": "info"})
    try:
        c = tc.InferenceServerClient(url=s.url)
        check(c.is_server_live(), "server live")
        check(c.is_server_ready(), "server ready")
        check(c.is_model_ready("mlp"), "mlp ready")
        check(not c.is_model_ready("nope"), "unknown model not ready")
        md = c.get_server_metadata()
        check(md["name"] == "fleet" and "binary_tensor_data" in md["extensions"], f"server metadata {md}")
        mm = c.get_model_metadata("mlp")
        check(mm["name"] == "mlp" and mm["versions"] == ["1"] and mm["platform"] == "onnx",
              f"model metadata {mm}")
        check(mm["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 16]}], f"inputs {mm['inputs']}")
        check(mm["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 8]}], f"outputs {mm['outputs']}")
        mv = c.get_model_metadata("mlp", model_version="1")
        check(mv == mm, "metadata by version")
        mb = c.get_model_metadata("mlp_builder")
        check(mb["platform"] == "fleet", f"builder platform {mb}")
        cfg = c.get_model_config("mlp")
        check(cfg["max_batch_size"] == 32, f"config {cfg}")

        rng = np.random.default_rng(1)
        x = rng.standard_normal((3, 16)).astype(np.float32)
        want = models.reference_mlp(w, x)
        try:
            import onnxruntime as ort
            sess = ort.InferenceSession(os.path.join(repo, "mlp", "model.onnx"), providers=["CPUExecutionProvider"])
            ort_y = sess.run(None, {"x": x})[0]
            check(np.allclose(ort_y, want, rtol=1e-5, atol=1e-5), "onnxruntime agrees with numpy")
            want_ort = ort_y
        except ImportError:
            print("note: onnxruntime not installed: compared with numpy only")
            want_ort = want
        inproc = fleet_run(binary, os.path.join(repo, "mlp", "model.onnx"), x, tmp)

        for binary_in in (False, True):
            for binary_out in (False, True):
                for model in ("mlp", "mlp_builder"):
                    i = tc.InferInput("x", list(x.shape), "FP32")
                    i.set_data_from_numpy(x, binary_data=binary_in)
                    o = tc.InferRequestedOutput("y", binary_data=binary_out)
                    r = c.infer(model, [i], outputs=[o], request_id=f"req-{binary_in}-{binary_out}")
                    y = r.as_numpy("y")
                    what = f"{model} infer binary_in={binary_in} binary_out={binary_out}"
                    check(y is not None and y.shape == (3, 8) and y.dtype == np.float32, what + " shape")
                    check(np.allclose(y, want_ort, rtol=1e-5, atol=1e-5), what + " vs onnxruntime")
                    check(np.allclose(y, inproc, rtol=1e-6, atol=1e-6), what + " vs fleet run in-process")
                    check(r.get_response()["id"] == f"req-{binary_in}-{binary_out}", what + " id echoed")
                    check(r.get_response()["model_name"] == model, what + " model_name")

        # INT64, two inputs, two outputs, one requested
        a = np.arange(8, dtype=np.int64).reshape(2, 4) * 1000003
        b = np.arange(8, dtype=np.int64).reshape(2, 4) - 5
        ia, ib = tc.InferInput("a", [2, 4], "INT64"), tc.InferInput("b", [2, 4], "INT64")
        ia.set_data_from_numpy(a, binary_data=True)
        ib.set_data_from_numpy(b, binary_data=False)
        r = c.infer("ints", [ia, ib])
        check(np.array_equal(r.as_numpy("sum"), a + b) and np.array_equal(r.as_numpy("prod"), a * b),
              "ints: sum and prod exact")
        r = c.infer("ints", [ia, ib], outputs=[tc.InferRequestedOutput("prod", binary_data=True)])
        check(r.as_numpy("sum") is None and np.array_equal(r.as_numpy("prod"), a * b), "ints: only prod")

        def status_of(fn):
            try:
                fn()
                return None
            except InferenceServerException as e:
                return str(e.status())

        i = tc.InferInput("x", [1, 16], "FP32")
        i.set_data_from_numpy(x[:1])
        check(status_of(lambda: c.infer("nope", [i])) == "404", "unknown model: 404")
        check(status_of(lambda: c.get_model_metadata("nope")) == "404", "unknown model metadata: 404")
        check(status_of(lambda: c.infer("mlp", [i], model_version="2")) == "404", "unknown version: 404")
        bad = tc.InferInput("x", [1, 15], "FP32")
        bad.set_data_from_numpy(x[:1, :15])
        check(status_of(lambda: c.infer("mlp", [bad])) == "400", "wrong shape: 400")
        bad = tc.InferInput("x", [1, 16], "INT32")
        bad.set_data_from_numpy(np.ones((1, 16), np.int32))
        check(status_of(lambda: c.infer("mlp", [bad])) == "400", "wrong dtype: 400")
        bad = tc.InferInput("z", [1, 16], "FP32")
        bad.set_data_from_numpy(x[:1])
        check(status_of(lambda: c.infer("mlp", [bad])) == "400", "wrong input name: 400")
        big = tc.InferInput("x", [33, 16], "FP32")
        big.set_data_from_numpy(np.zeros((33, 16), np.float32))
        check(status_of(lambda: c.infer("mlp", [big])) == "400", "more rows than max_batch: 400")
        check(status_of(lambda: c.infer("mlp", [i], outputs=[tc.InferRequestedOutput("q")])) == "400",
              "unknown output: 400")
        c.close()

        # curl, the JSON path: nested data
        if shutil.which("curl"):
            body = json.dumps({"id": "curl-1", "inputs": [{"name": "x", "shape": [2, 16], "datatype": "FP32",
                                                            "data": x[:2].tolist()}]})
            p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
                                "-d", body, f"http://{s.url}/v2/models/mlp/infer"],
                               capture_output=True, text=True, check=True)
            text, code = p.stdout.rsplit("\n", 1)
            r = json.loads(text)
            check(code == "200" and r["id"] == "curl-1", f"curl infer: {code} {text[:200]}")
            out = r["outputs"][0]
            check(out["name"] == "y" and out["datatype"] == "FP32" and out["shape"] == [2, 8], f"curl output {out}")
            check(np.allclose(np.array(out["data"], np.float32).reshape(2, 8), want[:2], rtol=1e-5, atol=1e-5),
                  "curl values")
            p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", f"http://{s.url}/v2/models/nope"],
                               capture_output=True, text=True, check=True)
            text, code = p.stdout.rsplit("\n", 1)
            check(code == "404" and "nope" in json.loads(text)["error"], "curl 404")
        else:
            print("note: curl not installed: the curl checks were skipped")

        st, m = metrics(s)
        check(st == 200, "metrics 200")
        ok = m.get('nv_inference_request_success{model="mlp",version="1"}', -1)
        check(ok >= 4 + (1 if shutil.which("curl") else 0), f"nv_inference_request_success mlp = {ok}")
        fail = m.get('nv_inference_request_failure{model="mlp",version="1"}', -1)
        check(fail >= 4, f"nv_inference_request_failure mlp = {fail}")
        cnt = m.get('nv_inference_count{model="mlp",version="1"}', -1)
        check(cnt == 3 * 4 + (2 if shutil.which("curl") else 0), f"nv_inference_count mlp = {cnt}")
        for name in ("nv_inference_exec_count", "nv_inference_queue_duration_us",
                     "nv_inference_compute_infer_duration_us", "nv_inference_pending_request_count"):
            check(f'{name}{{model="mlp",version="1"}}' in m, f"metric {name}")
        check(m.get('nv_inference_compute_infer_duration_us{model="mlp",version="1"}', 0) > 0, "compute us > 0")
        check(m.get('fleet_memory_reserved_bytes{device="cpu:0"}', 0) > 0, "allocator reserved > 0")
        check('fleet_stream_pool_capacity{device="cpu:0"}' in m, "stream pool metric")
        check('fleet_model_graph_replays_total{model="mlp",version="1"}' in m, "graph replays metric")
    finally:
        rc, secs = s.stop()
    check(rc == 0, f"exit status {rc} after SIGTERM")
    log = "".join(s.stderr)
    check("draining" in log, "drain message")
    access = [l for l in log.splitlines() if "serve: access" in l]
    check(any("method=POST path=/v2/models/mlp/infer model=mlp status=200" in l for l in access),
          "an access line per infer request")
    check(any("path=/v2/models/nope status=404" in l or "path=/v2/models/nope model=- status=404" in l
              for l in access), f"the 404's access line: {[l for l in access if 'nope' in l][:2]}")
    check(all(re.search(r"bytes_in=\d+ bytes_out=\d+ duration_us=\d+", l) for l in access),
          "access lines carry sizes and duration")


# ---- bad input ------------------------------------------------------------------------------

def raw(port, data, timeout=10, read=True):
    """Send bytes, return what comes back until the server closes (or timeout)."""
    sk = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sk.sendall(data)
    got = b""
    if read:
        try:
            while True:
                b = sk.recv(65536)
                if not b:
                    break
                got += b
                if b"\r\n\r\n" in got:
                    head, _, rest = got.partition(b"\r\n\r\n")
                    m = re.search(rb"content-length: *(\d+)", head, re.I)
                    if m and len(rest) >= int(m.group(1)):
                        break
        except (socket.timeout, ConnectionResetError):
            pass
    sk.close()
    return got


def http_status(resp):
    m = re.match(rb"HTTP/1\.[01] (\d+)", resp)
    return int(m.group(1)) if m else None


def post(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def test_bad_input(binary, tmp):
    repo = os.path.join(tmp, "repo")
    w = models.make_repository(repo, builder=False)
    s = Server(binary, repo, "--max-body", "65536", "--request-timeout-ms", "1500",
               "--http-threads", "2")
    infer = b"/v2/models/mlp/infer"
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)
    good = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}).encode()

    def ok_now(what):
        st, data, _ = s.request("POST", infer.decode(), good)
        y = np.array(json.loads(data)["outputs"][0]["data"], np.float32) if st == 200 else None
        check(st == 200 and np.allclose(y, models.reference_mlp(w, x).ravel(), rtol=1e-5, atol=1e-5),
              f"still serving after {what}: {st}")

    def expect(body, status, words, what, extra=b""):
        r = raw(s.port, post(infer, body, extra))
        st = http_status(r)
        err = error_of(r.partition(b"\r\n\r\n")[2])
        check(st == status and err is not None and all(wd in err for wd in words),
              f"{what}: {st} {err!r} (wanted {status} with {words})")

    try:
        expect(b'{"inputs": [', 400, ["malformed JSON"], "malformed JSON")
        expect(b'[1, 2]', 400, ["not a JSON object"], "not an object")
        expect(b'{"inputs": []}', 400, ['no "inputs"'], "no inputs")
        def one(**kw):
            t = {"name": "x", "shape": [1, 16], "datatype": "FP32", "data": x.ravel().tolist()}
            t.update(kw)
            return json.dumps({"inputs": [t]}).encode()
        expect(one(shape=[4611686018427387904, 4611686018427387904]), 400, ["overflows"], "overflowing shape")
        expect(one(shape=[1 << 40, 1 << 40, 1 << 40]), 400, ["overflows"], "overflowing 3-d shape")
        expect(one(data=x.ravel().tolist()[:15]), 400, ["15 elements", "16"], "short data")
        expect(one(data=x.ravel().tolist() + [1.0]), 400, ["17 elements"], "long data")
        expect(one(data=["a"] * 16), 400, ["not a number"], "strings as FP32")
        expect(one(datatype="FP64"), 400, ["not supported"], "FP64")
        expect(one(datatype="BYTES"), 400, ["not supported"], "BYTES")
        expect(one(shape=[1, -16]), 400, ["shape[1]"], "negative dim")
        expect(one(datatype="INT32", data=[1] * 16), 400, ["datatype INT32", "FP32"], "dtype vs model")
        # the binary extension, lying
        header = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                         "parameters": {"binary_data_size": 64}}]}).encode()
        blob = x.tobytes()
        hl = lambda n: b"Inference-Header-Content-Length: " + str(n).encode() + b"\r\n"  # noqa: E731
        r = raw(s.port, post(infer, header + blob, hl(len(header))))
        y = np.frombuffer(b"", np.float32)
        st = http_status(r)
        body = r.partition(b"\r\n\r\n")[2]
        check(st == 200 and np.allclose(np.array(json.loads(body)["outputs"][0]["data"], np.float32),
                                        models.reference_mlp(w, x).ravel(), rtol=1e-5, atol=1e-5),
              f"raw binary infer: {st} {body[:100]!r}")
        expect(header + blob, 400, ["larger than the body"], "header length past the body", hl(len(header) + 100))
        expect(header + blob[:60], 400, ["runs past the body"], "binary shorter than its size", hl(len(header)))
        expect(header + blob + b"xxxx", 400, ["add up to 64"], "binary longer than its sizes", hl(len(header)))
        lie = header.replace(b"64", b"60")
        expect(lie + blob[:60], 400, ["need 64 bytes"], "binary size vs shape", hl(len(lie)))
        expect(header + blob, 400, ["not a size"], "a bad header length", b"Inference-Header-Content-Length: -3\r\n")
        expect(header + blob, 400, ["Inference-Header-Content-Length"], "binary size without the header")
        del y
        # 413: a body over --max-body, and a 1 GB Content-Length refused unread
        expect(one(data=[0.5] * 16, pad="x" * 70000), 413, ["larger than the limit"], "body over the limit")
        t0 = time.time()
        r = raw(s.port, b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
                + b"{" * 1000)
        check(http_status(r) == 413 and time.time() - t0 < 5, f"1 GB Content-Length: {r[:60]!r}")
        # chunked past the limit: the connection is closed
        sk = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sk.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        closed = False
        try:
            for _ in range(40):
                sk.sendall(b"4000\r\n" + b"[" * 0x4000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            try:
                closed = sk.recv(100) == b"" or True
            except (ConnectionResetError, socket.timeout):
                closed = True
        sk.close()
        check(closed, "chunked body past the limit: connection closed")
        # 431: headers beyond the header memory
        r = raw(s.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        check(http_status(r) == 431, f"huge headers: {r[:40]!r}")
        # unknown paths and methods
        st, data, _ = s.request("GET", "/v3/nothing")
        check(st == 404 and error_of(data), "unknown path 404")
        st, data, _ = s.request("GET", "/v2/models/mlp/infer")
        check(st == 405 and error_of(data), "GET infer 405")
        ok_now("the bad requests")

        # slow-loris: headers byte by byte past request_timeout_ms get the
        # connection closed, while others are served
        sk = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        t0 = time.time()
        closed_after = None
        line = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200
        served_meanwhile = False
        for k, ch in enumerate(line):
            try:
                sk.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.time() - t0
                break
            time.sleep(0.05)
            if k == 10:
                st, _, _ = s.request("GET", "/v2/health/live")
                served_meanwhile = st == 200
            if time.time() - t0 > 8:
                break
        if closed_after is None:
            sk.settimeout(3)
            try:
                closed_after = time.time() - t0 if sk.recv(10) == b"" else None
            except (ConnectionResetError, socket.timeout):
                closed_after = time.time() - t0
        sk.close()
        check(served_meanwhile, "others served during slow-loris")
        check(closed_after is not None and 1.0 < closed_after < 6, f"slow-loris closed after {closed_after}")
        # slow body
        sk = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sk.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        t0 = time.time()
        sk.settimeout(6)
        try:
            got = sk.recv(100)
        except (ConnectionResetError, socket.timeout):
            got = b"timeout"
        sk.close()
        check(got == b"" and time.time() - t0 < 5, f"slow body closed: {got!r}")

        # drops mid-request: half a body; a whole request, gone before the answer
        for _ in range(5):
            raw(s.port, post(infer, good)[:-20], read=False)
            raw(s.port, post(infer, good), read=False)
        time.sleep(0.5)
        ok_now("connection drops")
        st, m = metrics(s)
        check(m.get("fleet_server_in_flight") == 0, f"nothing in flight: {m.get('fleet_server_in_flight')}")
        check(m.get("fleet_server_connections_timed_out_total", 0) >= 2, "watchdog counted the slow ones")
    finally:
        rc, secs = s.stop()
    check(rc == 0, f"exit status {rc} after the bad input (ASan: leaks or errors)")

    # the connection limit: past it, a connection is closed at once; the
    # server serves again once others go
    s2 = Server(binary, repo, "--max-connections", "3")
    held = [socket.create_connection(("127.0.0.1", s2.port), timeout=10) for _ in range(3)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", s2.port), timeout=10)
    extra.settimeout(5)
    try:
        refused = extra.recv(10) == b""
    except (ConnectionResetError, socket.timeout):
        refused = True
    extra.close()
    check(refused, "a connection past --max-connections is closed")
    for h in held:
        h.close()
    time.sleep(0.3)
    st, data, _ = s2.request("GET", "/v2/health/live")
    check(st == 200, f"served again after the held connections closed: {st}")
    rc2, _ = s2.stop()
    check(rc2 == 0, f"exit status {rc2} (connection limit server)")
    log = "".join(s.stderr)
    check("ERROR: AddressSanitizer" not in log and "LeakSanitizer" not in log, "no sanitizer report")


# ---- concurrency -------------------------------------------------------------------------------

def run_clients(url, n_threads, n_each, make_input, expected, model="mlp", stop_event=None):
    """n_threads threads, one client (connection) each; returns per-thread
    lists of (index, ok, detail)."""
    results = [[] for _ in range(n_threads)]

    def worker(t):
        c = tc.InferenceServerClient(url=url, network_timeout=120, connection_timeout=30)
        try:
            for k in range(n_each):
                if stop_event is not None and stop_event.is_set():
                    break
                idx = t * n_each + k
                inputs = make_input(idx)
                try:
                    r = c.infer(model, inputs)
                    ok, detail = expected(idx, r)
                    results[t].append((idx, ok, detail))
                except InferenceServerException as e:
                    results[t].append((idx, None, f"{e.status()} {e.message()}"))
                except Exception as e:  # connection refused/closed during drain
                    results[t].append((idx, None, f"{type(e).__name__}: {e}"))
        finally:
            c.close()

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in ts:
        t.start()
    return ts, results


def test_concurrency(binary, tmp):
    repo = os.path.join(tmp, "repo")
    w = models.make_repository(repo, {"max_batch": 32, "max_delay_us": 2000}, builder=False, ints=False)
    s = Server(binary, repo, "--http-threads", "2")
    n_threads, n_each = 64, max(4, int(20 * SCALE))
    xs = np.random.default_rng(5).standard_normal((n_threads * n_each, 1, 16)).astype(np.float32)
    want = models.reference_mlp(w, xs.reshape(-1, 16)).reshape(-1, 1, 8)

    def make_input(i):
        inp = tc.InferInput("x", [1, 16], "FP32")
        inp.set_data_from_numpy(xs[i], binary_data=i % 2 == 0)
        return [inp]

    def expected(i, r):
        y = r.as_numpy("y")
        return (y is not None and np.allclose(y, want[i], rtol=1e-5, atol=1e-5)), ""

    try:
        t0 = time.time()
        ts, results = run_clients(s.url, n_threads, n_each, make_input, expected)
        for t in ts:
            t.join()
        secs = time.time() - t0
        flat = [r for rs in results for r in rs]
        good = sum(1 for r in flat if r[1] is True)
        check(len(flat) == n_threads * n_each, f"all requests answered: {len(flat)}")
        check(good == n_threads * n_each, f"every response is its own input's: {good}/{len(flat)} "
                                          f"{[r for r in flat if r[1] is not True][:3]}")
        st, m = metrics(s)
        execs = m.get('nv_inference_exec_count{model="mlp",version="1"}', 0)
        rows = m.get('nv_inference_count{model="mlp",version="1"}', 0)
        mean = m.get('fleet_batcher_mean_batch_rows{model="mlp",version="1"}', 0)
        print(f"concurrency: {len(flat)} requests in {secs:.2f} s from {n_threads} connections, "
              f"{execs:.0f} batches, mean {mean:.2f} rows per batch")
        check(rows == n_threads * n_each, f"nv_inference_count {rows}")
        check(mean > 1.0 and execs < rows, f"batches of more than one row: mean {mean}")
    finally:
        rc, _ = s.stop()
    check(rc == 0, f"exit status {rc}")

    # two replicas (FLEET_CPU_DEVICES=2, "devices": [cpu:0, cpu:1]): every
    # response right, both replicas used, the config lists both
    repo3 = os.path.join(tmp, "repo_replicas")
    models.make_repository(repo3, {"devices": ["cpu:0", "cpu:1"], "max_delay_us": 2000},
                           builder=False, ints=False)
    s = Server(binary, repo3, env={"FLEET_CPU_DEVICES": "2"})
    try:
        ts, results = run_clients(s.url, 32, max(4, int(10 * SCALE)), make_input, expected)
        for t in ts:
            t.join()
        flat = [r for rs in results for r in rs]
        check(flat and all(r[1] is True for r in flat),
              f"replicas: every response its own input's: {[r for r in flat if r[1] is not True][:3]}")
        st, m = metrics(s)
        per = [m.get(f'fleet_replica_batches_total{{model="mlp",version="1",device="cpu:{d}"}}', 0)
               for d in (0, 1)]
        check(per[0] > 0 and per[1] > 0, f"both replicas ran batches: {per}")
        check(m.get('nv_inference_exec_count{model="mlp",version="1"}') == per[0] + per[1],
              "exec_count adds the replicas up")
        check('fleet_memory_reserved_bytes{device="cpu:1"}' in m, "cpu:1's allocator in the metrics")
        cfg = json.loads(s.request("GET", "/v2/models/mlp/config")[1])
        check([g["device"] for g in cfg["instance_group"]] == ["cpu:0", "cpu:1"], f"config {cfg}")
        print(f"replicas: {len(flat)} requests, batches per replica {per}")
    finally:
        rc, _ = s.stop()
    check(rc == 0, f"exit status {rc} (replicas)")

    # a queue of one: past it 429, every 200 still right, and the batcher
    # counts each refusal
    repo2 = os.path.join(tmp, "repo_small_queue")
    models.make_repository(repo2, {"max_batch": 1, "instances": 1, "queue_capacity": 1},
                           builder=False, ints=False)
    s = Server(binary, repo2)
    try:
        statuses = []
        lock = threading.Lock()

        def flood(t):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            for k in range(50):
                i = (t * 50 + k) % len(xs)
                body = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                               "data": xs[i].ravel().tolist()}]})
                conn.request("POST", "/v2/models/mlp/infer", body=body)
                r = conn.getresponse()
                data = r.read()
                ok = None
                if r.status == 200:
                    y = np.array(json.loads(data)["outputs"][0]["data"], np.float32)
                    ok = np.allclose(y, want[i].ravel(), rtol=1e-5, atol=1e-5)
                with lock:
                    statuses.append((r.status, ok, error_of(data)))
            conn.close()

        ts = [threading.Thread(target=flood, args=(t,)) for t in range(32)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        full = [x for x in statuses if x[0] == 429]
        oks = [x for x in statuses if x[0] == 200]
        check(len(full) + len(oks) == len(statuses), f"only 200 and 429: {set(x[0] for x in statuses)}")
        check(all(x[1] for x in oks), "every 200 right under a full queue")
        check(len(full) > 0 and all("queue is full" in (x[2] or "") for x in full),
              f"429s say the queue is full: {len(full)} of {len(statuses)}")
        st, m = metrics(s)
        rejected = m.get('fleet_batcher_rejected_full_total{model="mlp",version="1"}')
        check(rejected == len(full), f"rejected_full {rejected} vs {len(full)} 429s")
        print(f"queue of one: {len(oks)} answered, {len(full)} got 429")
    finally:
        rc, _ = s.stop()
    check(rc == 0, f"exit status {rc} (small queue)")


# ---- drain -----------------------------------------------------------------------------------

def test_drain(binary, tmp):
    repo = os.path.join(tmp, "repo")
    w = models.make_repository(repo, builder=False, ints=False)
    drain_ms = 5000
    s = Server(binary, repo, "--drain-ms", str(drain_ms))
    xs = np.random.default_rng(9).standard_normal((32 * 400, 16)).astype(np.float32)
    want = models.reference_mlp(w, xs)

    def make_input(i):
        inp = tc.InferInput("x", [1, 16], "FP32")
        inp.set_data_from_numpy(xs[i:i + 1], binary_data=True)
        return [inp]

    def expected(i, r):
        y = r.as_numpy("y")
        return (y is not None and np.allclose(y, want[i:i + 1], rtol=1e-5, atol=1e-5)), ""

    stop = threading.Event()
    ts, results = run_clients(s.url, 32, 400, make_input, expected, stop_event=stop)
    time.sleep(1.5)
    rc, secs = s.stop(bound=drain_ms / 1000 + 20)
    stop.set()
    for t in ts:
        t.join(60)
    check(not any(t.is_alive() for t in ts), "no client left hanging")
    flat = [r for rs in results for r in rs]
    ok = sum(1 for r in flat if r[1] is True)
    wrong = [r for r in flat if r[1] is False]
    errors = [r for r in flat if r[1] is None]
    print(f"drain: {ok} completed before/while draining, {len(errors)} errors "
          f"({sorted(set(e[2][:40] for e in errors))[:4]}), exit {rc} after {secs:.2f} s")
    check(ok > 32, f"requests completed under load: {ok}")
    check(not wrong, f"no wrong values: {wrong[:3]}")
    check(rc == 0, f"exit status {rc} after SIGTERM under load")
    check(secs < drain_ms / 1000 + 5, f"exited within the drain bound: {secs:.2f} s")
    log = "".join(s.stderr)
    check("ERROR: AddressSanitizer" not in log and "LeakSanitizer" not in log, "no sanitizer report")


# ---- any ONNX model (MiniLM in scripts/onnx-models.sh) ------------------------------------------

def test_onnx(binary, tmp, model_path):
    import onnxruntime as ort
    m = onnx.load(model_path, load_external_data=False)
    init = {i.name for i in m.graph.initializer}
    graph_inputs = [i for i in m.graph.input if i.name not in init]
    dims = {}
    for i in graph_inputs:
        for k, d in enumerate(i.type.tensor_type.shape.dim):
            if k > 0 and d.dim_param:
                dims[d.dim_param] = int(os.environ.get("FLEET_SERVE_SEQ", "32"))
    repo = os.path.join(tmp, "repo")
    os.makedirs(os.path.join(repo, "model"))
    os.symlink(os.path.abspath(model_path), os.path.join(repo, "model", "model.onnx"))
    with open(os.path.join(repo, "model", "config.json"), "w") as f:
        json.dump({"dims": dims, "max_batch": 32}, f)
    s = Server(binary, repo)
    try:
        c = tc.InferenceServerClient(url=s.url)
        md = c.get_model_metadata("model")
        c.close()
        sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(3)
        n_threads, n_each, n_distinct = 64, max(2, int(4 * SCALE)), 16
        np_dtype = {"FP32": np.float32, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_}
        samples = []
        for k in range(n_distinct):
            feed = {}
            for i in md["inputs"]:
                shape = [1] + [d for d in i["shape"][1:]]
                shape = [dims.get(None, d) if d >= 0 else int(os.environ.get("FLEET_SERVE_SEQ", "32"))
                         for d in shape]
                dt = np_dtype[i["datatype"]]
                if dt == np.float32:
                    feed[i["name"]] = rng.standard_normal(shape).astype(dt)
                elif "mask" in i["name"]:
                    feed[i["name"]] = np.ones(shape, dt)
                elif "type" in i["name"]:
                    feed[i["name"]] = np.zeros(shape, dt)
                else:
                    feed[i["name"]] = rng.integers(1, 1000, shape).astype(dt)
            samples.append((feed, sess.run(None, feed)))
        out_names = [o.name for o in sess.get_outputs()]

        def make_input(idx):
            feed = samples[idx % n_distinct][0]
            res = []
            for name, a in feed.items():
                inp = tc.InferInput(name, list(a.shape), {np.float32: "FP32", np.int64: "INT64",
                                                          np.int32: "INT32", np.bool_: "BOOL"}[a.dtype.type])
                inp.set_data_from_numpy(a, binary_data=True)
                res.append(inp)
            return res

        def expected(idx, r):
            want = samples[idx % n_distinct][1]
            for name, w_ in zip(out_names, want):
                y = r.as_numpy(name)
                if y is None or y.shape != w_.shape:
                    return False, f"{name}: shape"
                err = np.linalg.norm((y - w_).ravel()) / max(np.linalg.norm(w_.ravel()), 1e-30)
                if err > 1e-4:
                    return False, f"{name}: normwise {err:.2e}"
            return True, ""

        t0 = time.time()
        ts, results = run_clients(s.url, n_threads, n_each, make_input, expected, model="model")
        for t in ts:
            t.join()
        flat = [r for rs in results for r in rs]
        good = sum(1 for r in flat if r[1] is True)
        st, mt = metrics(s)
        mean = mt.get('fleet_batcher_mean_batch_rows{model="model",version="1"}', 0)
        print(f"onnx {os.path.basename(os.path.dirname(model_path))}: {good}/{len(flat)} right in "
              f"{time.time() - t0:.2f} s, mean {mean:.2f} rows per batch")
        check(good == n_threads * n_each, f"every response right: {[r for r in flat if r[1] is not True][:3]}")
        check(mean > 1.0, f"batches of more than one row: {mean}")
    finally:
        rc, _ = s.stop()
    check(rc == 0, f"exit status {rc}")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    group, binary = sys.argv[1], os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="fleet-serve-")
    try:
        if group == "protocol":
            test_protocol(binary, tmp)
        elif group == "bad_input":
            test_bad_input(binary, tmp)
        elif group == "concurrency":
            test_concurrency(binary, tmp)
        elif group == "drain":
            test_drain(binary, tmp)
        elif group == "onnx":
            test_onnx(binary, tmp, sys.argv[3])
        else:
            print(f"unknown group {group}")
            return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        for srv in Server.all:
            tail = "".join(srv.stderr)[-6000:]
            if tail:
                print(f"---- fleet serve's stderr (last 6000 bytes) ----\n{tail}")
        print(f"{len(failures)} checks failed")
        return 1
    print(f"serve {group}: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
