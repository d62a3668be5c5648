"""authd_cases.py - shared base for the authd integration tests: authd next to Dovecot.

Every passdb setup ("kind") runs twice, as a pair: Dovecot's auth server (the reference)
and authd, both reading the same dovecot-sql.conf.ext or passwd-file. One private Postfix
instance per test class has one submission-style smtpd per server (labels "dovecot-KIND"
and "authd-KIND"), and swaks talks to those. check_swaks() runs the same cases against
both smtpds and reports every difference from the expected SMTP codes, Dovecot first: a
failing Dovecot case means the fixture, not authd, is wrong.

If authd does not start, the class still runs: Dovecot's half of every check is made,
and each test then fails naming authd's start error.
"""

import base64
import concurrent.futures
import os
import time
import unittest

import peers
import sasl_peers as sp

SERVERS = ("dovecot", "authd")


class AuthdTestBase(unittest.TestCase):
    tag = "authd"
    maxDiff = None

    @classmethod
    def setup_peers(cls):
        """Subclasses: start databases and call add_pair() for each kind."""
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        peers.require_program("swaks", "swaks")  # a missing peer fails the class at once
        cls.ws = peers.Workspace(cls.tag)
        cls.addClassCleanup(cls.ws.remove)
        cls.dovecots, cls.authds, cls.authd_errors = {}, {}, {}
        cls.secrets = set()  # (user, password) of every attempt on authd, for the log checks
        cls.pf = sp.PostfixInstance(cls.ws, f"postfix-{cls.tag}")
        cls.setup_peers()
        cls.pf.start()
        cls.addClassCleanup(cls.pf.stop)

    @classmethod
    def add_pair(cls, kind, dovecot_passdb, authd_passdb, authd_settings=None):
        """Starts dovecot-KIND (passdb (driver, args)) and authd-KIND (passdb line) and
        adds an smtpd for each. authd failing to start is recorded, not raised."""
        dc = sp.Dovecot(cls.ws, f"dovecot-{kind}").add_passdb(*dovecot_passdb)
        cls.addClassCleanup(dc.stop)
        dc.start()
        cls.dovecots[kind] = dc
        cls.pf.add_smtpd(f"dovecot-{kind}", dc.socket)
        try:
            ad = sp.Authd(cls.ws, f"authd-{kind}", authd_passdb)
            cls.addClassCleanup(ad.stop)
            cls.authds[kind] = ad
            cls.pf.add_smtpd(f"authd-{kind}", ad.socket)
            ad.start(**(authd_settings or {}))
        except (RuntimeError, AssertionError, OSError) as e:
            cls.authd_errors[kind] = str(e)
            if kind in cls.authds:
                cls.authds[kind].stop()
            else:
                cls.pf.add_smtpd(f"authd-{kind}", os.path.join(cls.ws.path, f"no-authd-{kind}"))

    # ------------------------------------------------------------ helpers

    def authd(self, kind):
        """The running authd for kind; fails the test with authd's start error otherwise."""
        if kind in self.authd_errors:
            self.fail(f"authd-{kind} did not start: {self.authd_errors[kind]}")
        return self.authds[kind]

    def note_secret(self, user, password):
        self.secrets.add((user, password))

    def swaks(self, label, user, password, mech="PLAIN", send=False):
        if label.startswith("authd"):
            # Postfix throttles an smtpd whose auth socket is missing: fail fast instead.
            self.authd(label.split("-", 1)[1])
            self.note_secret(user, password)
        return sp.swaks_auth(self.pf.port(label), user, password, mech=mech, send=send)

    def context(self, label):
        kind = label.split("-", 1)[1]
        srv = self.dovecots[kind] if label.startswith("dovecot") else self.authds.get(kind)
        parts = [srv.log_tail(25) if srv else f"(authd-{kind} not started)",
                 self.pf.log_tail(15)]
        return "\n".join(parts)

    def check_swaks(self, kind, cases, servers=SERVERS):
        """cases: (user, password, mech, want) with want an SMTP code for the AUTH reply, or
        {"dovecot": code, "authd": code}. Runs every case against dovecot-KIND and
        authd-KIND (a few at a time) and fails listing all wrong codes."""
        jobs = []
        kind_broken = kind in self.authd_errors
        for server in servers if not kind_broken else [s for s in servers if s != "authd"]:
            for user, password, mech, want in cases:
                code = want[server] if isinstance(want, dict) else want
                jobs.append((f"{server}-{kind}", user, password, mech, code))
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda j: self.swaks(*j[:4]), jobs))
        wrong = {}
        for (label, user, password, mech, code), res in zip(jobs, results):
            if res.codes.get("AUTH") != code:
                wrong.setdefault(label, []).append(
                    f"  AUTH {mech} {user!r} / {password!r}: got {res.codes.get('AUTH')} "
                    f"(swaks rc {res.rc}), want {code}")
        if f"dovecot-{kind}" in wrong:  # the reference itself disagrees: fixture problem
            self.fail(f"REFERENCE dovecot-{kind} (fixture problem):\n"
                      + "\n".join(wrong[f"dovecot-{kind}"]) + "\n" + self.context(f"dovecot-{kind}"))
        if "authd" in servers:
            self.authd(kind)
        if wrong:
            self.fail("\n".join(f"{label}:\n" + "\n".join(lines) + "\n" + self.context(label)
                                for label, lines in wrong.items()))
        return results

    def auth_test(self, kind, server, user, password, mech=None):
        """`authd test` against dovecot-KIND's or authd-KIND's socket."""
        if server == "authd":
            socket_path = self.authd(kind).socket
            self.note_secret(user, password)
        else:
            socket_path = self.dovecots[kind].socket
        try:
            return sp.authd_test(socket_path, user, password, mech=mech)
        except RuntimeError as e:  # no authd binary
            self.fail(str(e))

    def poll_swaks(self, label, user, password, want, timeout, mech="PLAIN"):
        """Seconds until AUTH through `label` gets `want`; fails after timeout."""
        start = time.monotonic()
        while True:
            res = self.swaks(label, user, password, mech=mech)
            elapsed = time.monotonic() - start
            if res.codes.get("AUTH") == want:
                return elapsed
            if elapsed > timeout:
                self.fail(f"{label}: AUTH {user} not {want} within {timeout}s (last {res})\n"
                          + self.context(label))
            time.sleep(0.1)


def secret_forms(user, password):
    """The strings that would betray a password in a log: the password, its base64 (what
    LOGIN sends) and the base64 PLAIN response. All-digit passwords shorter than 8 (the
    seed's 123456) are left out: they occur in timestamps and PIDs."""
    forms = {base64.b64encode(password.encode()).decode(),
             base64.b64encode(f"\0{user}\0{password}".encode()).decode()}
    if not (password.isdigit() and len(password) < 8):
        forms.add(password)
    return {f for f in forms if len(f) >= 4}  # the empty password has nothing to find
