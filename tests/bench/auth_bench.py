#!/usr/bin/env python3
"""auth_bench.py - PLAIN auths/s and latency through authd and through Dovecot's auth
server, on the same private MariaDB and the same SHA512-CRYPT hashes.

Data: schema A (seed [001]) plus --users users, each with its own password and salt,
hashed with default rounds (`openssl passwd -6`); dovecot-sql.conf.ext exactly as seed
[001] for both servers. Load: bench_auth_load (auth_load.cpp) speaks the auth protocol
like Postfix's smtpd (one request at a time per connection) with 1, 8 and 32 connections,
users round-robin. Rows:
  right password, cache off   every login is one SQL query + one crypt
  right password, cache on    Dovecot auth_cache_size = 10M, authd auth_cache_size
                              (--authd-cache-size); one untimed warming pass first
  wrong password, cache off   auth_failure_delay = 0 on both, penalty off on both
  ceiling                     bench_crypt_ceiling: crypt_r verifications/s on all cores
Both servers keep their default worker counts (Dovecot auth_worker_max_count = 30,
authd auth_workers = one per core). Bounded: each point runs --seconds (at most
--max-count requests), and no new point starts after --budget seconds. Not a ctest test.
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
import peers  # noqa: E402
import sasl_peers as sp  # noqa: E402
from bench_common import machine, version  # noqa: E402


def make_users(db, ws, count):
    """count users bench00000@example.com.. with passwords pw-<i>-<random>; returns the
    paths of the right- and wrong-password user files for bench_auth_load."""
    salt = os.urandom(4).hex()
    passwords = [f"pw-{i}-{salt}" for i in range(count)]
    out = subprocess.run(["openssl", "passwd", "-6", *passwords], capture_output=True, text=True,
                         check=True).stdout.split()
    if len(out) != count or not all(h.startswith("$6$") for h in out):
        raise RuntimeError("openssl passwd -6 did not give one $6$ hash per password")
    names = [f"bench{i:05d}@example.com" for i in range(count)]
    rows = [f"(1, '{h}', '{n}')" for n, h in zip(names, out)]
    db.sql("INSERT INTO virtual_users (domain_id, password, email) VALUES " + ",\n".join(rows) + ";",
           db="mailserver")
    right = sp.write_file(ws.file("users-right.tsv"),
                          "".join(f"{n}\t{p}\n" for n, p in zip(names, passwords)))
    # Same length as the right one: SHA512-CRYPT's cost depends on the password length.
    wrong = sp.write_file(ws.file("users-wrong.tsv"),
                          "".join(f"{n}\t{p[:-1]}{'x' if p[-1] != 'x' else 'y'}\n"
                                  for n, p in zip(names, passwords)))
    return right, wrong, out[0], passwords[0]


def load(binary, socket_path, users, connections, seconds, count):
    p = subprocess.run([binary, "-a", socket_path, "-u", users, "-c", str(connections),
                        "-t", str(seconds), "-n", str(count)],
                       capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{binary}: rc {p.returncode}: {p.stderr.strip()}")
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in p.stdout.split())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--authd", required=True)
    ap.add_argument("--load", required=True, help="bench_auth_load binary")
    ap.add_argument("--ceiling", required=True, help="bench_crypt_ceiling binary")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=5, help="per point")
    ap.add_argument("--max-count", type=int, default=500000, help="requests per point, at most")
    ap.add_argument("--budget", type=float, default=600)
    ap.add_argument("--authd-cache-size", default="10M")
    ap.add_argument("--servers", default="dovecot,authd")
    ap.add_argument("--results", default=os.path.join(HERE, "auth_results.md"))
    args = ap.parse_args()
    os.environ["POSTERN_AUTHD"] = os.path.abspath(args.authd)
    conc = [int(c) for c in args.concurrency.split(",")]
    servers = args.servers.split(",")
    begun = time.monotonic()

    peers.install_signal_handlers()
    ws = peers.Workspace("auth-bench")
    stops = []
    rows = []  # (server, cache, password, connections, result dict)
    ceiling = None
    try:
        db = peers.MariaDB(ws)
        stops.append(db.cleanup)
        db.start()
        db.create_database("mailserver", "schema_a.sql")
        right, wrong, hash0, password0 = make_users(db, ws, args.users)
        sql = sp.dovecot_sql_conf(ws.file("dovecot-sql.conf.ext"), db.port)
        sockets = {}
        for cache in ("off", "on"):
            if "dovecot" in servers:
                dc = sp.Dovecot(ws, f"dovecot-cache-{cache}").add_passdb("sql", sql)
                stops.append(dc.stop)
                dc.start(auth_cache_size="10M" if cache == "on" else "0")
                sockets[("dovecot", cache)] = dc.socket
            if "authd" in servers:
                ad = sp.Authd(ws, f"authd-cache-{cache}", f"sql {sql}")
                ad.settings.pop("auth_workers")  # its default: one per core
                stops.append(ad.stop)
                ad.start(auth_cache_size=args.authd_cache_size if cache == "on" else "0")
                sockets[("authd", cache)] = ad.socket

        plan = []
        for n in conc:
            for server in servers:
                plan.append((server, "off", "right", n, right))
                plan.append((server, "on", "right", n, right))
                plan.append((server, "off", "wrong", n, wrong))
        warmed = set()
        for server, cache, pw, n, users in plan:
            if time.monotonic() - begun > args.budget:
                print(f"budget of {args.budget}s reached; {len(rows)} of {len(plan)} points run",
                      file=sys.stderr)
                break
            sock = sockets[(server, cache)]
            if cache == "on" and (server, pw) not in warmed:
                load(args.load, sock, users, 1, 60, args.users)  # untimed: fill the cache
                warmed.add((server, pw))
            r = load(args.load, sock, users, n, args.seconds, args.max_count)
            rows.append((server, cache, pw, n, r))
            print(f"{server:8} cache {cache:3} {pw:5} password c={n:<3} {r['auths_per_s']:9.1f} auths/s "
                  f"p50 {r['p50_ms']:8.2f} ms p99 {r['p99_ms']:8.2f} ms "
                  f"ok {r['ok']:.0f} fail {r['fail']:.0f} error {r['error']:.0f}", flush=True)
        out = subprocess.run([args.ceiling, "-t", str(min(args.seconds, 5)), "-p", password0, "-H", hash0],
                             capture_output=True, text=True, timeout=120)
        if out.returncode == 0:
            ceiling = {k: float(v) for k, v in (kv.split("=", 1) for kv in out.stdout.split())}
            print(f"ceiling: {ceiling['verifications_per_s']:.1f} crypt_r/s on {ceiling['threads']:.0f} threads")
        else:
            print(f"ceiling failed: {out.stderr.strip()}", file=sys.stderr)
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception as e:  # report, but keep tearing down
                print(f"teardown: {e}", file=sys.stderr)
        ws.remove()

    limit = ceiling["verifications_per_s"] if ceiling else None
    lines = ["| server | password | cache | connections | auths/s | p50 ms | p99 ms | ok / fail / error | of crypt ceiling |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for server, cache, pw, n, r in rows:
        want_ok = pw == "right"
        odd = (r["error"] > 0) or (r["fail"] if want_ok else r["ok"]) > 0
        share = f"{100 * r['auths_per_s'] / limit:.0f}%" if limit else "-"
        lines.append(f"| {server} | {pw} | {cache} | {n} | {r['auths_per_s']:,.0f} | {r['p50_ms']:.2f} "
                     f"| {r['p99_ms']:.2f} | {r['ok']:.0f} / {r['fail']:.0f} / {r['error']:.0f}"
                     f"{' **unexpected**' if odd else ''} | {share} |")
    if ceiling:
        lines.append(f"| crypt_r ceiling ({ceiling['threads']:.0f} threads) | - | - | - | "
                     f"{ceiling['verifications_per_s']:,.0f} | - | - | - | 100% |")
    # authd against Dovecot, point by point: throughput and p99 latency.
    by_point = {(server, cache, pw, n): r for server, cache, pw, n, r in rows}
    lines += ["", "| password | cache | connections | authd / Dovecot auths/s | Dovecot p99 / authd p99 |",
              "|---|---|---:|---:|---:|"]
    for (server, cache, pw, n), r in by_point.items():
        ref = by_point.get(("dovecot", cache, pw, n))
        if server != "authd" or not ref or ref["auths_per_s"] <= 0 or r["p99_ms"] <= 0:
            continue
        lines.append(f"| {pw} | {cache} | {n} | {r['auths_per_s'] / ref['auths_per_s']:,.2f}x "
                     f"| {ref['p99_ms'] / r['p99_ms']:,.2f}x |")
    table_md = "\n".join(lines)
    print("\n" + table_md)

    rev = version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    report = f"""# auth benchmark results

