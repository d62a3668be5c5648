"""lookup_profile.py - where the time of one uncached lookup goes: the "Where the time goes"
section of results.md, made by lookup_bench.py (on by default, --no-profile skips it).

postmap is a serial client: one request, wait for the answer, the next. So a lookup's
time is the sum of the work of every process on its path plus the hand-offs between
them, and the profile measures both:

1. Placement. Each table runs with every process pinned to CPU 0 (a hand-off is a plain
   context switch, and wall time is CPU time) and with postmap on CPU 1, the servers on
   CPU 0 (every postmap <-> server hand-off wakes a sleeping CPU), beside the unpinned
   medians of the main table; and the context switches on CPU 0 per lookup, one per
   hand-off, when everything is on CPU 0.
2. perf (cpu-clock, every CPU, call graphs) during one pass of native mysql: and of
   lookupd cache off with everything on CPU 0: CPU 0's samples per process (lookupd's
   loop thread apart from its workers), user and kernel, share out that table's CPU 0
   time per lookup from part 1 (no idle there, so wall time is CPU time).
3. callgrind: the instructions lookupd itself executes per lookup (every thread) over a
   10,000-key pass, after a warming pass, and the functions that execute most of them.

perf (Debian package linux-perf) and valgrind are optional: a part whose tool is missing
says so. Affinities are put back to every CPU afterwards.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import peers  # noqa: E402

PERF_PERIOD_NS = 20000  # one cpu-clock sample per 20 us of CPU time


class Target:
    """One table of the bench: its Postfix table name and the PIDs of its servers."""

    def __init__(self, label, table, pids):
        self.label, self.table, self.pids = label, table, pids


def pin(pids, cpus):
    """Every thread of every pid onto cpus (threads made later inherit it)."""
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:  # a thread that just ended
                pass


def postmap_argv(pf, table):
    return [pf.postmap, "-c", pf.dir, "-q", "-", table]


def run_postmap(argv, keys_file, cpu):
    """Runs argv (a postmap, maybe under perf) with the keys on stdin, itself on CPU cpu
    (None: anywhere); returns the seconds it took."""
    pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    with open(keys_file) as keys:
        start = time.monotonic()
        p = subprocess.run(argv, stdin=keys, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           preexec_fn=pre, timeout=300)
        elapsed = time.monotonic() - start
    if p.returncode != 0 or p.stderr.strip():
        raise RuntimeError(f"{' '.join(argv[:3])}...: rc {p.returncode}: {p.stderr.strip()[:300]}")
    return elapsed


def switches_per_lookup(pf, keys_file, nkeys, target, workdir):
    """Context switches on CPU 0 per lookup, everything on CPU 0: one per hand-off."""
    out = os.path.join(workdir, "perf-stat.csv")
    run_postmap(["perf", "stat", "-x", ",", "-o", out, "-e", "context-switches", "-a", "-C", "0", "--",
                 "taskset", "-c", "0"] + postmap_argv(pf, target.table), keys_file, 1)
    with open(out) as f:
        for line in f:
            fields = line.split(",")
            if len(fields) > 2 and fields[2].startswith("context-switches") and fields[0].isdigit():
                return int(fields[0]) / nkeys
    return float("nan")


def placement(pf, keys_file, nkeys, targets, free_us, runs, workdir):
    all_cpus = set(range(os.cpu_count()))
    have_perf = shutil.which("perf") is not None
    rows = ["| table | all on CPU 0: µs per lookup | postmap on CPU 1, servers on CPU 0 | unpinned (main table) "
            "| context switches per lookup |", "|---|---:|---:|---:|---:|"]
    same, cross = {}, {}
    try:
        for t in targets:
            pin(t.pids, {0})
            argv = postmap_argv(pf, t.table)
            same_us = statistics.median(run_postmap(argv, keys_file, 0) for _ in range(runs)) * 1e6 / nkeys
            cross_us = statistics.median(run_postmap(argv, keys_file, 1) for _ in range(runs)) * 1e6 / nkeys
            switches = f"{switches_per_lookup(pf, keys_file, nkeys, t, workdir):.1f}" if have_perf else "-"
            pin(t.pids, all_cpus)
            same[t.label], cross[t.label] = same_us, cross_us
            rows.append(f"| {t.label} | {same_us:.1f} | {cross_us:.1f} | {free_us.get(t.label, 0):.0f} "
                        f"| {switches} |")
            print(f"profile: {t.label}: same CPU {same_us:.1f} us, across CPUs {cross_us:.1f} us, "
                  f"{switches} context switches per lookup", flush=True)
    finally:
        for t in targets:
            pin(t.pids, all_cpus)
    return "\n".join(rows), same, cross


def perf_breakdown(pf, keys_file, target, lookupd_pid, wall_us, workdir):
    """CPU µs per lookup by process (lookupd by thread), user + kernel, all on CPU 0;
    wall_us: the same table's µs per lookup on CPU 0 without perf."""
    data = os.path.join(workdir, "perf-" + re.sub(r"\W+", "-", target.label) + ".data")
    pin(target.pids, {0})
    try:
        run_postmap(["perf", "record", "-q", "-e", "cpu-clock", "-c", str(PERF_PERIOD_NS), "-a", "-g",
                               "-o", data, "--", "taskset", "-c", "0"] + postmap_argv(pf, target.table), keys_file, 1)
    finally:
        pin(target.pids, set(range(os.cpu_count())))
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "-n", "--no-children", "-g", "none",
                          "--sort", "pid,dso", "--cpu", "0"], capture_output=True, text=True, timeout=300)
    usage = {}  # who -> [user samples, kernel samples]
    for line in rep.stdout.splitlines():
        m = re.match(r"^\s*[\d.]+%\s+(\d+)\s+(\d+):(\S+)\s+(.*?)\s*$", line)
        if not m:
            continue
        samples, tid, comm, dso = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        if comm == "lookupd":
            who = "lookupd loop thread" if tid == lookupd_pid else "lookupd SQL workers"
        elif comm in ("mariadbd", "mysqld"):
            who = "mariadbd"
        elif comm == "postmap":
            who = "postmap"
        elif comm == "swapper":
            who = "idle"
        else:
            who = "other"
        usage.setdefault(who, [0, 0])[1 if dso == "[kernel.kallsyms]" else 0] += samples

    # With everything on CPU 0 and no idle time, wall time is the sum of the processes'
    # CPU time: the samples share it out. (Idle CPUs are not sampled here, and the
    # period the VM delivers is not the nominal one, so samples are not counted as time.)
    total = sum(sum(u) for w, u in usage.items() if w != "idle") or 1

    def us(n):
        return n / total * wall_us

    order = ["postmap", "lookupd loop thread", "lookupd SQL workers", "mariadbd", "other"]
    cells = [f"{us(sum(usage[w])):.1f} ({us(usage[w][0]):.1f} + {us(usage[w][1]):.1f})" if w in usage else "-"
             for w in order]
    return cells + [f"{wall_us:.1f}"]


