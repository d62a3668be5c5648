"""robustness_cases.py - lookupd against bad clients, and its admin surface (-q, SIGHUP).

Mixins for a LookupdTestBase subclass (see lookupd_cases.py). Bad input goes through the
raw clients in wire.py; each bad request must get a PERM reply (socketmap), a 4xx/5xx
line (tcp_table) or a closed connection, never a hang or a found answer, and afterwards a
new client must still get correct answers.
"""

import os
import socket
import time

import peers
from wire import SocketmapClient, TcpTableClient, netstring


class BadInputCases:

    def _socketmap_endpoints(self):
        return [("unix", self.lk.socket), ("inet", ("127.0.0.1", self.lk.inet_port))]

    def _assert_socketmap_still_serves(self):
        for label, address in self._socketmap_endpoints():
            with SocketmapClient(address) as c:
                self.assertEqual(c.request("domains", "example.com"), "OK 1",
                                 f"after bad input ({label})\n{self.lk.log_tail()}")
        self.assertTrue(self.lk.alive(), self.lk.log_tail())

    def _assert_rejected(self, address, payload, what):
        """Sends raw bytes; the reply must be PERM or the connection must close."""
        with SocketmapClient(address) as c:
            c.send_raw(payload)
            try:
                reply = c.read_reply()
            except socket.timeout:
                self.fail(f"{what}: no reply and connection not closed within 5 s")
            except ValueError as e:
                self.fail(f"{what}: malformed reply: {e}")
            if reply is not None:
                self.assertTrue(reply.startswith(b"PERM"), f"{what}: got {reply[:200]!r}")

    def test_half_closed_client_gets_every_reply(self):
        # `printf ... | nc -N` and health probes send their requests, then shut down their
        # writing side: the replies must still come, also for lookups that go to SQL.
        keys = [f"halfclose{i}@example.com" for i in range(20)] + ["email1@example.com", "example.com"]
        requests = b"".join(netstring(b"mailboxes " + k.encode()) for k in keys[:-1])
        requests += netstring(b"domains example.com")
        with SocketmapClient(self.lk.socket) as c:
            c.send_raw(requests)
            c.sock.shutdown(socket.SHUT_WR)
            replies = [c.read_reply() for _ in keys]
            self.assertIsNone(c.read_reply(), "the server closes after the last reply")
        self.assertEqual(replies, [b"NOTFOUND "] * 20 + [b"OK 1", b"OK 1"], self.lk.log_tail())

    def test_bad_socketmap_requests(self):
        long_key = b"x" * 10001 + b"@example.com"
        cases = [
            ("non-digit length", b"abc:domains example.com,"),
            ("wrong terminator", b"19:domains example.com;"),
            ("short length", b"12:domains example.com,"),
            ("absurd length", b"99999999999:domains example.com,"),
            ("no space", netstring(b"domains")),
            ("empty payload", netstring(b"")),
            ("key over 10000 bytes", netstring(b"domains " + long_key)),
            ("unknown map", netstring(b"nosuchmap example.com")),
            ("NUL in key", netstring(b"domains exa\x00mple.com")),
            ("NUL in alias key", netstring(b"aliases alias@example.com\x00x")),
        ]
        for label, address in self._socketmap_endpoints():
            for what, payload in cases:
                with self.subTest(transport=label, case=what):
                    self._assert_rejected(address, payload, what)
                    self._assert_socketmap_still_serves()
        # postmap itself still works.
        self.assertFound(self.lk.socketmap_unix("aliases"), "alias@example.com", "email1@example.com")

    def test_socketmap_key_of_exactly_10000_bytes_is_a_normal_lookup(self):
        with SocketmapClient(self.lk.socket) as c:
            self.assertEqual(c.request("domains", "d" * 10000), "NOTFOUND ", self.lk.log_tail())

    def test_socketmap_split_and_pipelined_requests(self):
        with SocketmapClient(self.lk.socket) as c:
            c.send_raw(b"19:domains exa")
            time.sleep(0.1)
            c.send_raw(b"mple.com,")
            self.assertEqual(c.read_reply(), b"OK 1")
            c.send_raw(netstring("aliases alias@example.com") + netstring("domains nosuch.example.org"))
            self.assertEqual(c.read_reply(), b"OK email1@example.com")
            self.assertEqual(c.read_reply(), b"NOTFOUND ")

    def test_bad_tcp_table_requests(self):
        address = ("127.0.0.1", self.lk.tcp_ports["domains"])
        cases = [
            ("bad %XX", b"get exa%zzmple.com\n"),
            ("truncated %X", b"get example.com%4\n"),
            ("NUL via %00", b"get exa%00mple.com\n"),
            ("unknown verb", b"put example.com 1\n"),
            ("no key", b"get\n"),
            ("key over 10000 bytes", b"get " + b"x" * 20000 + b"\n"),
        ]
        for what, payload in cases:
            with self.subTest(case=what):
                with TcpTableClient(address) as c:
                    c.send_raw(payload)
                    try:
                        line = c.read_line()
                    except socket.timeout:
                        self.fail(f"{what}: no reply and connection not closed within 5 s")
                    if line is not None:
                        self.assertRegex(line, r"^[45]\d\d ", f"{what}: got {line[:200]!r}")
                with TcpTableClient(address) as c:
                    self.assertEqual(c.get("example.com"), "200 1", self.lk.log_tail())
        with TcpTableClient(("127.0.0.1", self.lk.tcp_ports["aliases"])) as c:
            self.assertEqual(c.get("all@example.com"), "200 email1@example.com,email2@example.com")
            self.assertRegex(c.get("nobody@example.com"), r"^500 ")
            # Encoded key: "alias+tag@example.com" with the '+' as %2B.
            self.assertEqual(c.get("alias%2Btag@example.com"), "200 email1+tag@example.com")


