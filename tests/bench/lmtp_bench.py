#!/usr/bin/env python3
"""lmtp_bench.py - LMTP deliveries/s into Maildir through lmtpd and through Dovecot's LMTP,
in one run, on the same disk, beside three limits: the disk's fsync ceiling, that file work
behind a bare LMTP server, and the protocol-only ceiling of Postfix's smtp-sink.

Both agents: seed [001]-style layout (static userdb uid=nobody, mail_location
maildir:ROOT/%d/%n, each agent its own ROOT), recipients checked in one passwd-file
(user@D, 1user..20user@D: smtp-source -r N sends Nuser..2user, user) with one domain D per
case and run, so every run delivers into new, empty maildirs (Dovecot slows down as a
maildir grows; removing mail between runs instead slowed the next run on ext4 with discard);
Dovecot with mail_fsync = always (lmtpd always fsyncs file and new/), its default process model.
Load per case: `smtp-source -L [-d] -s SESSIONS -l SIZE -m MESSAGES [-r N]` on the unix socket;
cases (--cases) are recipients per message and connection mode: `new` opens a connection
per message (no -d), `reuse` sends every message of a session over one connection (-d).
Each run sends --deliveries recipient-deliveries (messages x recipients); a run is valid
only if every delivery landed (files counted in the run's domain, in new/ and cur/).
Limits, in the same run: bench_fsync_ceiling (tmp -> write -> fsync -> rename -> fsync new/)
with --ceiling-threads threads, writing files the size of those the agents landed in the
warm-up (and once with 8 threads the message's own size, for reference);
bench_lmtp_bare_server (the same file work per message behind the least LMTP server there
can be: a blocking thread per session, no lookup; agent `bare`), loaded like the agents;
`smtp-sink -L` (accepts and discards, writes nothing to disk) loaded by the same smtp-source
command per case, with --sink-deliveries per run (it is fast, so a longer run keeps its
timing out of the noise).
Every point runs --runs times, interleaved (run 1 of everything, then run 2, ...), and is
reported as median with min-max; each point starts after a sync(2). Bounded: no new run
starts after --budget seconds, and each smtp-source run is killed after --point-timeout.
Then, unless --no-profile, the "Where the time goes" section (lmtp_profile.py): one more
lmtpd run of the 1-recipient reuse case and one 8-thread ceiling run under `perf record -a`,
CPU time per process and per delivery, and why the ceiling target's limit is elsewhere.
Not a ctest test.
"""

import argparse
import datetime
import os
import shutil
import statistics
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
from bench_common import (BareServer, children_cpu_seconds, count_landed, landed_size,  # noqa: E402
                          machine, maildir_setup, tear_down, tool_beside, tree_cpu_seconds, version)
import lmtp_profile  # noqa: E402
from lmtp_loads import Case, Sink, ceiling, smtp_source, smtp_source_argv  # noqa: E402

# Issue 6's targets, by recipients per message: (lmtpd at least this many times Dovecot,
# lmtpd at least this share of the 8-thread fsync ceiling, or None).
TARGETS = {1: (2.5, 0.90), 20: (4.0, None)}
NAMES = {"lmtpd": "lmtpd", "dovecot": "Dovecot", "bare": "bare LMTP server", "smtp-sink": "smtp-sink -L"}


def filesystem(path):
    """'/dev/vda ext4', plus '(no journal)' for an ext4 without one: there every fsync is
    its own synchronous write and cache flush, with no group commit to share it."""
    out = subprocess.run(["df", "-T", path], capture_output=True, text=True).stdout.splitlines()
    if len(out) < 2:
        return "unknown"
    dev, kind = out[-1].split()[:2]
    try:
        with open(f"/sys/fs/ext4/{os.path.basename(dev)}/journal_task") as f:
            if f.read().strip() == "<none>":
                kind += " (no journal)"
    except OSError:
        pass
    return f"{dev} {kind}"


