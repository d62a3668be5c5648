#!/usr/bin/env python3
"""test_authd_postfix.py - authd as Postfix's SASL server (smtpd_sasl_type = dovecot),
side by side with Dovecot's auth server reading the same files (seed-requirements §3.3).

Peers, once per run: one mariadbd with `mailserver` (schema A, seed [001]) and
`mailserver_b` (schema B, seed [002], wangwu has enable = 0); Dovecot and authd pairs for
  sql   dovecot-sql.conf.ext exactly as seed [001]
  sqlb  the same with seed [002]'s `... AND enable=1` query
  file  a passwd-file in seed [004]'s format (data/users.passwd, scheme=SHA512-CRYPT)
plus an authd alone for the SIGHUP tests; one Postfix with an smtpd per server. Every
swaks case must give the same code through Dovecot and through authd. Run through
ctest, or:
  POSTERN_AUTHD=build/a4/authd/authd python3 tests/integration/test_authd_postfix.py
"""

import os
import re
import shutil
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import authd_cases as ac
import peers
import sasl_peers as sp

SQL_A = "SELECT email as user, password FROM virtual_users WHERE email='%u';"
SQL_B = "SELECT email as user, password FROM virtual_users WHERE email='%u' AND enable=1;"
# For the SIGHUP tests: hashes from `openssl passwd -6 -salt <salt> <password>`.
RELOADED = ("reloaded", "reloaded-pw-3",
            "$6$1e3c5a7b9d2f4a6c$vG3JL6RcCbXi/aMw8DiQrNjceRtdWoiraImF/B2u80QkGcCb9p38Ln0a5RgvEQBMt3xeg07dxmN95fUEVZ1FD/")
NEWCOMER = ("newcomer@example.org", "newcomer-pw-4",
            "$6$6a4c2e8b0d1f3a5e$rZWSypq36zElxZz7a15ajihlqePnH7s5o2cSYHyJv.WE16ZIJ0tiMFNFeux/Fh4vvLOk4WbZu8P8mXNIeUk5l.")
# Usernames with characters outside auth_username_chars; each carries a marker that must
# never reach MariaDB's query log.
BAD_NAMES = ["badchr1' OR '1'='1@example.com", "badchr2 x@example.com", 'badchr3"@example.com',
             "badchr4%u@example.com", "badchr5\\@example.com", "badchr6/x@example.com",
             "badchr7é@example.com", "badchr8*@example.com"]


