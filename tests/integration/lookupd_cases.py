"""lookupd_cases.py - lookupd's answers through real postmap, for any SQL backend.

LookupdTestBase starts one backend (MariaDB or SQLite, chosen by the subclass's
make_backend), a postmap config dir and a shared "main" lookupd serving the seed maps,
once per test class. Tests that change data or need other settings start their own
lookupd. AnswerCases checks the seed scenarios (seed-requirements §3.2 L1-L12) over
socketmap unix, socketmap inet and tcp_table, and compares plain keys with Postfix's
native mysql:/sqlite: tables; CacheCases checks the result cache against SQL changes.

A backend provides: native ('mysql' or 'sqlite'), table(template, db='a', **opts) -> a
Postfix table name for a rendered data/cf/<native>-<template>.cf, render_cf(template,
dest, db='a'), broken_table() (a table whose database cannot be reached),
execute(sql, db='a'), cleanup().
"""

import os
import re
import time
import unittest

import peers
from wire import SocketmapClient, TcpTableClient, hex_quote

NEW_PASSWORD = "$6$2d4f6a8c0e1b3d5f$BtDAzYKTUc0MU2lT64Pv/UpvEDRa1wrAqD4cEJiAPUMogVkf7gL8E4rE9BO.kWXkGEcv1uUVLwdj.W9YU0IAY."
CACHE_PASSWORD = "$6$6c8e0a2b4d6f8a1c$fH3P1o9C3NBhOHxWagqEZysHk9OgiEAc9shHQRasXZNF3dQBoepJjVaw1u0j4JXq1W7tyhqoD.pPFgYq.0djy0"

# map name -> (cf template, database, kind, served over tcp_table too)
STANDARD_MAPS = {
    "domains": ("virtual-mailbox-domains", "a", None, True),
    "mailboxes": ("virtual-mailbox-maps", "a", "address", True),
    "aliases": ("virtual-alias-maps", "a", "alias", True),
    "email2email": ("virtual-email2email", "a", None, False),
    "b_domains": ("virtual-mailbox-domains", "b", None, False),
    "b_mailboxes": ("virtual-mailbox-maps-enable", "b", "address", False),
    "b_aliases": ("virtual-alias-maps", "b", "alias", False),
}

TEMP_ERROR = re.compile(r"temporary error|query error")


