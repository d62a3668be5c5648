"""peers.py - fixtures that run real peers (MariaDB, SQLite files, postmap, lookupd) for tests.
The authd tests' peers (Postfix smtpd, Dovecot auth, authd, swaks) are in sasl_peers.py.

Installs nothing: a missing program is an error that names the package. Everything lives
in a Workspace, a `mktemp -d /tmp/postern-it.XXXXXX` directory made o+x so that peers
running as other users can traverse it. Daemons get stdin from /dev/null and write
stdout/stderr to a log file in the workspace (a daemon holding ctest's pipes makes ctest
wait for it). Callers register stop/remove with addCleanup/addClassCleanup so everything
is torn down when a test fails; main() also stops every live daemon on SIGTERM/SIGINT.
Set POSTERN_KEEP_TMP=1 to keep the workspace (its path is printed) for post-mortems.

Contract of the process helpers: a daemon is stopped by its own PID with SIGTERM and
waited for; one that does not exit in time is killed and reported as a failure.
"""

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from wire import SocketmapClient, TcpTableClient, netstring  # noqa: F401 (re-exported)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
_SEARCH_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"

# Daemons and workspaces still alive, for the signal handler installed by main().
_live_procs = set()
_live_dirs = set()
# Peers that a SIGTERM to their PID does not stop (Postfix's master): name -> stop callable.
_live_stoppers = {}


# ---------------------------------------------------------------- small helpers

def require_program(name, package):
    """Absolute path of program `name`, or an error telling which package is missing."""
    path = shutil.which(name, path=_SEARCH_PATH)
    if path is None:
        raise RuntimeError(f"peer missing: '{name}' not found; install the Debian package "
                           f"'{package}' (.ci/install-deps.sh --test-peers)")
    return path


def lookupd_binary():
    """The lookupd under test, from $POSTERN_LOOKUPD (set by CMake)."""
    path = os.environ.get("POSTERN_LOOKUPD", "")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"POSTERN_LOOKUPD={path!r} is not an executable; run through ctest "
                           "or set it to <build>/lookupd/lookupd")
    return path


_ports_given = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, never the same one twice."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value; returns (value, seconds waited)."""
    start = time.monotonic()
    while True:
        value = predicate()
        elapsed = time.monotonic() - start
        if value:
            return value, elapsed
        if elapsed > timeout:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def can_connect(address):
    """True if a unix path (str) or (host, port) accepts a connection now."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(address)
            return True
        except OSError:
            return False


def tail(path, lines=40):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


def start_daemon(argv, log_path, **kwargs):
    """Starts argv with stdin=/dev/null and stdout+stderr appended to log_path."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, **kwargs)
    _live_procs.add(proc)
    return proc


def stop_daemon(proc, timeout, name):
    """SIGTERM by PID and wait; kills and raises if it does not exit in time. Returns rc."""
    if proc is None:
        return None
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"{name} (pid {proc.pid}) did not exit within "
                                     f"{timeout}s of SIGTERM; killed")
        return proc.returncode
    finally:
        _live_procs.discard(proc)


def run(argv, input=None, timeout=60, env=None):
    """Runs a command to completion; returns (rc, stdout, stderr) as text."""
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                       env=env, stdin=None if input is not None else subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def render(template, dest, **subs):
    """Copies data/<template> to dest, replacing @KEY@ by subs[KEY]."""
    with open(os.path.join(DATA, template)) as f:
        text = f.read()
    for key, value in subs.items():
        text = text.replace(f"@{key}@", str(value))
    with open(dest, "w") as f:
        f.write(text)
    backdate(dest)
    return dest


def backdate(path):
    """Postfix waits (in 300 ms steps, up to ~2 s) for a config or .cf file modified in the
    last seconds to settle; a file written whole by a fixture can be dated back."""
    past = time.time() - 60
    os.utime(path, (past, past))


# ---------------------------------------------------------------- workspace

