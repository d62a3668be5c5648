"""lmtp_mail.py - the mail side of lmtpd's tests: a private Postfix that delivers with
`lmtp:unix:/abs/path` (one route per domain), SMTP injection (smtplib, so the bytes are
exact and the queue id is known), Postfix log parsing (status per recipient), a raw LMTP
client, test messages with a unique token, and Maildir checks.

Every message made by make_message() carries its token in Message-ID and Subject and ends
with a trailer line naming it, so a file in new/ can be matched to what was sent and a
truncated file is visible.
"""

import os
import re
import shutil
import smtplib
import socket
import sasl_peers as sp
from peers import free_port, run, wait_until


# ---------------------------------------------------------------- Postfix

class LmtpPostfix(sp.PostfixInstance):
    """A private Postfix (see sasl_peers.PostfixInstance) without SASL: smtpd services on
    127.0.0.1 ports, virtual_mailbox_domains = the routed domains, no virtual_mailbox_maps
    (every address is accepted by smtpd, as in seed [004]), each domain delivered over
    lmtp:unix:<agent socket>. Short retry times so deferred mail is retried within
    seconds. Address verification probes go the same way (reject_unverified_recipient on
    a service added with verify=True answers 550)."""

    MAIN_CF = sp.BASE_MAIN_CF + """\
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtpd_tls_security_level = none
recipient_delimiter = +
message_size_limit = 60000000
virtual_mailbox_domains = {domains}
virtual_mailbox_maps =
virtual_transport = {first_route}
transport_maps = inline:{{ {routes} }}
unverified_recipient_reject_code = 550
address_verify_poll_delay = 1s
address_verify_poll_count = 5
"""
    EXTRA_SERVICES = "lmtp      unix  -  -  n  -    -  lmtp\n"

    def __init__(self, ws, routes, name="postfix-lmtp"):
        """routes: {domain: lmtp unix socket path}, in order (the first is virtual_transport)."""
        super().__init__(ws, name)
        self.routes = dict(routes)
        self.services = {}  # label -> (port, verify)

    def add_smtpd(self, label, verify=False):
        port = free_port()
        self.smtpds[label] = (port, None)
        self.services[label] = (port, verify)
        return port

    def _write_config(self):
        spool = os.path.join(self.dir, "spool")
        os.makedirs(spool, exist_ok=True)
        os.chmod(spool, 0o755)
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        shutil.chown(data, "postfix", "postfix")
        routes = [f"lmtp:unix:{path}" for path in self.routes.values()]
        main_cf = sp.write_file(os.path.join(self.conf_dir, "main.cf"), self.MAIN_CF.format(
            dir=self.dir, name=self.name, domains=", ".join(self.routes),
            first_route=routes[0],
            routes=" ".join(f"{d}={r}" for d, r in zip(self.routes, routes))))
        lines = []
        for label, (port, verify) in self.services.items():
            lines.append(f"127.0.0.1:{port} inet n - n - - smtpd\n"
                         f"  -o syslog_name={self.name}/{label}\n")
            if verify:
                lines.append("  -o smtpd_recipient_restrictions=reject_unverified_recipient\n")
        master_cf = sp.write_file(os.path.join(self.conf_dir, "master.cf"),
                                  "".join(lines) + self.SERVICES + self.EXTRA_SERVICES)
        sp.backdate(main_cf)
        sp.backdate(master_cf)

    # ------------------------------------------------------------ queue and log

    def postqueue(self, *args):
        return run([sp.require_program("postqueue", "postfix"), "-c", self.conf_dir, *args],
                   timeout=60)

    def flush(self):
        """postqueue -f: retry deferred mail now."""
        return self.postqueue("-f")

    def queue_empty(self):
        rc, out, err = self.postqueue("-p")
        return rc == 0 and "Mail queue is empty" in out

    def statuses(self, queue_id):
        """{recipient: [(status, dsn, text), ...]} from the lmtp/error/discard lines for
        queue_id, in log order (a deferred recipient may appear several times)."""
        out = {}
        for m in STATUS_RE.finditer(self.log()):
            if m.group(1) == queue_id:
                out.setdefault(m.group(2), []).append((m.group(4), m.group(3), m.group(5)))
        return out

    def wait_final(self, queue_id, rcpts, timeout=30, final=("sent", "bounced")):
        """Waits until every rcpt has a status in `final` for queue_id; returns
        {rcpt: (status, dsn, text)} (the last such line)."""
        rcpts = [r.lower() for r in rcpts]

        def done():
            st = {r.lower(): v for r, v in self.statuses(queue_id).items()}
            last = {}
            for r in rcpts:
                finals = [v for v in st.get(r, []) if v[0] in final]
                if not finals:
                    return None
                last[r] = finals[-1]
            return last
        try:
            return wait_until(done, timeout, interval=0.1,
                              what=f"Postfix {queue_id} status {final} for {rcpts}")[0]
        except AssertionError as e:
            raise AssertionError(f"{e}\nstatuses so far: {self.statuses(queue_id)}\n"
                                 f"{self.log_tail(25)}") from None


