#!/usr/bin/env python3
"""test_stack_e2e.py - the whole stack end to end (ctest integration.stack.e2e): a real
Postfix using lookupd (socketmap virtual maps), authd (smtpd_sasl_type = dovecot) and
lmtpd (virtual_transport = lmtp:unix:), with Dovecot IMAP reading the mail back.

Seed001  MariaDB (schema A + seed [001] data + all@example.com -> email1, email2);
         lookupd maps domains / mailboxes (address) / aliases (alias) from the seed's
         mysql-virtual-*.cf; authd passdb sql (seed [001]'s dovecot-sql.conf.ext, SHA512-CRYPT);
         lmtpd user_check = sql, userdb static uid=nobody gid=nogroup home=ROOT/%d/%n,
         mail_location = maildir:~/Maildir; Dovecot IMAP with the same passdb/userdb.
Seed004  no SQL: virtual_mailbox_domains = example.net, no virtual_mailbox_maps; authd and
         lmtpd and Dovecot IMAP read one passwd-file (scheme=SHA512-CRYPT, the seed's hash
         for 123456); mail_home = ROOT/%d/%n, mail_location = maildir:~/mail.
Each: AUTH PLAIN/LOGIN on the submission smtpd relays (to discard:), unauthenticated relay
gets 554 5.7.1 Relay access denied, mail for users / aliases / a list / user+tag lands in
the right Maildirs and IMAP FETCH returns it, unknown users are refused (seed001: 550 5.1.1
at SMTP RCPT from the lookupd map; seed004: lmtpd's 550 5.1.1 bounce, and at RCPT with
reject_unverified_recipient). Needs root (Postfix's master, chown to nobody). Run through
ctest, or:
  POSTERN_LOOKUPD=build/q3/lookupd/lookupd POSTERN_AUTHD=build/q3/authd/authd \
  POSTERN_LMTPD=build/q3/lmtpd/lmtpd python3 tests/integration/test_stack_e2e.py
"""

import os
import re
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import lmtp_mail as lm
import lmtp_peers as lp
import peers
import sasl_peers as sp
import stack_peers as st

SENDER = "sender@remote.invalid"
OUTSIDE = "someone@remote.invalid"
# seed [004]'s own hash for 123456 (prefix stripped, as in the seed); other@ is {PLAIN}.
USERS_004 = ("mailuser@example.net:$6$g6adDoglZXU5CJq1$AMojgOJQPtdEEGt1MW86YZUDMlf1Wi6QLz6RH."
             "7BHJpNzjQmYpRmP./IN0eRP8.eLAmEcnoRtzrS1jonKQT9k/\n"
             "other@example.net:{PLAIN}other-pw-1\n")
RELAY_DENIED = re.compile(r"^5\.7\.1 <someone@remote\.invalid>: Relay access denied$")


