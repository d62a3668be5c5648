#!/usr/bin/env python3
"""lmtp_bench.py - LMTP deliveries/s into Maildir through lmtpd and through Dovecot's LMTP,
in one run, on the same disk, with the disk's own fsync ceiling beside them.

Both agents: seed [001]-style layout (static userdb uid=nobody, mail_location
maildir:ROOT/%d/%n, each agent its own ROOT), recipients checked in one passwd-file
(user@example.com, 1user..20user@example.com: smtp-source -r N sends Nuser..2user, user); Dovecot
with mail_fsync = always (lmtpd always fsyncs file and new/), its default process model.
Load: `smtp-source -L -d -s SESSIONS -l SIZE -m MESSAGES [-r 20]` on the unix socket,
1 recipient and 20 recipients per message; --deliveries per point (messages x
recipients), --runs runs per point alternating the agents, best run reported. A point is
valid only if every delivery landed (files counted in new/ and cur/).
Ceiling: bench_fsync_ceiling (tmp -> write -> fsync -> rename -> fsync new/) with 1, 4 and 8
threads in the same workspace, best of --runs. Bounded: no new run starts after --budget seconds, and
each smtp-source run is killed after --point-timeout. Not a ctest test.
"""

import argparse
import datetime
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import lmtp_peers as lp  # noqa: E402
import peers  # noqa: E402
import sasl_peers as sp  # noqa: E402
from bench_common import machine, version, count_landed  # noqa: E402


def smtp_source(socket_path, messages, rcpts, sessions, size, timeout):
    argv = [peers.require_program("smtp-source", "postfix"), "-L", "-d", "-s", str(sessions),
            "-l", str(size), "-m", str(messages), "-f", "bench@remote.invalid",
            "-t", "user@example.com"]
    if rcpts > 1:
        argv += ["-r", str(rcpts)]
    start = time.monotonic()
    p = subprocess.run(argv + [f"unix:{socket_path}"], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return time.monotonic() - start, p.returncode, (p.stdout + p.stderr).strip()


def ceiling(binary, directory, threads, count):
    p = subprocess.run([binary, "-d", directory, "-j", str(threads), "-n", str(count), "-t", "20"],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"{binary}: rc {p.returncode}: {p.stderr.strip()}")
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in p.stdout.split())}