class LookupdTestBase(unittest.TestCase):
    tag = "lookupd"
    maxDiff = None

    @classmethod
    def make_backend(cls, ws):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.ws = peers.Workspace(cls.tag)
        cls.addClassCleanup(cls.ws.remove)
        cls.backend = cls.make_backend(cls.ws)
        cls.addClassCleanup(cls.backend.cleanup)
        cls.pf = peers.Postfix(cls.ws)
        cls.T = {name: cls.backend.table(tpl, db=db) for name, (tpl, db, _, _) in STANDARD_MAPS.items()}
        cls.lk = cls.new_lookupd("main")
        cls.addClassCleanup(cls.lk.stop)
        cls.lk.start()

    @classmethod
    def new_lookupd(cls, name, maps=None):
        """An unstarted lookupd serving STANDARD_MAPS (or maps: name -> (sources, kind, tcp))."""
        lk = peers.Lookupd(cls.ws, name)
        if maps is None:
            maps = {n: ([cls.T[n]], kind, tcp) for n, (_, _, kind, tcp) in STANDARD_MAPS.items()}
        for map_name, (sources, kind, tcp) in maps.items():
            lk.add_map(map_name, sources, kind=kind, tcp=tcp)
        return lk

    def start_lookupd(self, name, maps=None, **settings):
        """A per-test lookupd, stopped at the end of the test."""
        lk = self.new_lookupd(name, maps)
        self.addCleanup(lk.stop)
        return lk.start(**settings)

    def execute(self, sql, db="a"):
        self.backend.execute(sql, db=db)

    # -- assertions over postmap; messages carry the lookupd log tail.

    def _context(self, table, key, lk, result):
        lk = lk or self.lk
        return f"\npostmap -q {key!r} {table} -> {result!r}\n{lk.log_tail()}"

    def assertFound(self, table, key, want, lk=None):
        result = self.pf.query(key, table)
        self.assertEqual(result, (0, want + "\n", ""), self._context(table, key, lk, result))

    def assertNotFound(self, table, key, lk=None):
        result = self.pf.query(key, table)
        self.assertEqual(result, (1, "", ""), self._context(table, key, lk, result))

    def assertTempError(self, table, key, lk=None):
        """rc 1 with a temporary/query error on stderr, i.e. not "not found"."""
        result = self.pf.query(key, table)
        rc, out, err = result
        ctx = self._context(table, key, lk, result)
        self.assertEqual((rc, out), (1, ""), ctx)
        self.assertRegex(err, TEMP_ERROR, ctx)
        if table.startswith("tcp:"):
            # A 400 reply, not a dropped connection (Postfix would retry 10 times).
            self.assertNotIn("unexpected EOF", err, ctx)

    def assertTempEverywhere(self, lk, checks):
        """For (map, key, _) checks: the first through postmap over every transport (each
        costs 1 s: postmap sleeps after a fatal error), the rest with the raw clients."""
        first, rest = checks[0], checks[1:]
        for label, table in lk.tables(first[0]):
            with self.subTest(map=first[0], transport=label):
                self.assertTempError(table, first[1], lk)
        for map_name, key, _ in rest:
            with self.subTest(map=map_name, transport="raw socketmap"):
                with SocketmapClient(lk.socket) as c:
                    reply = c.request(map_name, key)
                self.assertRegex(reply or "(closed)", r"^TEMP ", lk.log_tail())
            if map_name in lk.tcp_ports:
                with self.subTest(map=map_name, transport="raw tcp"):
                    with TcpTableClient(("127.0.0.1", lk.tcp_ports[map_name])) as c:
                        line = c.get(hex_quote(key))
                    self.assertRegex(line or "(closed)", r"^4\d\d ", lk.log_tail())

    def poll_found(self, table, key, want, timeout, lk=None):
        """Seconds until postmap answers want; fails after timeout."""
        start = time.monotonic()
        while True:
            result = self.pf.query(key, table)
            elapsed = time.monotonic() - start
            if result == (0, want + "\n", ""):
                return elapsed
            if elapsed > timeout:
                self.fail(f"no {want!r} within {timeout}s" + self._context(table, key, lk, result))
            time.sleep(0.05)

    def poll_not_found(self, table, key, timeout, lk=None):
        start = time.monotonic()
        while True:
            result = self.pf.query(key, table)
            elapsed = time.monotonic() - start
            if result == (1, "", ""):
                return elapsed
            if elapsed > timeout:
                self.fail(f"still answering after {timeout}s" + self._context(table, key, lk, result))
            time.sleep(0.05)