def stat(rates):
    """(median, min, max, n) of a list of rates, or None."""
    return (statistics.median(rates), min(rates), max(rates), len(rates)) if rates else None


def row(case, who, s, runs, files, used, ratios=("", "", "", "")):
    """One table row: median, min - max, valid runs, files, CPU per delivery, then the ratio
    cells (lmtpd's, or the bare server's share of the ceiling)."""
    value, spread, n = ((f"{s[0]:,.0f}", f"{s[1]:,.0f} - {s[2]:,.0f}", s[3]) if s
                        else ("(no valid run)", "", 0))
    return f"| {case} | {who} | {value} | {spread} | {n}/{runs} | {files} | {cpu_cell(used)} | {' | '.join(ratios)} |"


def cpu_cell(used):
    """'agent / smtp-source' CPU µs per delivery, medians of the valid runs."""
    if not used:
        return ""
    own = f"{statistics.median(u[0] for u in used):,.0f}"
    source = [u[1] for u in used if u[1] is not None]
    return own + (f" / {statistics.median(source):,.0f}" if source else "")


def share(a, b, fmt="{:.0%}"):
    return fmt.format(a[0] / b[0]) if a and b else "–"


def verdicts(cases, stats, ceil8):
    """One line per target: met / missed with the figure."""
    out = []
    for case in cases:
        if case.rcpts not in TARGETS or case.sessions:  # targets are for the load
            continue
        times, of_ceiling = TARGETS[case.rcpts]
        ours, ref = stats.get(("lmtpd", str(case))), stats.get(("dovecot", str(case)))
        if ours and ref:
            r = ours[0] / ref[0]
            out.append(f"{case}: lmtpd / Dovecot >= {times}x: "
                       f"{'met' if r >= times else 'MISSED'} ({r:.2f}x)")
        else:
            out.append(f"{case}: lmtpd / Dovecot >= {times}x: not measured")
        if of_ceiling is not None:
            bare = stats.get(("bare", str(case)))
            if ours and ceil8:
                r = ours[0] / ceil8[0]
                out.append(f"{case}: lmtpd >= {of_ceiling:.0%} of the 8-thread fsync ceiling: "
                           f"{'met' if r >= of_ceiling else 'MISSED'} ({r:.0%})"
                           + (f"; the bare LMTP server under the same load: {share(bare, ceil8)} of the ceiling, "
                              f"lmtpd {share(ours, bare)} of the bare server" if bare else ""))
            else:
                out.append(f"{case}: lmtpd >= {of_ceiling:.0%} of the 8-thread fsync ceiling: "
                           "not measured")
    return out


def concurrency_note(cases, stats, ceil8, sessions):
    """What the cases with their own session count show, against the --sessions cases."""
    out = []
    for case in (c for c in cases if c.sessions):
        ours, ref, bare = (stats.get((w, str(case))) for w in ("lmtpd", "dovecot", "bare"))
        base = next((c for c in cases if not c.sessions and (c.rcpts, c.reuse) == (case.rcpts, case.reuse)), None)
        ours_base = stats.get(("lmtpd", str(base))) if base else None
        if not ours or not ceil8:
            continue
        out.append(f"- {case}: lmtpd {ours[0]:,.0f}/s = {share(ours, ceil8)} of the 8-thread fsync ceiling"
                   + (f" (with {sessions} sessions: {share(ours_base, ceil8)})" if ours_base else "")
                   + (f"; the bare LMTP server {bare[0]:,.0f}/s = {share(bare, ceil8)}" if bare else "")
                   + (f"; Dovecot {ref[0]:,.0f}/s" if ref else "") + ".")
    if not out:
        return ""
    return ("Not targets: the same load with more sessions. Each smtp-source session has one message in "
            "flight, so its protocol round trips come on top of every fsync; with more sessions they "
            "overlap other sessions' fsyncs, as they do under Postfix's lmtp client (up to "
            "`default_destination_concurrency_limit` = 20 connections per destination).\n" + "\n".join(out) + "\n")


