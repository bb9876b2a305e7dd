#!/usr/bin/env python3
"""Usage: compare.py SYNAPSE.json HANDOVER.json
Prints a Markdown table of mx_loadbench results side by side, with Handover's ratio to Synapse
(>1 means Handover is better: higher throughput, or lower latency / CPU / memory)."""
import json
import sys



rows = [
    ("send throughput (msgs/s)", ("send", "msgs_per_s"), True),
    ("send latency p50 (ms)", ("send", "p50_ms"), False),
    ("send latency p99 (ms)", ("send", "p99_ms"), False),
    ("send server CPU per msg (ms)", ("send", "server_cpu_ms_per_op"), False),
    ("send-to-sync wake-up p50 (ms)", ("sync_e2e_delivery", "p50_ms"), False),
    ("send-to-sync wake-up p99 (ms)", ("sync_e2e_delivery", "p99_ms"), False),
    ("initial sync p50 (ms)", ("sync_initial", "p50_ms"), False),
    ("incremental sync, 10 msgs, p50 (ms)", ("sync_incremental_10msgs", "p50_ms"), False),
    ("register p50 (ms)", ("register", "p50_ms"), False),
    ("login p50 (ms)", ("login", "p50_ms"), False),
    ("room create p50 (ms)", ("room_create", "p50_ms"), False),
    ("room create server CPU per room (ms)", ("room_create", "server_cpu_ms_per_op"), False),
]


def get(d, path):
    for k in path:
        d = d.get(k, {}) if isinstance(d, dict) else {}
    return d if isinstance(d, (int, float)) else None


if __name__ == "__main__":
    syn, ho = (json.load(open(p)) for p in sys.argv[1:3])
    print("| metric | Synapse | Handover | Handover vs Synapse |")
    print("|---|---:|---:|---:|")
    for name, path, higher_better in rows:
        a, b = get(syn, path), get(ho, path)
        ratio = ""
        if a and b:
            r = b / a if higher_better else a / b
            ratio = f"{r:.1f}x better" if r >= 1 else f"{1 / r:.1f}x worse"
        print(f"| {name} | {a if a is not None else '-'} | {b if b is not None else '-'} | {ratio} |")
    rss = [get(x, ("server_mem_end", "vmrss_kb")) for x in (syn, ho)]
    peak = [get(x, ("server_mem_end", "vmhwm_kb")) for x in (syn, ho)]
    for name, (a, b) in (("RSS after run (MiB)", rss), ("peak RSS (MiB)", peak)):
        if a and b:
            print(f"| {name} | {a / 1024:.0f} | {b / 1024:.0f} | {a / b:.1f}x smaller |")
    for label, d in (("Synapse", syn), ("Handover", ho)):
        print(f"\n{label}: completed={d.get('completed')} errors={len(d.get('errors', []))} total_s={d.get('total_s')}")