def callgrind(lookupd_binary, conf_text, pf, keys_file, nkeys, workdir):
    """Instructions lookupd executes per lookup, by thread, and its top functions."""
    sock = os.path.join(workdir, "callgrind.sock")
    conf = os.path.join(workdir, "callgrind-lookupd.conf")
    with open(conf, "w") as f:
        f.write(re.sub(r"(?m)^socketmap_listen = .*$", f"socketmap_listen = unix:{sock}", conf_text))
    out = os.path.join(workdir, "callgrind.out")
    proc = peers.start_daemon(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                               "--separate-threads=yes", lookupd_binary, "-c", conf],
                              os.path.join(workdir, "callgrind.log"))
    try:
        peers.wait_until(lambda: peers.can_connect(sock), 120, what="lookupd under callgrind")
        argv = postmap_argv(pf, f"socketmap:unix:{sock}:mailboxes")
        run_postmap(argv, keys_file, None)  # warm: connections made
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, timeout=60)
        run_postmap(argv, keys_file, None)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, timeout=60)
    finally:
        peers.stop_daemon(proc, 120, "lookupd under callgrind")
    # The dump after the zeroing: one file per thread, "<out>.1-<thread>".
    dumps = sorted(f for f in os.listdir(workdir) if re.match(r"callgrind\.out\.1-\d+$", f))
    per_thread, functions = [], {}
    for name in dumps:
        path = os.path.join(workdir, name)
        with open(path) as f:
            per_thread.append(next((int(l.split()[1]) for l in f if l.startswith("summary:")), 0))
        ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
                             capture_output=True, text=True, timeout=120).stdout
        for line in ann.splitlines():
            m = re.match(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*?)\s*$", line)
            # Frames still active at the dump (main, the loop) show the thread's whole
            # cost; they are not where it goes.
            if m and "PROGRAM TOTALS" not in line and float(m.group(2)) < 99:
                fn = re.sub(r"^\S*?:", "", m.group(3).split(" [")[0], count=1)
                functions[fn] = functions.get(fn, 0) + int(m.group(1).replace(",", ""))
    top = sorted(functions.items(), key=lambda kv: -kv[1])[:8]
    return [n / nkeys for n in per_thread], [(fn, n / nkeys) for fn, n in top]