Written by `tests/bench/auth_bench.py` on {datetime.datetime.now().astimezone().isoformat(timespec="seconds")}.

- Machine: {machine()}
- Peers: {version(["mariadbd", "--version"])}; Dovecot {version(["dovecot", "--version"])}
- postern: git {rev} (plus uncommitted changes, if any), authd `{os.path.relpath(os.path.abspath(args.authd), ROOT)}`
- Data: schema A, seed [001] rows + {args.users} users, SHA512-CRYPT (`$6$`, default 5000 rounds),
  one salt and password per user; dovecot-sql.conf.ext as seed [001]
  (`password_query = SELECT email as user, password FROM virtual_users WHERE email='%u';`).
- Both servers: auth_failure_delay = 0, penalty off, default worker counts; cache on =
  Dovecot `auth_cache_size = 10M`, authd `auth_cache_size = {args.authd_cache_size}`, warmed first.
- Load: `bench_auth_load` (tests/bench/auth_load.cpp), AUTH PLAIN with resp=, one request at a
  time per connection, users round-robin, {args.seconds:g} s per point; ceiling:
  `bench_crypt_ceiling` (crypt_r on every core, same hash format).
Reproduce: `tests/bench/run-auth` (options: `tests/bench/run-auth --help`).

{table_md}

The load generator runs on the same machine and takes CPU from the servers; with
cache off every login costs one SHA512-CRYPT, so auths/s above the ceiling row would
mean a hash was not computed. Dovecot 2.3 sends failures on a 500 ms flush timer even
with auth_failure_delay = 0 (its wrong-password rows); its cache keeps the stored hash,
so a hit still costs a crypt, run in the single auth process (its cache-on rows are
below cache-off; `auth_cache_verify_password_with_worker = yes`, not set here, moves it
to the workers). authd's cache remembers verified (user, password, hash) triples, so a
hit skips crypt.
"""
    with open(args.results, "w") as f:
        f.write(report)
    print(f"\nwrote {args.results}")


if __name__ == "__main__":
    main()