# 4B2C11E0A6: to=<a@example.com>, [orig_to=<...>,] relay=..., delay=..., delays=...,
#   dsn=2.0.0, status=sent (250 2.0.0 <a@example.com> Ab12 Saved)
STATUS_RE = re.compile(r"\b([0-9A-Za-z]+): to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=.*?"
                       r"dsn=([0-9.]+), status=(\w+) \((.*)\)$", re.M)


# ---------------------------------------------------------------- SMTP injection

class Sent:
    def __init__(self, queue_id, rcpt_replies, data_reply):
        self.queue_id, self.rcpt_replies, self.data_reply = queue_id, rcpt_replies, data_reply

    def __repr__(self):
        return f"Sent({self.queue_id}, rcpt={self.rcpt_replies}, data={self.data_reply})"


def smtp_send(port, sender, rcpts, message, mail_options=(), timeout=120):
    """One SMTP transaction through Postfix's smtpd on 127.0.0.1:port. message: bytes with
    LF endings, sent with CRLF and dot-stuffed (smtplib does neither CRLF conversion for
    bytes nor anything but dot-stuffing). Returns Sent with the queue id (None if
    every RCPT was refused) and {rcpt: (code, text)}."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test.invalid",
                      timeout=timeout) as s:
        s.ehlo()
        code, text = s.mail(sender, list(mail_options))
        if code != 250:
            raise AssertionError(f"MAIL FROM:<{sender}> got {code} {text!r}")
        replies = {r: s.rcpt(r) for r in rcpts}
        if not any(code == 250 for code, _ in replies.values()):
            s.rset()
            return Sent(None, replies, None)
        code, text = s.data(message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        m = re.search(rb"queued as ([0-9A-Za-z]+)", text)
        if code != 250 or not m:
            raise AssertionError(f"DATA got {code} {text!r}")
        return Sent(m.group(1).decode(), replies, (code, text))


def smtp_rcpt_probe(port, rcpt, sender="probe@remote.invalid", timeout=30):
    """MAIL + RCPT + RSET through smtpd: the RCPT reply (code, text)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test.invalid",
                      timeout=timeout) as s:
        s.ehlo()
        s.mail(sender)
        reply = s.rcpt(rcpt)
        s.rset()
        return reply[0], reply[1].decode(errors="replace")


def make_message(token, sender, to, body=b"", size=0, extra_headers=b""):
    """A message (bytes, LF endings) with Message-ID <TOKEN@test.invalid> and a last line
    `-- end of TOKEN --`. size: pad the body with 76-character lines to about that many
    bytes."""
    head = (f"From: <{sender}>\nTo: <{to}>\nSubject: postern lmtpd test {token}\n"
            f"Date: Mon, 01 Jan 2024 12:00:00 +0000\nMessage-ID: <{token}@test.invalid>\n"
            "MIME-Version: 1.0\n").encode() + extra_headers + b"\n"
    msg = head + body
    if size > len(msg):
        line = (b"0123456789abcdefghijklmnopqrstuvwxyz" * 3)[:75] + b"\n"
        n = (size - len(msg)) // len(line)
        msg += b"".join(b"%05d" % (i % 100000) + line[5:] for i in range(n))
    return msg + trailer(token)