def profile(args, ws, agents, rates, file_size):
    """The "Where the time goes" section: lmtpd's 1-recipient reuse case and the 8-thread
    ceiling, one profiled run each (lmtp_profile.py), sized from this run's medians to outlast
    the window by far (both are stopped when it ends)."""
    if not shutil.which("perf") or "lmtpd" not in agents:
        why = "perf (linux-perf) is not installed" if "lmtpd" in agents else "lmtpd is not among --agents"
        return f"## Where the time goes\n\nSkipped: {why}.\n"
    case, domain = Case("1:reuse"), "prof.example.com"
    med = {k: statistics.median(v) for k, v in rates.items()}
    span = lmtp_profile.LEAD + args.profile_seconds + 5  # + perf's start and stop, file counts
    count = int(max(med.get(("lmtpd", str(case)), 0), med.get(("ceiling", 8), 0), 5000) * span * 1.5)
    agent, root = agents["lmtpd"]
    cdir = ws.mkdir("ceiling-profile")
    data_dir = args.perf_data or ws.mkdir("perf")
    os.makedirs(data_dir, exist_ok=True)
    quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    source = smtp_source_argv(agent.socket, case.source_args(args.sessions, args.size, count), domain)
    loads = [lmtp_profile.Load("lmtpd", lmtp_profile.LMTPD, lambda: subprocess.Popen(source, **quiet),
                               lambda: count_landed(os.path.join(root, domain)), lambda _: agent.proc.pid),
             lmtp_profile.Load("ceiling", lmtp_profile.CEILING,
                               lambda: subprocess.Popen([args.ceiling, "-d", cdir, "-j", "8", "-s", str(file_size),
                                                         "-n", str(count),
                                                         "-t", str(span)], **quiet),
                               lambda: count_landed(cdir), lambda proc: proc.pid)]
    return lmtp_profile.section(loads, args.profile_seconds, data_dir, str(case), count, med.get(("ceiling", 4)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lmtpd", required=True)
    ap.add_argument("--ceiling", required=True, help="bench_fsync_ceiling binary")
    ap.add_argument("--bare-server", help="bench_lmtp_bare_server binary (default: beside --ceiling)")
    ap.add_argument("--deliveries", type=int, default=4000,
                    help="per agent run and per fsync-ceiling run (messages x recipients)")
    ap.add_argument("--sink-deliveries", type=int, default=16000, help="per smtp-sink run")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--cases", default="1:new,1:reuse,20:reuse,1:reuse:32",
                    help="RCPTS:new|reuse[:SESSIONS], comma-separated (new: no -d; reuse: -d; "
                         "SESSIONS: instead of --sessions; such a case has no target)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lmtp-workers", default="0", help="lmtpd lmtp_workers (0: its default, 4 per core)")
    ap.add_argument("--ceiling-threads", default="1,4,8")
    ap.add_argument("--budget", type=float, default=300)
    ap.add_argument("--point-timeout", type=float, default=120)
    ap.add_argument("--agents", default="dovecot,lmtpd,bare,smtp-sink",
                    help="comma-separated; lmtpd@N adds an lmtpd with lmtp_workers = N")
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="skip the 'Where the time goes' section (perf profile of lmtpd and the ceiling)")
    ap.add_argument("--profile-seconds", type=float, default=5)
    ap.add_argument("--perf-data", help="keep the profile's perf.data files in this directory")
    ap.add_argument("--results", default=os.path.join(HERE, "lmtp_results.md"))
    args = ap.parse_args()
    os.environ["POSTERN_LMTPD"] = os.path.abspath(args.lmtpd)
    cases = [Case(c) for c in args.cases.split(",")]
    names = args.agents.split(",")
    threads_list = [int(t) for t in args.ceiling_threads.split(",") if t]
    begun = time.monotonic()

    peers.install_signal_handlers()
    ws = peers.Workspace("lmtp-bench")
    stops = []
    rates = {}      # (who, str(case)) or ("ceiling", threads) -> [valid rates]
    cpu = {}        # the same keys -> [(agent or ceiling, smtp-source) CPU us per delivery]
    landed = {}     # (who, str(case)) -> [landed, expected] over every run
    invalid = []
    planned = done = 0
    profile_md = ""
    file_size = args.size  # until an agent's landed file says otherwise
    try:
        # One domain per case and run (and one to warm up), 21 users in each.
        domains = ["warm.example.com", "prof.example.com"] + [f"c{c}r{r}.example.com" for c in range(len(cases))
                                          for r in range(args.runs)]
        users = sp.write_file(ws.file("users.db"), "".join(
            f"{p}user@{d}:{{PLAIN}}pw\n" for d in domains for p in [""] + [str(i) for i in range(1, 21)]))
        agents = {}
        for name in names:
            if name == "smtp-sink":
                agent = Sink(ws)
                stops.append(agent.stop)
                agents[name] = (agent.start(), None)
                continue
            setup = maildir_setup(ws, name, users)
            root = setup.root
            if name == "bare":
                agent = BareServer(ws, "bare", args.bare_server or tool_beside(args.ceiling, "bench_lmtp_bare_server"),
                                   ["SOCKET", root])
            elif name == "dovecot":
                agent = lp.DovecotLmtp(ws, "dovecot", setup, mail_fsync="always")
            else:
                # "lmtpd@N": one more lmtpd with lmtp_workers = N, to compare settings in one run.
                workers = name.split("@", 1)[1] if "@" in name else args.lmtp_workers
                agent = lp.Lmtpd(ws, name.replace("@", "-w"), setup, lmtp_workers=workers,
                                 log_level="warning")
            stops.append(agent.stop)
            agent.start()
            agents[name] = (agent, root)
            # Warm up, untimed: Dovecot forks its lmtp processes, lmtpd starts its workers.
            smtp_source(agent.socket, Case("1:reuse").source_args(args.sessions, args.size, 800),
                        domains[0], 60)

        # The ceiling writes files as large as the agents' (smtp-source's message plus the trace
        # headers an agent adds); one more point writes --size bytes.
        file_size = next((s for s in (landed_size(os.path.join(agents[n][1], domains[0]))
                                      for n in ("lmtpd", "dovecot") if n in agents) if s), args.size)
        planned = args.runs * (len(threads_list) + 1 + len(cases) * len(names))
        for run in range(args.runs):
            # Alternate who goes first, so neither always follows the other's fsync backlog.
            order = names if run % 2 == 0 else names[::-1]
            points = [("ceiling", t, None) for t in threads_list] + [("ceiling-message", 8, None)] + \
                     [(who, case, f"c{c}r{run}.example.com") for c, case in enumerate(cases)
                      for who in order]
            for who, what, domain in points:
                if time.monotonic() - begun > args.budget:
                    break
                done += 1
                os.sync()  # the last point's dirty pages are not this point's to write
                if who.startswith("ceiling"):
                    used, size = children_cpu_seconds(), args.size if who == "ceiling-message" else file_size
                    c = ceiling(args.ceiling, ws.mkdir(f"{who}-{what}-run{run}"), what, args.deliveries, size)
                    rates.setdefault((who, what), []).append(c["deliveries_per_s"])
                    cpu.setdefault((who, what), []).append(
                        ((children_cpu_seconds() - used) / c["deliveries"] * 1e6, None))
                    print(f"run {run + 1}: fsync ceiling, {what} thread(s), {size} B files: "
                          f"{c['deliveries_per_s']:8.1f} deliveries/s", flush=True)
                    continue
                agent, root = agents[who]
                total = args.sink_deliveries if who == "smtp-sink" else args.deliveries
                messages = max(1, total // what.rcpts)
                mail = None if root is None else os.path.join(root, domain)
                before = agent.messages() if mail is None else count_landed(mail)
                used = (tree_cpu_seconds(agent.proc.pid), children_cpu_seconds())
                secs, rc, out = smtp_source(
                    agent.socket, what.source_args(args.sessions, args.size, messages), domain,
                    args.point_timeout)
                used = (tree_cpu_seconds(agent.proc.pid) - used[0], children_cpu_seconds() - used[1])
                after = agent.messages() if mail is None else count_landed(mail)
                got = (after - before) * (what.rcpts if root is None else 1)
                expected = messages * what.rcpts
                ok = rc == 0 and got == expected
                tally = landed.setdefault((who, str(what)), [0, 0])
                tally[0] += got
                tally[1] += expected
                if ok:
                    rates.setdefault((who, str(what)), []).append(got / secs)
                    cpu.setdefault((who, str(what)), []).append((used[0] / got * 1e6, used[1] / got * 1e6))
                else:
                    invalid.append(f"{who} {what} run {run + 1}: {got}/{expected} rc {rc}: {out[-200:]}")
                print(f"run {run + 1}: {who:9} {str(what):38} {messages:5} msgs, {got:5} "
                      f"{'accepted' if root is None else 'landed'} in {secs:6.2f}s = "
                      f"{got / secs:8.1f} deliveries/s{'' if ok else '  INVALID'}", flush=True)
        if done < planned:
            print(f"budget of {args.budget:g}s reached; {done} of {planned} runs done",
                  file=sys.stderr)
        if args.profile:
            profile_md = profile(args, ws, agents, rates, file_size)
            print("\n" + profile_md, flush=True)
    finally:
        tear_down(stops, ws)

    stats = {k: stat(v) for k, v in rates.items()}
    ceil8 = stats.get(("ceiling", 8))
    lines = ["| case | agent | deliveries/s (median) | min - max | valid runs | files landed / sent "
             "| CPU µs per delivery: agent / smtp-source | lmtpd / Dovecot | lmtpd of smtp-sink "
             "| lmtpd of bare LMTP server | of fsync ceiling, 8 threads |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case in cases:
        ours, ref, bare, sink = (stats.get((w, str(case))) for w in ("lmtpd", "dovecot", "bare", "smtp-sink"))
        for who in names:
            got, sent = landed.get((who, str(case)), (0, 0))
            files = f"{got}/{sent}" + (" accepted" if who == "smtp-sink" else "")
            ratios = ((share(ours, ref, "{:.2f}x"), share(ours, sink), share(ours, bare), share(ours, ceil8))
                      if who == "lmtpd" else ("", "", "", share(bare, ceil8)) if who == "bare" else ("",) * 4)
            lines.append(row(case, NAMES.get(who, who), stats.get((who, str(case))), args.runs,
                             files, cpu.get((who, str(case))), ratios))
    for t in threads_list:
        lines.append(row("-", f"fsync ceiling, {t} thread{'s' if t > 1 else ''}",
                         stats.get(("ceiling", t)), args.runs, "", cpu.get(("ceiling", t))))
    lines.append(row("-", f"fsync ceiling, 8 threads, {args.size} B files (the message alone)",
                     stats.get(("ceiling-message", 8)), args.runs, "", cpu.get(("ceiling-message", 8))))
    table_md = "\n".join(lines)
    verdict_md = "\n".join(f"- {v}" for v in verdicts(cases, stats, ceil8))
    more_md = concurrency_note(cases, stats, ceil8, args.sessions)
    print(f"\n{table_md}\n\nTargets:\n{verdict_md}\n\n{more_md}")
    if invalid:
        print(f"\n{len(invalid)} invalid run(s) (not every delivery landed):", file=sys.stderr)
        for line in invalid:
            print(f"  {line}", file=sys.stderr)

    commands = "\n".join(
        f"  - {c}: `smtp-source {' '.join(c.source_args(args.sessions, args.size, args.deliveries // c.rcpts))}"
        " -f bench@remote.invalid -t user@D unix:SOCKET`" for c in cases)
    rev = version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    report = f"""# LMTP benchmark results

Written by `tests/bench/lmtp_bench.py` on {datetime.datetime.now().astimezone().isoformat(timespec="seconds")}.

- Machine: {machine()}; mail on {filesystem(os.environ.get("POSTERN_TMPDIR", "/tmp"))}
- Peers: Dovecot {version(["dovecot", "--version"])} (`mail_fsync = always`), smtp-source and smtp-sink from Postfix {version(["postconf", "-d", "-h", "mail_version"])}
- postern: git {rev} (plus uncommitted changes, if any), lmtpd `{os.path.relpath(os.path.abspath(args.lmtpd), ROOT)}`, `lmtp_workers = {args.lmtp_workers}`{' (4 per core)' if args.lmtp_workers == '0' else ''}
- Load, per case, {args.deliveries} recipient-deliveries per run on the agent's unix socket:
{commands}
- Users in one passwd-file, static userdb uid=nobody, `maildir:ROOT/%d/%n`; each case and run
  has its own domain (user@D, 1user..20user@D), so every run delivers into new, empty maildirs.
  A delivery is one file in new/ per recipient, counted after every run; a run where one is
  missing is invalid and left out ({len(invalid)} invalid). Every point starts after a `sync`.
- Limits: `bench_fsync_ceiling -j THREADS -n {args.deliveries} -s {file_size}` (tmp -> write {file_size} B -> fsync ->
  rename -> fsync new/, one new maildir per run, files kept like the agents'). {file_size} B is the size of the
  files the agents landed (smtp-source's `-l {args.size}` message with its headers, plus the trace headers an
  agent adds: Return-Path, Delivered-To, Received), a second page per file. One more row writes {args.size} B
  files, for reference. `bench_lmtp_bare_server SOCKET ROOT` (tests/bench/lmtp_bare_server.cpp) puts
  that file work behind the least LMTP server there can be: one blocking thread per session, no
  lookup, no log, no hand-off between threads; loaded like the agents, it shows what smtp-source's own
  round trips leave of the ceiling. `smtp-sink -L -c -u nobody unix:SOCKET 256` (accepts
  and discards: no disk) under the same smtp-source command with -m for {args.sink_deliveries} deliveries.
- Each row: median and min - max of its valid runs ({args.runs} planned); the points run
  interleaved (run 1 of every row, then run 2, ...). Ratios are of medians.
- CPU µs per delivery (medians of the valid runs): the agent's process tree from /proc
  (user + system, exited children included; Dovecot: master, auth and lmtp processes), and
  smtp-source's from getrusage; for a ceiling row, bench_fsync_ceiling's. smtp-sink's is the
  LMTP protocol alone, with no disk and no lookup: a floor for any LMTP server's own work,
  which comes on top of the file work the ceiling row shows.
Reproduce: `tests/bench/run lmtp` (options: `tests/bench/run lmtp --help`).

{table_md}

Targets (issue 6):
{verdict_md}

{more_md}
With several recipients both agents write and fsync a message once and hard-link it into
every other recipient's new/ (Dovecot: `maildir_copy_with_hardlinks = yes`), fsyncing each
new/; so deliveries/s with 20 recipients can pass the fsync ceiling, which fsyncs one file
and one directory per delivery. The 20-recipient case reuses connections (-d), as Postfix's
lmtp client does under load. smtp-source (and smtp-sink) run on the same machine and take
CPU from the agents; the new-connection case costs smtp-source a connect, LHLO and QUIT per
message, which is also what caps smtp-sink there. On ext4 without a journal, creating a file
skips every inode of its group freed in the last minute or more (ext4's recently_deleted()), so
file creation right after mass deletions, by anything on the machine, costs CPU: the bench
removes no mail until it ends, and the first runs may still pay for earlier deletions.
"""
    with open(args.results, "w") as f:
        f.write(report + ("\n" + profile_md if profile_md else ""))
    print(f"\nwrote {args.results}")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
