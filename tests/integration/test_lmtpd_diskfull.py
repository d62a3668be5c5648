#!/usr/bin/env python3
"""test_lmtpd_diskfull.py - a full disk under the Maildirs: lmtpd answers 452 4.3.1 for the
recipient, Postfix defers (status=deferred), nothing partial is left in new/ or tmp/;
once there is room again, `postqueue -f` delivers it, whole.

The mail root is a 1 MB tmpfs (mount -t tmpfs, needs root; unmounted in cleanup). Seed
[004] layout (passwd-file, mail_home + maildir:~/mail), one Postfix routing example.com
to the agent. Space is taken by a filler file next to the maildirs, then freed: first by
deleting the filler, then (second case) by remounting the tmpfs bigger.
With POSTERN_LMTP_TARGET=dovecot (the reference answers `451 4.2.0 <rcpt> Internal error
occurred...` here) any 4xx is accepted.
  POSTERN_LMTPD=build/l4/lmtpd/lmtpd python3 tests/integration/test_lmtpd_diskfull.py
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
TMPFS_SIZE = "1m"
BIG = 200 * 1024


class LmtpdDiskFull(lc.LmtpTestBase):
    tag = "lmtpd-diskfull"

    @classmethod
    def setup_peers(cls):
        users = sp.write_file(cls.ws.file("users.db"), USERS)
        root = cls.ws.mkdir("vmail")
        cls.fs = lp.Tmpfs(root, TMPFS_SIZE)
        cls.addClassCleanup(cls.fs.umount)
        cls.setup = lp.seed004_setup(root, users)
        cls.agent = cls.start_agent("lmtp", cls.setup)
        cls.reader = lp.reader(cls.ws, "reader", cls.setup)
        cls.addClassCleanup(cls.reader.stop)
        cls.start_postfix({"example.com": cls.agent.socket})

    def fill(self, leave):
        """A filler file (root's) so that only `leave` bytes stay free; returns its path."""
        path = os.path.join(self.setup.root, "filler")
        free = self.fs.free()
        with open(path, "ab") as f:
            f.write(b"\0" * max(0, free - leave))
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        return path

    def deliver_after_full(self, rcpt, token, make_room):
        maildir = self.setup.maildir(rcpt)
        # A small message first: the maildir exists before the disk fills up.
        small = lm.make_message(token + "-small", SENDER, rcpt)
        sent = lm.smtp_send(self.mx, SENDER, [rcpt], small)
        self.assertEqual(self.pf.wait_final(sent.queue_id, [rcpt])[rcpt][0], "sent")
        self.check_delivered(self.setup, rcpt, token + "-small", SENDER, small,
                             queue_id=sent.queue_id)
        before = {n for _, n in lm.maildir_files(maildir)}

        filler = self.fill(leave=32 * 1024)
        big = lm.make_message(token, SENDER, rcpt, size=BIG)
        sent = lm.smtp_send(self.mx, SENDER, [rcpt], big)
        st, dsn, text = self.pf.wait_final(sent.queue_id, [rcpt], final=("deferred", "sent",
                                                                          "bounced"))[rcpt]
        if self.lmtpd:
            ok = st == "deferred" and dsn == "4.3.1" and re.search(
                rf"said: 452 4\.3\.1 <{re.escape(rcpt)}> ", text)
            want = "deferred, dsn=4.3.1, 452 4.3.1 <rcpt> ..."
        else:
            ok, want = st == "deferred" and dsn.startswith("4."), "deferred 4.x.x"
        self.assertOk(ok, f"full disk: Postfix logged status={st} dsn={dsn} ({text}); want {want}")
        self.assertOk({n for _, n in lm.maildir_files(maildir)} == before,
                      f"new/cur changed on a failed delivery: {lm.maildir_files(maildir)}")
        self.assertOk(lm.tmp_files(maildir) == [], f"left in tmp/: {lm.tmp_files(maildir)}")

        make_room(filler)
        self.pf.flush()
        st, dsn, text = self.pf.wait_final(sent.queue_id, [rcpt], final=("sent", "bounced"),
                                           timeout=40)[rcpt]
        self.assertOk(st == "sent", f"after making room: status={st} dsn={dsn} ({text})")
        self.check_delivered(self.setup, rcpt, token, SENDER, big, queue_id=sent.queue_id,
                             reader=self.reader)

    def test_1_full_then_filler_deleted(self):
        self.deliver_after_full("alice@example.com", "full-1", lambda filler: os.unlink(filler))

    def test_2_full_then_remounted_bigger(self):
        def grow(_filler):
            self.fs.resize("4m")
        self.deliver_after_full("bob@example.com", "full-2", grow)


if __name__ == "__main__":
    peers.main()
