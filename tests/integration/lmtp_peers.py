"""lmtp_peers.py - lmtpd's peers, on top of peers.py: the delivery agent under test (lmtpd,
or Dovecot's LMTP as the reference), a Dovecot that reads the delivered Maildirs back
(doveadm fetch), the seeds' mail layouts, and a small tmpfs for full-disk tests.

The delivery agent is lmtpd ($POSTERN_LMTPD, set by CMake) unless POSTERN_LMTP_TARGET=dovecot,
which runs the same tests against `dovecot -F` with protocols = lmtp reading the same files:
that is how the fixtures are validated, and a failure there is a fixture problem. Both
agents get one MailSetup (who exists, where mail goes, which uid owns it) and expose the
same interface: socket, start(), stop(), kill9(), log_tail(), kind.

Mail is owned by `nobody:nogroup` (Dovecot refuses uid 0). Same contract as peers.py: a
missing program names its package, daemons get /dev/null and a log file, stop() by PID;
the tmpfs is unmounted in cleanup and on SIGTERM/SIGINT through peers.main().
"""

import os
import pwd
import grp
import signal
import subprocess

import peers
from peers import require_program, run, start_daemon
from sasl_peers import write_file

MAIL_USER, MAIL_GROUP = "nobody", "nogroup"
HOSTNAME = "lmtp.test.invalid"      # lmtpd's and Dovecot's `hostname`
POSTMASTER = "postmaster@example.com"


def mail_ids():
    return pwd.getpwnam(MAIL_USER).pw_uid, grp.getgrnam(MAIL_GROUP).gr_gid


def lmtpd_binary():
    """The lmtpd under test, from $POSTERN_LMTPD (set by CMake)."""
    path = os.environ.get("POSTERN_LMTPD", "")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"POSTERN_LMTPD={path!r} is not an executable; run through ctest "
                           "or set it to <build>/lmtpd/lmtpd")
    return path


def target_kind():
    kind = os.environ.get("POSTERN_LMTP_TARGET", "lmtpd")
    if kind not in ("lmtpd", "dovecot"):
        raise RuntimeError(f"POSTERN_LMTP_TARGET={kind!r}: use lmtpd (default) or dovecot")
    return kind


def mail_root(ws, name):
    """A directory for mail (like /var/mail/vhosts), owned by the mail user, mode 0755."""
    path = ws.mkdir(name)
    os.chown(path, *mail_ids())
    os.chmod(path, 0o755)
    return path


# ---------------------------------------------------------------- the seeds' layouts

class MailSetup:
    """One seed's delivery configuration, given to both agents and to the reader.

    check: ("sql", dovecot-sql.conf.ext) or ("passwd-file", args) - who exists.
    Seed [001]: static userdb uid/gid home=ROOT/%d/%n, mail_location maildir:ROOT/%d/%n.
    Seed [004]: mail_uid/mail_gid, mail_home ROOT/%d/%n, mail_location maildir:~/mail.
    """

    def __init__(self, name, root, check, userdb_args, mail_location, mail_home=None,
                 mail_uid=None, mail_gid=None, maildir_suffix="", save_to_detail=False):
        self.name, self.root, self.check = name, root, check
        self.userdb_args, self.mail_location, self.mail_home = userdb_args, mail_location, mail_home
        self.mail_uid, self.mail_gid = mail_uid, mail_gid
        self.maildir_suffix = maildir_suffix
        self.save_to_detail = save_to_detail

    def maildir(self, address, folder=None):
        """Where mail for address (user@domain, no +detail) lands; folder: Maildir++ name."""
        local, domain = address.lower().rsplit("@", 1)
        path = os.path.join(self.root, domain, local) + self.maildir_suffix
        return os.path.join(path, "." + folder) if folder else path


def seed001_setup(root, sql_conf, name="seed001"):
    return MailSetup(name, root, ("sql", sql_conf),
                     f"uid={MAIL_USER} gid={MAIL_GROUP} home={root}/%d/%n",
                     f"maildir:{root}/%d/%n")


def seed004_setup(root, passwd_file, name="seed004", save_to_detail=False):
    return MailSetup(name, root, ("passwd-file", f"scheme=SHA512-CRYPT {passwd_file}"), "",
                     "maildir:~/mail", mail_home=f"{root}/%d/%n", mail_uid=MAIL_USER,
                     mail_gid=MAIL_GROUP, maildir_suffix="/mail", save_to_detail=save_to_detail)


def make_folder(setup, address, folder):
    """Creates the Maildir++ folder (and the maildir above it) as the mail user would."""
    uid, gid = mail_ids()
    path = setup.maildir(address, folder)
    parts = []
    p = path
    while not os.path.exists(p):
        parts.append(p)
        p = os.path.dirname(p)
    for d in reversed(parts):
        os.mkdir(d, 0o700)
        os.chown(d, uid, gid)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), mode=0o700, exist_ok=True)
        os.chown(os.path.join(path, sub), uid, gid)
    open(os.path.join(path, "maildirfolder"), "w").close()
    os.chown(os.path.join(path, "maildirfolder"), uid, gid)
    return path


