#!/usr/bin/env python3
"""memory_bench.py - resident memory of each postern daemon, idle and at the peak of a load,
against the Dovecot processes doing the same job (summed), in one run.

Jobs (each pair gets the same data, config and load):
  lookup  lookupd (MariaDB mysql: map, seed mailbox map, default cache) loaded with
          `postmap -q - socketmap:... < 2 x --users keys`; Postfix has no lookup daemon
          (every Postfix process opens its own mysql: map), so the incumbent column is
          postmap's own peak (ru_maxrss) running the same keys through mysql:.
  auth    authd vs `dovecot -F` auth (passdb sql on MariaDB, SHA512-CRYPT, cache off,
          default worker counts), loaded with bench_auth_load -c --concurrency for --seconds.
  lmtp    lmtpd vs `dovecot -F` LMTP (passwd-file check, static userdb, Maildir,
          mail_fsync = always), loaded with `smtp-source -L -s --sessions -m --messages`.
Memory: postern = /proc/PID/status VmRSS (idle, 1 s after start; after load) and VmHWM
(peak). Dovecot = the master and every descendant (config, log, anvil, auth, auth-worker,
lmtp...) found through the /proc/*/stat ppid tree: VmRSS summed (idle), and the peak is the
largest summed VmRSS seen by a 50 ms sampler during the load (the sum of VmHWM, an upper
bound, is printed too). Summed RSS counts shared library pages once per process.
Checks: postern idle < 10 MiB; Dovecot peak / postern peak >= 5. Not a ctest test.
"""

import argparse
import datetime
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import lmtp_peers as lp  # noqa: E402
import peers  # noqa: E402
import sasl_peers as sp  # noqa: E402
from bench_common import count_landed, descendants, machine, maildir_setup, tear_down, version  # noqa: E402

IDLE_LIMIT_KB = 10 * 1024
RATIO_TARGET = 5.0
FIXED_HASH = "$6$6c8e0a2b4d6f8a1c$fH3P1o9C3NBhOHxWagqEZysHk9OgiEAc9shHQRasXZNF3dQBoepJjVaw1u0j4JXq1W7tyhqoD.pPFgYq.0djy0"


# ---------------------------------------------------------------- /proc

def status_kb(pid):
    """{'VmRSS': kB, 'VmHWM': kB} of one process; {} if it is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError):
        return {}
    return out


def process_name(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        if argv0:
            return argv0.split()[0]
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def tree_mem(pid):
    """(summed VmRSS kB, summed VmHWM kB, [(name, rss kB)]) over pid's process tree."""
    rss = hwm = 0
    procs = []
    for p in descendants(pid):
        s = status_kb(p)
        if not s:
            continue
        rss += s.get("VmRSS", 0)
        hwm += s.get("VmHWM", 0)
        procs.append((process_name(p), s.get("VmRSS", 0)))
    return rss, hwm, procs


class Sampler:
    """Polls tree_mem(pid) every interval seconds in a thread; keeps the largest summed RSS
    and the process list at that moment."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.max_rss, self.max_procs = 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            rss, _, procs = tree_mem(self.pid)
            if rss > self.max_rss:
                self.max_rss, self.max_procs = rss, procs
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def measure(pid, load, settle):
    """Idle, peak and after-load memory of pid's tree around load()."""
    time.sleep(settle)
    idle_rss, _, idle_procs = tree_mem(pid)
    with Sampler(pid) as s:
        detail = load()
        rss, hwm, procs = tree_mem(pid)  # while the load's processes still exist
    sampled = max(s.max_rss, rss)
    time.sleep(settle)
    after_rss, _, _ = tree_mem(pid)
    return {"idle": idle_rss, "idle_procs": idle_procs, "peak_sampled": sampled, "peak_hwm": hwm,
            "peak_procs": s.max_procs if s.max_rss >= rss else procs, "after": after_rss,
            "detail": detail}


def summarize(procs):
    """'auth x3 (12.0 MiB), lmtp ...' from [(name, kB)]."""
    by = {}
    for name, kb in procs:
        n, total = by.get(name, (0, 0))
        by[name] = (n + 1, total + kb)
    return ", ".join(f"{os.path.basename(name)}{' x%d' % n if n > 1 else ''} {mib(kb)}"
                     for name, (n, kb) in sorted(by.items(), key=lambda i: -i[1][1]))


def mib(kb):
    return f"{kb / 1024:.1f} MiB"


# ---------------------------------------------------------------- loads