def trailer(token):
    return f"-- end of {token} --\n".encode()


def message_id(token):
    return f"{token}@test.invalid"


# ---------------------------------------------------------------- raw LMTP client

class LmtpClient:
    """Speaks LMTP to a unix socket path or (host, port). read_reply() returns
    (code, [text lines]) for one possibly multi-line reply, None on EOF; a server that
    hangs raises socket.timeout."""

    def __init__(self, address, timeout=10, eol=b"\r\n"):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""
        self.eol = eol
        self.transcript = []

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append(f"C: {data[:200]!r}{'...' if len(data) > 200 else ''}")
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode(errors="replace")

    def read_reply(self):
        lines, code = [], None
        while True:
            line = self._line()
            if line is None:
                self.transcript.append("S: <EOF>")
                return None if not lines else (code, lines)
            self.transcript.append(f"S: {line}")
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError(f"malformed reply line {line!r}")
            code = int(line[:3])
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return code, lines

    def cmd(self, line):
        self.send(line.encode() + self.eol)
        return self.read_reply()

    def send_data(self, message):
        """message: bytes with LF endings; sent dot-stuffed with self.eol, then '.'."""
        lines = message.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        out = b"".join((b"." + l if l.startswith(b".") else l) + self.eol for l in lines)
        self.send(out + b"." + self.eol)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def dump(self):
        return "\n".join(self.transcript[-40:])


# ---------------------------------------------------------------- Maildir

SIZE_RE = re.compile(r",S=(\d+)")
WSIZE_RE = re.compile(r",W=(\d+)")


def maildir_files(maildir, subdirs=("new", "cur")):
    """[(path, base name)] of the messages in new/ and cur/ of a maildir (none if missing)."""
    out = []
    for sub in subdirs:
        d = os.path.join(maildir, sub)
        if os.path.isdir(d):
            out += [(os.path.join(d, n), n) for n in sorted(os.listdir(d))]
    return out


def tmp_files(maildir):
    d = os.path.join(maildir, "tmp")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def read(path):
    with open(path, "rb") as f:
        return f.read()


def find_token(maildir, token):
    """[(path, content)] of the messages in maildir whose content has Message-ID TOKEN."""
    needle = f"Message-ID: <{message_id(token)}>".encode()
    out = []
    for path, _ in maildir_files(maildir):
        data = read(path)
        if needle in data:
            out.append((path, data))
    return out


def wait_token(maildir, token, timeout=30, count=1):
    return wait_until(lambda: (lambda f: f if len(f) >= count else None)(find_token(maildir, token)),
                      timeout, what=f"{count} message(s) {token} in {maildir}")[0]


def file_problems(path, uid, gid, file_mode=0o600):
    """What is wrong with one delivered file: S= missing or not the size, W= not exact,
    owner, mode. [] if nothing."""
    name = os.path.basename(path)
    st = os.stat(path)
    problems = []
    m = SIZE_RE.search(name.split(":")[0])
    if not m:
        problems.append(f"{name}: no ,S=<size> in the name")
    elif int(m.group(1)) != st.st_size:
        problems.append(f"{name}: S={m.group(1)} but the file has {st.st_size} bytes")
    w = WSIZE_RE.search(name.split(":")[0])
    if w:
        data = read(path)
        want = len(data) + data.count(b"\n") - data.count(b"\r\n")
        if int(w.group(1)) != want:
            problems.append(f"{name}: W={w.group(1)} but the CRLF size is {want}")
    if (st.st_uid, st.st_gid) != (uid, gid):
        problems.append(f"{name}: owner {st.st_uid}:{st.st_gid}, want {uid}:{gid}")
    if st.st_mode & 0o7777 != file_mode:
        problems.append(f"{name}: mode {st.st_mode & 0o7777:04o}, want {file_mode:04o}")
    return problems


def unfold_headers(data):
    """The header block of a message (bytes) as [(name, unfolded value)], and the offset of
    the body (after the empty line)."""
    end = data.find(b"\n\n")
    block = data[:end if end >= 0 else len(data)].decode("utf-8", errors="replace")
    headers = []
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    return headers, (end + 2 if end >= 0 else len(data))

