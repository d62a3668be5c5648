"""sasl_peers.py - the authd tests' peers, on top of peers.py: a private Postfix instance
(master + submission-style smtpd services, `postfix start-fg`), Dovecot's auth server
(`dovecot -F`, protocols = none) as the reference, authd under test, and swaks.

Same contract as peers.py: nothing is installed (a missing program names its package),
everything lives in a peers.Workspace, daemons get /dev/null and a log file, stop() stops
by PID (Postfix by `postfix -c DIR stop`, also on SIGTERM/SIGINT through peers.main()).
All auth sockets are unix sockets in the workspace, mode 0666: smtpd connects as postfix.
"""

import os
import re
import shutil
import subprocess

import peers
from peers import (DaemonHandle, LogFile, backdate, can_connect, free_port, require_program, run, start_daemon,
                   wait_until)


def authd_binary():
    """The authd under test, from $POSTERN_AUTHD (set by CMake)."""
    path = os.environ.get("POSTERN_AUTHD", "")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"POSTERN_AUTHD={path!r} is not an executable; run through ctest "
                           "or set it to <build>/authd/authd")
    return path


def write_file(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# Seed [001]'s password_query.
SEED001_PASSWORD_QUERY = "SELECT email as user, password FROM virtual_users WHERE email='%u';"


def dovecot_sql_conf(path, port, dbname="mailserver", query=None):
    """dovecot-sql.conf.ext exactly as seed [001] writes it (seed [002]: pass the query with
    `enable=1`), with the test MariaDB's port added to `connect`."""
    query = query or SEED001_PASSWORD_QUERY
    return write_file(path, "driver = mysql\n"
                      f"connect = host=127.0.0.1 port={port} dbname={dbname} "
                      f"user={peers.MariaDB.USER} password={peers.MariaDB.PASSWORD}\n"
                      "default_pass_scheme = SHA512-CRYPT\n"
                      f"password_query = {query}\n")


class Dovecot(DaemonHandle):
    """`dovecot -F` serving only auth (protocols = none): one auth-client unix socket for
    Postfix and `authd test`, passdbs given as (driver, args), userdb static."""
    kind = "dovecot"
    stop_timeout = 15

    DEFAULTS = {"auth_mechanisms": "plain login", "auth_failure_delay": "0",
                "auth_username_format": "%Lu", "auth_verbose": "yes",
                "disable_plaintext_auth": "no", "auth_cache_size": "0"}

    def __init__(self, ws, name="dovecot"):
        self.binary = require_program("dovecot", "dovecot-core")
        self.doveadm = require_program("doveadm", "dovecot-core")
        self.name = name
        self.dir = ws.mkdir(name)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.socket = os.path.join(self.dir, "run", "auth-client")
        self.passdbs = []
        self.settings = dict(self.DEFAULTS)
        self.proc = None

    def add_passdb(self, driver, args):
        self.passdbs.append((driver, args))
        return self

    def config_text(self):
        lines = [f"# written by tests/integration/peers.py for {self.name}",
                 f"base_dir = {self.dir}/run", f"state_dir = {self.dir}/state",
                 f"instance_name = {self.name}", "log_path = /dev/stderr",
                 "protocols = none", "ssl = no", "listen = 127.0.0.1",
                 "default_internal_user = dovecot", "default_login_user = dovenull"]
        lines += [f"{k} = {v}" for k, v in self.settings.items()]
        for driver, args in self.passdbs:
            lines += ["passdb {", f"  driver = {driver}", f"  args = {args}", "}"]
        lines += ["userdb {", "  driver = static",
                  "  args = uid=nobody gid=nogroup home=/nonexistent/%d/%n", "}",
                  "service auth {", "  unix_listener auth-client {", "    mode = 0666", "  }", "}",
                  # No auth penalty (authd: auth_penalty = no): Dovecot's documented way.
                  "service anvil {", "  unix_listener anvil-auth-penalty {", "    mode = 0",
                  "  }", "}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout=20, **settings):
        """Writes the config, starts dovecot -F, returns once auth-client accepts."""
        self.settings.update({k: str(v) for k, v in settings.items()})
        write_file(self.conf, self.config_text())
        self.proc = start_daemon([self.binary, "-F", "-c", self.conf], self.log_path)
        self.wait_listening([self.socket], timeout, "auth-client socket")
        return self

    def doveadm_auth_test(self, socket_path, user, password, timeout=30):
        """`doveadm auth test -a SOCKET USER PASSWORD` (any auth-client socket) -> (rc, out, err)."""
        return run([self.doveadm, "-c", self.conf, "auth", "test", "-a", socket_path, user, password],
                   timeout=timeout)


AUTHD_DEFAULTS = {
    "socket_mode": "0666",
    "auth_mechanisms": "plain login",
    "disable_plaintext_auth": "no",
    "auth_username_format": "%Lu",
    "auth_failure_delay": "0",
    "auth_penalty": "no",
    "auth_verbose": "yes",
    "auth_request_timeout": "60s",
    "auth_cache_size": "0",
    "auth_cache_ttl": "1h",
    "auth_workers": "2",
    "sql_connect_timeout": "2s",
    "sql_read_timeout": "3s",
    "sql_retry_interval": "1s",
    "log_level": "info",
    "syslog": "no",
}


class Authd(DaemonHandle):
    """One authd (`authd -c FILE`, foreground) with one auth-client unix socket and one
    passdb line ("sql /path/dovecot-sql.conf.ext" or "passwd-file ARGS")."""
    kind = "authd"

    def __init__(self, ws, name, passdb):
        self.binary = authd_binary()
        self.name = name
        self.dir = ws.mkdir(name)
        self.conf = os.path.join(self.dir, "authd.conf")
        self.log_path = os.path.join(self.dir, "authd.log")
        self.socket = os.path.join(self.dir, "auth-client")
        self.passdb = passdb
        self.settings = dict(AUTHD_DEFAULTS)
        self.proc = None

    def config_text(self):
        lines = [f"# written by tests/integration/peers.py for {self.name}",
                 f"auth_listen = unix:{self.socket}", f"passdb = {self.passdb}"]
        lines += [f"{k} = {v}" for k, v in self.settings.items()]
        return "\n".join(lines) + "\n"

    def write_config(self, **settings):
        self.settings.update({k: str(v) for k, v in settings.items()})
        write_file(self.conf, self.config_text())

    def check_config(self):
        """authd -c CONF -n -> (rc, stdout, stderr)."""
        return run([self.binary, "-c", self.conf, "-n"], timeout=30)

    def start(self, timeout=15, **settings):
        """Writes the config (settings override AUTHD_DEFAULTS), starts authd and returns
        once the socket accepts connections."""
        self.write_config(**settings)
        self.proc = start_daemon([self.binary, "-c", self.conf], self.log_path)
        self.wait_listening([self.socket], timeout, "socket")
        return self

    def auth_test(self, user, password, socket_path=None, mech=None, timeout=30):
        """`authd test` against any auth-client socket (this authd's by default)."""
        return authd_test(socket_path or self.socket, user, password, mech=mech, timeout=timeout)


def authd_test(socket_path, user, password, mech=None, timeout=30):
    """`authd test -a SOCKET [-m MECH] USER PASSWORD` -> (rc, stdout, stderr); the socket
    may be authd's or Dovecot's."""
    argv = [authd_binary(), "test", "-a", socket_path]
    if mech:
        argv += ["-m", mech]
    return run(argv + [user, password], timeout=timeout)


# The main.cf every private test Postfix starts from: its own spool, loopback only, no
# DNS, nothing leaves the box. Fixtures add their retry timings and maps to it.
BASE_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/spool
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = {name}
maillog_file = /dev/stdout
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
myhostname = mx.test.invalid
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
default_transport = discard:outbound mail is disabled in tests
relay_transport = discard:outbound mail is disabled in tests
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
"""


class PostfixInstance(LogFile):
    """A private Postfix (master + smtpd) run with `postfix -c DIR start-fg`: queue and data
    dirs in the workspace, chroot off, log to a file, no DNS, all outbound mail to discard:.
    Each add_smtpd() is one smtpd service on its own 127.0.0.1 port with SASL through
    Dovecot's protocol to one auth socket, as a submission service: AUTH without TLS,
    relaying only for authenticated clients. Stopped with `postfix -c DIR stop`."""
    tail_lines = 30

    MAIN_CF = BASE_MAIN_CF + """\
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_relay_restrictions = permit_sasl_authenticated, reject
"""
    SERVICES = """\
pickup    unix  n  -  n  60   1  pickup
cleanup   unix  n  -  n  -    0  cleanup
qmgr      unix  n  -  n  300  1  qmgr
rewrite   unix  -  -  n  -    -  trivial-rewrite
bounce    unix  -  -  n  -    0  bounce
defer     unix  -  -  n  -    0  bounce
trace     unix  -  -  n  -    0  bounce
verify    unix  -  -  n  -    1  verify
flush     unix  n  -  n  1000? 0  flush
proxymap  unix  -  -  n  -    -  proxymap
showq     unix  n  -  n  -    -  showq
error     unix  -  -  n  -    -  error
retry     unix  -  -  n  -    -  error
discard   unix  -  -  n  -    -  discard
smtp      unix  -  -  n  -    -  smtp
relay     unix  -  -  n  -    -  smtp
anvil     unix  -  -  n  -    1  anvil
scache    unix  -  -  n  -    1  scache
postlog   unix-dgram n  -  n  -  1  postlogd
"""

    def __init__(self, ws, name="postfix-smtpd"):
        self.postfix = require_program("postfix", "postfix")
        self.name = name
        self.dir = ws.mkdir(name)
        self.conf_dir = ws.mkdir(name, "conf")
        self.log_path = os.path.join(self.dir, "postfix.log")
        self.smtpds = {}  # label -> (port, sasl_path)
        self.proc = None

    def add_smtpd(self, label, sasl_path):
        """A submission-style smtpd using the auth socket sasl_path; returns its port."""
        port = free_port()
        self.smtpds[label] = (port, sasl_path)
        return port

    def port(self, label):
        return self.smtpds[label][0]

    def _write_config(self):
        spool = os.path.join(self.dir, "spool")
        os.makedirs(spool, exist_ok=True)
        os.chmod(spool, 0o755)
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        shutil.chown(data, "postfix", "postfix")
        main_cf = write_file(os.path.join(self.conf_dir, "main.cf"),
                             self.MAIN_CF.format(dir=self.dir, name=self.name))
        lines = []
        for label, (port, sasl_path) in self.smtpds.items():
            lines.append(f"127.0.0.1:{port} inet n - n - - smtpd\n"
                         f"  -o syslog_name={self.name}/{label}\n"
                         f"  -o smtpd_sasl_path={sasl_path}\n")
        master_cf = write_file(os.path.join(self.conf_dir, "master.cf"),
                               "".join(lines) + self.SERVICES)
        backdate(main_cf)
        backdate(master_cf)

    def start(self, timeout=60):
        """Writes main.cf/master.cf, creates the queue (postfix check), starts master in the
        foreground and returns once every smtpd port accepts connections. Every auth socket
        must already accept connections (smtpd asks for the mechanisms on connect)."""
        if os.geteuid() != 0:
            raise RuntimeError("a private Postfix instance needs root (master runs as root)")
        self._write_config()
        rc, out, err = run([self.postfix, "-c", self.conf_dir, "check"], timeout=120)
        if rc != 0:
            raise RuntimeError(f"postfix check failed (rc {rc}):\n{out}\n{err}")
        self.proc = start_daemon([self.postfix, "-c", self.conf_dir, "start-fg"], self.log_path)
        peers._live_stoppers[self.dir] = self._postfix_stop

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"postfix start-fg exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            return all(can_connect(("127.0.0.1", port)) for port, _ in self.smtpds.values())
        try:
            wait_until(ready, timeout, what=f"postfix {self.name} smtpd ports")
        except BaseException:
            self.stop()
            raise
        return self

    def _postfix_stop(self):
        return run([self.postfix, "-c", self.conf_dir, "stop"], timeout=60)

    def stop(self, timeout=30):
        """postfix stop, then wait for the start-fg wrapper (it exits when master does)."""
        if self.proc is None:
            return None
        try:
            if self.proc.poll() is None:
                rc, out, err = self._postfix_stop()
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"postfix {self.name} still running {timeout}s after "
                                         f"`postfix stop` (rc {rc}: {out}{err})") from None
            return self.proc.returncode
        finally:
            peers._live_stoppers.pop(self.dir, None)
            peers._live_procs.discard(self.proc)
            self.proc = None



class SwaksResult:
    """One swaks run: codes maps each SMTP command swaks sent (EHLO, AUTH, MAIL, RCPT, DATA,
    QUIT) to the code of its final reply (AUTH: the reply after any 334 exchanges; DATA:
    the reply after the final dot), plus rc and the transcript."""

    def __init__(self, rc, transcript):
        self.rc = rc
        self.transcript = transcript
        self.codes = {}
        command, waiting = None, None  # waiting: 334 (AUTH exchange) or 354 (DATA text)
        for line in transcript.splitlines():
            # swaks marks what it sends " -> " and replies "<-  " ("<** " for errors).
            if line[:4] in (" -> ", " ~> "):
                if waiting is None:
                    command = line[4:].split(" ", 1)[0].upper()
                continue
            m = re.match(r"^<(?:-|~|\*\*|~\*)\s+(\d{3})( |$)", line)
            if m and command:
                code = int(m.group(1))
                waiting = code if code in (334, 354) else None
                if waiting is None:
                    self.codes[command] = code

    @property
    def auth(self):
        return self.codes.get("AUTH")

    def __repr__(self):
        return f"SwaksResult(codes={self.codes}, rc={self.rc})"


def swaks_auth(port, user, password, mech="PLAIN", send=False, timeout=40):
    """swaks to 127.0.0.1:port with AUTH mech (None: no AUTH); quits after AUTH unless
    send, in which case it sends a mail to an outside address (relayed only when
    authenticated: smtpd_relay_restrictions = permit_sasl_authenticated, reject)."""
    swaks = require_program("swaks", "swaks")
    argv = [swaks, "--server", "127.0.0.1", "--port", str(port), "--helo", "client.test.invalid",
            "--timeout", "20", "--from", "sender@example.com", "--to", "someone@remote.invalid",
            "--h-Subject", "postern authd test"]
    if mech:
        argv += ["--auth", mech, "--auth-user", user, "--auth-password", password]
    if not send:
        argv += ["--quit-after", "AUTH" if mech else "RCPT"]
    rc, out, err = run(argv, timeout=timeout)
    return SwaksResult(rc, out + err)