def filesystem(path):
    out = subprocess.run(["df", "-T", path], capture_output=True, text=True).stdout.splitlines()
    return " ".join(out[-1].split()[:2]) if len(out) > 1 else "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lmtpd", required=True)
    ap.add_argument("--ceiling", required=True, help="bench_fsync_ceiling binary")
    ap.add_argument("--deliveries", type=int, default=4000, help="per run (messages x recipients)")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--recipients", default="1,20")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--lmtp-workers", default="4", help="lmtpd lmtp_workers")
    ap.add_argument("--ceiling-threads", default="1,4,8")
    ap.add_argument("--budget", type=float, default=300)
    ap.add_argument("--point-timeout", type=float, default=180)
    ap.add_argument("--agents", default="dovecot,lmtpd")
    ap.add_argument("--results", default=os.path.join(HERE, "lmtp_results.md"))
    args = ap.parse_args()
    os.environ["POSTERN_LMTPD"] = os.path.abspath(args.lmtpd)
    recipients = [int(r) for r in args.recipients.split(",")]
    names = args.agents.split(",")
    begun = time.monotonic()

    peers.install_signal_handlers()
    ws = peers.Workspace("lmtp-bench")
    stops, rows, ceilings = [], [], {}
    try:
        users = sp.write_file(ws.file("users.db"), "".join(
            f"{p}user@example.com:{{PLAIN}}pw\n" for p in [""] + [str(i) for i in range(1, 21)]))
        agents = {}
        for name in names:
            root = lp.mail_root(ws, f"mail-{name}")
            setup = lp.MailSetup(name, root, ("passwd-file", f"scheme=PLAIN {users}"),
                                 f"uid={lp.MAIL_USER} gid={lp.MAIL_GROUP} home={root}/%d/%n",
                                 f"maildir:{root}/%d/%n")
            if name == "dovecot":
                agent = lp.DovecotLmtp(ws, "dovecot", setup, mail_fsync="always")
            else:
                agent = lp.Lmtpd(ws, "lmtpd", setup, lmtp_workers=args.lmtp_workers,
                                 log_level="warning")
            stops.append(agent.stop)
            agent.start()
            agents[name] = (agent, root)
            # Warm up: first deliveries create the maildirs (and Dovecot's processes).
            smtp_source(agent.socket, 20, 20, 1, args.size, 60)

        plan = [(r, name, run) for r in recipients for run in range(args.runs) for name in names]
        for r, name, run in plan:
            if time.monotonic() - begun > args.budget:
                print(f"budget of {args.budget}s reached; {len(rows)} of {len(plan)} runs done",
                      file=sys.stderr)
                break
            agent, root = agents[name]
            messages = max(1, args.deliveries // r)
            before = count_landed(root)
            try:
                secs, rc, out = smtp_source(agent.socket, messages, r, args.sessions, args.size,
                                            args.point_timeout)
            except subprocess.TimeoutExpired:
                secs, rc, out = args.point_timeout, -1, "timed out"
            landed = count_landed(root) - before
            ok = rc == 0 and landed == messages * r
            rows.append((name, r, run, messages, landed, secs, ok, out[-300:]))
            print(f"{name:8} rcpt={r:<2} run {run + 1}: {messages} msgs, {landed} landed in "
                  f"{secs:6.2f}s = {landed / secs:8.1f} deliveries/s "
                  f"({messages / secs:7.1f} msgs/s){'' if ok else '  INVALID: ' + out[-200:]}",
                  flush=True)
        for threads in (int(t) for t in args.ceiling_threads.split(",")):
            d = ws.mkdir(f"ceiling-{threads}")
            runs = [ceiling(args.ceiling, d, threads, args.deliveries) for _ in range(args.runs)]
            ceilings[threads] = max(runs, key=lambda c: c["deliveries_per_s"])
            print(f"fsync ceiling, {threads} thread(s): "
                  f"{ceilings[threads]['deliveries_per_s']:.1f} deliveries/s")
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception as e:  # report, but keep tearing down
                print(f"teardown: {e}", file=sys.stderr)
        ws.remove()

    best = {}
    for name, r, run, messages, landed, secs, ok, _ in rows:
        if ok and landed / secs > best.get((name, r), (0,))[0]:
            best[(name, r)] = (landed / secs, messages / secs, secs, landed)
    lines = ["| recipients/msg | agent | deliveries/s | messages/s | landed | seconds | lmtpd / Dovecot |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in recipients:
        for name in names:
            if (name, r) not in best:
                lines.append(f"| {r} | {name} | (no valid run) | | | | |")
                continue
            rate, mrate, secs, landed = best[(name, r)]
            ref = best.get(("dovecot", r))
            ratio = f"{rate / ref[0]:.2f}x" if name == "lmtpd" and ref else ""
            lines.append(f"| {r} | {name} | {rate:,.0f} | {mrate:,.0f} | {landed} | {secs:.2f} "
                         f"| {ratio} |")
    for threads, c in ceilings.items():
        lines.append(f"| - | fsync ceiling, {threads} thread(s) | {c['deliveries_per_s']:,.0f} | "
                     f"| {c['deliveries']:.0f} | {c['seconds']:.2f} | |")
    invalid = [r for r in rows if not r[6]]
    table_md = "\n".join(lines)
    print("\n" + table_md)
    if invalid:
        print(f"\n{len(invalid)} invalid run(s) (not every delivery landed):", file=sys.stderr)
        for name, r, run, messages, landed, secs, ok, out in invalid:
            print(f"  {name} rcpt={r} run {run + 1}: {landed}/{messages * r}: {out}", file=sys.stderr)

    rev = version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    report = f"""# LMTP benchmark results

Written by `tests/bench/lmtp_bench.py` on {datetime.datetime.now().astimezone().isoformat(timespec="seconds")}.

- Machine: {machine()}; mail on {filesystem("/tmp")}
- Peers: Dovecot {version(["dovecot", "--version"])} (`mail_fsync = always`), smtp-source from Postfix {version(["postconf", "-d", "-h", "mail_version"])}
- postern: git {rev} (plus uncommitted changes, if any), lmtpd `{os.path.relpath(os.path.abspath(args.lmtpd), ROOT)}`, `lmtp_workers = {args.lmtp_workers}`
- Load: `smtp-source -L -d -s {args.sessions} -l {args.size}` on the unix socket, {args.deliveries} deliveries
  per run, best of {args.runs} runs; users in one passwd-file, static userdb uid=nobody,
  `maildir:ROOT/%d/%n`. A delivery is one file in new/ per recipient (counted).
- Ceiling: `bench_fsync_ceiling` (tmp -> write {args.size} B -> fsync -> rename -> fsync new/), one maildir, best of {args.runs}.
Reproduce: `tests/bench/run-lmtp` (options: `tests/bench/run-lmtp --help`).

{table_md}

With several recipients both agents write and fsync a message once and hard-link it into
every other recipient's new/ (Dovecot: `maildir_copy_with_hardlinks = yes`), fsyncing each
new/; so deliveries/s with 20 recipients can pass the ceiling rows, which fsync one file
and one directory per delivery. smtp-source runs on the same machine and takes CPU from
the agents.
"""
    with open(args.results, "w") as f:
        f.write(report)
    print(f"\nwrote {args.results}")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
