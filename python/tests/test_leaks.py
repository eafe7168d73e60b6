"""No reference or memory leak over 10,000 runs: Python's heap (tracemalloc), the
process's resident set, and fleet's own allocator (live blocks) all stay flat."""
import gc
import os
import sys
import tracemalloc

import numpy as np

import fleet
from conftest import mlp_input

SCALE = float(os.environ.get("FLEET_TEST_SCALE", "1"))
RUNS = max(1000, int(10000 * SCALE))


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def device_memory(model):
    return fleet.stats()[model.device.name]["memory"]


def measure(model, step, n):
    """Python heap and RSS growth over n steps after a warm-up, and fleet's allocator
    stats (of the model's device) before and after them."""
    for _ in range(200):  # warm-up: plans, arenas, caches, numpy's free lists
        step()
    gc.collect()
    mem0 = device_memory(model)
    rss0 = rss_bytes()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(n):
            step()
        gc.collect()
        cur, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return cur - base, rss_bytes() - rss0, mem0, device_memory(model)


def test_no_leak_over_10000_runs(mlp):
    x = mlp_input(np.random.default_rng(0), 2)
    want = mlp.run({"x": x})["y"]
    held = []

    def step():
        y = mlp.run({"x": x})["y"]
        held[:] = [y]

    refs = sys.getrefcount(x)
    heap, rss, before, after = measure(mlp, step, RUNS)
    assert sys.getrefcount(x) == refs  # the binding keeps no reference to its inputs
    np.testing.assert_array_equal(held[0], want)
    assert heap < 64 * 1024, "Python heap grew %d bytes over %d runs" % (heap, RUNS)
    assert rss < 8 * 1024 * 1024, "RSS grew %d bytes over %d runs" % (rss, RUNS)
    assert after["live_blocks"] == before["live_blocks"]
    assert after["allocated"] == before["allocated"]
    assert mlp.stats()["runs"] >= RUNS


def test_no_leak_over_batcher_requests(mlp):
    x = mlp_input(np.random.default_rng(1), 1)
    want = mlp.run({"x": x})["y"]
    # max_batch 1: one batch size, so the plans and arenas the warm-up makes are all
    # there will be (with more, a bucket first formed late would add its own)
    with fleet.Batcher(mlp, max_batch=1, max_delay_us=50) as b:
        def step():
            np.testing.assert_array_equal(b.run({"x": x})["y"], want)

        heap, rss, before, after = measure(mlp, step, RUNS // 5)
    assert heap < 64 * 1024, "Python heap grew %d bytes" % heap
    assert rss < 8 * 1024 * 1024, "RSS grew %d bytes" % rss
    assert after["live_blocks"] == before["live_blocks"]


def test_models_opened_and_closed_free_their_memory(mlp_path):
    x = mlp_input(np.random.default_rng(2), 1)
    with fleet.Model.from_onnx(mlp_path) as m:
        m.run({"x": x})
    before = fleet.stats()["cpu:0"]["memory"]["live_blocks"]
    for _ in range(50):
        with fleet.Model.from_onnx(mlp_path) as m:
            m.run({"x": x})
    gc.collect()
    assert fleet.stats()["cpu:0"]["memory"]["live_blocks"] == before
