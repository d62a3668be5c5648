#!/usr/bin/env python3
"""lookup_bench.py - lookups/s of `postmap -q - MAP < keys` through Postfix's native mysql:
table and through lookupd (socketmap unix), on the same private MariaDB.

Data: schema A with the seed [001] rows plus --users extra users; the key list has
2 x --users keys, half of them existing, in a fixed shuffled order. The lookupd map is
the seed mailbox map (`SELECT 1 FROM virtual_users WHERE email='%s'`) with kind plain,
so both sides run exactly one query per key. Columns:
  native mysql:      postmap's own mysql client (one connection, one query per key)
  lookupd cache off  cache_size = 0: every key goes to SQL through lookupd
  lookupd cache on   warm: one untimed pass, then timed passes (TTLs longer than the run)
  bare SQL server    bench_lookup_bare_server (lookup_bare_server.cpp): the same query per key from
                     one blocking thread per connection, no loop, hand-off or cache: what any
                     server between postmap and the database costs
  ceiling            bench_ceiling_server (ceiling_server.cpp), a socketmap server that answers "OK 1" to everything:
                     the most postmap's one-request-at-a-time client gets over the socket
Capacity rows (with --socketmap-load): bench_socketmap_load (socketmap_load.cpp), a pipelined
socketmap client keeping --depth requests in flight on each of 1 and 8 connections for
--capacity-seconds, cycling through the same keys, against lookupd cache on (warm: every key
was looked up once by the correctness pass, TTLs longer than the run) and against the
ceiling server; the ratio lookupd/ceiling is the server-capacity figure.
Bounded: --runs passes per column, each pass at most --pass-timeout seconds, and the
whole bench stops adding passes after --budget seconds. Then, unless --no-profile, the
"Where the time goes" section (lookup_profile.py): the tables pinned to one CPU and across
CPUs, perf's CPU time per process, and callgrind's instructions per lookup in lookupd.
Not a ctest test.
"""

import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import peers  # noqa: E402
from bench_common import BareServer, machine, tool_beside, version  # noqa: E402
import lookup_profile  # noqa: E402

FIXED_HASH = "$6$6c8e0a2b4d6f8a1c$fH3P1o9C3NBhOHxWagqEZysHk9OgiEAc9shHQRasXZNF3dQBoepJjVaw1u0j4JXq1W7tyhqoD.pPFgYq.0djy0"



def load_users(db, count):
    rows = [f"(1, '{FIXED_HASH}', 'bench{i:05d}@example.com')" for i in range(count)]
    sql = []
    for start in range(0, len(rows), 1000):
        sql.append("INSERT INTO virtual_users (domain_id, password, email) VALUES "
                   + ",\n".join(rows[start:start + 1000]) + ";")
    db.sql("\n".join(sql), db="mailserver")


def make_keys(count):
    keys = [f"bench{i:05d}@example.com" for i in range(count)]
    keys += [f"nobody{i:05d}@example.com" for i in range(count)]
    random.Random(42).shuffle(keys)
    return keys


def one_pass(pf, keys, table, timeout):
    start = time.monotonic()
    rc, out, err = pf.query_bulk(keys, table, timeout=timeout)
    elapsed = time.monotonic() - start
    if err:
        raise RuntimeError(f"postmap -q - {table}: rc {rc}: {err.strip()[:500]}")
    return elapsed, out


