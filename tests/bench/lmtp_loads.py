"""lmtp_loads.py - the loads and limits lmtp_bench.py runs: a case (recipients, connection
mode, sessions) as smtp-source arguments, smtp-source itself, the smtp-sink protocol-only
agent, and bench_fsync_ceiling."""

import re
import subprocess
import time

import lmtp_peers as lp
import peers


class Case:
    """Recipients per message, whether a session reuses its connection (-d), and sessions
    when not --sessions (RCPTS:new|reuse[:SESSIONS])."""

    def __init__(self, text):
        parts = text.split(":")
        rcpts, mode = parts[0], parts[1] if len(parts) > 1 else ""
        sessions = (parts[2] if len(parts) > 2 else "") or "0"
        if (len(parts) > 3 or mode not in ("new", "reuse") or not rcpts.isdigit() or int(rcpts) < 1 or
                not sessions.isdigit()):
            raise SystemExit(f"lmtp_bench.py: bad case {text!r} (RCPTS:new or RCPTS:reuse, then :SESSIONS)")
        self.rcpts, self.reuse, self.sessions = int(rcpts), mode == "reuse", int(sessions)

    def __str__(self):
        conn = "connection reuse (-d)" if self.reuse else "new connection per msg"
        more = f", {self.sessions} sessions" if self.sessions else ""
        return f"{self.rcpts} rcpt{'s' if self.rcpts > 1 else ''}, {conn}{more}"

    def source_args(self, sessions, size, messages):
        return (["-L"] + (["-d"] if self.reuse else []) +
                ["-s", str(self.sessions or sessions), "-l", str(size), "-m", str(messages)] +
                (["-r", str(self.rcpts)] if self.rcpts > 1 else []))


def smtp_source_argv(socket_path, args, domain):
    return ([peers.require_program("smtp-source", "postfix")] + args +
            ["-f", "bench@remote.invalid", "-t", f"user@{domain}", f"unix:{socket_path}"])


def smtp_source(socket_path, args, domain, timeout):
    """Runs smtp-source ARGS to user@DOMAIN on the unix socket -> (seconds, rc, output)."""
    argv = smtp_source_argv(socket_path, args, domain)
    start = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return timeout, -1, "timed out"
    return time.monotonic() - start, p.returncode, (p.stdout + p.stderr).strip()


class Sink(peers.DaemonHandle):
    """`smtp-sink -L -c -u nobody unix:SOCKET 256`: answers LMTP (one reply per recipient
    after the dot) and discards the mail. -c writes running counters to its log, from
    which messages() reads how many messages it accepted."""
    kind = "smtp-sink"

    def __init__(self, ws):
        self.name, self.proc = "sink", None
        self.binary = peers.require_program("smtp-sink", "postfix")
        self.socket = ws.file("sink.sock")
        self.log_path = ws.file("sink.log")

    def start(self, timeout=10):
        self.proc = peers.start_daemon([self.binary, "-L", "-c", "-u", lp.MAIL_USER,
                                        f"unix:{self.socket}", "256"], self.log_path)
        peers.wait_until(lambda: peers.can_connect(self.socket), timeout, what="smtp-sink socket")
        return self

    def messages(self):
        counts = re.findall(r"mesg=(\d+)", self.log())
        return int(counts[-1]) if counts else 0


def ceiling(binary, directory, threads, count, size):
    p = subprocess.run([binary, "-d", directory, "-j", str(threads), "-n", str(count), "-s", str(size), "-t", "20"],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"{binary}: rc {p.returncode}: {p.stderr.strip()}")
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in p.stdout.split())}
