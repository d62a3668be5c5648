"""stack_peers.py - the whole-stack peers, on top of peers.py, sasl_peers.py, lmtp_peers.py
and lmtp_mail.py: one private Postfix that uses all three daemons as a site would
(SASL through authd, virtual maps through lookupd's socketmap, delivery through lmtpd),
Dovecot IMAP reading the Maildirs back, and small swaks/imaplib clients.

StackPostfix has two smtpd services on 127.0.0.1 ports: `submission` (AUTH through the
authd socket; relaying only for authenticated clients: permit_sasl_authenticated,
reject_unauth_destination) and `mx` (no AUTH, same relay rules), plus `verify` with
reject_unverified_recipient on demand. Everything not for a virtual mailbox domain goes to
discard:. Same contract as the other fixtures: logs in the workspace, stop by PID
(Postfix by `postfix stop`), nothing installed.
"""

import imaplib
import os
import re
import shutil

import lmtp_mail as lm
import lmtp_peers as lp
import sasl_peers as sp
from peers import free_port, require_program, run, start_daemon


class StackPostfix(lm.LmtpPostfix):
    """main.cf as the seeds write it: virtual_mailbox_domains / _maps / virtual_alias_maps
    (lookupd socketmap tables or static lists, '' to leave one empty), virtual_transport =
    lmtp:unix:<lmtpd socket>, smtpd_sasl_type = dovecot with smtpd_sasl_path = <authd socket>."""

    MAIN_CF = lm.sp.BASE_MAIN_CF + """\
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtpd_tls_security_level = none
recipient_delimiter = +
virtual_mailbox_domains = {domains}
virtual_mailbox_maps = {mailboxes}
virtual_alias_maps = {aliases}
virtual_transport = lmtp:unix:{lmtp}
smtpd_sasl_type = dovecot
smtpd_sasl_path = {auth}
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
unverified_recipient_reject_code = 550
address_verify_poll_delay = 1s
address_verify_poll_count = 5
"""

    def __init__(self, ws, domains, lmtp_socket, auth_socket, mailboxes="", aliases="",
                 name="postfix-stack"):
        # LmtpPostfix's per-domain routes are not used: _write_config writes the seeds' main.cf.
        super().__init__(ws, {}, name=name)
        self.cf = dict(domains=domains, mailboxes=mailboxes, aliases=aliases,
                       lmtp=lmtp_socket, auth=auth_socket)
        self.sasl = {}  # label -> AUTH offered

    def add_service(self, label, sasl=False, verify=False):
        port = self.add_smtpd(label, verify=verify)
        self.sasl[label] = sasl
        return port

    def _write_config(self):
        for sub in ("spool", "data"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
            os.chmod(os.path.join(self.dir, sub), 0o755)
        shutil.chown(os.path.join(self.dir, "data"), "postfix", "postfix")
        main_cf = sp.write_file(os.path.join(self.conf_dir, "main.cf"),
                                self.MAIN_CF.format(dir=self.dir, name=self.name, **self.cf))
        lines = []
        for label, (port, verify) in self.services.items():
            lines.append(f"127.0.0.1:{port} inet n - n - - smtpd\n"
                         f"  -o syslog_name={self.name}/{label}\n"
                         f"  -o smtpd_sasl_auth_enable={'yes' if self.sasl[label] else 'no'}\n")
            if verify:
                lines.append("  -o smtpd_recipient_restrictions=reject_unverified_recipient\n")
        master_cf = sp.write_file(os.path.join(self.conf_dir, "master.cf"),
                                  "".join(lines) + self.SERVICES + self.EXTRA_SERVICES)
        sp.backdate(main_cf)
        sp.backdate(master_cf)


class ImapDovecot(lp.DovecotLmtp):
    """`dovecot -F` with protocols = imap on 127.0.0.1:<port>: the setup's passdb (sql or
    passwd-file), static userdb and mail settings, exactly what lmtpd was given."""

    def __init__(self, ws, name, setup):
        if not os.path.exists("/usr/lib/dovecot/imap"):
            raise RuntimeError("peer missing: /usr/lib/dovecot/imap; install the Debian "
                               "package 'dovecot-imapd'")
        super().__init__(ws, name, setup, protocols="imap", disable_plaintext_auth="no",
                         auth_mechanisms="plain login", auth_verbose="yes",
                         auth_failure_delay="0")
        self.port = free_port()

    def config_text(self):
        return super().config_text() + (
            "service imap-login {\n  inet_listener imap {\n"
            f"    address = 127.0.0.1\n    port = {self.port}\n  }}\n"
            "  inet_listener imaps {\n    port = 0\n  }\n}\n"
            # No auth penalty after the wrong-password checks (see README.md, pitfalls).
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n")

    def start(self, timeout=20):
        sp.write_file(self.conf, self.config_text())
        self.proc = start_daemon([self.binary, "-F", "-c", self.conf], self.log_path,
                                    start_new_session=True)
        self.wait_listening([("127.0.0.1", self.port)], timeout, f"IMAP port {self.port}")
        return self

    def fetch_inbox(self, user, password, timeout=20):
        """IMAP LOGIN, SELECT INBOX, FETCH 1:* (BODY[]) -> [message bytes]. Raises
        imaplib.IMAP4.error when LOGIN fails."""
        with imaplib.IMAP4("127.0.0.1", self.port, timeout=timeout) as imap:
            imap.login(user, password)
            typ, data = imap.select("INBOX")
            if typ != "OK":
                raise AssertionError(f"IMAP SELECT INBOX as {user}: {typ} {data}")
            if int(data[0]) == 0:
                imap.logout()
                return []
            typ, data = imap.fetch("1:*", "(BODY[])")
            if typ != "OK":
                raise AssertionError(f"IMAP FETCH 1:* (BODY[]) as {user}: {typ} {data}")
            imap.logout()
            return [part[1] for part in data if isinstance(part, tuple)]

    def login_fails(self, user, password, timeout=20):
        with imaplib.IMAP4("127.0.0.1", self.port, timeout=timeout) as imap:
            try:
                imap.login(user, password)
            except imaplib.IMAP4.error:
                return True
            imap.logout()
            return False


def subject_of(message):
    m = re.search(rb"^Subject: (.*)$", message, re.M)
    return m.group(1).decode(errors="replace").strip() if m else None


QUEUED_RE = re.compile(r"queued as ([0-9A-Za-z]+)")


def swaks(port, to, token, user=None, password=None, mech=None, sender="sender@remote.invalid",
          timeout=40):
    """swaks to 127.0.0.1:port (AUTH mech as user when mech is given) sending one message
    with Message-ID/Subject carrying token. Returns (SwaksResult, queue id or None)."""
    argv = [require_program("swaks", "swaks"), "--server", "127.0.0.1", "--port", str(port),
            "--helo", "client.test.invalid", "--timeout", "20", "--from", sender, "--to", to,
            "--h-Subject", f"postern stack test {token}",
            "--header", f"Message-ID: <{lm.message_id(token)}>",
            "--body", f"body of {token}\n" + lm.trailer(token).decode()]
    if mech:
        argv += ["--auth", mech, "--auth-user", user, "--auth-password", password]
    rc, out, err = run(argv, timeout=timeout)
    result = sp.SwaksResult(rc, out + err)
    m = QUEUED_RE.search(result.transcript)
    return result, (m.group(1) if m else None)


def rcpt_reply(port, rcpt, sender="probe@remote.invalid", timeout=30):
    """MAIL + RCPT + RSET through smtpd: the RCPT reply (code, text)."""
    return lm.smtp_rcpt_probe(port, rcpt, sender=sender, timeout=timeout)