class StackBase(unittest.TestCase):
    tag = "stack"
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        for binary in (peers.lookupd_binary, sp.authd_binary, lp.lmtpd_binary):
            binary()  # a missing binary fails the class at once
        if os.geteuid() != 0:
            raise RuntimeError("integration.stack.e2e needs root (Postfix's master, chown)")
        cls.ws = peers.Workspace(cls.tag)
        cls.addClassCleanup(cls.ws.remove)
        cls.daemons = []
        cls.setup_peers()

    @classmethod
    def started(cls, daemon):
        """Registers daemon.stop (LIFO: Postfix, started last, stops first) and starts it."""
        cls.addClassCleanup(daemon.stop)
        cls.daemons.append(daemon)
        daemon.start()
        return daemon

    @classmethod
    def start_postfix(cls, **cf):
        cls.pf = st.StackPostfix(cls.ws, lmtp_socket=cls.lmtpd.socket,
                                 auth_socket=cls.authd.socket, name=f"postfix-{cls.tag}", **cf)
        cls.submission = cls.pf.add_service("submission", sasl=True)
        cls.mx = cls.pf.add_service("mx")
        cls.verify = cls.pf.add_service("verify", verify=True)
        cls.started(cls.pf)

    # ------------------------------------------------------------ helpers

    def diag(self, lines=15):
        return "\n" + "\n".join(d.log_tail(lines) for d in self.daemons)

    def ok(self, cond, msg):
        if not cond:
            self.fail(f"{msg}{self.diag()}")

    def token(self, name):
        return f"{self.tag}-{name}"

    def final(self, queue_id, rcpts, timeout=30):
        try:
            return self.pf.wait_final(queue_id, rcpts, timeout=timeout)
        except AssertionError as e:
            self.fail(f"{e}{self.diag()}")

    def assert_relayed(self, mech, user, password):
        token = self.token(f"relay-{mech.lower()}")
        r, qid = st.swaks(self.submission, OUTSIDE, token, user, password, mech)
        self.ok(r.codes.get("AUTH") == 235 and r.codes.get("RCPT") == 250 and
                r.codes.get("DATA") == 250 and qid,
                f"AUTH {mech} as {user} then relay to {OUTSIDE}: {r}\n{r.transcript[-1500:]}")
        status, dsn, text = self.final(qid, [OUTSIDE])[OUTSIDE]
        self.ok(status == "sent" and text == "outbound mail is disabled in tests",
                f"relayed {qid}: status={status} dsn={dsn} ({text}); want sent via discard:")

    def assert_auth_refused(self, mech, user, password):
        r, qid = st.swaks(self.submission, OUTSIDE, self.token("badpw"), user, password, mech)
        self.ok(r.codes.get("AUTH") == 535 and qid is None,
                f"AUTH {mech} as {user} with a wrong password: {r}; want 535 and no mail")

    def assert_relay_denied(self):
        for label, port in (("submission", self.submission), ("mx", self.mx)):
            code, text = st.rcpt_reply(port, OUTSIDE)
            self.ok(code == 554 and RELAY_DENIED.match(text),
                    f"{label}: unauthenticated RCPT TO:<{OUTSIDE}> got {code} {text!r}; "
                    "want 554 5.7.1 <...>: Relay access denied")

    def send(self, token, rcpt):
        """One message through the mx smtpd (no AUTH); returns its queue id."""
        msg = lm.make_message(token, SENDER, rcpt)
        sent = lm.smtp_send(self.mx, SENDER, [rcpt], msg)
        self.ok(sent.queue_id, f"mx refused {rcpt}: {sent}")
        return sent.queue_id

    def assert_lmtp_sent(self, queue_id, final_rcpts):
        statuses = self.final(queue_id, final_rcpts)
        for rcpt, (status, dsn, text) in statuses.items():
            self.ok(status == "sent" and text.startswith("250 2.0.0 "),
                    f"{queue_id} to {rcpt}: status={status} dsn={dsn} ({text}); want sent by lmtpd")

    def assert_in_maildir(self, address, tokens, absent=()):
        """Each token in exactly one file in address's maildir (new/ or cur/), polled."""
        maildir = self.setup.maildir(address)
        for token in tokens:
            try:
                lm.wait_token(maildir, token, timeout=20)
            except AssertionError as e:
                self.fail(f"{address}: {e}{self.diag()}")
            found = lm.find_token(maildir, token)
            self.ok(len(found) == 1, f"{address}: {len(found)} files carry {token}, want 1")
        for token in absent:
            self.ok(not lm.find_token(maildir, token), f"{address}: {token} delivered here too")

    def assert_imap(self, user, password, tokens, absent=()):
        """IMAP LOGIN/SELECT INBOX/FETCH 1:* (BODY[]): each token's message is there, once."""
        try:
            messages = self.imap.fetch_inbox(user, password)
        except Exception as e:  # noqa: BLE001 - imaplib errors are the finding
            self.fail(f"IMAP as {user}: {type(e).__name__}: {e}{self.diag()}")
        subjects = [st.subject_of(m) or "" for m in messages]
        for token in tokens:
            hits = [m for m, s in zip(messages, subjects) if s.endswith(" " + token)]
            self.ok(len(hits) == 1 and lm.trailer(token) in hits[0].replace(b"\r\n", b"\n"),
                    f"IMAP {user}: {len(hits)} messages with Subject ending {token} "
                    f"(want 1, ending in its trailer); subjects: {subjects}")
        for token in absent:
            self.ok(not any(s.endswith(" " + token) for s in subjects),
                    f"IMAP {user}: {token} is in this INBOX too; subjects: {subjects}")
        self.ok(self.imap.login_fails(user, password + "x"),
                f"IMAP LOGIN as {user} with a wrong password succeeded")


