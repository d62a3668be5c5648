#!/usr/bin/env python3
"""perf_profile.py - where the machine's CPU time goes while a benchmark load runs: `perf record
-e cpu-clock -a -g` system-wide for a fixed window, summarised as markdown tables of % of
samples, per process (comm) split user / kernel, per shared object inside chosen processes,
and their hottest symbols. Used by auth_bench.py --profile; also a command of its own:

  tests/bench/perf_profile.py [--seconds 5] [--delay 0.5] [--comm authd ...] [-- LOAD COMMAND...]

starts LOAD COMMAND (if given), records for --seconds after --delay (give the command a
duration past both), waits for the command, and prints the tables. Needs perf (linux-perf);
only software events work in VMs, hence cpu-clock. Idle CPUs show as the kernel's
`swapper` threads, so "% of samples" is meant as a share of the whole machine's time; in
this VM cpu-clock under-samples idle CPUs, so busy processes' shares come out high (read
idle time from /proc/stat where it matters, as lmtp_profile.py does).
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time

KERNEL_DSO = "[kernel.kallsyms]"
IDLE_COMM = "swapper"


def record(seconds, data_path):
    """Samples every CPU for `seconds` into data_path. Blocks; run the load meanwhile."""
    p = subprocess.run(["perf", "record", "-e", "cpu-clock", "-a", "-g", "-o", data_path,
                        "--", "sleep", str(seconds)], capture_output=True, text=True,
                       timeout=seconds + 60)
    if p.returncode != 0:
        raise RuntimeError(f"perf record: rc {p.returncode}: {p.stderr.strip()[-500:]}")


def during(seconds, run_load, data_path, comms=(), lead=0.5, tail=1.0):
    """Calls run_load(lead + seconds + tail) in a thread and samples the machine for `seconds`
    after `lead`, so the window sits inside the load. Returns (run_load's result, Summary)."""
    out = []
    t = threading.Thread(target=lambda: out.append(run_load(lead + seconds + tail)))
    t.start()
    time.sleep(lead)
    try:
        record(seconds, data_path)
    finally:
        t.join()
    if not out:
        raise RuntimeError("the profiled load failed")
    return out[0], Summary(data_path, comms)


def _report(data_path, sort, fields, extra=()):
    """perf report rows as lists of fields (sample count first, as an int)."""
    p = subprocess.run(["perf", "report", "-i", data_path, "--stdio", "--no-children", "-g", "none",
                        "--sort", sort, "-F", fields, "-t", "|", *extra],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"perf report: rc {p.returncode}: {p.stderr.strip()[-500:]}")
    rows = []
    for line in p.stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            rows.append([int(cells[0]), *cells[1:]])
    return rows


class Summary:
    """Sample counts of one perf.data: by (comm, dso), and the hottest symbols of some comms."""

    def __init__(self, data_path, comms=(), top=12):
        self.by_comm_dso = collections.Counter()
        for n, comm, dso in _report(data_path, "comm,dso", "sample,comm,dso"):
            self.by_comm_dso[(comm, dso)] += n
        self.total = sum(self.by_comm_dso.values())
        self.symbols = {}
        if comms:
            # Sorted by comm too and filtered here: `perf report --comm` merges a function's
            # samples across every process that ran it before filtering.
            merged = {comm: collections.Counter() for comm in comms}
            for n, comm, dso, sym in _report(data_path, "comm,dso,sym", "sample,comm,dso,sym"):
                if comm in merged:
                    # A stripped library (libcrypt) gives bare addresses: one row per library then.
                    merged[comm][(dso, "(no symbols)" if sym.split()[-1].startswith("0x") else sym)] += n
            for comm, counter in merged.items():
                self.symbols[comm] = [(n, dso, sym) for (dso, sym), n in counter.most_common(top)]

    def comm_samples(self, comm):
        return sum(n for (c, _), n in self.by_comm_dso.items() if c == comm)

    def dso_samples(self, comm, dso_prefix):
        return sum(n for (c, d), n in self.by_comm_dso.items() if c == comm and d.startswith(dso_prefix))

    def pct(self, n, of=None):
        of = self.total if of is None else of
        return 100.0 * n / of if of else 0.0

    def process_table(self, top=10):
        """Markdown: each comm's share of all samples, split user / kernel; the rest summed."""
        per = collections.Counter()
        kern = collections.Counter()
        for (comm, dso), n in self.by_comm_dso.items():
            per[comm] += n
            if dso == KERNEL_DSO:
                kern[comm] += n
        lines = ["| process (comm) | % of all samples | user | kernel |", "|---|---:|---:|---:|"]
        ranked = per.most_common()
        top = min(top, sum(1 for _, n in ranked if self.pct(n) >= 0.1))  # no rows of 0.0%
        for comm, n in ranked[:top]:
            name = f"{comm} (idle)" if comm == IDLE_COMM else comm
            lines.append(f"| {name} | {self.pct(n):.1f}% | {self.pct(n - kern[comm]):.1f}% "
                         f"| {self.pct(kern[comm]):.1f}% |")
        rest = ranked[top:]
        if rest:
            n = sum(c for _, c in rest)
            k = sum(kern[c] for c, _ in rest)
            lines.append(f"| {len(rest)} others | {self.pct(n):.1f}% | {self.pct(n - k):.1f}% | {self.pct(k):.1f}% |")
        lines.append(f"| total | 100% ({self.total:,} samples) | | |")
        return "\n".join(lines)

    def dso_table(self, comm, top=8):
        """Markdown: one comm's samples by shared object, as % of that comm and of all."""
        own = self.comm_samples(comm)
        rows = sorted(((n, d) for (c, d), n in self.by_comm_dso.items() if c == comm), reverse=True)
        top = min(top, sum(1 for n, _ in rows if self.pct(n, own) >= 0.1))
        lines = [f"| {comm}: shared object | % of {comm} | % of all |", "|---|---:|---:|"]
        for n, dso in rows[:top]:
            lines.append(f"| {dso} | {self.pct(n, own):.1f}% | {self.pct(n):.1f}% |")
        if len(rows) > top:
            n = sum(r[0] for r in rows[top:])
            lines.append(f"| {len(rows) - top} others | {self.pct(n, own):.1f}% | {self.pct(n):.1f}% |")
        return "\n".join(lines)

    def symbol_table(self, comm):
        """Markdown: one comm's hottest symbols (self samples), as % of that comm."""
        own = self.comm_samples(comm)
        lines = [f"| {comm}: symbol | shared object | % of {comm} |", "|---|---|---:|"]
        for n, dso, sym in self.symbols.get(comm, []):
            if self.pct(n, own) < 0.1:
                break
            lines.append(f"| `{sym.replace('|', '/')}` | {dso} | {self.pct(n, own):.1f}% |")
        return "\n".join(lines)

    def markdown(self, comms=()):
        parts = [self.process_table()]
        for comm in comms:
            if self.comm_samples(comm):
                parts += [self.dso_table(comm), self.symbol_table(comm)]
        return "\n\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--delay", type=float, default=0.5, help="after starting the command")
    ap.add_argument("--comm", action="append", default=[], help="break this process down (repeat)")
    ap.add_argument("--data", help="keep perf.data here (default: a temp file, removed)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- LOAD COMMAND...")
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    with tempfile.TemporaryDirectory(prefix="postern-profile-") as tmp:
        data = args.data or os.path.join(tmp, "perf.data")
        proc = subprocess.Popen(cmd) if cmd else None
        try:
            if proc:
                time.sleep(args.delay)
            record(args.seconds, data)
        finally:
            if proc:
                proc.wait()
        print(Summary(data, args.comm).markdown(args.comm))
    return proc.returncode if proc else 0


if __name__ == "__main__":
    sys.exit(main())