# ---------------------------------------------------------------- lmtpd

LMTPD_DEFAULTS = {
    "socket_mode": "0666",
    "mail_file_mode": "0600",
    "mail_dir_mode": "0700",
    "recipient_delimiter": "+",
    "quota_full_tempfail": "no",
    "mail_max_size": "100M",
    "lmtp_spool_memory": "1M",
    "hostname": HOSTNAME,
    "postmaster_address": POSTMASTER,
    "lmtp_workers": "4",
    "idle_timeout": "300s",
    "sql_connect_timeout": "2s",
    "sql_read_timeout": "3s",
    "sql_retry_interval": "1s",
    "log_level": "info",
    "syslog": "no",
}


class _Agent(peers.DaemonHandle):
    """What lmtpd and Dovecot's LMTP share: a dir, a log, a socket, a process."""
    kind = "?"
    stop_timeout = 15

    def __init__(self, ws, name, setup, settings):
        self.ws, self.name, self.setup = ws, name, setup
        self.dir = ws.mkdir(name)
        self.socket = os.path.join(self.dir, "lmtp.sock")
        self.log_path = os.path.join(self.dir, f"{self.kind}.log")
        self.spool = ws.mkdir(name, "spool")
        self.settings = dict(settings)
        self.proc = None

    def _wait_ready(self, timeout):
        self.wait_listening([self.socket], timeout, f"LMTP socket {self.socket}")



class Lmtpd(_Agent):
    """`lmtpd -c FILE` in the foreground, one unix LMTP listener (mode 0666: Postfix's
    lmtp client connects as user postfix)."""
    kind = "lmtpd"

    def __init__(self, ws, name, setup, **settings):
        self.binary = lmtpd_binary()
        super().__init__(ws, name, setup, {**LMTPD_DEFAULTS, **settings})
        self.conf = os.path.join(self.dir, "lmtpd.conf")

    def config_text(self):
        s = self.setup
        lines = [f"# written by tests/integration/lmtp_peers.py for {self.name} ({s.name})",
                 f"lmtp_listen = unix:{self.socket}",
                 f"user_check = {s.check[0]} {s.check[1]}",
                 f"mail_location = {s.mail_location}",
                 f"lmtp_save_to_detail_mailbox = {'yes' if s.save_to_detail else 'no'}",
                 f"mail_temp_dir = {self.spool}"]
        lines.append(f"userdb = static {s.userdb_args}".rstrip())
        for key in ("mail_home", "mail_uid", "mail_gid"):
            if getattr(s, key):
                lines.append(f"{key} = {getattr(s, key)}")
        lines += [f"{k} = {v}" for k, v in self.settings.items()]
        return "\n".join(lines) + "\n"

    def write_config(self, **settings):
        self.settings.update({k: str(v) for k, v in settings.items()})
        write_file(self.conf, self.config_text())

    def check_config(self):
        """lmtpd -c CONF -n -> (rc, stdout, stderr)."""
        return run([self.binary, "-c", self.conf, "-n"], timeout=30)

    def start(self, timeout=15, **settings):
        self.write_config(**settings)
        self.proc = start_daemon([self.binary, "-c", self.conf], self.log_path)
        self._wait_ready(timeout)
        return self

    def kill9(self):
        """SIGKILL by PID (a crash): the socket file stays behind."""
        self.proc.kill()
        self.proc.wait()
        peers._live_procs.discard(self.proc)
        self.proc = None


