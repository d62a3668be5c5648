#!/usr/bin/env python3
"""test_lookupd_sqlite.py - lookupd over SQLite files (sqlite_table(5) .cf files), queried
by real postmap; the same cases as the MariaDB test, plus an unreadable database.

Run through ctest, or:
  POSTERN_LOOKUPD=build/h5/lookupd/lookupd python3 tests/integration/test_lookupd_sqlite.py
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import lookupd_cases as lc
import peers
import robustness_cases as rc


class SqliteBackend:
    native = "sqlite"

    def __init__(self, ws):
        self.cf_dir = ws.mkdir("cf")
        self.dbs = {"a": peers.SqliteDB(ws, "mailserver.db", "schema_a.sqlite.sql"),
                    "b": peers.SqliteDB(ws, "mailserver_b.db", "schema_b.sqlite.sql")}

    def render_cf(self, template, dest, db="a"):
        return peers.render(f"cf/sqlite-{template}.cf", dest, DBPATH=self.dbs[db].path)

    def table(self, template, db="a"):
        dest = os.path.join(self.cf_dir, f"sqlite-{db}-{template}.cf")
        return "sqlite:" + self.render_cf(template, dest, db)

    def broken_table(self):
        dest = os.path.join(self.cf_dir, "sqlite-broken.cf")
        peers.render("cf/sqlite-virtual-mailbox-domains.cf", dest,
                     DBPATH="/nonexistent/postern/mailserver.db")
        return "sqlite:" + dest

    def execute(self, sql, db="a"):
        self.dbs[db].sql(sql)

    def cleanup(self):
        pass  # the files go with the workspace


class SqliteLookupd(lc.AnswerCases, lc.CacheCases, rc.BadInputCases, rc.AdminCases,
                    lc.LookupdTestBase):
    tag = "sqlite"

    @classmethod
    def make_backend(cls, ws):
        return SqliteBackend(ws)

    def test_database_unreadable_gives_temp_error_and_recovers(self):
        # Root ignores chmod 000, and an open handle survives a rename, so the file is
        # overwritten in place with bytes that are not a database, then restored.
        maps = {"domains": ([self.T["domains"]], None, True),
                "aliases": ([self.T["aliases"]], "alias", True)}
        lk = self.start_lookupd("unreadable", maps=maps, cache_size=0)
        checks = [("domains", "example.com", "1"), ("aliases", "alias+x@example.com", "email1+x@example.com")]
        for map_name, key, want in checks:
            for label, table in lk.tables(map_name):
                self.assertFound(table, key, want, lk)
        path = self.backend.dbs["a"].path
        with open(path, "rb") as f:
            original = f.read()

        def restore():
            with open(path, "r+b") as f:
                f.write(original)
                f.truncate()
        self.addCleanup(restore)
        with open(path, "r+b") as f:
            f.write(b"this is not an SQLite database\n" * (len(original) // 31 + 1))
        self.assertTempEverywhere(lk, checks)
        self.assertTrue(lk.alive(), lk.log_tail())
        restore()
        restored = time.monotonic()
        for map_name, key, want in checks:
            for label, table in lk.tables(map_name):
                with self.subTest(phase="restored", map=map_name, transport=label):
                    self.poll_found(table, key, want, timeout=5 - (time.monotonic() - restored), lk=lk)

    def test_stale_answers_served_during_outage_only_when_enabled(self):
        path = self.backend.dbs["a"].path
        with open(path, "rb") as f:
            original = f.read()

        def restore():
            with open(path, "r+b") as f:
                f.write(original)
                f.truncate()
        self.addCleanup(restore)
        maps = {"domains": ([self.T["domains"]], None, False)}
        stale_on = self.start_lookupd("stale-on", maps=maps, cache_size=100, cache_hit_ttl="1s",
                                      cache_miss_ttl="1s", cache_serve_stale="yes")
        stale_off = self.start_lookupd("stale-off", maps=maps, cache_size=100, cache_hit_ttl="1s",
                                       cache_miss_ttl="1s", cache_serve_stale="no")
        for lk in (stale_on, stale_off):
            self.assertFound(lk.socketmap_unix("domains"), "example.com", "1", lk)
        time.sleep(1.2)  # both answers have expired
        with open(path, "r+b") as f:
            f.write(b"this is not an SQLite database\n" * (len(original) // 31 + 1))
        self.assertFound(stale_on.socketmap_unix("domains"), "example.com", "1", stale_on)
        self.assertIn("serving a stale answer", stale_on.log())
        # Never cached: nothing stale to serve, so a temporary failure, not "not found".
        self.assertTempError(stale_on.socketmap_unix("domains"), "hostname", stale_on)
        self.assertTempError(stale_off.socketmap_unix("domains"), "example.com", stale_off)

    def test_runs_as_the_configured_user_after_binding(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to drop privileges")
        import pwd
        nobody = pwd.getpwnam("nobody")
        lk = self.start_lookupd("unprivileged", maps={"domains": ([self.T["domains"]], None, True)},
                                user="nobody", socket_user="nobody")
        def ids():
            with open(f"/proc/{lk.proc.pid}/status") as f:
                return {line.split(":")[0]: line.split()[1:] for line in f if line.startswith(("Uid", "Gid"))}
        # The sockets accept before the switch, so wait for it (bounded).
        deadline = time.monotonic() + 5
        while ids()["Uid"] != [str(nobody.pw_uid)] * 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        ids = ids()
        self.assertEqual(ids["Uid"], [str(nobody.pw_uid)] * 4, lk.log_tail())
        self.assertEqual(ids["Gid"], [str(nobody.pw_gid)] * 4, lk.log_tail())
        self.assertEqual(os.stat(lk.socket).st_uid, nobody.pw_uid)
        self.assertEqual(os.stat(lk.socket).st_mode & 0o777, 0o666)
        # Bound as root, answering as nobody, over every transport.
        for label, table in lk.tables("domains"):
            with self.subTest(transport=label):
                self.assertFound(table, "example.com", "1", lk)


if __name__ == "__main__":
    peers.main()
