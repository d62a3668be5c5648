#!/usr/bin/env python3
"""test_authd_outage.py - what Postfix says while the password database is down: authd
closes the auth connection (Postfix: 454 4.7.0, the client retries later), where Dovecot
answers FAIL (Postfix: 535, the user is told the password is wrong). Then authd must
authenticate again within 5 s of MariaDB coming back, without a restart.

Its own mariadbd (stopped and restarted on the same port), a Dovecot/authd pair reading
dovecot-sql.conf.ext exactly as seed [001], and one Postfix with an smtpd for each.
  POSTERN_AUTHD=build/a4/authd/authd python3 tests/integration/test_authd_outage.py
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import authd_cases as ac
import peers
import sasl_peers as sp

RIGHT = ("email1@example.com", "firstpassword")
# While the database is down, authd cannot tell a right password from a wrong one, or a
# user from a stranger: all are temporary failures. Dovecot says 535 to all.
DOWN = {"dovecot": 535, "authd": 454}
DOWN_CASES = [(*RIGHT, "PLAIN", DOWN), (*RIGHT, "LOGIN", DOWN),
              ("email1@example.com", "wrong-password-1", "PLAIN", DOWN),
              ("ghost@example.com", "firstpassword", "LOGIN", DOWN)]


class AuthdOutage(ac.AuthdTestBase):
    tag = "authd-outage"

    @classmethod
    def setup_peers(cls):
        cls.db = peers.class_mariadb(cls)
        sql = sp.dovecot_sql_conf(os.path.join(cls.ws.mkdir("conf"), "dovecot-sql.conf.ext"),
                                  cls.db.port)
        cls.add_pair("sql", ("sql", sql), f"sql {sql}")

    def setUp(self):
        if not self.db.running():
            self.db.start()

    def warm_up(self, servers=ac.SERVERS):
        """Every authd worker has used its connection (and Dovecot works, if asked)."""
        self.check_swaks("sql", [(*RIGHT, mech, 235) for mech in ("PLAIN", "LOGIN", "PLAIN", "LOGIN")],
                         servers=servers)

    def test_database_outage_gives_454_not_535_and_recovers_without_restart(self):
        self.warm_up()
        ad = self.authd("sql")
        pid = ad.proc.pid
        self.db.stop()
        # Dovecot's auth workers that hold a live connection hang on their next request
        # in the reconnect loop (60 s; Postfix gives up after 10 s: 454), fresh workers
        # answer FAIL at once (535). For a deterministic reference, restart Dovecot now:
        # all its workers are then fresh, as they are once the stuck ones are done.
        dc = self.dovecots["sql"]
        dc.stop()
        dc.start()
        start = time.monotonic()
        res = self.swaks("authd-sql", *RIGHT)
        self.assertEqual(res.codes.get("AUTH"), 454, f"{res.transcript}\n{ad.log_tail()}")
        self.assertLess(time.monotonic() - start, 5,
                        "454 only after Postfix's own 10 s timeout? authd should close at once")
        # The point of authd: Dovecot tells a user with the right password it is wrong.
        self.check_swaks("sql", DOWN_CASES)
        rc, out, err = self.auth_test("sql", "authd", *RIGHT)
        self.assertEqual(rc, 75, f"`authd test` during the outage: {out}{err}\n{ad.log_tail()}")
        self.assertTrue(ad.alive(), ad.log_tail())

        self.db.start()  # same datadir, port and socket
        up = time.monotonic()
        for mech in ("PLAIN", "LOGIN"):
            self.poll_swaks("authd-sql", *RIGHT, 235, timeout=max(0.5, 5 - (time.monotonic() - up)),
                            mech=mech)
        self.assertLess(time.monotonic() - up, 5, "recovery took 5 s or more")
        self.check_swaks("sql", [("email1@example.com", "wrong-password-2", "PLAIN", 535),
                                 ("ghost@example.com", "firstpassword", "PLAIN", 535)],
                         servers=("authd",))
        self.assertEqual(ad.proc.pid, pid, "authd was restarted")

    def test_database_restart_while_idle_is_not_seen_by_users(self):
        # An admin restarts MariaDB while authd is idle: its pooled connections are dead,
        # but the next logins must succeed (reconnect and retry once), not get a 454.
        # (Dovecot 2.3 answers the first one 535: "Password query failed: Lost connection".)
        self.warm_up(servers=("authd",))
        ad = self.authd("sql")
        self.db.stop()
        self.db.start()
        self.check_swaks("sql", [(*RIGHT, "PLAIN", 235), (*RIGHT, "LOGIN", 235),
                                 (*RIGHT, "PLAIN", 235)], servers=("authd",))
        self.assertTrue(ad.alive(), ad.log_tail())

    def test_zz_logs_never_contain_passwords(self):
        ad = self.authd("sql")
        log = ad.log()
        for user, password in sorted(self.secrets):
            for form in ac.secret_forms(user, password):
                self.assertNotIn(form, log, f"authd logged a secret of {user!r}")


if __name__ == "__main__":
    peers.main()
