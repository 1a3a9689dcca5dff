#!/usr/bin/env python3
"""Summarise criterion results: throughput per implementation and the ratio
of mailkit to each peer measured in the same run.

Usage: python3 benches/report.py [target/criterion]
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
IMPLS = ("mailkit", "stalwart", "imap-codec", "memchr")
rows = {}
for bench in root.glob("**/new/benchmark.json"):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())
    ns = est["mean"]["point_estimate"]
    parts = meta["full_id"].split("/")
    impl = next((p for p in parts if p in IMPLS), None)
    if impl is None:
        continue
    case = "/".join(p for p in parts if p != impl)
    tp = meta.get("throughput") or {}
    nbytes = tp.get("Bytes") or tp.get("BytesDecimal")
    rows.setdefault(case, {})[impl] = (ns, nbytes)

def rate(ns, nbytes):
    if nbytes:
        return f"{nbytes / ns * 1e9 / 2**20:9.1f} MiB/s"
    return f"{ns:9.1f} ns"

print(f"| case | mailkit | peer | ratio (mailkit/peer) | mailkit vs memchr |")
print("|---|---|---|---|---|")
for case in sorted(rows):
    r = rows[case]
    if "mailkit" not in r:
        continue
    ours = r["mailkit"]
    peer_name = next((p for p in ("stalwart", "imap-codec") if p in r), None)
    peer = r.get(peer_name) if peer_name else None
    ratio = f"{peer[0] / ours[0]:.2f}x" if peer else "-"
    mem = f"{r['memchr'][0] / ours[0]:.2f}x" if "memchr" in r else "-"
    peer_s = f"{rate(*peer)} ({peer_name})" if peer else "-"
    print(f"| {case} | {rate(*ours)} | {peer_s} | {ratio} | {mem} |")
