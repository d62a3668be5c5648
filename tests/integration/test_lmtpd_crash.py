#!/usr/bin/env python3
"""test_lmtpd_crash.py - kill -9 of lmtpd in the middle of a load through Postfix: every
message Postfix accepted ends up in new/ (at least once: Postfix redelivers what it lost
the reply for, "message may be sent more than once"), no file in new/ is truncated, and
lmtpd starts again over the stale socket file.

500 messages (~2 KB, each with its own token and trailer line) go into Postfix's smtpd
over 8 SMTP connections, to 4 users (seed [004] layout, passwd-file). Once 100 have
landed, lmtpd gets SIGKILL; a second later it is started again and Postfix is flushed
until its queue is empty. Then: each token is in at least one file; every file has S= =
its size and ends with its own trailer; duplicates and files left in tmp/ are reported
(both are allowed after a crash).
  POSTERN_LMTPD=build/l4/lmtpd/lmtpd python3 tests/integration/test_lmtpd_crash.py
"""

import concurrent.futures
import re
import smtplib
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import lmtp_mail as lm
import lmtp_peers as lp
import lmtpd_cases as lc
import peers
import sasl_peers as sp

USERS = [f"load{i}@example.com" for i in range(4)]
SENDER = "sender@remote.invalid"
COUNT, CONNECTIONS, KILL_AT = 500, 8, 100
TOKEN_RE = re.compile(rb"^Message-ID: <(crash-\d+)@test\.invalid>$", re.M)


class LmtpdCrash(lc.LmtpTestBase):
    tag = "lmtpd-crash"

    @classmethod
    def setup_peers(cls):
        users = sp.write_file(cls.ws.file("users.db"),
                              "".join(f"{u}:{{PLAIN}}pw-{i}\n" for i, u in enumerate(USERS)))
        cls.setup = lp.seed004_setup(lp.mail_root(cls.ws, "vmail"), users)
        cls.agent = cls.start_agent("lmtp", cls.setup)
        cls.start_postfix({"example.com": cls.agent.socket})

    def inject(self, worker):
        """Messages worker, worker+CONNECTIONS, ... over one SMTP connection: {token: qid}."""
        out = {}
        with smtplib.SMTP("127.0.0.1", self.mx, local_hostname="client.test.invalid",
                          timeout=60) as s:
            s.ehlo()
            for n in range(worker, COUNT, CONNECTIONS):
                token, rcpt = f"crash-{n:04d}", USERS[n % len(USERS)]
                msg = lm.make_message(token, SENDER, rcpt, size=2048)
                s.mail(SENDER)
                code, _ = s.rcpt(rcpt)
                if code != 250:
                    raise AssertionError(f"RCPT {rcpt}: {code}")
                code, text = s.data(msg.replace(b"\n", b"\r\n"))
                m = re.search(rb"queued as (\w+)", text)
                if code != 250 or not m:
                    raise AssertionError(f"DATA {token}: {code} {text!r}")
                out[token] = m.group(1).decode()
        return out

    def landed(self):
        return sum(len(lm.maildir_files(self.setup.maildir(u), ("new",))) for u in USERS)

    def test_kill9_during_load(self):
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CONNECTIONS) as pool:
            jobs = [pool.submit(self.inject, w) for w in range(CONNECTIONS)]
            while self.landed() < KILL_AT and time.monotonic() - start < 60:
                if all(j.done() for j in jobs) and self.landed() == 0 and \
                        time.monotonic() - start > 30:
                    break
                time.sleep(0.01)
            at_kill = self.landed()
            self.agent.kill9()
            killed_after = time.monotonic() - start
            queued = {}
            for j in jobs:
                queued.update(j.result())
        injected_after = time.monotonic() - start
        self.assertEqual(len(queued), COUNT)
        self.assertOk(KILL_AT <= at_kill < COUNT,
                      f"kill -9 came at {at_kill} delivered files, not mid-way")
        time.sleep(1)
        try:
            self.agent.start()  # the socket file of the killed process is still there
        except RuntimeError as e:
            self.fail(f"restart after kill -9 failed: {e}")
        deadline = time.monotonic() + 120
        while not self.pf.queue_empty():
            self.assertOk(time.monotonic() < deadline, "Postfix's queue not empty 120 s after "
                          f"the restart:\n{self.pf.postqueue('-p')[1][-2000:]}")
            self.pf.flush()
            time.sleep(1)
        drained_after = time.monotonic() - start

        copies, problems, tmp_left = {}, [], 0
        for u in USERS:
            maildir = self.setup.maildir(u)
            tmp_left += len(lm.tmp_files(maildir))
            for path, name in lm.maildir_files(maildir):
                problems += lm.file_problems(path, self.uid, self.gid)
                data = lm.read(path)
                tokens = TOKEN_RE.findall(data)
                if len(tokens) != 1:
                    problems.append(f"{name}: {len(tokens)} Message-IDs ({len(data)} bytes)")
                    continue
                token = tokens[0].decode()
                if not data.endswith(lm.trailer(token)) or data.count(b"-- end of ") != 1:
                    problems.append(f"{name}: truncated or mixed ({token}, {len(data)} bytes, "
                                    f"ends {data[-60:]!r})")
                copies[token] = copies.get(token, 0) + 1
        missing = sorted(set(queued) - set(copies))
        dups = {t: n for t, n in copies.items() if n > 1}
        statuses = [m for m in lm.STATUS_RE.finditer(self.pf.log())
                    if m.group(1) in set(queued.values())]
        bounced = [m.group(0) for m in statuses if m.group(4) == "bounced"]
        print(f"\n  {COUNT} queued in {injected_after:.1f}s; kill -9 at {at_kill} files "
              f"({killed_after:.1f}s); queue empty at {drained_after:.1f}s; "
              f"{sum(copies.values())} files, {len(dups)} duplicated, {tmp_left} left in tmp/, "
              f"{sum(1 for m in statuses if m.group(4) == 'deferred')} deferrals",
              file=sys.stderr)
        self.assertOk(not missing, f"{len(missing)} accepted messages never landed: "
                      f"{missing[:10]}")
        self.assertOk(not problems, f"{len(problems)} bad files:\n  " + "\n  ".join(problems[:20]))
        self.assertOk(not bounced, "bounced:\n" + "\n".join(bounced[:5]))


if __name__ == "__main__":
    peers.main()