def profile(pf, keys_file, nkeys, targets, lookupd_target, lookupd_pid, lookupd_binary, lookupd_conf_text,
            free_us, workdir, runs=3):
    """The markdown section; targets: Target list (native mysql: first), lookupd_target
    (lookupd cache off) among them."""
    print("profile: placement passes", flush=True)
    placement_md, same_us, cross_us = placement(pf, keys_file, nkeys, targets, free_us, runs, workdir)
    parts = [f"""## Where the time goes

Made by `tests/bench/lookup_bench.py` (module `lookup_profile.py`; `--no-profile` skips it).
postmap is one serial client, so a lookup costs the work of every process on its path
plus one hand-off per hop between them.

**Placement** ({runs} passes each, median). Context switches: `perf stat -e context-switches
-a -C 0` over one more pass with everything on CPU 0, where each hop is one switch:

{placement_md}
"""]
    if shutil.which("perf"):
        print("profile: perf", flush=True)
        rows = ["| table | postmap | lookupd loop thread | lookupd SQL workers | mariadbd | other | total |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for t in (targets[0], lookupd_target):
            cells = perf_breakdown(pf, keys_file, t, lookupd_pid, same_us[t.label], workdir)
            rows.append(f"| {t.label} | " + " | ".join(cells) + " |")
        parts.append(f"""**CPU per lookup**, everything on CPU 0, µs as total (user + kernel): the samples of
`perf record -e cpu-clock -c {PERF_PERIOD_NS} -a -g -- taskset -c 0 postmap -q - TABLE < keys`
(`perf report --sort pid,dso --cpu 0`) share out the CPU 0 time per lookup above.

""" + "\n".join(rows) + "\n")
    else:
        parts.append("**CPU per lookup**: skipped, `perf` is not installed (Debian package linux-perf).\n")
    if shutil.which("valgrind") and shutil.which("callgrind_annotate"):
        print("profile: callgrind (about a minute)", flush=True)
        per_thread, top = callgrind(lookupd_binary, lookupd_conf_text, pf, keys_file, nkeys, workdir)
        threads_txt = " + ".join(f"{n:,.0f}" for n in per_thread if n >= 1)
        top_rows = "\n".join(f"| `{fn[:90]}` | {n:,.0f} |" for fn, n in top)
        parts.append(f"""**lookupd's own instructions per lookup** (callgrind, cache off, one {nkeys:,}-key pass after a
warming pass): {sum(per_thread):,.0f} (by thread: {threads_txt}). Most executed functions
(self cost, instructions per lookup):

| function | instructions per lookup |
|---|---:|
{top_rows}
""")
    else:
        parts.append("**lookupd's own instructions**: skipped, `valgrind` is not installed.\n")
    parts.append(limit_note(targets[0].label, lookupd_target.label, targets[-1].label, same_us, cross_us, free_us))
    return "\n".join(parts)


BARE = "bare SQL server (no cache)"  # lookup_bench.py's column label


def limit_note(native, lookupd, ceiling, same_us, cross_us, free_us):
    """Why the uncached row's limit is elsewhere, in this run's numbers."""
    wake = (cross_us[ceiling] - same_us[ceiling]) / 2
    return f"""**Where the limit is.** A cache-off lookup through lookupd is the native lookup's database
round trip (the same query to the same mariadbd, now sent by lookupd's loop thread itself) plus
a socketmap round trip between postmap and lookupd, which alone is the ceiling row. On one CPU,
where a hand-off is a plain context switch, that is {same_us[native]:.1f} + {same_us[ceiling]:.1f} µs against
lookupd's {same_us[lookupd]:.1f} µs: what lookupd adds of its own is small. Unpinned, a hand-off that
has to wake the other CPU costs about {wake:.0f} µs on this VM (the ceiling row: two hand-offs,
{same_us[ceiling]:.1f} µs on one CPU, {cross_us[ceiling]:.1f} µs across two), and lookupd's path has four
hand-offs where native mysql: has two. 1.5x native would be {free_us[native] / 1.5:.0f} µs per lookup,
less than native's own database round trip ({free_us[native]:.0f} µs) with a socketmap round trip
({free_us[ceiling]:.0f} µs) still to add: out of reach for any server between postmap and the database
with one client waiting on each answer. With many clients the hand-offs overlap, and with the cache
on a hit needs no database at all (the warm row).{bare_note(native, lookupd, free_us)}
"""


def bare_note(native, lookupd, free_us):
    """The bare SQL server's figure, the measured form of the argument above."""
    bare = free_us.get(BARE)
    if not bare or not free_us.get(lookupd):
        return ""
    return (f"\nThe bare SQL server (one blocking thread per connection sending the same query, nothing\n"
            f"else) takes {bare:.0f} µs per lookup in this run: {free_us[native] / bare:.2f}x native mysql:'s rate, and\n"
            f"lookupd with its cache off {free_us[lookupd]:.0f} µs ({bare / free_us[lookupd]:.0%} of the bare server's rate).")