class Workspace:
    """A private temp dir under /tmp, or $POSTERN_TMPDIR (mode 0711), holding one test class's peers."""

    def __init__(self, tag):
        self.path = tempfile.mkdtemp(prefix=f"postern-it.{tag}.", dir=os.environ.get("POSTERN_TMPDIR", "/tmp"))
        os.chmod(self.path, 0o711)
        _live_dirs.add(self.path)

    def mkdir(self, *parts):
        path = os.path.join(self.path, *parts)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o711)
        return path

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def remove(self):
        _live_dirs.discard(self.path)
        if os.environ.get("POSTERN_KEEP_TMP"):
            print(f"\nkept workspace {self.path}", file=sys.stderr)
            return
        shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------- MariaDB

class MariaDB:
    """A private mariadbd: datadir, unix socket and a fixed 127.0.0.1 port in the workspace.

    start() installs the datadir the first time and keeps datadir and port for restarts,
    so an outage test can stop() and start() the same server.
    """

    USER, PASSWORD = "mailuser", "mailuserpass"

    def __init__(self, ws, name="mariadb"):
        self.mariadbd = require_program("mariadbd", "mariadb-server")
        self.install_db = require_program("mariadb-install-db", "mariadb-server")
        self.client = require_program("mariadb", "mariadb-client")
        self.admin = require_program("mariadb-admin", "mariadb-client")
        self.dir = ws.mkdir(name)
        self.datadir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        # Its own, not /tmp: two servers bootstrapping at once in a shared tmpdir can lose a
        # temporary table ("Could not remove temporary table", install-db rc 1).
        self.tmpdir = os.path.join(self.dir, "tmp")
        self.log = os.path.join(self.dir, "error.log")
        self.port = None
        self.proc = None
        self.as_root = ["--user=root"] if os.geteuid() == 0 else []

    @property
    def hosts_inet(self):
        return f"inet:127.0.0.1:{self.port}"

    @property
    def hosts_unix(self):
        return f"unix:{self.socket}"

    def _install(self):
        os.makedirs(self.tmpdir, exist_ok=True)
        rc, out, err = run([self.install_db, "--no-defaults", *self.as_root,
                            f"--datadir={self.datadir}", f"--tmpdir={self.tmpdir}",
                            "--auth-root-authentication-method=normal",
                            "--skip-test-db", "--skip-name-resolve", "--innodb-log-file-size=8M"],
                           timeout=120)
        if rc != 0:
            raise RuntimeError(f"mariadb-install-db failed (rc {rc}):\n{out}\n{err}")

    def start(self, timeout=60):
        """Starts mariadbd and returns once it answers on its unix socket."""
        if not os.path.isdir(self.datadir):
            self._install()
        if self.port is None:
            self.port = free_port()
        self.proc = start_daemon(
            [self.mariadbd, "--no-defaults", *self.as_root, f"--datadir={self.datadir}",
             f"--tmpdir={self.tmpdir}",
             f"--socket={self.socket}", f"--pid-file={self.dir}/mysqld.pid",
             f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
             "--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
             f"--log-error={self.log}"],
            os.path.join(self.dir, "stdout.log"))

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.proc.returncode}:\n{tail(self.log)}")
            return run([self.admin, "--no-defaults", "-S", self.socket, "-u", "root", "ping"],
                       timeout=10)[0] == 0 and can_connect(("127.0.0.1", self.port))
        wait_until(ready, timeout, what="mariadbd to accept connections")

    def stop(self, timeout=60):
        stop_daemon(self.proc, timeout, "mariadbd")
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def sql(self, statements, db=None):
        """Runs SQL as root over the socket; returns the output rows (tab-separated)."""
        argv = [self.client, "--no-defaults", "-S", self.socket, "-u", "root", "--batch",
                "--skip-column-names"]
        if db:
            argv.append(db)
        rc, out, err = run(argv, input=statements, timeout=60)
        if rc != 0:
            raise RuntimeError(f"SQL failed (rc {rc}): {err.strip()}\n{statements}")
        return out

    def create_database(self, name, sql_file=None):
        """Creates database `name`, gives mailuser SELECT on it (127.0.0.1 and localhost),
        and loads data/<sql_file>."""
        stmts = [f"CREATE DATABASE `{name}`;"]
        for host in ("127.0.0.1", "localhost"):
            stmts.append(f"CREATE USER IF NOT EXISTS '{self.USER}'@'{host}' "
                         f"IDENTIFIED BY '{self.PASSWORD}';")
            stmts.append(f"GRANT SELECT ON `{name}`.* TO '{self.USER}'@'{host}';")
        self.sql("\n".join(stmts))
        if sql_file:
            with open(os.path.join(DATA, sql_file)) as f:
                self.sql(f.read(), db=name)

    def cleanup(self):
        self.stop()


