#!/usr/bin/env python3
# ruff: noqa - copy of the shared load harness (shared/bench/summarize_wrk.py), only reformatted by ruff format
"""Summarise run_token_bench.sh output: median (and range) of req/s, p50, p99 per config."""

import re
import statistics as st
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
rows = defaultdict(list)
for f in sorted(out.glob("t*c*-r*.txt")):
    if f.name.endswith(".presign.txt"):
        continue
    txt = f.read_text()
    m = re.search(r"RESULT (.*)", txt)
    if not m:
        print(f"no RESULT in {f}")
        continue
    kv = dict(x.split("=") for x in m.group(1).split())
    cpu = re.search(r"server_cpu_s=([\d.]+)", txt)
    kv["server_cpu_s"] = cpu.group(1) if cpu else "nan"
    kv["replay_free"] = "yes" if "replay-free: yes" in txt else "NO"
    rows[f.name.split("-r")[0]].append(kv)

print(
    "| config | runs | req/s median (min-max) | p50 ms median | p99 ms median (min-max) | non-2xx | replay-free | server CPU s / 1k req |"
)
print("|---|---|---|---|---|---|---|---|")
for cfg, rs in rows.items():
    rps = [float(r["rps"]) for r in rs]
    p50 = [float(r["p50_ms"]) for r in rs]
    p99 = [float(r["p99_ms"]) for r in rs]
    errs = sum(
        int(r["non2xx3xx"]) + int(r["connect"]) + int(r["read"]) + int(r["write"]) + int(r["timeout"]) for r in rs
    )
    cpu_per_k = [float(r["server_cpu_s"]) / int(r["requests"]) * 1000 for r in rs]
    print(
        f"| {cfg} | {len(rs)} | {st.median(rps):.0f} ({min(rps):.0f}-{max(rps):.0f}) | {st.median(p50):.2f} "
        f"| {st.median(p99):.2f} ({min(p99):.2f}-{max(p99):.2f}) | {errs} | "
        f"{'yes' if all(r['replay_free'] == 'yes' for r in rs) else 'NO'} | {st.median(cpu_per_k):.3f} |"
    )
for cfg, rs in rows.items():
    for i, r in enumerate(rs, 1):
        print(
            f"  {cfg} run{i}: rps={float(r['rps']):.0f} p50={r['p50_ms']} p90={r['p90_ms']} p99={r['p99_ms']} "
            f"max={r['max_ms']} requests={r['requests']} server_cpu_s={float(r['server_cpu_s']):.2f}"
        )