class DovecotLmtp(_Agent):
    """`dovecot -F` with protocols = lmtp (or none: a reader for doveadm), passdb from the
    setup's check, static userdb, the same mail settings. Own session, so kill9() can
    SIGKILL the master and its lmtp children by process group."""
    kind = "dovecot"

    def __init__(self, ws, name, setup, protocols="lmtp", **settings):
        self.binary = require_program("dovecot", "dovecot-core")
        self.doveadm = require_program("doveadm", "dovecot-core")
        if protocols == "lmtp" and not os.path.exists("/usr/lib/dovecot/lmtp"):
            raise RuntimeError("peer missing: /usr/lib/dovecot/lmtp; install the Debian "
                               "package 'dovecot-lmtpd'")
        super().__init__(ws, name, setup, settings)
        self.protocols = protocols
        self.conf = os.path.join(self.dir, "dovecot.conf")

    def config_text(self):
        s = self.setup
        lines = [f"# written by tests/integration/lmtp_peers.py for {self.name} ({s.name})",
                 f"base_dir = {self.dir}/run", f"state_dir = {self.dir}/state",
                 f"instance_name = {os.path.basename(self.ws.path)}-{self.name}",
                 "log_path = /dev/stderr", f"protocols = {self.protocols}", "ssl = no",
                 "listen = 127.0.0.1", "default_internal_user = dovecot", "default_login_user = dovenull",
                 f"hostname = {HOSTNAME}", f"postmaster_address = {POSTMASTER}",
                 "recipient_delimiter = +", "auth_cache_size = 0",
                 f"lmtp_save_to_detail_mailbox = {'yes' if s.save_to_detail else 'no'}",
                 f"mail_location = {s.mail_location}", f"mail_temp_dir = {self.spool}"]
        for key in ("mail_home", "mail_uid", "mail_gid"):
            if getattr(s, key):
                lines.append(f"{key} = {getattr(s, key)}")
        plugin = self.settings.get("plugin", {})
        lines += [f"{k} = {v}" for k, v in self.settings.items() if k != "plugin"]
        if plugin:  # e.g. {"quota": "maildir:User quota", "quota_rule": "*:storage=20K"}
            lines += ["plugin {"] + [f"  {k} = {v}" for k, v in plugin.items()] + ["}"]
        lines += ["passdb {", f"  driver = {s.check[0]}", f"  args = {s.check[1]}", "}",
                  "userdb {", "  driver = static", f"  args = {s.userdb_args}", "}"]
        if self.protocols == "lmtp":
            lines += ["service lmtp {", f"  unix_listener {self.socket} {{", "    mode = 0666",
                      "  }", "}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout=20):
        write_file(self.conf, self.config_text())
        self.proc = start_daemon([self.binary, "-F", "-c", self.conf], self.log_path,
                                 start_new_session=True)
        if self.protocols == "lmtp":
            self._wait_ready(timeout)
        else:
            self.wait_listening([os.path.join(self.dir, "run", "auth-userdb")], timeout, "auth-userdb")
        return self

    def kill9(self):
        """SIGKILL to the master's process group (master and its lmtp/auth children)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        peers._live_procs.discard(self.proc)
        self.proc = None

    def fetch_text(self, user, message_id, timeout=60):
        """The whole message (bytes) with this Message-ID in user's INBOX or FOLDER, as
        Dovecot reads it: `doveadm fetch -u USER text mailbox * header message-id ID`."""
        p = subprocess.run([self.doveadm, "-c", self.conf, "fetch", "-u", user, "text",
                            "mailbox", "*", "header", "message-id", message_id],
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if p.returncode != 0 or p.stderr.strip():
            raise AssertionError(f"doveadm fetch -u {user} ({message_id}) rc {p.returncode}: "
                                 f"{p.stderr.decode(errors='replace')}\n{self.log_tail(15)}")
        return p.stdout


def delivery_agent(ws, name, setup, **settings):
    """lmtpd (default) or, with POSTERN_LMTP_TARGET=dovecot, Dovecot's LMTP, not started.
    settings are lmtpd settings; Dovecot takes only the ones it has (dovecot_* keys)."""
    if target_kind() == "dovecot":
        dc = {k[len("dovecot_"):]: v for k, v in settings.items() if k.startswith("dovecot_")}
        return DovecotLmtp(ws, name, setup, **dc)
    return Lmtpd(ws, name, setup, **{k: v for k, v in settings.items()
                                     if not k.startswith("dovecot_")})


def reader(ws, name, setup):
    """A started Dovecot (protocols = none) for doveadm fetch on setup's mailboxes."""
    return DovecotLmtp(ws, name, setup, protocols="none").start()


# ---------------------------------------------------------------- a small tmpfs

class Tmpfs:
    """A tmpfs of `size` mounted on path (owner mail user, mode 0755). Needs root (mount);
    umount() is registered with peers' emergency stop."""

    def __init__(self, path, size):
        self.mount_bin = require_program("mount", "mount")
        self.umount_bin = require_program("umount", "mount")
        self.path, self.mounted = path, False
        uid, gid = mail_ids()
        rc, out, err = run([self.mount_bin, "-t", "tmpfs", "-o",
                            f"size={size},uid={uid},gid={gid},mode=0755", "tmpfs", path])
        if rc != 0:
            raise RuntimeError(f"cannot mount a tmpfs on {path} (needs root / CAP_SYS_ADMIN): "
                               f"{err.strip()}")
        self.mounted = True
        peers._live_stoppers[path] = self.umount

    def resize(self, size):
        rc, out, err = run([self.mount_bin, "-o", f"remount,size={size}", self.path])
        if rc != 0:
            raise RuntimeError(f"remount {self.path} size={size}: {err.strip()}")

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def umount(self):
        if not self.mounted:
            return
        rc, _, err = run([self.umount_bin, self.path])
        if rc != 0:  # something still open in it: detach now, freed when closed
            rc, _, err = run([self.umount_bin, "-l", self.path])
        self.mounted = rc != 0
        peers._live_stoppers.pop(self.path, None)
        if rc != 0:
            raise AssertionError(f"umount {self.path} failed: {err.strip()}")