class AdminCases:

    def test_query_command_prints_sql_and_exit_status(self):
        lk = self.lk
        rc, out, err = lk.query_command("email1@example.com", "mailboxes")
        both = out + err
        self.assertEqual(rc, 0, both)
        self.assertIn("SELECT 1 FROM virtual_users WHERE email='email1@example.com'", both)
        rc, out, err = lk.query_command("email1+tag@example.com", "mailboxes")
        both = out + err
        self.assertEqual(rc, 0, both)
        self.assertIn("email='email1+tag@example.com'", both)   # the full key first
        self.assertIn("email='email1@example.com'", both)       # then the fallback
        rc, out, err = lk.query_command("all@example.com", "aliases")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("email1@example.com,email2@example.com", out)
        rc, out, err = lk.query_command("nobody@example.com", "mailboxes")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("SELECT 1 FROM virtual_users WHERE email='nobody@example.com'", out + err)

    def test_query_command_exit_2_when_database_unreachable(self):
        lk = self.new_lookupd("qbroken", maps={"domains": ([self.backend.broken_table()], None, False)})
        lk.write_config()
        start = time.monotonic()
        rc, out, err = lk.query_command("example.com", "domains")
        self.assertEqual(rc, 2, out + err)
        self.assertLess(time.monotonic() - start, 10, "-q took too long with the database down")

    def test_sighup_with_invalid_config_keeps_serving_and_logs_why(self):
        lk = self.start_lookupd("hup-bad")
        good = lk.config_text()
        missing = "/nonexistent/postern-missing-map.cf"
        lk.write_config(good.replace(self.T["domains"].split(":", 1)[1], missing))
        lk.hup()
        peers.wait_until(lambda: missing in lk.log(), 5, what=f"log line naming {missing}")
        time.sleep(0.2)
        self.assertTrue(lk.alive(), lk.log_tail())
        for label, table in lk.tables("domains"):
            with self.subTest(transport=label):
                self.assertFound(table, "example.com", "1", lk)
        # A broken config syntax is refused too.
        lk.write_config(good + "this line is not key = value\n")
        size = len(lk.log())
        lk.hup()
        peers.wait_until(lambda: len(lk.log()) > size, 5, what="a log line about the refused reload")
        time.sleep(0.2)
        self.assertTrue(lk.alive(), lk.log_tail())
        self.assertFound(lk.socketmap_unix("aliases"), "alias@example.com", "email1@example.com", lk)

    def test_sighup_with_changed_cf_takes_effect(self):
        lk = self.new_lookupd("hup-cf", maps={})
        cf = os.path.join(lk.dir, "domains.cf")
        self.backend.render_cf("virtual-mailbox-domains", cf)
        native = self.T["domains"].split(":", 1)[0]
        lk.add_map("domains", [f"{native}:{cf}"], tcp=True)
        self.addCleanup(lk.stop)
        lk.start()  # cache on (defaults): the reload must not serve answers of the old query
        for label, table in lk.tables("domains"):
            self.assertFound(table, "example.com", "1", lk)
        with open(cf) as f:
            text = f.read()
        with open(cf, "w") as f:
            f.write(text.replace("SELECT 1 FROM", "SELECT name FROM"))
        lk.hup()
        for label, table in lk.tables("domains"):
            with self.subTest(transport=label):
                self.poll_found(table, "example.com", "example.com", timeout=5, lk=lk)

    def test_unix_socket_gets_socket_mode(self):
        mode = os.stat(self.lk.socket).st_mode & 0o777
        self.assertEqual(oct(mode), oct(0o666), "socket_mode = 0666 not applied")

    def test_sigterm_exits_promptly_with_idle_clients_connected(self):
        # Postfix keeps its table connections open while idle; they must not block exit.
        lk = self.new_lookupd("term")
        self.addCleanup(lk.stop)
        lk.start()
        idle = [SocketmapClient(lk.socket), SocketmapClient(("127.0.0.1", lk.inet_port)),
                TcpTableClient(("127.0.0.1", lk.tcp_ports["domains"]))]
        for c in idle:
            self.addCleanup(c.close)
        self.assertEqual(idle[0].request("domains", "example.com"), "OK 1")
        self.assertEqual(idle[2].get("example.com"), "200 1")
        start = time.monotonic()
        rc = lk.stop(timeout=10)
        self.assertEqual(rc, 0, lk.log_tail())
        self.assertLess(time.monotonic() - start, 5, "SIGTERM took 5 s or more with idle clients")