def class_mariadb(test_class, schema="schema_a.sql", database="mailserver"):
    """A MariaDB for a test class's workspace: started, removed by the class cleanup, with
    database created from tests/integration/data/<schema> (none when schema is None)."""
    db = MariaDB(test_class.ws)
    test_class.addClassCleanup(db.cleanup)
    db.start()
    if schema:
        db.create_database(database, schema)
    return db


# ---------------------------------------------------------------- SQLite

class SqliteDB:
    """An SQLite database file in the workspace, loaded from data/<sql_file>."""

    def __init__(self, ws, name, sql_file):
        require_program("sqlite3", "sqlite3")  # the admin's tool; the tests use the module
        self.path = os.path.join(ws.mkdir("sqlite"), name)
        with open(os.path.join(DATA, sql_file)) as f:
            script = f.read()
        con = sqlite3.connect(self.path)
        try:
            con.executescript(script)
            con.commit()
        finally:
            con.close()
        os.chmod(self.path, 0o644)

    def sql(self, statements):
        con = sqlite3.connect(self.path)
        try:
            rows = con.executescript(statements).fetchall()
            con.commit()
            return rows
        finally:
            con.close()


# ---------------------------------------------------------------- postmap

class Postfix:
    """A Postfix config dir (main.cf only) for running postmap against any table."""

    def __init__(self, ws):
        self.postmap = require_program("postmap", "postfix")
        self.dir = ws.mkdir("postfix")
        main_cf = os.path.join(self.dir, "main.cf")
        with open(main_cf, "w") as f:
            f.write("compatibility_level = 3.6\n")
        backdate(main_cf)

    def query(self, key, table, timeout=60):
        """postmap -q KEY TABLE -> (rc, stdout, stderr)."""
        return run([self.postmap, "-c", self.dir, "-q", key, table], timeout=timeout)

    def query_bulk(self, keys, table, timeout=120):
        """postmap -q - TABLE < keys -> (rc, stdout, stderr); stdout has KEY<TAB>VALUE lines."""
        return run([self.postmap, "-c", self.dir, "-q", "-", table],
                   input="".join(k + "\n" for k in keys), timeout=timeout)


# ---------------------------------------------------------------- lookupd

DEFAULT_SETTINGS = {
    "socket_mode": "0666",
    "recipient_delimiter": "+",
    "cache_size": "1000",
    "cache_hit_ttl": "30s",
    "cache_miss_ttl": "5s",
    "cache_serve_stale": "no",
    "sql_workers": "2",
    "sql_connect_timeout": "2s",
    "sql_read_timeout": "5s",
    "sql_retry_interval": "1s",
    "idle_timeout": "300s",
    "max_queue": "10000",
    "log_level": "info",
    "syslog": "no",
}


class LogFile:
    """Reading self.log_path, the log of something a test started."""
    tail_lines = 40

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=None):
        lines = lines or self.tail_lines
        return f"--- {self.log_path} (last {lines} lines) ---\n{tail(self.log_path, lines)}"


class DaemonHandle(LogFile):
    """What a test holds for one daemon it started (self.proc, self.log_path, self.kind,
    self.name): stop it by PID, signal it, read its log."""
    kind = "daemon"
    stop_timeout = 10

    def stop(self, timeout=None):
        rc = stop_daemon(self.proc, timeout or self.stop_timeout, f"{self.kind} {self.name}")
        self.proc = None
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def wait_listening(self, endpoints, timeout, what):
        """Returns once every endpoint (a unix socket path or a (host, port)) accepts
        connections; raises with the log's tail if the process exits first."""
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} {self.name} exited with {self.proc.returncode} "
                                   f"at start:\n{self.log_tail()}")
            return all(can_connect(e) for e in endpoints)
        wait_until(ready, timeout, what=f"{self.kind} {self.name} {what}")