class AnswerCases:
    """The seeds' postmap scenarios against lookupd, over every transport."""

    def test_l1_domains(self):
        for label, table in self.lk.tables("domains"):
            with self.subTest(transport=label):
                for key in ("example.com", "hostname.example.com", "hostname", "localhost.example.com"):
                    self.assertFound(table, key, "1")

    def test_l2_mailboxes_and_extension(self):
        for label, table in self.lk.tables("mailboxes"):
            with self.subTest(transport=label):
                self.assertFound(table, "email1@example.com", "1")
                self.assertFound(table, "email2@example.com", "1")
                self.assertFound(table, "email1+tag@example.com", "1")
                self.assertNotFound(table, "nobody+tag@example.com")

    def test_l3_alias_and_extension_propagation(self):
        for label, table in self.lk.tables("aliases"):
            with self.subTest(transport=label):
                self.assertFound(table, "alias@example.com", "email1@example.com")
                self.assertFound(table, "alias+tag@example.com", "email1+tag@example.com")

    def test_multi_destination_alias_comma_joined_in_row_order(self):
        for label, table in self.lk.tables("aliases"):
            with self.subTest(transport=label):
                self.assertFound(table, "all@example.com", "email1@example.com,email2@example.com")

    def test_catch_all_domain(self):
        for label, table in self.lk.tables("aliases"):
            with self.subTest(transport=label):
                self.assertFound(table, "anyone@hostname.example.com", "email2@example.com")
                self.assertNotFound(table, "anyone@example.com")  # no catch-all there

    def test_l12_unknown_keys_not_found_without_error(self):
        cases = [("domains", "nosuch.example.org"), ("domains", "example"),
                 ("mailboxes", "nobody@example.com"), ("mailboxes", "email1@nosuch.example.org"),
                 ("aliases", "nobody@example.com"), ("email2email", "nobody@example.com"),
                 ("mailboxes", "email1@"), ("mailboxes", "@example.com"),
                 ("mailboxes", "jöhn doe@example.com"), ("aliases", "jöhn+x@example.com")]
        for map_name, key in cases:
            for label, table in self.lk.tables(map_name):
                with self.subTest(map=map_name, key=key, transport=label):
                    self.assertNotFound(table, key)

    def test_keys_are_case_insensitive(self):
        for label, table in self.lk.tables("mailboxes"):
            with self.subTest(transport=label):
                self.assertFound(table, "EMAIL1@Example.COM", "1")
                self.assertFound(table, "Email1+Tag@EXAMPLE.com", "1")
        for label, table in self.lk.tables("domains"):
            with self.subTest(transport=label):
                self.assertFound(table, "EXAMPLE.COM", "1")
        for label, table in self.lk.tables("aliases"):
            with self.subTest(transport=label):
                self.assertFound(table, "ALIAS@Example.Com", "email1@example.com")
                self.assertFound(table, "Anyone@HOSTNAME.example.com", "email2@example.com")

    def test_l10_email2email(self):
        self.assertFound(self.lk.socketmap_unix("email2email"), "email1@example.com", "email1@example.com")

    def test_same_answers_as_native_table_for_plain_keys(self):
        keys = {
            "domains": ["example.com", "hostname.example.com", "hostname", "localhost.example.com",
                        "EXAMPLE.COM", "Hostname", "nosuch.example.org", "com"],
            "mailboxes": ["email1@example.com", "email2@example.com", "EMAIL1@Example.COM",
                          "nobody@example.com", "email1@hostname.example.com", "example.com"],
            "aliases": ["alias@example.com", "all@example.com", "ALL@EXAMPLE.COM",
                        "email1@example.com", "nobody@nowhere.example"],
            "email2email": ["email1@example.com", "Email2@Example.com", "alias@example.com"],
            "b_mailboxes": ["zhangsan@mydomain.com", "lisi@mydomain.com", "wangwu@mydomain.com",
                            "nobody@mydomain.com"],
            "b_aliases": ["all@mydomain.com", "zhangsan@mydomain.com"],
        }
        for map_name, map_keys in keys.items():
            native = self.pf.query_bulk(map_keys, self.T[map_name])
            self.assertEqual(native[2], "", f"native {self.T[map_name]} failed: {native}")
            for label, table in self.lk.tables(map_name):
                with self.subTest(map=map_name, transport=label):
                    ours = self.pf.query_bulk(map_keys, table)
                    self.assertEqual(ours, native, f"\nnative: {self.T[map_name]}\n{self.lk.log_tail()}")
            for key in map_keys:  # single-key form too
                with self.subTest(map=map_name, key=key):
                    self.assertEqual(self.pf.query(key, self.lk.socketmap_unix(map_name)),
                                     self.pf.query(key, self.T[map_name]), self.lk.log_tail())

    def test_l4_l5_l6_seed002_enable_column(self):
        m = self.lk.socketmap_unix
        self.assertFound(m("b_domains"), "mydomain.com", "1")
        self.assertFound(m("b_mailboxes"), "lisi@mydomain.com", "1")
        self.assertFound(m("b_mailboxes"), "zhangsan@mydomain.com", "1")
        self.assertNotFound(m("b_mailboxes"), "wangwu@mydomain.com")      # enable = 0
        self.assertNotFound(m("b_mailboxes"), "wangwu+tag@mydomain.com")
        self.assertFound(m("b_aliases"), "all@mydomain.com", "zhangsan@mydomain.com,lisi@mydomain.com")

    def test_injection_and_path_keys_not_found(self):
        keys = ["' OR 1=1 --", "x' OR '1'='1", "' OR '1'='1'@example.com", "\\' OR 1=1 -- @example.com",
                "../", "../../etc/passwd", "../@example.com", "%s%d%u@example.com", "a\"b@example.com"]
        for map_name in ("domains", "mailboxes", "aliases"):
            for label, table in self.lk.tables(map_name):
                for key in keys:
                    with self.subTest(map=map_name, transport=label, key=key):
                        self.assertNotFound(table, key)

    def test_catch_all_in_first_source_does_not_capture_later_source(self):
        # virtual_alias_maps = alias.cf, email2email.cf with "@example.com" in alias.cf:
        # Postfix tries each key step across all sources before the next step.
        self.execute("INSERT INTO virtual_aliases (domain_id, source, destination) "
                     "VALUES (1, '@example.com', 'catchall@example.net');")
        self.addCleanup(self.execute, "DELETE FROM virtual_aliases WHERE source='@example.com';")
        lk = self.start_lookupd("chain", maps={
            "aliases": ([self.T["aliases"], self.T["email2email"]], "alias", True)}, cache_size=0)
        for label, table in lk.tables("aliases"):
            with self.subTest(transport=label):
                self.assertFound(table, "email2@example.com", "email2@example.com", lk)
                self.assertFound(table, "email2+tag@example.com", "email2+tag@example.com", lk)
                self.assertFound(table, "alias@example.com", "email1@example.com", lk)
                self.assertFound(table, "nobody@example.com", "catchall@example.net", lk)


