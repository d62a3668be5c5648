#!/usr/bin/env python3
"""test_lmtpd_protocol.py - lmtpd's LMTP as Postfix's client meets it, by hand (a raw
client on the unix socket, no Postfix): greeting and LHLO capabilities, pipelining,
several transactions per connection (Postfix's connection cache: RSET then MAIL), DATA
without a valid recipient, unknown commands, an overlong line, a message over
mail_max_size, VRFY, bare-LF line endings, dot-stuffing, the null sender, a full quota
(552 5.2.2) and `lmtpd -n`.

Peers: lmtpd (seed [004] layout: passwd-file user_check, mail_home + maildir:~/mail,
mail_max_size = 1M); a second one with quota_rule = *:storage=20K (Dovecot: the quota
plugin, Maildir++ backend); Dovecot (protocols = none) for doveadm. Reply texts are Dovecot's
(protocols.md §3.3); with POSTERN_LMTP_TARGET=dovecot the same cases run against Dovecot's
LMTP, except the lmtpd-only ones (postern greeting, SIZE and SMTPUTF8 in LHLO,
mail_max_size: Dovecot 2.3 has none).
  POSTERN_LMTPD=build/l4/lmtpd/lmtpd python3 tests/integration/test_lmtpd_protocol.py
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import lmtp_mail as lm
import lmtp_peers as lp
import lmtpd_cases as lc
import peers
import sasl_peers as sp

USERS = "alice@example.com:{PLAIN}alice-pw-1\nbob@example.com:{PLAIN}bob-pw-1\n"
SENDER = "sender@remote.invalid"
MAX_SIZE = 1024 * 1024
SAVED = re.compile(r"^2\.0\.0 <(?P<a>[^>]+)> \S+ Saved$")


class LmtpdProtocol(lc.LmtpTestBase):
    tag = "lmtpd-protocol"

    @classmethod
    def setup_peers(cls):
        users = sp.write_file(cls.ws.file("users.db"), USERS)
        cls.setup = lp.seed004_setup(lp.mail_root(cls.ws, "vmail"), users)
        cls.agent = cls.start_agent("lmtp", cls.setup, mail_max_size=str(MAX_SIZE))
        cls.qsetup = lp.seed004_setup(lp.mail_root(cls.ws, "vmail-quota"), users)
        cls.quota = cls.start_agent(
            "lmtp-quota", cls.qsetup, quota_rule="*:storage=20K",
            dovecot_mail_plugins="quota",
            dovecot_plugin={"quota": "maildir:User quota", "quota_rule": "*:storage=20K"})
        cls.reader = lp.reader(cls.ws, "reader", cls.setup)
        cls.addClassCleanup(cls.reader.stop)

    def client(self, eol=b"\r\n", lhlo=True, agent=None):
        c = lm.LmtpClient((agent or self.agent).socket, eol=eol)
        self.addCleanup(c.close)
        self.greeting = c.read_reply()
        if lhlo:
            self.lhlo = c.cmd("LHLO mx.test.invalid")
            self.expect(c, self.lhlo, 250)
        return c

    def expect(self, c, reply, code, text=None):
        """reply must have `code` and, if given, last line == text (or match a regex)."""
        ok = reply is not None and reply[0] == code
        if ok and text is not None:
            last = reply[1][-1]
            ok = bool(text.match(last)) if isinstance(text, re.Pattern) else last == text
        if not ok:
            self.fail(f"got {reply}, want {code} {text.pattern if isinstance(text, re.Pattern) else text}"
                      f"\n--- transcript ---\n{c.dump()}\n{self.context(20)}")
        return reply

    def saved(self, c, reply, rcpt):
        self.expect(c, reply, 250, SAVED)
        self.assertEqual(SAVED.match(reply[1][-1]).group("a"), rcpt)

    def transaction(self, c, rcpt, token, sender=SENDER, body=b""):
        msg = lm.make_message(token, sender or "nobody", rcpt, body=body)
        self.expect(c, c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0 OK")
        self.expect(c, c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5 OK")
        self.expect(c, c.cmd("DATA"), 354)
        c.send_data(msg)
        self.saved(c, c.read_reply(), rcpt)
        return msg

    # ------------------------------------------------------------ cases

    def test_01_greeting_and_lhlo(self):
        c = self.client()
        self.expect(c, self.greeting, 220)
        first, caps = self.lhlo[1][0], {l.upper() for l in self.lhlo[1][1:]}
        self.assertEqual(first.split()[0], lp.HOSTNAME)
        want = {"PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"}
        if self.lmtpd:
            self.assertEqual(self.greeting[1], [f"{lp.HOSTNAME} postern lmtpd ready"])
            want |= {f"SIZE {MAX_SIZE}", "SMTPUTF8"}
        self.assertOk(want <= caps, f"LHLO capabilities {sorted(caps)} lack {sorted(want - caps)}")
        for absent in ("STARTTLS", "DSN"):
            self.assertNotIn(absent, caps)
        self.expect(c, c.cmd("QUIT"), 221, "2.0.0 Bye")
        self.assertIsNone(c.read_reply(), "connection still open after QUIT")

    def test_02_pipelining(self):
        """MAIL, three RCPTs (one unknown) and DATA in one write, as Postfix sends them."""
        c = self.client()
        c.send(f"MAIL FROM:<{SENDER}> BODY=8BITMIME\r\nRCPT TO:<alice@example.com>\r\n"
               "RCPT TO:<ghost@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        self.expect(c, c.read_reply(), 250, "2.1.0 OK")
        self.expect(c, c.read_reply(), 250, "2.1.5 OK")
        self.expect(c, c.read_reply(), 550,
                    "5.1.1 <ghost@example.com> User doesn't exist: ghost@example.com")
        self.expect(c, c.read_reply(), 250, "2.1.5 OK")
        self.expect(c, c.read_reply(), 354, "OK" if self.lmtpd else None)
        body = b".leading dot\n..two leading dots\n.\n8-bit: \xc3\xa9\xff\n"
        msg = lm.make_message("pipe-1", SENDER, "alice@example.com", body=body)
        c.send_data(msg)
        self.saved(c, c.read_reply(), "alice@example.com")
        self.saved(c, c.read_reply(), "bob@example.com")
        self.expect(c, c.cmd("QUIT"), 221, "2.0.0 Bye")
        for rcpt in ("alice@example.com", "bob@example.com"):
            self.check_delivered(self.setup, rcpt, "pipe-1", SENDER, msg, single=False,
                                 reader=self.reader)

    def test_03_rset_and_second_transaction(self):
        """Postfix's cached connection: a transaction, RSET, another; an abandoned one;
        the null sender."""
        c = self.client()
        m1 = self.transaction(c, "alice@example.com", "reuse-1")
        self.expect(c, c.cmd("RSET"), 250, "2.0.0 OK")
        m2 = self.transaction(c, "bob@example.com", "reuse-2")
        self.expect(c, c.cmd("MAIL FROM:<a@b.invalid>"), 250)
        self.expect(c, c.cmd("RCPT TO:<alice@example.com>"), 250)
        self.expect(c, c.cmd("RSET"), 250, "2.0.0 OK")
        self.expect(c, c.cmd("RSET"), 250, "2.0.0 OK")
        m3 = self.transaction(c, "bob@example.com", "reuse-3", sender="")
        self.expect(c, c.cmd("NOOP"), 250, "2.0.0 OK")
        self.expect(c, c.cmd("QUIT"), 221, "2.0.0 Bye")
        self.check_delivered(self.setup, "alice@example.com", "reuse-1", SENDER, m1)
        self.check_delivered(self.setup, "bob@example.com", "reuse-2", SENDER, m2)
        self.check_delivered(self.setup, "bob@example.com", "reuse-3", "", m3)

    def test_04_data_without_valid_recipient(self):
        c = self.client()
        self.expect(c, c.cmd("DATA"), 503)  # no MAIL
        self.expect(c, c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        self.expect(c, c.cmd("MAIL FROM:<again@remote.invalid>"), 503)
        self.expect(c, c.cmd("RCPT TO:<ghost@example.com>"), 550)
        self.expect(c, c.cmd("DATA"), 503, "5.5.0 No valid recipients")
        self.expect(c, c.cmd("NOOP"), 250, "2.0.0 OK")
        self.expect(c, c.cmd("RSET"), 250, "2.0.0 OK")
        self.transaction(c, "alice@example.com", "after-503")

    def test_05_unknown_commands(self):
        c = self.client()
        for line in ("FOOBAR", "XYZZY something", "HELO client.invalid", "EHLO client.invalid"):
            self.expect(c, c.cmd(line), 500, "5.5.1 Unknown command")
        self.expect(c, c.cmd("NOOP"), 250, "2.0.0 OK")

    def test_06_overlong_line(self):
        c = self.client()
        try:
            reply = c.cmd("NOOP " + "x" * 100000)
        except (BrokenPipeError, ConnectionResetError):
            reply = c.read_reply()
        self.assertOk(reply is not None and 500 <= reply[0] < 600,
                      f"overlong line: got {reply}, want a 5xx reply (Dovecot: 500 5.5.2 Line "
                      f"too long)\n{c.dump()}")
        # The daemon is still there for everyone else.
        d = self.client()
        self.transaction(d, "alice@example.com", "after-long-line")

    def test_07_over_mail_max_size(self):
        if not self.lmtpd:
            self.skipTest("Dovecot 2.3 has no mail_max_size")
        c = self.client()
        self.expect(c, c.cmd(f"MAIL FROM:<{SENDER}> SIZE={MAX_SIZE + 1}"), 552)
        self.expect(c, c.cmd("RSET"), 250)
        # No SIZE= given: the excess is found while reading; one 552 per recipient.
        maildir = self.setup.maildir("bob@example.com")
        before = len(lm.maildir_files(maildir))
        self.expect(c, c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        self.expect(c, c.cmd("RCPT TO:<bob@example.com>"), 250)
        self.expect(c, c.cmd("RCPT TO:<alice@example.com>"), 250)
        self.expect(c, c.cmd("DATA"), 354)
        c.send_data(lm.make_message("too-big", SENDER, "bob@example.com", size=MAX_SIZE + 4096))
        for rcpt in ("bob@example.com", "alice@example.com"):
            reply = self.expect(c, c.read_reply(), 552)
            self.assertIn(f"<{rcpt}>", reply[1][-1])
        self.expect(c, c.cmd("RSET"), 250, "2.0.0 OK")
        self.transaction(c, "bob@example.com", "after-too-big")
        self.assertEqual(len(lm.maildir_files(maildir)), before + 1)
        self.assertFalse(lm.find_token(maildir, "too-big"))
        self.assertEqual(lm.tmp_files(maildir), [])

    def test_08_vrfy_noop_quit(self):
        c = self.client()
        self.expect(c, c.cmd("VRFY alice"), 252, "2.3.3 Try RCPT instead")
        self.expect(c, c.cmd("NOOP"), 250, "2.0.0 OK")
        self.expect(c, c.cmd("QUIT"), 221, "2.0.0 Bye")

    def test_09_bare_lf(self):
        c = self.client(eol=b"\n")
        msg = self.transaction(c, "alice@example.com", "bare-lf-1",
                               body=b"line one\n.dotted\nline three\n")
        self.expect(c, c.cmd("QUIT"), 221)
        self.check_delivered(self.setup, "alice@example.com", "bare-lf-1", SENDER, msg,
                             reader=self.reader)

    def test_10_many_connections(self):
        """20 sessions open at once, each delivering, then all closed."""
        clients = [self.client() for _ in range(20)]
        for i, c in enumerate(clients):
            c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        msgs = {}
        for i, c in enumerate(clients):
            for code in (250, 250, 354):
                self.expect(c, c.read_reply(), code)
            msgs[i] = lm.make_message(f"conc-{i}", SENDER, "bob@example.com")
            c.send_data(msgs[i])
        for i, c in enumerate(clients):
            self.saved(c, c.read_reply(), "bob@example.com")
        for i in range(20):
            self.check_delivered(self.setup, "bob@example.com", f"conc-{i}", SENDER, msgs[i])

    def test_11_over_quota(self):
        """20K quota, 8K messages: two fit, the third gets 552 5.2.2 and nothing is
        written; the session goes on."""
        maildir = self.qsetup.maildir("alice@example.com")
        c = self.client(agent=self.quota)
        for i in range(3):
            msg = lm.make_message(f"quota-{i}", SENDER, "alice@example.com", size=8 * 1024)
            self.expect(c, c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
            reply = c.cmd("RCPT TO:<alice@example.com>")
            if i == 2 and reply[0] == 552:  # a RCPT-time quota check is allowed too
                self.expect(c, reply, 552, "5.2.2 <alice@example.com> Quota exceeded "
                                           "(mailbox for user is full)")
                self.expect(c, c.cmd("RSET"), 250)
                break
            self.expect(c, reply, 250)
            self.expect(c, c.cmd("DATA"), 354)
            c.send_data(msg)
            if i < 2:
                self.saved(c, c.read_reply(), "alice@example.com")
            else:
                self.expect(c, c.read_reply(), 552, "5.2.2 <alice@example.com> Quota exceeded "
                                                    "(mailbox for user is full)")
        self.expect(c, c.cmd("NOOP"), 250, "2.0.0 OK")
        self.assertOk(len(lm.maildir_files(maildir)) == 2 and not lm.find_token(maildir, "quota-2"),
                      f"over quota: {lm.maildir_files(maildir)}")
        self.assertEqual(lm.tmp_files(maildir), [])
        self.assertOk(os.path.exists(os.path.join(maildir, "maildirsize")),
                      "no maildirsize (Maildir++ quota file) in the maildir")

    def test_12_config_check(self):
        if not self.lmtpd:
            self.skipTest("lmtpd -n only")
        rc, out, err = self.agent.check_config()
        self.assertOk(rc == 0, f"lmtpd -c {self.agent.conf} -n: rc {rc}\n{out}{err}")


if __name__ == "__main__":
    peers.main()
