#!/usr/bin/env python3
"""Usage: compare_ab.py OUT_DIR ROUNDS
Medians of bench/ab.sh's rounds (OUT_DIR/{a,b}-N.json), A beside B, with B's ratio to A
(>1 means B is better: higher throughput, or lower latency / CPU), and each metric's range."""
import json
import statistics
import sys

from compare import get, rows

out, rounds = sys.argv[1], int(sys.argv[2])
runs = {s: [json.load(open(f"{out}/{s}-{r}.json")) for r in range(1, rounds + 1)] for s in "ab"}

print(f"| metric (median of {rounds}) | A | B | B vs A (>1 better) | A range | B range |")
print("|---|---:|---:|---:|---|---|")
for name, path, higher_better in rows:
    vals = {s: [v for v in (get(d, path) for d in runs[s]) if v is not None] for s in "ab"}
    if not vals["a"] or not vals["b"]:
        continue
    a, b = statistics.median(vals["a"]), statistics.median(vals["b"])
    ratio = (b / a if higher_better else a / b) if a and b else float("nan")
    rng = {s: f"{min(vals[s]):g}–{max(vals[s]):g}" for s in "ab"}
    print(f"| {name} | {a:g} | {b:g} | {ratio:.2f}x | {rng['a']} | {rng['b']} |")