class CacheCases:
    """The result cache against rows changing underneath it."""

    def test_cache_serves_old_answer_within_hit_ttl(self):
        lk = self.start_lookupd("cache-on", cache_size=100, cache_hit_ttl="2s", cache_miss_ttl="1s")
        table = lk.socketmap_unix("mailboxes")
        self.execute(f"INSERT INTO virtual_users (domain_id, password, email) "
                     f"VALUES (1, '{CACHE_PASSWORD}', 'cached@example.com');")
        self.addCleanup(self.execute, "DELETE FROM virtual_users WHERE email='cached@example.com';")
        self.assertFound(table, "cached@example.com", "1", lk)
        self.execute("DELETE FROM virtual_users WHERE email='cached@example.com';")
        deleted = time.monotonic()
        self.assertFound(table, "cached@example.com", "1", lk)  # still cached
        self.poll_not_found(table, "cached@example.com", timeout=2 + 3, lk=lk)
        self.assertGreater(time.monotonic() - deleted, 1.0, "hit answer expired far before cache_hit_ttl")

    def test_cache_off_sees_every_change(self):
        lk = self.start_lookupd("cache-off", cache_size=0)
        table = lk.socketmap_unix("mailboxes")
        self.addCleanup(self.execute, "DELETE FROM virtual_users WHERE email='uncached@example.com';")
        self.assertNotFound(table, "uncached@example.com", lk)
        self.execute(f"INSERT INTO virtual_users (domain_id, password, email) "
                     f"VALUES (1, '{CACHE_PASSWORD}', 'uncached@example.com');")
        self.assertFound(table, "uncached@example.com", "1", lk)
        self.execute("DELETE FROM virtual_users WHERE email='uncached@example.com';")
        self.assertNotFound(table, "uncached@example.com", lk)

    def test_l11_new_domain_visible_after_miss_ttl(self):
        lk = self.start_lookupd("newdomain", cache_size=100, cache_hit_ttl="30s", cache_miss_ttl="1s")
        m = lk.socketmap_unix
        self.addCleanup(self.execute,
                        "DELETE FROM virtual_aliases WHERE source='alias@newdomain.com';"
                        "DELETE FROM virtual_users WHERE email='email3@newdomain.com';"
                        "DELETE FROM virtual_domains WHERE name='newdomain.com';")
        for map_name, key in (("domains", "newdomain.com"), ("mailboxes", "email3@newdomain.com"),
                              ("aliases", "alias@newdomain.com")):
            self.assertNotFound(m(map_name), key, lk)
        # seed [001]: "all you'll have to do is add a new line to the appropriate MySQL table"
        self.execute(
            "INSERT INTO virtual_domains (name) VALUES ('newdomain.com');"
            f"INSERT INTO virtual_users (domain_id, password, email) SELECT id, '{NEW_PASSWORD}', "
            "'email3@newdomain.com' FROM virtual_domains WHERE name='newdomain.com';"
            "INSERT INTO virtual_aliases (domain_id, source, destination) SELECT id, "
            "'alias@newdomain.com', 'myemail@gmail.com' FROM virtual_domains WHERE name='newdomain.com';")
        self.poll_found(m("domains"), "newdomain.com", "1", timeout=1 + 2, lk=lk)
        self.poll_found(m("mailboxes"), "email3@newdomain.com", "1", timeout=1 + 2, lk=lk)
        self.poll_found(m("aliases"), "alias@newdomain.com", "myemail@gmail.com", timeout=1 + 2, lk=lk)
        self.assertFound(lk.tcp("aliases"), "alias@newdomain.com", "myemail@gmail.com", lk)