def capacity(binary, sock, keys_file, connections, depth, seconds):
    """One bench_socketmap_load run; returns its JSON summary (last line of stdout)."""
    p = subprocess.run([binary, "-a", sock, "-m", "mailboxes", "-k", keys_file, "-c", str(connections),
                        "-d", str(depth), "-t", str(seconds)],
                       capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode not in (0, 1) or not p.stdout.strip():
        raise RuntimeError(f"{binary}: rc {p.returncode}: {p.stderr.strip()[:500]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    bad = {k: res[k] for k in ("temp", "perm", "other", "errors") if res[k]}
    if bad or res["requests"] == 0:
        raise RuntimeError(f"bench_socketmap_load against {sock}: {bad or 'no replies'}")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lookupd", required=True)
    ap.add_argument("--ceiling-server", required=True, help="bench_ceiling_server binary")
    ap.add_argument("--bare-server", help="bench_lookup_bare_server binary (default: beside --ceiling-server)")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pass-timeout", type=float, default=120)
    ap.add_argument("--budget", type=float, default=600)
    ap.add_argument("--results", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--socketmap-load", help="bench_socketmap_load binary: adds the capacity rows")
    ap.add_argument("--capacity-seconds", type=float, default=3, help="seconds per capacity measurement")
    ap.add_argument("--depth", type=int, default=64, help="requests in flight per connection (capacity rows)")
    ap.add_argument("--no-profile", action="store_true", help="skip the 'Where the time goes' section")
    args = ap.parse_args()
    os.environ["POSTERN_LOOKUPD"] = os.path.abspath(args.lookupd)
    begun = time.monotonic()

    peers.install_signal_handlers()
    ws = peers.Workspace("bench")
    procs = []
    db = None
    profile_md = ""
    try:
        db = peers.MariaDB(ws)
        db.start()
        db.create_database("mailserver", "schema_a.sql")
        load_users(db, args.users)
        pf = peers.Postfix(ws)
        cf = peers.render("cf/mysql-virtual-mailbox-maps.cf", ws.file("mailboxes.cf"),
                          HOSTS=db.hosts_inet, DBNAME="mailserver")
        native = "mysql:" + cf
        keys = make_keys(args.users)
        keys_file = ws.file("keys.txt")
        with open(keys_file, "w") as f:
            f.write("".join(k + "\n" for k in keys))

        lookupds = {}
        for name, settings in (("cache-off", {"cache_size": 0}),
                               ("cache-on", {"cache_size": 4 * len(keys), "cache_hit_ttl": "3600s",
                                             "cache_miss_ttl": "3600s"})):
            lk = peers.Lookupd(ws, name)
            lk.add_map("mailboxes", [native])
            procs.append(lk.stop)
            lk.start(**settings)
            lookupds[name] = lk
        ceiling_sock = ws.file("ceiling.sock")
        ceiling_bin = args.ceiling_server
        ceiling = peers.start_daemon([ceiling_bin, ceiling_sock], ws.file("ceiling.log"))
        procs.append(lambda: peers.stop_daemon(ceiling, 10, "ceiling server"))
        peers.wait_until(lambda: peers.can_connect(ceiling_sock), 10, what="ceiling server")

        # The same query and credentials as the mysql: table's .cf file.
        with open(cf) as f:
            conf = dict(line.split(" = ", 1) for line in f.read().splitlines() if " = " in line)
        bare = BareServer(ws, "bare", args.bare_server or tool_beside(args.ceiling_server, "bench_lookup_bare_server"),
                          ["SOCKET", "127.0.0.1", str(db.port), conf["dbname"], conf["user"], conf["password"],
                           conf["query"]])
        procs.append(bare.stop)
        bare_sock = bare.start().socket

        columns = [("native mysql:", native),
                   ("lookupd cache off", lookupds["cache-off"].socketmap_unix("mailboxes")),
                   (lookup_profile.BARE, f"socketmap:unix:{bare_sock}:mailboxes"),
                   ("lookupd cache on (warm)", lookupds["cache-on"].socketmap_unix("mailboxes")),
                   ("ceiling (OK 1 server)", f"socketmap:unix:{ceiling_sock}:mailboxes")]

        # Correctness first: lookupd (and the bare server) must print what mysql: prints.
        _, expected = one_pass(pf, keys, native, args.pass_timeout)
        found = expected.count("\n")
        for label, table in columns[1:4]:
            _, out = one_pass(pf, keys, table, args.pass_timeout)  # also warms the cache
            if out != expected:
                raise RuntimeError(f"{label} answers differ from native mysql: "
                                   f"({out.count(chr(10))} vs {found} found)")

        times = {label: [] for label, _ in columns}
        cap_targets = [("lookupd cache on (warm)", lookupds["cache-on"].socket),
                       ("ceiling (OK 1 server)", ceiling_sock)]
        cap_rates = {}  # (label, connections) -> [requests/s]
        if not args.socketmap_load:
            print("no --socketmap-load: capacity rows skipped", file=sys.stderr)
        for run in range(args.runs):
            if time.monotonic() - begun > args.budget:
                print(f"budget of {args.budget}s reached after {run} runs", file=sys.stderr)
                break
            for label, table in columns:
                elapsed, _ = one_pass(pf, keys, table, args.pass_timeout)
                times[label].append(elapsed)
                print(f"run {run + 1} {label:26} {len(keys) / elapsed:10.0f} lookups/s", flush=True)
            if args.socketmap_load:
                for conns in (1, 8):
                    for label, sock in cap_targets:
                        res = capacity(args.socketmap_load, sock, keys_file, conns, args.depth,
                                       args.capacity_seconds)
                        cap_rates.setdefault((label, conns), []).append(res["requests_per_s"])
                        print(f"run {run + 1} {label:26} {conns} conn x {args.depth} in flight "
                              f"{res['requests_per_s']:10.0f} requests/s "
                              f"(OK {res['ok']}, NOTFOUND {res['notfound']})", flush=True)
        if not args.no_profile:
            free_us = {label: 1e6 * statistics.median(ts) / len(keys) for label, ts in times.items() if ts}
            off = lookupds["cache-off"]
            targets = [lookup_profile.Target("native mysql:", native, [db.proc.pid]),
                       lookup_profile.Target("lookupd cache off", off.socketmap_unix("mailboxes"),
                                             [off.proc.pid, db.proc.pid]),
                       lookup_profile.Target("ceiling (OK 1 server)", f"socketmap:unix:{ceiling_sock}:mailboxes",
                                             [ceiling.pid])]
            profile_md = lookup_profile.profile(pf, keys_file, len(keys), targets, targets[1], off.proc.pid,
                                                os.path.abspath(args.lookupd), off.config_text(), free_us,
                                                ws.mkdir("profile"))
            print("\n" + profile_md)
    finally:
        for stop in reversed(procs):
            try:
                stop()
            except Exception as e:  # report, but keep tearing down
                print(f"teardown: {e}", file=sys.stderr)
        try:
            if db is not None:
                db.cleanup()
        finally:
            ws.remove()

    rates = {label: sorted(len(keys) / t for t in ts) for label, ts in times.items() if ts}
    base = statistics.median(rates["native mysql:"])
    limit = statistics.median(rates["ceiling (OK 1 server)"])
    lines = ["| table | lookups/s (median) | min - max | µs per lookup | vs native mysql: | of ceiling |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, rs in rates.items():
        med = statistics.median(rs)
        lines.append(f"| {label} | {med:,.0f} | {rs[0]:,.0f} - {rs[-1]:,.0f} | {1e6 / med:.0f} "
                     f"| {med / base:.2f}x | {100 * med / limit:.0f}% |")
    table_md = "\n".join(lines)
    print("\n" + table_md)

    cap_md = ""
    if cap_rates:
        lines = ["| server | connections x in flight | requests/s (median) | min - max | lookupd / ceiling |",
                 "|---|---:|---:|---:|---:|"]
        for conns in (1, 8):
            limit = statistics.median(cap_rates[("ceiling (OK 1 server)", conns)])
            for label, _ in cap_targets:
                rs = sorted(cap_rates[(label, conns)])
                med = statistics.median(rs)
                ratio = f"{100 * med / limit:.0f}%" if label.startswith("lookupd") else ""
                lines.append(f"| {label} | {conns} x {args.depth} | {med:,.0f} | {rs[0]:,.0f} - {rs[-1]:,.0f} "
                             f"| {ratio} |")
        cap_md = "\n".join(lines)
        print("\n" + cap_md)

    rev = version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    report = f"""# lookupd benchmark results

Written by `tests/bench/lookup_bench.py` on {datetime.datetime.now().astimezone().isoformat(timespec="seconds")}.

- Machine: {machine()}
- Peers: {version(["mariadbd", "--version"])}; Postfix {version(["postconf", "-d", "-h", "mail_version"])}
- postern: git {rev} (plus uncommitted changes, if any), Release build `{os.path.relpath(args.lookupd, ROOT)}`
- Data: schema A, seed [001] rows + {args.users:,} users; {len(keys):,} keys, {found:,} existing,
  fixed shuffled order; map `SELECT 1 FROM virtual_users WHERE email='%s'` (seed mailbox map),
  lookupd map kind plain (one query per key, as `postmap -q` does with mysql:).
- MariaDB over `hosts = inet:127.0.0.1:PORT` for mysql:, lookupd and the bare SQL server; lookupd `sql_workers = 2`,
  socketmap unix sockets.
- {min(len(v) for v in times.values())} timed passes per column; cache on = long TTLs, after one untimed warming pass.

Command per pass: `postmap -c DIR -q - TABLE < keys` with TABLE one of
`mysql:mailboxes.cf`, `socketmap:unix:lookupd.sock:mailboxes`, `socketmap:unix:bare.sock:mailboxes`,
`socketmap:unix:ceiling.sock:mailboxes`. The bare SQL server (`bench_lookup_bare_server`,
tests/bench/lookup_bare_server.cpp) sends the .cf file's query for each key from one blocking
thread per connection with its own MariaDB connection: no event loop, no hand-off, no cache.
It is the least any server between postmap and the database can cost.
Reproduce: `tests/bench/run` (options: `tests/bench/run --help`).

{table_md}

postmap sends one request and waits for its answer, so these are round-trip rates of a
single client, not server capacity; the ceiling column is that client's limit over a
unix socket. Columns run interleaved within each pass, so machine noise hits all of them;
on small VMs the spread (min - max) comes mostly from where the scheduler puts postmap and
the server (same CPU or not), so compare medians.
"""
    if cap_md:
        report += f"""
## Server capacity (pipelined client, cache warm)

`bench_socketmap_load -a SOCKET -m mailboxes -k keys -c N -d {args.depth} -t {args.capacity_seconds:g}`
(tests/bench/socketmap_load.cpp): N connections, {args.depth} netstring requests in flight on each
(replies read, new requests written in batches), cycling through the same {len(keys):,} keys, so half
OK and half NOTFOUND, all cache hits on lookupd (cache on, long TTLs, every key looked up once
before). Every reply is checked to be a well-formed netstring; any TEMP, PERM, other reply or
connection error fails the bench. {min(len(v) for v in cap_rates.values())} measurements per row,
interleaved with the passes above. The client runs on the same machine ({os.cpu_count()} CPUs) and
competes with the server for them.

{cap_md}
"""
    if profile_md:
        report += "\n" + profile_md
    with open(args.results, "w") as f:
        f.write(report)
    print(f"\nwrote {args.results} ({time.monotonic() - begun:.0f}s)")


if __name__ == "__main__":
    main()