class Lookupd(DaemonHandle):
    """One lookupd process with its config, log, unix socketmap socket, an inet socketmap
    port, and one tcp_table port per map that asks for it."""
    kind = "lookupd"

    def __init__(self, ws, name="lookupd"):
        self.binary = lookupd_binary()
        self.dir = ws.mkdir(name)
        self.name = name
        self.conf = os.path.join(self.dir, "lookupd.conf")
        self.log_path = os.path.join(self.dir, "lookupd.log")
        self.socket = os.path.join(self.dir, "lookupd.sock")
        self.inet_port = free_port()
        self.maps = {}       # name -> (sources, kind)
        self.tcp_ports = {}  # map name -> port
        self.settings = dict(DEFAULT_SETTINGS)
        self.proc = None

    def add_map(self, name, sources, kind=None, tcp=False):
        """sources: Postfix table names ('mysql:/path.cf', 'sqlite:/path.cf'), in order."""
        self.maps[name] = (list(sources), kind)
        if tcp:
            self.tcp_ports[name] = free_port()
        return self

    def config_text(self, extra=""):
        lines = [f"# written by tests/integration/peers.py for {self.name}",
                 f"socketmap_listen = unix:{self.socket}, inet:127.0.0.1:{self.inet_port}"]
        lines += [f"{k} = {v}" for k, v in self.settings.items()]
        for name, (sources, kind) in self.maps.items():
            lines.append(f"map.{name} = {', '.join(sources)}")
            if kind:
                lines.append(f"map.{name}.kind = {kind}")
            if name in self.tcp_ports:
                lines.append(f"map.{name}.tcp_listen = 127.0.0.1:{self.tcp_ports[name]}")
        return "\n".join(lines) + "\n" + extra

    def write_config(self, text=None):
        with open(self.conf, "w") as f:
            f.write(self.config_text() if text is None else text)

    def start(self, timeout=15, **settings):
        """Writes the config (settings override DEFAULT_SETTINGS), starts lookupd and
        returns once every listener accepts connections."""
        self.settings.update({k: str(v) for k, v in settings.items()})
        self.write_config()
        self.proc = start_daemon([self.binary, "-c", self.conf], self.log_path)
        endpoints = [self.socket, ("127.0.0.1", self.inet_port)]
        endpoints += [("127.0.0.1", p) for p in self.tcp_ports.values()]
        self.wait_listening(endpoints, timeout, "listeners")
        return self

    def query_command(self, key, map_name, timeout=30):
        """lookupd -c CONF -q KEY MAP -> (rc, stdout, stderr)."""
        return run([self.binary, "-c", self.conf, "-q", key, map_name], timeout=timeout)

    # Postfix table names for postmap / main.cf.
    def socketmap_unix(self, map_name):
        return f"socketmap:unix:{self.socket}:{map_name}"

    def socketmap_inet(self, map_name):
        return f"socketmap:inet:127.0.0.1:{self.inet_port}:{map_name}"

    def tcp(self, map_name):
        return f"tcp:127.0.0.1:{self.tcp_ports[map_name]}"

    def tables(self, map_name):
        """(transport label, Postfix table name) for every way this map is served."""
        out = [("socketmap-unix", self.socketmap_unix(map_name)),
               ("socketmap-inet", self.socketmap_inet(map_name))]
        if map_name in self.tcp_ports:
            out.append(("tcp", self.tcp(map_name)))
        return out


# ---------------------------------------------------------------- entry point

def _emergency_stop(signum, _frame):
    for stop in list(_live_stoppers.values()):
        try:
            stop()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    for proc in list(_live_procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for proc in list(_live_procs):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    if not os.environ.get("POSTERN_KEEP_TMP"):
        for path in list(_live_dirs):
            shutil.rmtree(path, ignore_errors=True)
    print(f"\ninterrupted by signal {signum}; peers stopped", file=sys.stderr)
    os._exit(128 + signum)


def install_signal_handlers():
    """On SIGTERM/SIGINT, stop every live peer and remove the workspaces, then exit."""
    signal.signal(signal.SIGTERM, _emergency_stop)
    signal.signal(signal.SIGINT, _emergency_stop)


def main():
    """unittest.main() that also stops every live peer on SIGTERM/SIGINT."""
    install_signal_handlers()
    unittest.main(verbosity=2)