class AuthdPostfix(ac.AuthdTestBase):
    tag = "authd-postfix"

    @classmethod
    def setup_peers(cls):
        cls.db = peers.class_mariadb(cls)
        cls.db.create_database("mailserver_b", "schema_b.sql")
        conf = cls.ws.mkdir("conf")
        sql_a = sp.dovecot_sql_conf(os.path.join(conf, "dovecot-sql.conf.ext"), cls.db.port)
        sql_b = sp.dovecot_sql_conf(os.path.join(conf, "dovecot-sql-b.conf.ext"), cls.db.port,
                                    dbname="mailserver_b", query=SQL_B)
        users = os.path.join(conf, "users.passwd")
        shutil.copy(os.path.join(peers.DATA, "users.passwd"), users)
        os.chmod(users, 0o644)
        file_args = f"scheme=SHA512-CRYPT username_format=%u {users}"
        cls.add_pair("sql", ("sql", sql_a), f"sql {sql_a}")
        cls.add_pair("sqlb", ("sql", sql_b), f"sql {sql_b}")
        cls.add_pair("file", ("passwd-file", file_args), f"passwd-file {file_args}")
        # The SIGHUP tests' authd reads its own copy of the file.
        cls.reload_users = os.path.join(conf, "reload-users.passwd")
        shutil.copy(users, cls.reload_users)
        os.chmod(cls.reload_users, 0o644)
        cls.add_pair("reload", ("passwd-file", f"scheme=SHA512-CRYPT {cls.reload_users}"),
                     f"passwd-file scheme=SHA512-CRYPT {cls.reload_users}")

    # ------------------------------------------------------------ through Postfix

    def test_a1_sql_plain_and_login(self):
        self.check_swaks("sql", [
            ("email1@example.com", "firstpassword", "PLAIN", 235),
            ("email1@example.com", "firstpassword", "LOGIN", 235),
            ("email2@example.com", "secondpassword", "PLAIN", 235),
            ("email2@example.com", "secondpassword", "LOGIN", 235),
            ("email1@example.com", "secondpassword", "PLAIN", 535),
            ("email1@example.com", "wrong-password-1", "LOGIN", 535),
            ("email2@example.com", "", "PLAIN", 535),
            ("ghost@example.com", "firstpassword", "PLAIN", 535),
            ("ghost@example.com", "firstpassword", "LOGIN", 535),
            ("email1@example.co", "firstpassword", "PLAIN", 535),
        ])

    def test_a1_authenticated_mail_is_relayed_and_logged_with_canonical_user(self):
        # %Lu lowercases the login; the `user` column is what Postfix logs as sasl_username.
        for server in ac.SERVERS:
            with self.subTest(server=server):
                label = f"{server}-sql"
                res = self.swaks(label, "EMAIL1@EXAMPLE.COM", "firstpassword", send=True)
                self.assertEqual((res.codes.get("AUTH"), res.codes.get("MAIL"), res.codes.get("RCPT"),
                                  res.codes.get("DATA")), (235, 250, 250, 250),
                                 f"{res}\n{res.transcript}\n{self.context(label)}")
                queue_id = re.search(r"queued as ([0-9A-F]+)", res.transcript).group(1)
                line, _ = peers.wait_until(
                    lambda: re.search(rf"{queue_id}: client=.*sasl_username=\S+", self.pf.log()),
                    5, what=f"smtpd log line for {queue_id}")
                self.assertIn("sasl_method=PLAIN, sasl_username=email1@example.com", line.group(0))

    def test_a5_unauthenticated_relay_is_refused(self):
        for server in ac.SERVERS:
            with self.subTest(server=server):
                if server == "authd":
                    self.authd("sql")
                res = sp.swaks_auth(self.pf.port(f"{server}-sql"), "", "", mech=None)
                self.assertEqual(res.codes.get("RCPT"), 554, res.transcript)

    def test_a8_disabled_user_fails_with_right_password(self):
        self.check_swaks("sqlb", [
            ("zhangsan@mydomain.com", "123456zhangsan", "PLAIN", 235),
            ("lisi@mydomain.com", "123456lisi", "LOGIN", 235),
            ("wangwu@mydomain.com", "123456wangwu", "PLAIN", 535),
            ("wangwu@mydomain.com", "123456wangwu", "LOGIN", 535),
            ("lisi@mydomain.com", "123456zhangsan", "PLAIN", 535),
        ])

    def test_a3_a7_passwd_file_seed_004(self):
        self.check_swaks("file", [
            ("mailuser@maildomain.test", "123456", "PLAIN", 235),      # seed hash, no prefix
            ("mailuser@maildomain.test", "123456", "LOGIN", 235),
            ("fileuser@example.org", "file-password-1", "PLAIN", 235),  # {SHA512-CRYPT} prefix
            ("fulluser@example.org", "full-format-pw2", "LOGIN", 235),  # uid:gid:...:home fields
            ("plainuser@example.org", "plain-secret-5", "PLAIN", 235),  # {PLAIN} prefix
            ("mailuser@maildomain.test", "1234567", "PLAIN", 535),
            ("plainuser@example.org", "plain-secret-", "LOGIN", 535),
            ("nobody@maildomain.test", "123456", "PLAIN", 535),
            ("mailuser", "123456", "PLAIN", 535),
        ])

    def test_username_format_lowercases_before_lookup(self):
        # auth_username_format = %Lu: the passwd-file is case-sensitive, so only the
        # lowercased name can match; MariaDB's utf8 collation would hide it for sql.
        self.check_swaks("file", [
            ("FILEUSER@EXAMPLE.ORG", "file-password-1", "PLAIN", 235),
            ("MailUser@MailDomain.Test", "123456", "LOGIN", 235),
        ])
        self.check_swaks("sql", [("EMAIL1@EXAMPLE.COM", "firstpassword", "PLAIN", 235)])

    def test_a13_bad_username_chars_fail_without_a_query(self):
        log = os.path.join(self.db.dir, "general.log")
        self.db.sql(f"SET GLOBAL general_log_file = '{log}'; SET GLOBAL general_log = 1;")
        self.addCleanup(self.db.sql, "SET GLOBAL general_log = 0;")
        cases = [(name, "firstpassword", mech, 535) for name in BAD_NAMES for mech in ("PLAIN", "LOGIN")]
        cases.append(("goodchars-unknown@example.com", "firstpassword", "PLAIN", 535))  # control
        self.check_swaks("sql", cases)
        for server in ac.SERVERS:  # `authd test` too, straight to each socket
            for name in BAD_NAMES[:2]:
                rc, out, err = self.auth_test("sql", server, name, "firstpassword")
                self.assertEqual(rc, 77, f"{server}: {name!r}: {out}{err}")
        with open(log, errors="replace") as f:
            queries = f.read()
        self.assertIn("goodchars-unknown@example.com", queries, "query log is not recording")
        self.assertNotIn("badchr", queries, "a username outside auth_username_chars was queried")

    # ------------------------------------------------------------ `authd test`, doveadm

    def test_authd_test_command_against_both_servers(self):
        cases = [("sql", "email1@example.com", "firstpassword", 0),
                 ("sql", "EMAIL1@EXAMPLE.COM", "firstpassword", 0),
                 ("sql", "email2@example.com", "firstpassword", 77),
                 ("sql", "ghost@example.com", "firstpassword", 77),
                 ("sqlb", "wangwu@mydomain.com", "123456wangwu", 77),
                 ("file", "fileuser@example.org", "file-password-1", 0),
                 ("file", "fileuser@example.org", "file-password-2", 77)]
        for kind, user, password, want in cases:
            dc = self.dovecots[kind]  # the reference's own client agrees with the expectation
            self.assertEqual(dc.doveadm_auth_test(dc.socket, user, password)[0], want,
                             f"REFERENCE doveadm auth test {user} {password}")
            for server in ac.SERVERS:
                for mech in (None, "login"):
                    with self.subTest(kind=kind, server=server, user=user, password=password, mech=mech):
                        rc, out, err = self.auth_test(kind, server, user, password, mech=mech)
                        line = f"passdb: {user} auth {'succeeded' if want == 0 else 'failed'}"
                        ctx = f"rc {rc}\n{out}{err}\n{self.context(f'{server}-{kind}')}"
                        self.assertEqual(rc, want, ctx)
                        self.assertIn(line, out.splitlines(), ctx)

    def test_doveadm_auth_test_against_authd(self):
        # Dovecot's own client as a second opinion on authd's handshake and replies.
        dc = self.dovecots["sql"]
        ad = self.authd("sql")
        for user, password, want in [("email1@example.com", "firstpassword", 0),
                                     ("email1@example.com", "wrong-password-2", 77)]:
            with self.subTest(user=user, password=password):
                self.note_secret(user, password)
                ref = dc.doveadm_auth_test(dc.socket, user, password)
                got = dc.doveadm_auth_test(ad.socket, user, password)
                self.assertEqual(ref[0], want, f"REFERENCE: {ref}")
                self.assertEqual(got[0], want, f"{got}\n{ad.log_tail()}")
                self.assertEqual(got[1].splitlines()[0], ref[1].splitlines()[0])

    # ------------------------------------------------------------ reload

    def _write_reload_users(self, lines):
        tmp = self.reload_users + ".tmp"
        sp.write_file(tmp, "".join(line + "\n" for line in lines))
        os.replace(tmp, self.reload_users)

    def test_sighup_reloads_changed_passwd_file(self):
        ad = self.authd("reload")
        with open(os.path.join(peers.DATA, "users.passwd")) as f:
            original = f.read().splitlines()
        self.addCleanup(self._write_reload_users, original)
        self.check_swaks("reload", [(NEWCOMER[0], NEWCOMER[1], "PLAIN", 535)], servers=("authd",))
        self._write_reload_users(original + [f"{NEWCOMER[0]}:{NEWCOMER[2]}"])
        ad.hup()
        self.poll_swaks("authd-reload", NEWCOMER[0], NEWCOMER[1], 235, timeout=5)
        self._write_reload_users([ln for ln in original if not ln.startswith("fileuser@")])
        ad.hup()
        self.poll_swaks("authd-reload", "fileuser@example.org", "file-password-1", 535, timeout=5)
        self.assertTrue(ad.alive(), ad.log_tail())

    def test_sighup_reloads_changed_config(self):
        # A new passdb line and auth_username_format = %Ln (log in with or without the
        # domain; the file has bare names).
        ad = self.authd("reload")
        other = sp.write_file(os.path.join(ad.dir, "other-users.passwd"),
                              f"reloaded:{{SHA512-CRYPT}}{RELOADED[2]}\n")
        original = ad.passdb
        self.addCleanup(self._restore_reload_config, original)
        pid = ad.proc.pid
        ad.passdb = f"passwd-file scheme=SHA512-CRYPT {other}"
        ad.write_config(auth_username_format="%Ln")
        ad.hup()
        self.poll_swaks("authd-reload", "Reloaded@example.org", RELOADED[1], 235, timeout=5)
        self.check_swaks("reload", [("reloaded", RELOADED[1], "LOGIN", 235),
                                    ("mailuser@maildomain.test", "123456", "PLAIN", 535)],
                         servers=("authd",))
        self.assertEqual(ad.proc.pid, pid)
        self.assertTrue(ad.alive(), ad.log_tail())

    def _restore_reload_config(self, passdb):
        ad = self.authds["reload"]
        ad.passdb = passdb
        ad.write_config(auth_username_format="%Lu")
        ad.hup()
        self.poll_swaks("authd-reload", "mailuser@maildomain.test", "123456", 235, timeout=5)

    def test_sighup_with_invalid_config_keeps_serving(self):
        ad = self.authd("reload")
        self.addCleanup(ad.write_config)
        good = ad.config_text()
        size = len(ad.log())
        sp.write_file(ad.conf, good.replace(f"passdb = {ad.passdb}", "passdb = sql /nonexistent/postern.conf.ext"))
        ad.hup()
        peers.wait_until(lambda: "/nonexistent/postern.conf.ext" in ad.log()[size:], 5,
                         what="a log line naming the missing dovecot-sql.conf.ext")
        time.sleep(0.2)
        self.assertTrue(ad.alive(), ad.log_tail())
        self.check_swaks("reload", [("mailuser@maildomain.test", "123456", "PLAIN", 235)],
                         servers=("authd",))

    # ------------------------------------------------------------ admin surface, logs

    def test_config_check(self):
        ad = self.authd("sql")
        rc, out, err = ad.check_config()
        self.assertEqual(rc, 0, out + err)
        broken = sp.Authd(self.ws, "authd-nopassdb", "x")
        sp.write_file(broken.conf, broken.config_text().replace("passdb = x\n", ""))
        rc, out, err = broken.check_config()
        self.assertNotEqual(rc, 0, f"a config without passdb was accepted: {out}{err}")

    def test_log_has_one_line_per_failed_login(self):
        # auth_verbose = yes (as the Dovecot fixture): one line per failure, none per
        # success at log_level = info (Postfix logs those itself).
        ad = self.authd("sql")
        size = len(ad.log())
        cases = [("email1@example.com", "firstpassword", "PLAIN", 235),
                 ("email2@example.com", "wrong-password-3", "LOGIN", 535),
                 ("ghostlog@example.com", "wrong-password-4", "PLAIN", 535),
                 ("spacey name@example.com", "wrong-password-5", "PLAIN", 535)]
        self.check_swaks("sql", cases, servers=("authd",))
        time.sleep(0.3)  # let the last lines reach the file
        lines = ad.log()[size:].splitlines()
        for user, marker, count in [("email1@example.com", "email1@", 0), ("email2@example.com", "email2@", 1),
                                    ("ghostlog@example.com", "ghostlog@", 1), ("spacey name@example.com", "spacey", 1)]:
            with self.subTest(user=user):
                hits = [ln for ln in lines if marker in ln]
                self.assertEqual(len(hits), count, f"lines naming {user!r}:\n" + "\n".join(hits)
                                 + "\n--- new log lines ---\n" + "\n".join(lines))

    def test_zz_logs_never_contain_passwords(self):
        # Named to run last: it checks every password this class sent to any authd.
        self.assertTrue(self.secrets)
        for kind, ad in self.authds.items():
            log = ad.log()
            for user, password in sorted(self.secrets):
                for form in ac.secret_forms(user, password):
                    with self.subTest(authd=kind, user=user, form=form):
                        self.assertNotIn(form, log, f"authd-{kind} logged a secret of {user!r}")


if __name__ == "__main__":
    peers.main()