class Seed001(StackBase):
    """Seed [001]: everything from MariaDB."""
    tag = "e2e001"

    @classmethod
    def setup_peers(cls):
        cls.db = peers.class_mariadb(cls)
        conf = cls.ws.mkdir("conf")
        cls.lookupd = peers.Lookupd(cls.ws)
        for name, template, kind in (("domains", "virtual-mailbox-domains", None),
                                     ("mailboxes", "virtual-mailbox-maps", "address"),
                                     ("aliases", "virtual-alias-maps", "alias")):
            cf = peers.render(f"cf/mysql-{template}.cf", os.path.join(conf, f"mysql-{template}.cf"),
                              HOSTS=cls.db.hosts_inet, DBNAME="mailserver")
            cls.lookupd.add_map(name, [f"mysql:{cf}"], kind=kind)
        cls.started(cls.lookupd)
        sql_conf = sp.dovecot_sql_conf(os.path.join(conf, "dovecot-sql.conf.ext"), cls.db.port)
        cls.authd = cls.started(sp.Authd(cls.ws, "authd", f"sql {sql_conf}"))
        root = lp.mail_root(cls.ws, "vhosts")
        cls.setup = lp.MailSetup("seed001", root, ("sql", sql_conf),
                                 f"uid={lp.MAIL_USER} gid={lp.MAIL_GROUP} home={root}/%d/%n",
                                 "maildir:~/Maildir", maildir_suffix="/Maildir")
        cls.lmtpd = cls.started(lp.Lmtpd(cls.ws, "lmtpd", cls.setup))
        cls.imap = cls.started(st.ImapDovecot(cls.ws, "imap", cls.setup))
        cls.start_postfix(domains=cls.lookupd.socketmap_unix("domains"),
                          mailboxes=cls.lookupd.socketmap_unix("mailboxes"),
                          aliases=cls.lookupd.socketmap_unix("aliases"))

    def test_1_submission_auth_relays(self):
        self.assert_relayed("PLAIN", "email1@example.com", "firstpassword")
        self.assert_relayed("LOGIN", "email2@example.com", "secondpassword")
        self.assert_auth_refused("PLAIN", "email1@example.com", "secondpassword")

    def test_2_unauthenticated_relay_refused(self):
        self.assert_relay_denied()

    def test_3_delivery_and_imap(self):
        t = {k: self.token(k) for k in ("user", "alias", "all", "tag", "submitted")}
        e1, e2 = "email1@example.com", "email2@example.com"
        self.assert_lmtp_sent(self.send(t["user"], e1), [e1])
        self.assert_lmtp_sent(self.send(t["alias"], "alias@example.com"), [e1])
        self.assert_lmtp_sent(self.send(t["all"], "all@example.com"), [e1, e2])
        self.assert_lmtp_sent(self.send(t["tag"], "email1+tag@example.com"),
                              ["email1+tag@example.com"])
        # Authenticated submission to a local user: authd, lookupd and lmtpd in one path.
        r, qid = st.swaks(self.submission, e1, t["submitted"], e2, "secondpassword", "LOGIN")
        self.ok(r.codes.get("AUTH") == 235 and qid, f"submission as {e2} to {e1}: {r}")
        self.assert_lmtp_sent(qid, [e1])
        self.assert_in_maildir(e1, t.values())
        self.assert_in_maildir(e2, [t["all"]], absent=[t["user"], t["alias"], t["tag"]])
        self.assert_imap(e1, "firstpassword", t.values())
        self.assert_imap(e2, "secondpassword", [t["all"]], absent=[t["user"], t["alias"]])

    def test_4_unknown_user_rejected_at_rcpt(self):
        for rcpt in ("nosuchuser@example.com", "nosuchuser+tag@example.com"):
            code, text = st.rcpt_reply(self.mx, rcpt)
            want = (f"5.1.1 <{rcpt}>: Recipient address rejected: "
                    "User unknown in virtual mailbox table")
            self.ok(code == 550 and text == want, f"RCPT TO:<{rcpt}> got {code} {text!r}; "
                                                  f"want 550 {want}")
        self.ok(not os.path.exists(self.setup.maildir("nosuchuser@example.com")),
                "a maildir was made for nosuchuser@example.com")


