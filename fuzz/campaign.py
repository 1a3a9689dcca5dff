#!/usr/bin/env python3
"""Runs cargo-fuzz targets for a fixed time each, a few at a time, and prints
a Markdown table of what each run did (executions, coverage, crashes).

    python3 fuzz/campaign.py --minutes 10 --jobs 2            # every target
    python3 fuzz/campaign.py --minutes 1 smtp_reply pop3_status

Needs cargo-fuzz (`cargo install cargo-fuzz --version 0.13.2 --locked`); a
stable toolchain runs it with RUSTC_BOOTSTRAP=1, which this sets. Each target
starts from its committed corpus (read only: new inputs go to a scratch folder
under --work, so the committed corpus stays minimised). A crash, leak or
timeout leaves its input in fuzz/artifacts/TARGET/ and marks the row.
Exits 1 when any target failed.
"""

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parent


def targets():
    out = subprocess.run(
        ["cargo", "fuzz", "list"], cwd=FUZZ, env=env(), check=True,
        capture_output=True, text=True,
    ).stdout
    return [t for t in out.split() if t]


def env():
    e = dict(os.environ)
    e["RUSTC_BOOTSTRAP"] = "1"
    return e


def run(target, seconds, work, rss):
    scratch = work / target
    scratch.mkdir(parents=True, exist_ok=True)
    log = work / f"{target}.log"
    cmd = [
        "cargo", "fuzz", "run", target, str(scratch), str(FUZZ / "corpus" / target),
        "--", f"-max_total_time={seconds}", f"-rss_limit_mb={rss}",
        "-timeout=10", "-print_final_stats=1",
    ]
    started = time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=FUZZ, env=env(), stdout=f, stderr=subprocess.STDOUT).returncode
    took = time.monotonic() - started
    text = log.read_text(errors="replace")
    row = {"target": target, "rc": rc, "seconds": took, "log": str(log)}
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    row["execs"] = int(m.group(1)) if m else None
    status = re.findall(r"#\d+\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", text)
    row["cov"], row["ft"], row["corp"] = status[-1] if status else ("-", "-", "-")
    m = re.search(r"stat::peak_rss_mb:\s*(\d+)", text)
    row["rss"] = m.group(1) if m else "-"
    bad = re.findall(r"(deadly signal|ERROR: libFuzzer: \w[\w-]*|ERROR: AddressSanitizer: [\w-]+|panicked at)", text)
    row["crashes"] = len(set(re.findall(r"Test unit written to (\S+)", text)))
    row["result"] = "clean" if rc == 0 and not bad else (bad[0] if bad else f"exit {rc}")
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--rss-limit-mb", type=int, default=2048)
    p.add_argument("--work", default="/tmp/mailkit-fuzz-campaign")
    p.add_argument("targets", nargs="*")
    a = p.parse_args()
    names = a.targets or targets()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    # Build every target once up front, so the timed runs only fuzz.
    subprocess.run(["cargo", "fuzz", "build"], cwd=FUZZ, env=env(), check=True)
    seconds = int(a.minutes * 60)
    rows, queue, lock = [], list(names), threading.Lock()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                t = queue.pop(0)
            r = run(t, seconds, work, a.rss_limit_mb)
            with lock:
                rows.append(r)
                print(f"{t}: {r['result']}, {r['execs']} runs in {r['seconds']:.0f} s", file=sys.stderr, flush=True)

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows.sort(key=lambda r: names.index(r["target"]))
    print(f"| target | runs | seconds | coverage (edges) | features | corpus | peak RSS MB | crashes | result |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        execs = f"{r['execs']:,}" if r["execs"] is not None else "-"
        print(f"| {r['target']} | {execs} | {r['seconds']:.0f} | {r['cov']} | {r['ft']} | {r['corp']} | {r['rss']} | {r['crashes']} | {r['result']} |")
    sys.exit(0 if all(r["result"] == "clean" for r in rows) else 1)


if __name__ == "__main__":
    main()
