"""lmtpd_cases.py - shared base for lmtpd's integration tests.

A test class gets a Workspace, starts its delivery agents with start_agent() (lmtpd, or
Dovecot's LMTP with POSTERN_LMTP_TARGET=dovecot: see lmtp_peers.py) and optionally a
Postfix (lmtp_mail.LmtpPostfix). check_delivered() is the one place that says what a
delivered file must look like:
  - exactly `count` files in the maildir carry the message's token; name has ,S=<size>
    (and ,W= only if exact); owner nobody:nogroup, mode 0600; maildir and cur/new/tmp
    0700 and owned by the mail user; nothing left in tmp/;
  - the file is the prepended headers, then Postfix's own Received: header (when it came
    through Postfix), then the message exactly as sent, with LF line endings;
  - prepended: `Return-Path: <sender>`, `Delivered-To: <rcpt>` for a single-recipient
    transaction only, `Received: from <lhlo> by <hostname> with LMTP id <id>
    (envelope-from <sender>) [for <rcpt>]; <date>`;
  - Dovecot reads it back byte for byte (doveadm fetch text).
Failures carry the agent's and Postfix's log tails.
"""

import os
import re
import unittest

import lmtp_mail as lm
import lmtp_peers as lp
import peers

RECEIVED_RE = re.compile(r"^from (?P<from>\S+) by (?P<by>\S+) with LMTP id (?P<id>\S+) "
                         r"\(envelope-from <(?P<sender>[^>]*)>\)(?: for <(?P<rcpt>[^>]*)>)?; "
                         r"(?P<date>\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4})")
POSTFIX_RECEIVED_RE = re.compile(r"^from \S+ .*by mx\.test\.invalid \(Postfix\) with E?SMTP "
                                 r"id (?P<qid>[0-9A-Za-z]+)")


def strip_detail(address, delimiter="+"):
    local, domain = address.rsplit("@", 1)
    return local.split(delimiter, 1)[0] + "@" + domain


