#!/usr/bin/env python3
"""test_doveadm_vectors.py - `authd pw` against the real `doveadm pw`: every hash doveadm
makes verifies with `authd pw -t` (and a wrong password fails), every hash authd makes
verifies with `doveadm pw -t`, for each scheme both support; plus the messages and exit
codes scripts rely on. No daemon is started: doveadm pw runs with an empty config.

Run through ctest, or:
  POSTERN_AUTHD=build/debug/authd/authd python3 tests/integration/test_doveadm_vectors.py
"""

import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import peers

PASSWORD = "s3cret pä$$ wörd"
WRONG = "S3cret pä$$ wörd"  # differs in the first byte: DES-CRYPT reads 8 characters only
USER = "alice@example.com"  # DIGEST-MD5 hashes user:realm:password
MISMATCH = "reverse password verification check failed: Password mismatch"

# OTP: Dovecot 2.3 only, removed in 2.4; authd does not offer it.
NOT_IN_AUTHD = {"OTP"}
# doveadm writes PLAIN-TRUNC as the bare password, which its own -t then rejects (no
# "<length>-" prefix); authd writes "<length>-<password>". Checked by hand below.
NOT_GENERATED_ALIKE = {"PLAIN-TRUNC"}


def authd_binary():
    path = os.environ.get("POSTERN_AUTHD", "")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"POSTERN_AUTHD={path!r} is not an executable; run through ctest "
                           "or set it to <build>/authd/authd")
    return path


class DoveadmVectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.authd = authd_binary()
        cls.doveadm = peers.require_program("doveadm", "dovecot-core")
        cls.doveadm_schemes = set(cls.doveadm_pw("-l").stdout.split())
        cls.authd_schemes = set(cls.authd_pw("-l").stdout.split())
        cls.common = sorted((cls.doveadm_schemes & cls.authd_schemes) - NOT_GENERATED_ALIKE)

    @classmethod
    def run_tool(cls, argv, stdin=None):
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60,
                              stdin=None if stdin is not None else subprocess.DEVNULL)

    @classmethod
    def authd_pw(cls, *args, stdin=None):
        return cls.run_tool([cls.authd, "pw", *args], stdin)

    @classmethod
    def doveadm_pw(cls, *args):
        # -c /dev/null: independent of the host's /etc/dovecot
        return cls.run_tool([cls.doveadm, "-c", "/dev/null", "pw", *args])

    def hash_with(self, tool, scheme, *extra):
        user = ("-u", USER) if scheme == "DIGEST-MD5" else ()
        r = tool("-s", scheme, "-p", PASSWORD, *user, *extra)
        self.assertEqual(r.returncode, 0, f"{scheme}: {r.stderr}")
        h = r.stdout.strip()
        self.assertTrue(h.startswith("{" + scheme.upper() + "}"), h)
        return h

    def assert_verifies(self, tool, h, scheme):
        user = ("-u", USER) if scheme == "DIGEST-MD5" else ()
        ok = tool("-t", h, "-p", PASSWORD, *user)
        self.assertEqual(ok.returncode, 0, f"{h}: {ok.stderr}")
        self.assertEqual(ok.stdout, h + " (verified)\n")
        bad = tool("-t", h, "-p", WRONG, *user)
        self.assertEqual(bad.returncode, 75, f"{h}: wrong password accepted: {bad.stdout}")
        self.assertIn(MISMATCH, bad.stderr)

    def test_authd_offers_every_doveadm_scheme(self):
        missing = self.doveadm_schemes - self.authd_schemes
        self.assertLessEqual(missing, NOT_IN_AUTHD, f"doveadm schemes authd lacks: {missing}")
        self.assertGreaterEqual(len(self.common), 25, self.common)

    def test_doveadm_hashes_verify_in_authd(self):
        for scheme in self.common:
            with self.subTest(scheme=scheme):
                self.assert_verifies(self.authd_pw, self.hash_with(self.doveadm_pw, scheme), scheme)

    def test_authd_hashes_verify_in_doveadm(self):
        for scheme in self.common:
            with self.subTest(scheme=scheme):
                self.assert_verifies(self.doveadm_pw, self.hash_with(self.authd_pw, scheme), scheme)

    def test_rounds_and_encodings_both_ways(self):
        cases = [("SHA512-CRYPT", "-r", "6000"), ("SHA256-CRYPT", "-r", "1000"), ("BLF-CRYPT", "-r", "6"),
                 ("CRYPT", "-r", "4"), ("PBKDF2", "-r", "1234"), ("SCRAM-SHA-1", "-r", "5000"),
                 ("SCRAM-SHA-256", "-r", "4097"), ("ARGON2I", "-r", "3"),
                 ("SHA256.HEX",), ("SSHA512.B64",), ("PLAIN-MD5.B64",), ("CRAM-MD5.b64",)]
        for scheme, *extra in cases:
            with self.subTest(scheme=scheme, extra=extra):
                self.assert_verifies(self.authd_pw, self.hash_with(self.doveadm_pw, scheme, *extra),
                                     scheme)
                self.assert_verifies(self.doveadm_pw, self.hash_with(self.authd_pw, scheme, *extra),
                                     scheme)

    def test_same_input_same_output_for_unsalted_schemes(self):
        for scheme in ["PLAIN", "SHA1", "SHA256", "SHA512", "PLAIN-MD5", "LDAP-MD5", "CRAM-MD5",
                       "DIGEST-MD5", "SHA1.HEX", "plain-md4"]:
            if scheme.upper() not in self.doveadm_schemes | {"SHA1.HEX"}:
                continue
            with self.subTest(scheme=scheme):
                self.assertEqual(self.hash_with(self.authd_pw, scheme),
                                 self.hash_with(self.doveadm_pw, scheme))

    def test_plain_trunc_stored_form(self):
        stored = f"{{PLAIN-TRUNC}}{len(PASSWORD)}-{PASSWORD}"
        self.assert_verifies(self.doveadm_pw, stored, "PLAIN-TRUNC")
        self.assert_verifies(self.authd_pw, stored, "PLAIN-TRUNC")
        self.assert_verifies(self.doveadm_pw, self.hash_with(self.authd_pw, "PLAIN-TRUNC"),
                             "PLAIN-TRUNC")

    def test_default_scheme_and_bare_md5_crypt(self):
        h = self.authd_pw("-p", PASSWORD).stdout.strip()
        self.assertTrue(h.startswith("{CRYPT}$2y$05$"), h)  # doveadm 2.3's default
        self.assert_verifies(self.doveadm_pw, h, "CRYPT")
        bare = self.hash_with(self.doveadm_pw, "MD5-CRYPT")[len("{MD5-CRYPT}"):] + "$ignored"
        for tool in (self.authd_pw, self.doveadm_pw):
            r = tool("-t", bare, "-p", PASSWORD)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith("{MD5-CRYPT}$1$"), r.stdout)
            self.assertNotIn("$ignored", r.stdout)

    def test_password_from_stdin(self):
        r = self.authd_pw("-s", "SHA512-CRYPT", stdin=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_verifies(self.doveadm_pw, r.stdout.strip(), "SHA512-CRYPT")
        r = self.authd_pw("-t", "{PLAIN}" + PASSWORD, stdin=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_errors_exit_like_doveadm(self):
        cases = [("-t", "nobrace", "-p", "x"), ("-s", "NOSUCH", "-p", "x"), ("-t", "{NOSUCH}x", "-p", "x"),
                 ("-t", "{SHA1}!!!!", "-p", "x"), ("extra",), ("-Z",)]
        for args in cases:
            with self.subTest(args=args):
                mine, theirs = self.authd_pw(*args), self.doveadm_pw(*args)
                self.assertEqual(mine.returncode, theirs.returncode, (mine.stderr, theirs.stderr))
                self.assertNotEqual(mine.returncode, 0)
                self.assertEqual(mine.stdout, "")
        r = self.authd_pw("-s", "nosuch", "-p", "x")
        self.assertIn("Unknown scheme: NOSUCH", r.stderr)
        r = self.authd_pw("-t", "nobrace", "-p", "x")
        self.assertIn("Missing {scheme} prefix from hash", r.stderr)


if __name__ == "__main__":
    unittest.main()
