#!/usr/bin/env python3
"""test_lookupd_mariadb.py - lookupd over a real MariaDB, queried by real postmap.

One mariadbd per run (setUpClass): database `mailserver` (schema A, seed [001] data +
test rows) and `mailserver_b` (schema B, seed [002]), user mailuser/mailuserpass with
SELECT only. The standard .cf files reach MariaDB through both `hosts` forms: inet for
domains/aliases, unix socket for mailboxes/email2email. Run through ctest, or:
  POSTERN_LOOKUPD=build/h5/lookupd/lookupd python3 tests/integration/test_lookupd_mariadb.py
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import lookupd_cases as lc
import peers
import robustness_cases as rc

DATABASES = {"a": "mailserver", "b": "mailserver_b"}
# Which `hosts =` form each template uses by default (both forms stay covered).
HOSTS_FORM = {"virtual-mailbox-domains": "inet", "virtual-alias-maps": "inet",
              "virtual-mailbox-maps": "unix", "virtual-mailbox-maps-enable": "unix",
              "virtual-email2email": "unix"}


class MariaDBBackend:
    """A mariadbd with both databases loaded, and the .cf files that point at it."""
    native = "mysql"

    def __init__(self, ws, name="mariadb"):
        self.cf_dir = ws.mkdir(f"cf-{name}")
        self.db = peers.MariaDB(ws, name)
        try:
            self.db.start()
            self.db.create_database("mailserver", "schema_a.sql")
            self.db.create_database("mailserver_b", "schema_b.sql")
        except BaseException:
            self.db.cleanup()
            raise

    def render_cf(self, template, dest, db="a", hosts=None):
        hosts = hosts or HOSTS_FORM[template]
        value = self.db.hosts_unix if hosts == "unix" else self.db.hosts_inet
        return peers.render(f"cf/mysql-{template}.cf", dest, HOSTS=value, DBNAME=DATABASES[db])

    def table(self, template, db="a", hosts=None):
        hosts = hosts or HOSTS_FORM[template]
        dest = os.path.join(self.cf_dir, f"mysql-{db}-{template}-{hosts}.cf")
        return "mysql:" + self.render_cf(template, dest, db, hosts)

    def broken_table(self):
        dest = os.path.join(self.cf_dir, "mysql-broken.cf")
        peers.render("cf/mysql-virtual-mailbox-domains.cf", dest,
                     HOSTS=f"inet:127.0.0.1:{peers.free_port()}", DBNAME="mailserver")
        return "mysql:" + dest

    def execute(self, sql, db="a"):
        self.db.sql(sql, db=DATABASES[db])

    def cleanup(self):
        self.db.cleanup()


class MariaDBLookupd(lc.AnswerCases, lc.CacheCases, rc.BadInputCases, rc.AdminCases,
                     lc.LookupdTestBase):
    tag = "mariadb"

    @classmethod
    def make_backend(cls, ws):
        return MariaDBBackend(ws)

    def test_hosts_inet_and_unix_forms(self):
        maps = {}
        for form in ("inet", "unix"):
            table = self.backend.table("virtual-mailbox-domains", hosts=form)
            self.assertEqual(self.pf.query("example.com", table), (0, "1\n", ""), f"native {form}")
            maps[f"domains_{form}"] = ([table], None, False)
        lk = self.start_lookupd("hosts-forms", maps=maps, cache_size=0)
        for form in ("inet", "unix"):
            with self.subTest(hosts=form):
                self.assertFound(lk.socketmap_unix(f"domains_{form}"), "example.com", "1", lk)
                self.assertNotFound(lk.socketmap_unix(f"domains_{form}"), "nosuch.example.org", lk)

    # The outage tests stop their own mariadbd, so the shared one (and the shared
    # lookupd's connections) stay untouched for the other tests.
    def _private_database_and_lookupd(self, name):
        backend = MariaDBBackend(self.ws, name)
        self.addCleanup(backend.cleanup)
        maps = {"domains": ([backend.table("virtual-mailbox-domains")], None, True),     # hosts = inet:
                "mailboxes": ([backend.table("virtual-mailbox-maps")], "address", True),  # hosts = unix:
                "aliases": ([backend.table("virtual-alias-maps")], "alias", True)}
        lk = self.start_lookupd(name, maps=maps, cache_size=0)
        checks = [("domains", "example.com", "1"), ("mailboxes", "email1+x@example.com", "1"),
                  ("aliases", "alias@example.com", "email1@example.com")]
        for _ in range(3):  # every worker should have used its connection
            for map_name, key, want in checks:
                for label, table in lk.tables(map_name):
                    self.assertFound(table, key, want, lk)
        return backend.db, lk, checks

    def test_database_outage_gives_temp_error_and_recovers_without_restart(self):
        db, lk, checks = self._private_database_and_lookupd("outage")
        db.stop()
        self.assertTempEverywhere(lk, checks)
        self.assertTrue(lk.alive(), lk.log_tail())
        db.start()  # same datadir, same port, same socket
        ready = time.monotonic()
        for map_name, key, want in checks:
            for label, table in lk.tables(map_name):
                with self.subTest(phase="up", map=map_name, transport=label):
                    self.poll_found(table, key, want, timeout=5 - (time.monotonic() - ready), lk=lk)
        self.assertLess(time.monotonic() - ready, 5, "recovery took 5 s or more")

    def test_database_restart_while_idle_is_not_seen_by_clients(self):
        # An admin restarts MariaDB while lookupd is idle: the pooled connections are dead,
        # but the next lookups must still be answered (reconnect and retry once), not be
        # deferred with TEMP as if the database were down.
        db, lk, checks = self._private_database_and_lookupd("idle-restart")
        db.stop()
        db.start()
        for _ in range(3):
            for map_name, key, want in checks:
                for label, table in lk.tables(map_name):
                    with self.subTest(map=map_name, transport=label):
                        self.assertFound(table, key, want, lk)

if __name__ == "__main__":
    peers.main()