class LmtpTestBase(unittest.TestCase):
    tag = "lmtpd"
    maxDiff = 4000
    pf = None

    @classmethod
    def setup_peers(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.kind = lp.target_kind()
        if cls.kind == "lmtpd":
            lp.lmtpd_binary()  # a missing binary fails the class at once
        cls.ws = peers.Workspace(cls.tag)
        cls.addClassCleanup(cls.ws.remove)
        cls.agents = {}
        cls.uid, cls.gid = lp.mail_ids()
        cls.setup_peers()

    @classmethod
    def start_agent(cls, name, setup, **settings):
        agent = lp.delivery_agent(cls.ws, name, setup, **settings)
        cls.addClassCleanup(agent.stop)
        cls.agents[name] = agent
        agent.start()
        return agent

    @classmethod
    def start_postfix(cls, routes, verify=False):
        peers.require_program("postfix", "postfix")
        cls.pf = lm.LmtpPostfix(cls.ws, routes, name=f"postfix-{cls.tag}")
        cls.mx = cls.pf.add_smtpd("mx")
        if verify:
            cls.mx_verify = cls.pf.add_smtpd("verify", verify=True)
        cls.pf.start()
        cls.addClassCleanup(cls.pf.stop)

    # ------------------------------------------------------------ helpers

    @property
    def lmtpd(self):
        return self.kind == "lmtpd"

    def context(self, lines=30):
        parts = [a.log_tail(lines) for a in self.agents.values()]
        if self.pf is not None:
            parts.append(self.pf.log_tail(lines))
        return "\n".join(parts)

    def assertOk(self, condition, message):
        if not condition:
            self.fail(f"{message}\n{self.context()}")

    def check_maildir(self, maildir):
        """Directory modes/owner and an empty tmp/."""
        problems = []
        for d in (maildir, *(os.path.join(maildir, s) for s in ("cur", "new", "tmp"))):
            if not os.path.isdir(d):
                problems.append(f"{d}: missing")
                continue
            st = os.stat(d)
            if (st.st_uid, st.st_gid) != (self.uid, self.gid):
                problems.append(f"{d}: owner {st.st_uid}:{st.st_gid}, want {self.uid}:{self.gid}")
            if st.st_mode & 0o777 != 0o700:
                problems.append(f"{d}: mode {st.st_mode & 0o777:04o}, want 0700")
        left = lm.tmp_files(maildir)
        if left:
            problems.append(f"{maildir}/tmp not empty: {left}")
        return problems

    def check_delivered(self, setup, rcpt, token, sender, original, single=True, folder=None,
                        count=1, queue_id=None, reader=None, timeout=30):
        """Checks the delivery of message `token` (bytes `original`, LF) to rcpt (as given
        at RCPT, +detail and all); returns (path, content) of the first file found."""
        maildir = setup.maildir(strip_detail(rcpt), folder)
        try:
            found = lm.wait_token(maildir, token, timeout=timeout, count=count)
        except AssertionError as e:
            self.fail(f"{e}\n{self.context()}")
        self.assertOk(len(found) == count, f"{len(found)} copies of {token} in {maildir}, "
                      f"want {count}: {[p for p, _ in found]}")
        problems = self.check_maildir(maildir)
        for path, content in found:
            problems += lm.file_problems(path, self.uid, self.gid)
            problems += self.check_content(content, rcpt, sender, original, single, queue_id)
        if reader is not None and not problems:
            user = strip_detail(rcpt)
            text = reader.fetch_text(user, lm.message_id(token))
            if text != b"text:\n" + found[0][1]:
                problems.append(f"doveadm fetch -u {user} differs from {found[0][0]} "
                                f"({len(text) - 6} vs {len(found[0][1])} bytes; "
                                f"first bytes {text[6:200]!r})")
        self.assertOk(not problems, f"delivery of {token} to {rcpt}:\n  " + "\n  ".join(problems))
        return found[0]

    def check_content(self, content, rcpt, sender, original, single, queue_id):
        if not content.endswith(original):
            return [f"stored message does not end with the message as sent (stored "
                    f"{len(content)} bytes, sent {len(original)}); stored head "
                    f"{content[:300]!r}"]
        if b"\r\n" in content and b"\r\n" not in original:
            return ["stored message has CRLF line endings (want LF, as Dovecot)"]
        prefix = content[:len(content) - len(original)]
        headers, _ = lm.unfold_headers(prefix + b"\n")
        names = [h[0] for h in headers if h[0]]
        want = ["Return-Path"] + (["Delivered-To"] if single else []) + ["Received"]
        if queue_id is not None:
            want.append("Received")
        problems = []
        if names != want:
            problems.append(f"prepended headers {names}, want {want}: {prefix[:600]!r}")
            return problems
        hdr = dict(headers[:2])
        if hdr["Return-Path"] != f"<{sender}>":
            problems.append(f"Return-Path: {hdr['Return-Path']!r}, want <{sender}>")
        if single and headers[1][1] != rcpt:
            problems.append(f"Delivered-To: {headers[1][1]!r}, want {rcpt!r}")
        received = headers[len(want) - (2 if queue_id else 1)][1]
        m = RECEIVED_RE.match(received)
        if not m:
            problems.append(f"Received: {received!r} does not match {RECEIVED_RE.pattern}")
        else:
            if m.group("sender") != sender:
                problems.append(f"Received: envelope-from <{m.group('sender')}>, want <{sender}>")
            if m.group("by") != lp.HOSTNAME:
                problems.append(f"Received: by {m.group('by')}, want {lp.HOSTNAME}")
            if single and m.group("rcpt") != rcpt:
                problems.append(f"Received: for <{m.group('rcpt')}>, want <{rcpt}>")
            if not single and m.group("rcpt"):
                problems.append(f"Received: 'for <{m.group('rcpt')}>' in a multi-recipient "
                                "transaction")
        if queue_id is not None:
            pm = POSTFIX_RECEIVED_RE.match(headers[-1][1])
            if not pm or pm.group("qid") != queue_id:
                problems.append(f"Postfix's Received header {headers[-1][1]!r} is not the one "
                                f"of queue id {queue_id}")
        return problems