class Seed004(StackBase):
    """Seed [004]: no SQL; one passwd-file for authd, lmtpd and Dovecot."""
    tag = "e2e004"

    @classmethod
    def setup_peers(cls):
        users = sp.write_file(os.path.join(cls.ws.mkdir("conf"), "users"), USERS_004)
        cls.authd = cls.started(sp.Authd(cls.ws, "authd",
                                         f"passwd-file scheme=SHA512-CRYPT {users}"))
        cls.setup = lp.seed004_setup(lp.mail_root(cls.ws, "vmail"), users)
        cls.lmtpd = cls.started(lp.Lmtpd(cls.ws, "lmtpd", cls.setup))
        cls.imap = cls.started(st.ImapDovecot(cls.ws, "imap", cls.setup))
        cls.start_postfix(domains="example.net")

    def test_1_submission_auth_relays(self):
        self.assert_relayed("PLAIN", "mailuser@example.net", "123456")
        self.assert_relayed("LOGIN", "mailuser@example.net", "123456")
        self.assert_auth_refused("LOGIN", "mailuser@example.net", "654321")

    def test_2_unauthenticated_relay_refused(self):
        self.assert_relay_denied()

    def test_3_delivery_and_imap(self):
        t = {k: self.token(k) for k in ("user", "tag", "submitted")}
        me, other = "mailuser@example.net", "other@example.net"
        self.assert_lmtp_sent(self.send(t["user"], me), [me])
        self.assert_lmtp_sent(self.send(t["tag"], "mailuser+tag@example.net"),
                              ["mailuser+tag@example.net"])
        r, qid = st.swaks(self.submission, me, t["submitted"], other, "other-pw-1", "PLAIN")
        self.ok(r.codes.get("AUTH") == 235 and qid, f"submission as {other} to {me}: {r}")
        self.assert_lmtp_sent(qid, [me])
        self.assert_in_maildir(me, t.values())
        self.assert_imap(me, "123456", t.values())
        self.assert_imap(other, "other-pw-1", [], absent=t.values())

    def test_4_unknown_user_bounced_by_lmtpd(self):
        rcpt = "ghost@example.net"
        qid = self.send(self.token("ghost"), rcpt)  # no virtual_mailbox_maps: smtpd takes it
        status, dsn, text = self.final(qid, [rcpt])[rcpt]
        self.ok(status == "bounced" and dsn == "5.1.1" and
                re.search(rf"said: 550 5\.1\.1 <{re.escape(rcpt)}> .*\(in reply to RCPT TO "
                          r"command\)$", text),
                f"{rcpt}: status={status} dsn={dsn} ({text}); want bounced by lmtpd with "
                "550 5.1.1 at RCPT")
        self.ok(not os.path.exists(self.setup.maildir(rcpt)), f"a maildir was made for {rcpt}")

    def test_5_unknown_user_rejected_at_rcpt_by_verify(self):
        code, text = st.rcpt_reply(self.verify, "mailuser@example.net")
        self.ok(code == 250, f"verify: RCPT TO:<mailuser@example.net> got {code} {text!r}")
        rcpt = "ghost2@example.net"
        code, text = st.rcpt_reply(self.verify, rcpt)
        self.ok(code == 550 and text.startswith(f"5.1.1 <{rcpt}>: Recipient address rejected: "
                                                "undeliverable address:")
                and "550 5.1.1" in text,
                f"verify: RCPT TO:<{rcpt}> got {code} {text!r}; want 550 5.1.1 undeliverable "
                "(lmtpd's 550 5.1.1 to the probe)")


if __name__ == "__main__":
    peers.main()
