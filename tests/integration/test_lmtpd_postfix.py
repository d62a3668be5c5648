#!/usr/bin/env python3
"""test_lmtpd_postfix.py - lmtpd as Postfix's virtual_transport (lmtp:unix:/abs/path), with
the seeds' setups, and Dovecot reading what it wrote (seed-requirements §3.4).

Peers: one mariadbd (schema A, seed [001], plus users rcpt03..rcpt18@example.com); two
delivery agents:
  seed001  example.com: user_check = sql (dovecot-sql.conf.ext exactly as seed [001]),
           static userdb uid=nobody gid=nogroup, mail_location = maildir:ROOT/%d/%n
  seed004  example.net: user_check = passwd-file (seed [004]'s format), mail_uid/gid,
           mail_home = ROOT/%d/%n, mail_location = maildir:~/mail,
           lmtp_save_to_detail_mailbox = yes
one Postfix (smtpd `mx`, and `verify` with reject_unverified_recipient) routing
example.com and example.net to them; Dovecot (protocols = none) per setup for doveadm.
Mail goes in through smtpd with smtplib. Run through ctest, or:
  POSTERN_LMTPD=build/l4/lmtpd/lmtpd python3 tests/integration/test_lmtpd_postfix.py
  POSTERN_LMTP_TARGET=dovecot python3 tests/integration/test_lmtpd_postfix.py   # reference
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import lmtp_mail as lm
import lmtp_peers as lp
import lmtpd_cases as lc
import peers
import sasl_peers as sp

SENDER = "sender@remote.invalid"
# The seed's own hash for 123456 (seed [004]); other-pw-1 from openssl passwd -6.
USERS_004 = ("mailuser@example.net:$6$g6adDoglZXU5CJq1$AMojgOJQPtdEEGt1MW86YZUDMlf1Wi6QLz6RH."
             "7BHJpNzjQmYpRmP./IN0eRP8.eLAmEcnoRtzrS1jonKQT9k/\n"
             "other@example.net:{PLAIN}other-pw-1\n"
             "third@example.net:{PLAIN}third-pw-1\n")
KNOWN = ["email1@example.com", "email2@example.com"] + [f"rcpt{i:02d}@example.com"
                                                        for i in range(3, 19)]
UNKNOWN_REPLY = re.compile(r"550 5\.1\.1 <(?P<a>[^>]+)> User doesn't exist: (?P<u>\S+) "
                           r"\(in reply to RCPT TO command\)")
SAVED_REPLY = re.compile(r"^250 2\.0\.0 <(?P<a>[^>]+)> \S+ Saved$")


class LmtpdPostfix(lc.LmtpTestBase):
    tag = "lmtpd-postfix"

    @classmethod
    def setup_peers(cls):
        cls.db = peers.class_mariadb(cls)
        rows = ",\n".join(f"(1, '$6$x$notahash', '{a}')" for a in KNOWN[2:])
        cls.db.sql(f"INSERT INTO virtual_users (domain_id, password, email) VALUES {rows};",
                   db="mailserver")
        conf = cls.ws.mkdir("conf")
        sql_conf = sp.dovecot_sql_conf(os.path.join(conf, "dovecot-sql.conf.ext"), cls.db.port)
        users = sp.write_file(os.path.join(conf, "users.db"), USERS_004)
        cls.s001 = lp.seed001_setup(lp.mail_root(cls.ws, "vhosts"), sql_conf)
        cls.s004 = lp.seed004_setup(lp.mail_root(cls.ws, "vmail"), users, save_to_detail=True)
        # An existing folder "tag" for mailuser (lmtp_save_to_detail_mailbox = yes).
        lp.make_folder(cls.s004, "mailuser@example.net", "tag")
        cls.a001 = cls.start_agent("lmtp-001", cls.s001)
        cls.a004 = cls.start_agent("lmtp-004", cls.s004)
        cls.r001 = lp.reader(cls.ws, "reader-001", cls.s001)
        cls.addClassCleanup(cls.r001.stop)
        cls.r004 = lp.reader(cls.ws, "reader-004", cls.s004)
        cls.addClassCleanup(cls.r004.stop)
        cls.start_postfix({"example.com": cls.a001.socket, "example.net": cls.a004.socket},
                          verify=True)

    def send(self, token, rcpts, size=0, body=b"", mail_options=(), extra_headers=b""):
        msg = lm.make_message(token, SENDER, rcpts[0], body=body, size=size,
                              extra_headers=extra_headers)
        sent = lm.smtp_send(self.mx, SENDER, rcpts, msg, mail_options=mail_options)
        self.assertOk(sent.queue_id, f"smtpd refused every recipient: {sent}")
        return msg, sent

    def assert_sent(self, status, rcpt):
        st, dsn, text = status
        self.assertOk(st == "sent" and SAVED_REPLY.match(text) and
                      SAVED_REPLY.match(text).group("a") == rcpt,
                      f"{rcpt}: Postfix logged status={st} dsn={dsn} ({text}); want "
                      f"sent (250 2.0.0 <{rcpt}> <id> Saved)")

    def assert_unknown(self, status, rcpt):
        st, dsn, text = status
        m = UNKNOWN_REPLY.search(text)
        self.assertOk(st == "bounced" and dsn == "5.1.1" and m and m.group("a") == rcpt
                      and m.group("u") == rcpt,
                      f"{rcpt}: Postfix logged status={st} dsn={dsn} ({text}); want bounced "
                      f"550 5.1.1 <{rcpt}> User doesn't exist: {rcpt} (in reply to RCPT TO)")

    # ------------------------------------------------------------ seed [001]

    def test_a1_single_recipient(self):
        rcpt = "email1@example.com"
        msg, sent = self.send("single-1", [rcpt])
        self.assert_sent(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt], rcpt)
        self.check_delivered(self.s001, rcpt, "single-1", SENDER, msg, queue_id=sent.queue_id,
                             reader=self.r001)

    def test_a2_twenty_recipients_one_transaction(self):
        ghosts = ["ghost1@example.com", "ghost2@example.com"]
        rcpts = KNOWN[:4] + ghosts[:1] + KNOWN[4:12] + ghosts[1:] + KNOWN[12:]
        self.assertEqual(len(rcpts), 20)
        msg, sent = self.send("twenty-1", rcpts)
        final = self.pf.wait_final(sent.queue_id, rcpts, timeout=40)
        for rcpt in KNOWN:
            self.assert_sent(final[rcpt], rcpt)
        for rcpt in ghosts:
            self.assert_unknown(final[rcpt], rcpt)
        for i, rcpt in enumerate(KNOWN):
            self.check_delivered(self.s001, rcpt, "twenty-1", SENDER, msg, single=False,
                                 queue_id=sent.queue_id,
                                 reader=self.r001 if i in (0, len(KNOWN) - 1) else None)
        for rcpt in ghosts:
            self.assertOk(not os.path.exists(self.s001.maildir(rcpt)),
                          f"a maildir was made for the unknown {rcpt}")

    def test_a3_unknown_user_bounces(self):
        rcpt = "ghost3@example.com"
        _, sent = self.send("unknown-1", [rcpt])
        self.assert_unknown(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt], rcpt)
        self.assertOk(not os.path.exists(self.s001.maildir(rcpt)),
                      f"a maildir was made for the unknown {rcpt}")

    def poll_rcpt(self, rcpt, want, timeout=20):
        """RCPT through the reject_unverified_recipient smtpd until `want` (450 = the
        probe is still under way)."""
        deadline = time.monotonic() + timeout
        while True:
            code, text = lm.smtp_rcpt_probe(self.mx_verify, rcpt)
            if code == want or time.monotonic() > deadline or code not in (450, 250, 550):
                return code, text
            time.sleep(0.5)

    def test_a4_address_verification(self):
        before = {s: len(lm.maildir_files(setup.maildir(s))) for s, setup in
                  (("email2@example.com", self.s001), ("other@example.net", self.s004))}
        cases = [("ghost4@example.com", 550), ("email2@example.com", 250),
                 ("nobody@example.net", 550), ("other@example.net", 250)]
        for rcpt, want in cases:
            code, text = self.poll_rcpt(rcpt, want)
            self.assertOk(code == want, f"RCPT TO:<{rcpt}> through reject_unverified_recipient: "
                          f"{code} {text}, want {want}")
        time.sleep(0.5)
        for rcpt, setup in (("email2@example.com", self.s001), ("other@example.net", self.s004)):
            now = len(lm.maildir_files(setup.maildir(rcpt)))
            self.assertOk(now == before[rcpt], f"a probe wrote mail for {rcpt}: "
                          f"{before[rcpt]} -> {now} files")
        for rcpt, setup in (("ghost4@example.com", self.s001), ("nobody@example.net", self.s004)):
            self.assertOk(not os.path.exists(setup.maildir(rcpt)),
                          f"a probe made a maildir for the unknown {rcpt}")
        log = self.pf.log()
        self.assertOk(re.search(r"to=<ghost4@example\.com>.*status=undeliverable.*550 5\.1\.1",
                                log), "no `status=undeliverable ... 550 5.1.1` probe line for "
                      "ghost4@example.com in Postfix's log")

    def test_a5_probe_by_hand(self):
        """What Postfix's verify probe does (MAIL, RCPT, RSET, QUIT; no DATA), by hand."""
        maildir = self.s001.maildir("email2@example.com")
        before = len(lm.maildir_files(maildir))
        with lm.LmtpClient(self.a001.socket) as c:
            try:
                self.assertEqual(c.read_reply()[0], 220)
                self.assertEqual(c.cmd("LHLO mx.test.invalid")[0], 250)
                for rcpt, want in (("ghost5@example.com", 550), ("email2@example.com", 250)):
                    self.assertEqual(c.cmd("MAIL FROM:<double-bounce@mx.test.invalid>"),
                                     (250, ["2.1.0 OK"]))
                    reply = c.cmd(f"RCPT TO:<{rcpt}>")
                    self.assertEqual(reply[0], want)
                    if want == 550:
                        self.assertEqual(reply[1], [f"5.1.1 <{rcpt}> User doesn't exist: {rcpt}"])
                    else:
                        self.assertEqual(reply[1], ["2.1.5 OK"])
                    self.assertEqual(c.cmd("RSET"), (250, ["2.0.0 OK"]))
                self.assertEqual(c.cmd("QUIT")[0], 221)
            except AssertionError as e:
                self.fail(f"{e}\n{c.dump()}\n{self.context()}")
        self.assertOk(len(lm.maildir_files(maildir)) == before, "the probe wrote mail")
        self.assertOk(not os.path.exists(self.s001.maildir("ghost5@example.com")),
                      "the probe made a maildir for ghost5")

    def test_a6_plus_tag_to_inbox(self):
        rcpt = "email1+tag@example.com"
        msg, sent = self.send("plus-1", [rcpt])
        self.assert_sent(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt], rcpt)
        self.check_delivered(self.s001, rcpt, "plus-1", SENDER, msg, queue_id=sent.queue_id,
                             reader=self.r001)
        self.assertOk(not os.path.exists(os.path.join(self.s001.maildir("email1@example.com"),
                                                      ".tag")), "a .tag folder was made")

    def test_a7_eight_bit_body(self):
        body = ("Grüße aus Köln — naïve café, 東京, ✓\n".encode() +
                b"raw latin-1 bytes: \xe9\xe8\xff\x80\x81 and a NUL-free 8-bit tail \xfe\n"
                b".a line that starts with a dot\n..two dots\n")
        rcpt = "email2@example.com"
        msg, sent = self.send("eightbit-1", [rcpt], body=body, mail_options=["BODY=8BITMIME"],
                              extra_headers=b"Content-Type: text/plain; charset=utf-8\n"
                                            b"Content-Transfer-Encoding: 8bit\n")
        self.assert_sent(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt], rcpt)
        self.check_delivered(self.s001, rcpt, "eightbit-1", SENDER, msg, queue_id=sent.queue_id,
                             reader=self.r001)

    def test_a8_ten_megabytes(self):
        rcpt = "rcpt03@example.com"
        msg, sent = self.send("big-1", [rcpt], size=10 * 1024 * 1024)
        self.assertGreaterEqual(len(msg), 10 * 1024 * 1024 - 100)
        self.assert_sent(self.pf.wait_final(sent.queue_id, [rcpt], timeout=90)[rcpt], rcpt)
        self.check_delivered(self.s001, rcpt, "big-1", SENDER, msg, queue_id=sent.queue_id,
                             reader=self.r001, timeout=60)

    # ------------------------------------------------------------ seed [004]

    def test_b1_seed004_creates_home_and_maildir(self):
        rcpt = "third@example.net"
        self.assertFalse(os.path.exists(os.path.join(self.s004.root, "example.net", "third")))
        msg, sent = self.send("seed004-1", [rcpt])
        self.assert_sent(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt], rcpt)
        self.check_delivered(self.s004, rcpt, "seed004-1", SENDER, msg, queue_id=sent.queue_id,
                             reader=self.r004)
        for d in (os.path.join(self.s004.root, "example.net"),
                  os.path.join(self.s004.root, "example.net", "third")):
            st = os.stat(d)
            self.assertOk((st.st_uid, st.st_gid) == (self.uid, self.gid),
                          f"{d}: owner {st.st_uid}:{st.st_gid}, want the mail user")

    def test_b2_seed004_unknown_user_bounces(self):
        rcpt = "stranger@example.net"
        _, sent = self.send("seed004-unknown", [rcpt])
        self.assert_unknown(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt], rcpt)

    def test_b3_detail_mailbox(self):
        """lmtp_save_to_detail_mailbox = yes: +tag goes to the existing folder "tag",
        +nofolder (no such folder) to INBOX, and no folder is made for it."""
        for token, rcpt, folder in (("detail-1", "mailuser+tag@example.net", "tag"),
                                    ("detail-2", "mailuser+nofolder@example.net", None)):
            msg, sent = self.send(token, [rcpt])
            self.assert_sent(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt], rcpt)
            self.check_delivered(self.s004, rcpt, token, SENDER, msg, folder=folder,
                                 queue_id=sent.queue_id, reader=self.r004)
        inbox = self.s004.maildir("mailuser@example.net")
        self.assertOk(not lm.find_token(inbox, "detail-1"), "+tag also landed in INBOX")
        self.assertOk(not os.path.exists(os.path.join(inbox, ".nofolder")),
                      "a .nofolder folder was made")

    # ------------------------------------------------------------ database outage (last)

    def test_c1_lookup_error_defers(self):
        """MariaDB down: RCPT gets 451 4.3.0 <addr> Temporary internal error (never 550),
        Postfix defers; MariaDB back: the deferred mail is delivered."""
        rcpt = "email2@example.com"
        self.db.stop()
        self.addCleanup(lambda: self.db.running() or self.db.start())
        if not self.lmtpd:
            # Dovecot's auth worker that holds a MariaDB connection hangs ~60 s on its next
            # query (README pitfalls); a fresh Dovecot gives the reference answer at once.
            self.a001.stop()
            self.a001.start()
        with lm.LmtpClient(self.a001.socket, timeout=20) as c:
            try:
                self.assertEqual(c.read_reply()[0], 220)
                self.assertEqual(c.cmd("LHLO mx.test.invalid")[0], 250)
                self.assertEqual(c.cmd(f"MAIL FROM:<{SENDER}>")[0], 250)
                self.assertEqual(c.cmd(f"RCPT TO:<{rcpt}>"),
                                 (451, [f"4.3.0 <{rcpt}> Temporary internal error"]))
                self.assertEqual(c.cmd("QUIT")[0], 221)
            except AssertionError as e:
                self.fail(f"{e}\n{c.dump()}\n{self.context()}")
        msg, sent = self.send("outage-1", [rcpt])
        st, dsn, text = self.pf.wait_final(sent.queue_id, [rcpt], timeout=40,
                                           final=("deferred", "sent", "bounced"))[rcpt]
        self.assertOk(st == "deferred" and dsn == "4.3.0" and
                      f"451 4.3.0 <{rcpt}> Temporary internal error" in text,
                      f"database down: status={st} dsn={dsn} ({text}); want deferred "
                      f"451 4.3.0 <{rcpt}> Temporary internal error")
        self.db.start()
        deadline = time.monotonic() + 30
        while self.pf.statuses(sent.queue_id)[rcpt][-1][0] == "deferred":
            self.assertOk(time.monotonic() < deadline, "not delivered 30 s after MariaDB came back")
            self.pf.flush()
            time.sleep(1)
        self.assert_sent(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt], rcpt)
        self.check_delivered(self.s001, rcpt, "outage-1", SENDER, msg, queue_id=sent.queue_id)


if __name__ == "__main__":
    peers.main()