def postmap_maxrss(postmap_dir, keys, table, timeout):
    """(found lines, postmap's ru_maxrss in kB) through os.wait4."""
    with tempfile.TemporaryFile() as keys_f, tempfile.TemporaryFile() as out_f:
        keys_f.write("".join(k + "\n" for k in keys).encode())
        keys_f.seek(0)
        p = subprocess.Popen([peers.require_program("postmap", "postfix"), "-c", postmap_dir, "-q",
                              "-", table], stdin=keys_f, stdout=out_f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                raise RuntimeError(f"postmap -q - {table}: timed out")
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        out = out_f.read()
    if b"postmap:" in out:
        raise RuntimeError(f"postmap -q - {table}: {out.decode(errors='replace').strip()[:300]}")
    return out.count(b"\n"), ru.ru_maxrss


def auth_load(binary, socket_path, users, connections, seconds):
    p = subprocess.run([binary, "-a", socket_path, "-u", users, "-c", str(connections),
                        "-t", str(seconds), "-n", "10000000"],
                       capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{binary}: rc {p.returncode}: {p.stderr.strip()}")
    r = {k: float(v) for k, v in (kv.split("=", 1) for kv in p.stdout.split())}
    if r.get("ok", 0) <= 0 or r.get("error", 0) > 0 or r.get("fail", 0) > 0:
        raise RuntimeError(f"auth load against {socket_path} did not authenticate cleanly: {r}")
    return f"{r['ok']:.0f} logins, {r['auths_per_s']:.0f}/s"


def lmtp_load(socket_path, root, sessions, messages, size, timeout):
    before = count_landed(root)
    start = time.monotonic()
    p = subprocess.run([peers.require_program("smtp-source", "postfix"), "-L", "-d", "-s", str(sessions),
                        "-l", str(size), "-m", str(messages), "-f", "bench@remote.invalid",
                        "-t", "user@example.com", f"unix:{socket_path}"],
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    secs = time.monotonic() - start
    landed = count_landed(root) - before
    if p.returncode != 0 or landed != messages:
        raise RuntimeError(f"smtp-source: rc {p.returncode}, {landed}/{messages} landed: "
                           f"{(p.stdout + p.stderr).strip()[-300:]}")
    return f"{landed} deliveries, {landed / secs:.0f}/s"


# ---------------------------------------------------------------- report helpers

# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lookupd", required=True)
    ap.add_argument("--authd", required=True)
    ap.add_argument("--lmtpd", required=True)
    ap.add_argument("--auth-load", required=True, help="bench_auth_load binary")
    ap.add_argument("--jobs", default="lookup,auth,lmtp")
    ap.add_argument("--users", type=int, default=5000, help="lookup: users (keys = 2 x users)")
    ap.add_argument("--auth-users", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5, help="auth load per server")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before idle / after-load samples")
    ap.add_argument("--results", default=os.path.join(HERE, "memory_results.md"))
    args = ap.parse_args()
    for var, path in (("POSTERN_LOOKUPD", args.lookupd), ("POSTERN_AUTHD", args.authd),
                      ("POSTERN_LMTPD", args.lmtpd)):
        os.environ[var] = os.path.abspath(path)
    jobs = args.jobs.split(",")
    if "lmtp" in jobs and os.geteuid() != 0:
        raise SystemExit("memory_bench.py: the lmtp job needs root (mail owned by nobody)")
    begun = time.monotonic()

    peers.install_signal_handlers()
    ws = peers.Workspace("memory-bench")
    stops = []
    rows = []  # (job, postern name, postern m, incumbent label, incumbent m or postmap kB)

    def stop_now(stop):
        stops.remove(stop)
        stop()

    try:
        db = None
        if "lookup" in jobs or "auth" in jobs:
            db = peers.MariaDB(ws)
            stops.append(db.cleanup)
            db.start()
            db.create_database("mailserver", "schema_a.sql")

        if "lookup" in jobs:
            values = [f"(1, '{FIXED_HASH}', 'bench{i:05d}@example.com')" for i in range(args.users)]
            db.sql("\n".join("INSERT INTO virtual_users (domain_id, password, email) VALUES "
                             + ",\n".join(values[i:i + 1000]) + ";"
                             for i in range(0, len(values), 1000)), db="mailserver")
            keys = [f"bench{i:05d}@example.com" for i in range(args.users)]
            keys += [f"nobody{i:05d}@example.com" for i in range(args.users)]
            random.Random(42).shuffle(keys)
            pf = peers.Postfix(ws)
            cf = peers.render("cf/mysql-virtual-mailbox-maps.cf", ws.file("mailboxes.cf"),
                              HOSTS=db.hosts_inet, DBNAME="mailserver")
            native = "mysql:" + cf
            found_native, postmap_kb = postmap_maxrss(pf.dir, keys, native, 300)
            lk = peers.Lookupd(ws, "lookupd")
            lk.add_map("mailboxes", [native])
            stops.append(lk.stop)
            lk.start()

            def lookup_load():
                found, client_kb = postmap_maxrss(pf.dir, keys, lk.socketmap_unix("mailboxes"), 300)
                if found != found_native:
                    raise RuntimeError(f"lookupd found {found} keys, mysql: {found_native}")
                return f"{len(keys)} keys, {found} found"
            m = measure(lk.proc.pid, lookup_load, args.settle)
            stop_now(lk.stop)
            rows.append(("lookup", "lookupd", m, "postmap -q - mysql: (no daemon)", postmap_kb))
            print(f"lookupd  idle {mib(m['idle'])} peak {mib(m['peak_hwm'])} ({m['detail']}); "
                  f"postmap mysql: peak {mib(postmap_kb)}", flush=True)

        if "auth" in jobs:
            salt = os.urandom(4).hex()
            passwords = [f"pw-{i}-{salt}" for i in range(args.auth_users)]
            hashes = subprocess.run(["openssl", "passwd", "-6", *passwords], capture_output=True,
                                    text=True, check=True).stdout.split()
            names = [f"auth{i:05d}@example.com" for i in range(args.auth_users)]
            db.sql("INSERT INTO virtual_users (domain_id, password, email) VALUES "
                   + ",\n".join(f"(1, '{h}', '{n}')" for n, h in zip(names, hashes)) + ";",
                   db="mailserver")
            users = sp.write_file(ws.file("auth-users.tsv"),
                                  "".join(f"{n}\t{p}\n" for n, p in zip(names, passwords)))
            sql = sp.dovecot_sql_conf(ws.file("dovecot-sql.conf.ext"), db.port)
            for name in ("dovecot", "authd"):
                if name == "dovecot":
                    server = sp.Dovecot(ws, "dovecot-auth").add_passdb("sql", sql)
                    stops.append(server.stop)
                    server.start()
                else:
                    server = sp.Authd(ws, "authd", f"sql {sql}")
                    server.settings.pop("auth_workers")  # its default: one per core
                    stops.append(server.stop)
                    server.start()
                sock = server.socket
                m = measure(server.proc.pid,
                            lambda: auth_load(args.auth_load, sock, users, args.concurrency, args.seconds),
                            args.settle)
                stop_now(server.stop)
                if name == "dovecot":
                    dovecot_auth = m
                else:
                    rows.append(("auth", "authd", m, "Dovecot auth (all processes)", dovecot_auth))
                print(f"{name:8} idle {mib(m['idle'])} peak {mib(m['peak_sampled'])} "
                      f"(sum VmHWM {mib(m['peak_hwm'])}; {m['detail']})", flush=True)

        if "lmtp" in jobs:
            users = sp.write_file(ws.file("lmtp-users.db"), "user@example.com:{PLAIN}pw\n")
            for name in ("dovecot", "lmtpd"):
                setup = maildir_setup(ws, name, users)
                root = setup.root
                if name == "dovecot":
                    agent = lp.DovecotLmtp(ws, "dovecot-lmtp", setup, mail_fsync="always")
                else:
                    agent = lp.Lmtpd(ws, "lmtpd", setup, lmtp_workers="0", log_level="warning")
                stops.append(agent.stop)
                agent.start()
                sock = agent.socket
                m = measure(agent.proc.pid,
                            lambda: lmtp_load(sock, root, args.sessions, args.messages, args.size, 600),
                            args.settle)
                stop_now(agent.stop)
                if name == "dovecot":
                    dovecot_lmtp = m
                else:
                    rows.append(("lmtp", "lmtpd", m, "Dovecot LMTP (all processes)", dovecot_lmtp))
                print(f"{name:8} idle {mib(m['idle'])} peak {mib(m['peak_sampled'])} "
                      f"(sum VmHWM {mib(m['peak_hwm'])}; {m['detail']})", flush=True)
    finally:
        tear_down(stops, ws)

    lines = ["| job | postern daemon | idle RSS | peak RSS (VmHWM) | after load | < 10 MiB idle "
             "| incumbent | incumbent idle (summed) | incumbent peak (summed) | incumbent / postern at peak | >= 5x |",
             "|---|---|---:|---:|---:|---|---|---:|---:|---:|---|"]
    failed = []
    for job, name, m, label, inc in rows:
        idle_ok = m["idle"] < IDLE_LIMIT_KB
        if not idle_ok:
            failed.append(f"{name} idle {mib(m['idle'])}")
        if isinstance(inc, dict):
            ratio = inc["peak_sampled"] / m["peak_hwm"]
            ratio_ok = ratio >= RATIO_TARGET
            if not ratio_ok:
                failed.append(f"{name} peak ratio {ratio:.1f}x")
            inc_cols = (f"{mib(inc['idle'])} | {mib(inc['peak_sampled'])} "
                        f"(sum of VmHWM {mib(inc['peak_hwm'])}) | {ratio:.1f}x | {'yes' if ratio_ok else '**no**'}")
        else:
            inc_cols = f"n/a | {mib(inc)} (postmap's own ru_maxrss) | n/a | n/a"
        lines.append(f"| {job} | {name} | {mib(m['idle'])} | {mib(m['peak_hwm'])} | {mib(m['after'])} "
                     f"| {'yes' if idle_ok else '**no**'} | {label} | {inc_cols} |")
    table_md = "\n".join(lines)
    detail = []
    for job, name, m, label, inc in rows:
        detail.append(f"- {job}: load {m['detail']}")
        if isinstance(inc, dict):
            detail.append(f"  - Dovecot load {inc['detail']}; idle processes: {summarize(inc['idle_procs'])}")
            detail.append(f"  - Dovecot processes at the peak sample: {summarize(inc['peak_procs'])}")
    detail_md = "\n".join(detail)
    print("\n" + table_md + "\n\n" + detail_md)

    rev = version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    rel = lambda p: os.path.relpath(os.path.abspath(p), ROOT)  # noqa: E731
    report = f"""# memory benchmark results

Written by `tests/bench/memory_bench.py` on {datetime.datetime.now().astimezone().isoformat(timespec="seconds")} ({time.monotonic() - begun:.0f} s).

- Machine: {machine()}
- Peers: {version(["mariadbd", "--version"])}; Dovecot {version(["dovecot", "--version"])}; Postfix {version(["postconf", "-d", "-h", "mail_version"])}
- postern: git {rev} (plus uncommitted changes, if any): `{rel(args.lookupd)}`, `{rel(args.authd)}`, `{rel(args.lmtpd)}`
- lookup: schema A + {args.users:,} users, {2 * args.users:,} keys (half existing) through
  `postmap -q -`; lookupd map = seed mailbox map on MariaDB, default settings of
  tests/integration/peers.py (cache_size 1000, sql_workers 2).
- auth: schema A + {args.auth_users} SHA512-CRYPT users on MariaDB, dovecot-sql.conf.ext as seed [001],
  cache off on both, default worker counts (authd one per core, Dovecot auth_worker_max_count 30);
  `bench_auth_load -c {args.concurrency} -t {args.seconds:g}`.
- lmtp: passwd-file check, static userdb uid=nobody, `maildir:ROOT/%d/%n`, Dovecot `mail_fsync = always`,
  lmtpd `lmtp_workers` at its default (4 per core); `smtp-source -L -d -s {args.sessions} -m {args.messages} -l {args.size}`
  (every delivery counted in new/).
- Memory: postern = the daemon's /proc/PID/status VmRSS {args.settle:g} s after start (idle) and
  {args.settle:g} s after the load (after load), VmHWM at the end of the load (peak). Dovecot =
  the master plus every descendant (ppid tree): summed VmRSS idle, and at peak the largest
  summed VmRSS seen by a 50 ms sampler during the load (the summed VmHWM is an upper bound:
  each process's own peak, not at the same moment). Summed RSS counts the shared libraries
  once per Dovecot process, which is what each process keeps resident.
- Targets: each postern daemon under 10 MiB idle; Dovecot at least 5x postern at peak.
  Postfix has no lookup daemon: every Postfix process that uses a mysql: map holds its own
  client, so its column shows one postmap's peak, with no ratio.
Reproduce: `tests/bench/run memory` (options: `tests/bench/run memory --help`).

{table_md}

{detail_md}
"""
    with open(args.results, "w") as f:
        f.write(report)
    print(f"\nwrote {args.results}")
    if failed:
        print("targets missed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
