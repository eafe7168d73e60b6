"""Python threads sharing one model: every output checked against its own input's
expected result; the batcher from many threads; KeyboardInterrupt in the middle.
FLEET_TEST_SCALE (as the C suite's) scales the counts down."""
import _thread
import concurrent.futures
import ctypes
import os
import threading
import time

import numpy as np
import pytest

import fleet
from fleet import _lib
from conftest import assert_close, mlp_input

SCALE = float(os.environ.get("FLEET_TEST_SCALE", "1"))
THREADS = 16
RUNS = max(10, int(200 * SCALE))


def cases(ort_sess, seed, n=8):
    rng = np.random.default_rng(seed)
    xs = [mlp_input(rng, 1 + (seed + i) % 4) for i in range(n)]
    return [(x, ort_sess.run(None, {"x": x})[0]) for x in xs]


def test_the_library_releases_the_gil():
    """Loaded with ctypes.CDLL: no foreign call holds the GIL (PyDLL's would)."""
    assert not (_lib.lib._func_flags_ & ctypes._FUNCFLAG_PYTHONAPI)
    assert type(_lib.lib) is ctypes.CDLL


def test_16_threads_x_200_runs_on_a_shared_model(mlp, mlp_ort):
    def worker(k):
        mine = cases(mlp_ort, seed=k)
        bad = 0
        for i in range(RUNS):
            x, want = mine[i % len(mine)]
            got = mlp.run({"x": x})["y"]
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                bad += 1
        return bad

    runs = mlp.stats()["runs"]
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        bad = list(pool.map(worker, range(THREADS)))
    assert bad == [0] * THREADS
    assert mlp.stats()["runs"] == runs + THREADS * RUNS


def test_batcher_from_16_threads(mlp, mlp_ort):
    per = max(5, RUNS // 4)
    with fleet.Batcher(mlp, max_batch=16, max_delay_us=200) as b:
        def worker(k):
            mine = cases(mlp_ort, seed=100 + k)
            tickets = [(b.run_async({"x": mine[i % 8][0]}), mine[i % 8][1]) for i in range(per)]
            return sum(not np.allclose(t.result()["y"], want, rtol=1e-5, atol=1e-5)
                       for t, want in tickets)

        with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
            assert list(pool.map(worker, range(THREADS))) == [0] * THREADS
        s = b.stats()
    assert s["submitted"] == s["completed_ok"] == THREADS * per
    assert s["batches"] <= s["submitted"] and s["failed"] == 0


def test_ticket_result_timeout_and_done(mlp, mlp_ort):
    x = mlp_input(np.random.default_rng(5), 2)
    with fleet.Batcher(mlp, max_batch=4) as b:
        t = b.run_async({"x": x})
        y = t.result(timeout=30)["y"]
        assert t.done()
        assert t.result() is t.result()  # the same outputs, the C ticket released once
        assert_close(y, mlp_ort.run(None, {"x": x})[0])
        assert issubclass(fleet.TimeoutError, fleet.FleetError)


def test_keyboard_interrupt_while_other_threads_run(mlp, mlp_ort):
    """Ctrl-C lands in the main thread (itself running the model) while 4 threads run
    it: their runs go on, every output right, and the model works afterwards."""
    stop = threading.Event()
    counts, bad = [0] * 4, [0] * 4

    def worker(k):
        mine = cases(mlp_ort, seed=200 + k)
        while not stop.is_set():
            x, want = mine[counts[k] % 8]
            if not np.allclose(mlp.run({"x": x})["y"], want, rtol=1e-5, atol=1e-5):
                bad[k] += 1
            counts[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    mine = cases(mlp_ort, seed=300)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    main_runs = 0
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            while True:
                x, want = mine[main_runs % 8]
                assert_close(mlp.run({"x": x})["y"], want)
                main_runs += 1
        before = list(counts)
        time.sleep(0.1)
        assert all(c > b for c, b in zip(counts, before))  # they kept running
    finally:
        stop.set()
        timer.cancel()
        for t in threads:
            t.join()
    assert main_runs > 0 and bad == [0] * 4
    x, want = mine[0]
    assert_close(mlp.run({"x": x})["y"], want)


def test_keyboard_interrupt_during_batcher_waits(mlp, mlp_ort):
    """Interrupted while submitting and waiting on tickets: every ticket still
    completes with its own output."""
    mine = cases(mlp_ort, seed=400)
    tickets = []
    with fleet.Batcher(mlp, max_batch=8, max_delay_us=500) as b:
        timer = threading.Timer(0.2, _thread.interrupt_main)
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                while True:
                    case = mine[len(tickets) % 8]
                    tickets.append((b.run_async({"x": case[0]}), case[1]))
                    tickets[-1][0].result()
        finally:
            timer.cancel()
        for t, want in tickets:
            assert_close(t.result()["y"], want)
        assert len(tickets) > 1


def test_close_waits_for_runs_in_flight(mlp_path, mlp_ort):
    """close() from the main thread while 4 threads run: each run either completes with
    the right output or raises ClosedError; none crashes or sees a freed model."""
    m = fleet.Model.from_onnx(mlp_path)
    mine = cases(mlp_ort, seed=500)
    started = threading.Barrier(5)
    results = [[0, 0, 0] for _ in range(4)]  # ok, wrong, closed

    def worker(k):
        started.wait()
        while True:
            x, want = mine[(k + results[k][0]) % 8]
            try:
                y = m.run({"x": x})["y"]
            except fleet.ClosedError:
                results[k][2] += 1
                return
            results[k][0 if np.allclose(y, want, rtol=1e-5, atol=1e-5) else 1] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.05)
    m.close()
    for t in threads:
        t.join()
    assert all(ok > 0 and wrong == 0 and closed == 1 for ok, wrong, closed in results)


def test_many_interrupts_leave_every_ticket_and_the_model_whole(mlp_path, mlp_ort):
    """Twenty Ctrl-Cs at random moments of runs, submits and waits: every ticket still
    gives its own output, and close() returns (no run left counted in flight)."""
    m = fleet.Model.from_onnx(mlp_path)
    b = fleet.Batcher(m, max_batch=8, max_delay_us=100)
    mine = cases(mlp_ort, seed=600)
    rng = np.random.default_rng(0)
    tickets, interrupts = [], 0
    for _ in range(20):
        timer = threading.Timer(float(rng.uniform(0.001, 0.02)), _thread.interrupt_main)
        timer.start()
        try:
            while True:
                case = mine[len(tickets) % 8]
                assert_close(m.run({"x": case[0]})["y"], case[1])
                tickets.append((b.run_async({"x": case[0]}), case[1]))
                tickets[-1][0].result()
        except KeyboardInterrupt:
            interrupts += 1
        finally:
            timer.cancel()
    assert interrupts == 20
    for t, want in tickets:
        assert_close(t.result()["y"], want)
    closer = threading.Thread(target=m.close)
    closer.start()
    closer.join(10)
    assert not closer.is_alive() and m.closed and b.closed
