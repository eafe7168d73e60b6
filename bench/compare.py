#!/usr/bin/env python3
"""Ratio table of fleet bench against the raw-CUDA floor and PyTorch.

    python3 bench/compare.py fleet.json[,more.json] raw.json [torch.json[,more.json]]

Reads the --json files of `fleet bench`, bench/cuda_floor and
bench/torch_bench.py from one run on one card and prints, per workload and
thread count, the three figures, fleet's ratios, and each PERFORMANCE.md goal
with PASS or MISS (and by how much). Model rows (`fleet bench --model`,
"model:minilm b1") are compared with torch_bench.py's rows of the same name
(eager) and of NAME-graph (a CUDA graph per thread). Exit status 0 either
way: the goals are read from the table, not enforced.
"""
import json
import sys


def load(paths):
    """Rows of one or more JSON files (comma-separated; later ones win)."""
    rows = {}
    for path in paths.split(","):
        try:
            with open(path) as f:
                rows.update({(r["workload"], r["threads"]): r for r in json.load(f)})
        except (OSError, ValueError) as e:
            print(f"compare: cannot read {path}: {e}", file=sys.stderr)
    return rows


def fmt(v):
    return f"{v:,.0f}" if v else "-"


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    fleet, raw = load(sys.argv[1]), load(sys.argv[2])
    torch = load(sys.argv[3]) if len(sys.argv) > 3 else {}
    # fleet workload -> the raw and torch rows it is compared with
    pairs = {"seed-device-sync": ("seed-device-sync", "seed-device-sync"),
             "seed-stream-sync": ("seed-stream-sync", "seed-stream-sync"),
             "linear64": ("linear64", "linear64"),
             "linear2048": ("linear2048", "linear2048"),
             "mlp": ("mlp-graph", "mlp-graph")}
    print("| workload | threads | fleet ops/s | raw CUDA | fleet/raw | PyTorch | fleet/PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for (w, t), r in sorted(fleet.items(), key=lambda k: (list(pairs).index(k[0][0])
                                                           if k[0][0] in pairs else 99, k[0][1])):
        if w not in pairs:
            continue
        rw, tw = pairs[w]
        fr = r["ops_per_s"]
        rr = raw.get((rw, t), {}).get("ops_per_s")
        tr = torch.get((tw, t), {}).get("ops_per_s")
        cells = [w if rw == w else f"{w} (vs {rw})", str(t), fmt(fr), fmt(rr),
                 f"{fr / rr:.2f}" if rr else "-", fmt(tr), f"{fr / tr:.2f}" if tr else "-"]
        print("| " + " | ".join(cells) + " |")

    def split(row):  # "model:minilm b32" -> ("minilm", "32")
        name, _, batch = row[len("model:"):].rpartition(" b")
        return name, batch
    models = sorted((k for k in fleet if k[0].startswith("model:")),
                    key=lambda k: (split(k[0])[0], int(split(k[0])[1] or 0), k[1]))
    if models:
        print()
        print("| model | threads | fleet runs/s | fleet samples/s | PyTorch eager | fleet/eager "
              "| PyTorch CUDA graph | fleet/graph |")
        print("|---|---|---|---|---|---|---|---|")
    for w, t in models:
        name, batch = split(w)
        r = fleet[(w, t)]
        fr = r["ops_per_s"]
        er = torch.get((w, t), {}).get("ops_per_s")
        gr = torch.get((f"model:{name}-graph b{batch}", t), {}).get("ops_per_s")
        cells = [w, str(t), f"{fr:,.1f}", f"{r.get('samples_per_s', 0):,.1f}",
                 f"{er:,.1f}" if er else "-", f"{fr / er:.2f}" if er else "-",
                 f"{gr:,.1f}" if gr else "-", f"{fr / gr:.2f}" if gr else "-"]
        print("| " + " | ".join(cells) + " |")

    print()
    print("| goal (PERFORMANCE.md) | measured | result |")
    print("|---|---|---|")

    def goal(text, value, bar):
        if value is None:
            print(f"| {text} | not measured | - |")
            return
        ok = value >= bar
        print(f"| {text} | {value:.2f} | {'PASS' if ok else f'MISS by {(1 - value / bar) * 100:.0f}%'} |")

    def ratio(a, b):
        return a / b if a and b else None

    threads = sorted({t for (_, t) in fleet})
    for w in ("linear64", "seed-stream-sync"):
        worst = [ratio(fleet.get((w, t), {}).get("ops_per_s"), raw.get((w, t), {}).get("ops_per_s"))
                 for t in threads]
        worst = [x for x in worst if x is not None]
        goal(f"1. {w}: fleet / raw CUDA, worst thread count", min(worst) if worst else None, 0.9)
        goal(f"1. {w}: fleet / PyTorch at 8 threads",
             ratio(fleet.get((w, 8), {}).get("ops_per_s"), torch.get((w, 8), {}).get("ops_per_s")),
             5.0)
    worst = [ratio(fleet.get(("linear2048", t), {}).get("ops_per_s"),
                   raw.get(("linear2048", t), {}).get("ops_per_s")) for t in threads]
    worst = [x for x in worst if x is not None]
    goal("2. linear2048: fleet / raw CUDA, worst thread count", min(worst) if worst else None, 0.95)
    tg1 = torch.get(("mlp-graph", 1), {}).get("ops_per_s")
    goal("3. mlp 1 thread: fleet / PyTorch CUDA graph (1 thread)",
         ratio(fleet.get(("mlp", 1), {}).get("ops_per_s"), tg1), 1.0)
    goal("3. mlp 8 threads: fleet / PyTorch CUDA graph (1 thread)",
         ratio(fleet.get(("mlp", 8), {}).get("ops_per_s"), tg1), 4.0)
    for name in sorted({split(w)[0] for w, _ in models}):
        g1 = torch.get((f"model:{name}-graph b1", 1), {}).get("ops_per_s")
        for t, bar in ((1, 2.0), (16, 10.0)):
            f = fleet.get((f"model:{name} b1", t), {}).get("ops_per_s")
            if f is not None:
                goal(f"3. {name} batch 1, {t} thread{'s' if t > 1 else ''}: fleet / PyTorch "
                     "CUDA graph (1 thread)", ratio(f, g1), bar)
    f1 = fleet.get(("linear64", 1), {}).get("ops_per_s")
    r1 = raw.get(("linear64-lt", 1), {}).get("ops_per_s")
    if f1 and r1:
        extra_us = 1e6 / f1 - 1e6 / r1
        ok = extra_us < 1.0
        print(f"| 4. linear64, 1 thread: fleet's time per op minus the raw one-launch cuBLASLt "
              f"op's (us) | {extra_us:.2f} | {'PASS' if ok else 'MISS'} (goal < 1 us) |")
    else:
        print("| 4. linear64 dispatch overhead over raw cuBLASLt | not measured | - |")
    goal("4. linear64, 1 thread: fleet / the empty kernel + stream sync floor",
         ratio(f1, raw.get(("empty", 1), {}).get("ops_per_s")), 0.8)
    # Issue 14's revised batcher goals: batched requests/s against the same
    # clients running the MLP unbatched, and the 1-client p50 against a
    # direct run (1 thread, closed loop: its time per run).
    for t, bar in ((1, 0.9), (4, 0.9), (16, 3.0), (64, 10.0)):
        goal(f"3. batcher, {t} client{'s' if t > 1 else ''}: requests/s / unbatched "
             f"(mlp, {t} thread{'s' if t > 1 else ''})",
             ratio(fleet.get(("batcher", t), {}).get("ops_per_s"),
                   fleet.get(("mlp", t), {}).get("ops_per_s")), bar)
    p50 = fleet.get(("batcher", 1), {}).get("p50_us")
    m1 = fleet.get(("mlp", 1), {}).get("ops_per_s")
    if p50 and m1:
        x = p50 / (1e6 / m1)
        print(f"| 3. batcher p50 at 1 client / a direct run's time (mlp, 1 thread) | {x:.2f} | "
              f"{'PASS' if x <= 1.5 else 'MISS'} (goal <= 1.5) |")
    else:
        print("| 3. batcher p50 at 1 client / a direct run | not measured | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
