#!/usr/bin/env python3
"""test_seed_examples.py - examples/seed-00N/ as shipped, against the seeds' own checks
(seed-requirements §3.2 L1-L12, §3.3, §3.5).

Each example is rendered into the workspace: the absolute paths /etc/postfix/,
/etc/dovecot/, /etc/postern/, /var/spool/postfix/, /var/mail/vhosts/ and /var/vmail/ move
under a temp dir, the .cf files' `hosts =` and dovecot-sql.conf.ext's `connect = host=`
point at the test MariaDB (the seeds' own DB users and passwords are created there), the
user vmail (absent here) becomes nobody/nogroup, and three test knobs are set: syslog = no,
auth_failure_delay = 0, auth_penalty = no. Nothing else of the example changes.

  configs      every postern config of every example passes `-n`
  seed 001     schema A + seed data (ENCRYPT() hashes made with `openssl passwd -6`): L1-L3,
               L11 (rows added while lookupd runs appear within cache_miss_ttl), L12;
               every answer also through native `postmap -q KEY mysql:FILE`; `authd test`
  seed 002     schema B, enable=1 queries, distinct alias ids, plus a user with enable = 0:
               L4-L6, L12, `authd test` (the disabled user fails)
  seed 003     schema C, remote-host .cf files, alias map then email2email: L7-L10, L12,
               `authd test` with the seed's verbatim doveadm hashes
  seed 004     no SQL: a private Postfix with the example's main.cf lines (mynetworks
               narrowed to 127.0.0.2/32 so this client is "outside"; the restrictions that
               need DNS dropped), authd from the example on the example's private/auth,
               smtplib transcripts: 220, HELO 250, 554 5.7.1 Relay access denied; no AUTH
               before STARTTLS; after STARTTLS AUTH PLAIN 235 and relay accepted; 535.

Run through ctest, or:
  POSTERN_LOOKUPD=... POSTERN_AUTHD=... POSTERN_LMTPD=... python3 tests/integration/test_seed_examples.py
"""

import base64
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand

import peers
import sasl_peers as sp
from peers import require_program, run, start_daemon, tail, wait_until

EXAMPLES = os.path.normpath(os.path.join(peers.HERE, "..", "..", "examples"))

# The seeds' DB accounts: seed -> (database in the fixture, user, password).
ACCOUNTS = {
    "001": ("mailserver001", "mailuser", "mailuserpass"),
    "002": ("mailserver002", "mailserver", "mailserver123"),
    "003": ("mailserver003", "mailrl", "mail.rockylinux.me"),
}

SCHEMA_A = """
CREATE TABLE `virtual_domains` (
  `id` int(11) NOT NULL auto_increment,
  `name` varchar(50) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
CREATE TABLE `virtual_users` (
  `id` int(11) NOT NULL auto_increment,
  `domain_id` int(11) NOT NULL,
  `password` varchar(106) NOT NULL,
  `email` varchar(100) NOT NULL,{enable}
  PRIMARY KEY (`id`),
  UNIQUE KEY `email` (`email`),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
CREATE TABLE `virtual_aliases` (
  `id` int(11) NOT NULL auto_increment,
  `domain_id` int(11) NOT NULL,
  `source` varchar(100) NOT NULL,
  `destination` varchar(100) NOT NULL,
  PRIMARY KEY (`id`),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
"""

# Seed [001] data; ENCRYPT(...) (absent in MariaDB) replaced by @HASH:password@.
DATA_001 = """
INSERT INTO `virtual_domains` (`id` ,`name`) VALUES
  ('1', 'example.com'), ('2', 'hostname.example.com'), ('3', 'hostname'), ('4', 'localhost.example.com');
INSERT INTO `virtual_users` (`id`, `domain_id`, `password` , `email`) VALUES
  ('1', '1', '@HASH:firstpassword@', 'email1@example.com'),
  ('2', '1', '@HASH:secondpassword@', 'email2@example.com');
INSERT INTO `virtual_aliases` (`id`, `domain_id`, `source`, `destination`) VALUES
  ('1', '1', 'alias@example.com', 'email1@example.com');
"""
# Seed [001]'s later additions (L11), ids from auto_increment as in the seed.
DATA_001_LATER = """
INSERT INTO `virtual_domains` (`name`) VALUES ('newdomain.com');
INSERT INTO `virtual_users` (`domain_id`, `password` , `email`) VALUES
  ('5', '@HASH:newpassword@' , 'email3@newdomain.com');
INSERT INTO `virtual_aliases` (`domain_id`, `source`, `destination`) VALUES
  ('5', 'alias@newdomain.com', 'myemail@gmail.com');
"""
# Seed [002] data: the second all@ row gets id 2 (the seed reuses 1); wangwu (enable = 0)
# is added for L5's negative.
DATA_002 = """
insert into virtual_domains(id,name) values(1,'mail.mydomain.com');
insert into virtual_domains(id,name) values(2,'mydomain.com');
insert into virtual_users(id,domain_id,password,email) values (1,2,'@HASH:123456zhangsan@','zhangsan@mydomain.com');
insert into virtual_users(id,domain_id,password,email) values (2,2,'@HASH:123456lisi@','lisi@mydomain.com');
insert into virtual_users(id,domain_id,password,email,enable) values (3,2,'@HASH:123456wangwu@','wangwu@mydomain.com',0);
insert into virtual_aliases(id,domain_id,source,destination) values (1,2,'all@mydomain.com','zhangsan@mydomain.com');
insert into virtual_aliases(id,domain_id,source,destination) values (2,2,'all@mydomain.com','lisi@mydomain.com');
"""
# Seed [003] schema C and data, verbatim (its hashes are real doveadm output).
SCHEMA_DATA_003 = """
create table if not exists virtual_domains (
        id int(11) primary key  auto_increment,
        name varchar(50) not null
);
create table if not exists virtual_users (
        id int(11) primary key auto_increment,
        email varchar(128) NOT NULL unique,
        password varchar(150) not null,
        domain_id int(11) not null,
        FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
);
create table if not exists virtual_aliases (
        id int(11) primary key auto_increment,
        domain_id int(11) NOT NULL,
        source varchar(100) NOT NULL,
        destination varchar(100) NOT NULL,
        FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
);
insert into virtual_domains(id,name) values(1,'mail.rockylinux.me'),(2,'rockylinux.me');
insert into virtual_aliases(id,domain_id,source,destination) values(1,1,'all@mail.rockylinux.me','frank@mail.rockylinux.me');
insert into virtual_aliases(id,domain_id,source,destination) values(2,1,'all@mail.rockylinux.me','leeo@mail.rockylinux.me');
insert into virtual_users(id,email,password,domain_id) values(1,'frank@mail.rockylinux.me','$6$dEqUVsCirHzV8kHw$hgC0x0ufah.N0PzUVvhLEMnoww5lo.JBmeLSsRNDkgWVylC55Gk6zA1KWsn.SiIAAIDEqHxtugGZWHl1qMex..',1);
insert into virtual_users(id,email,password,domain_id) values(2,'leeo@mail.rockylinux.me','$6$TF7w672arYUk.fGC$enDafylYnih4q140B2Bu4QfEvLCQAiQBHXpqDpHQPHruil4j4QbLXMvctWHdZ/MpuwvhmBGHTlNufVwc9hG34/',1);
"""

NOT_FOUND = None
# Seed -> (map name in lookupd.conf, key, expected value or NOT_FOUND, native tables to
# compare with (.cf file names, tried in order as Postfix tries a table list)).
CASES = {
    "001": [
        ("domains", "example.com", "1", ["mysql-virtual-mailbox-domains.cf"]),                     # L1
        ("domains", "hostname.example.com", "1", ["mysql-virtual-mailbox-domains.cf"]),
        ("mailboxes", "email1@example.com", "1", ["mysql-virtual-mailbox-maps.cf"]),               # L2
        ("mailboxes", "email2@example.com", "1", ["mysql-virtual-mailbox-maps.cf"]),
        ("aliases", "alias@example.com", "email1@example.com", ["mysql-virtual-alias-maps.cf"]),   # L3
        ("domains", "unknown.example", NOT_FOUND, ["mysql-virtual-mailbox-domains.cf"]),          # L12
        ("mailboxes", "nobody@example.com", NOT_FOUND, ["mysql-virtual-mailbox-maps.cf"]),
        ("aliases", "noalias@example.com", NOT_FOUND, ["mysql-virtual-alias-maps.cf"]),
    ],
    "002": [
        ("domains", "mydomain.com", "1", ["mysql-virtual-mailbox-domains.cf"]),                    # L4
        ("mailboxes", "lisi@mydomain.com", "1", ["mysql-virtual-mailbox-maps.cf"]),                # L5
        ("mailboxes", "zhangsan@mydomain.com", "1", ["mysql-virtual-mailbox-maps.cf"]),
        ("mailboxes", "wangwu@mydomain.com", NOT_FOUND, ["mysql-virtual-mailbox-maps.cf"]),       # L5, enable = 0
        ("aliases", "all@mydomain.com", "zhangsan@mydomain.com,lisi@mydomain.com",
         ["mysql-virtual-alias-maps.cf"]),                                                          # L6
        ("domains", "unknown.example", NOT_FOUND, ["mysql-virtual-mailbox-domains.cf"]),          # L12
        ("mailboxes", "nobody@mydomain.com", NOT_FOUND, ["mysql-virtual-mailbox-maps.cf"]),
        ("aliases", "noalias@mydomain.com", NOT_FOUND, ["mysql-virtual-alias-maps.cf"]),
    ],
    "003": [
        ("domains", "mail.rockylinux.me", "1", ["mysql-virtual-mailbox-domains.cf"]),              # L7
        ("mailboxes", "frank@mail.rockylinux.me", "1", ["mysql-virtual-mailbox-maps.cf"]),         # L8
        ("aliases", "all@mail.rockylinux.me", "frank@mail.rockylinux.me,leeo@mail.rockylinux.me",
         ["mysql-virtual-alias-maps.cf", "mysql-virtual-email2email.cf"]),                          # L9
        ("aliases", "frank@mail.rockylinux.me", "frank@mail.rockylinux.me",
         ["mysql-virtual-alias-maps.cf", "mysql-virtual-email2email.cf"]),                          # L10
        ("aliases", "leeo@mail.rockylinux.me", "leeo@mail.rockylinux.me",
         ["mysql-virtual-alias-maps.cf", "mysql-virtual-email2email.cf"]),
        ("domains", "unknown.example", NOT_FOUND, ["mysql-virtual-mailbox-domains.cf"]),          # L12
        ("mailboxes", "nobody@mail.rockylinux.me", NOT_FOUND, ["mysql-virtual-mailbox-maps.cf"]),
        ("aliases", "nobody@mail.rockylinux.me", NOT_FOUND,
         ["mysql-virtual-alias-maps.cf", "mysql-virtual-email2email.cf"]),
    ],
}

# Seed -> (user, password, should succeed).
AUTH_CASES = {
    "001": [("email1@example.com", "firstpassword", True),
            ("email2@example.com", "secondpassword", True),
            ("email1@example.com", "secondpassword", False)],
    "002": [("zhangsan@mydomain.com", "123456zhangsan", True),
            ("lisi@mydomain.com", "123456lisi", True),
            ("wangwu@mydomain.com", "123456wangwu", False)],   # enable = 0 (A8)
    "003": [("frank@mail.rockylinux.me", "onetestandone", True),
            ("leeo@mail.rockylinux.me", "twotestandtwo", True),
            ("frank@mail.rockylinux.me", "twotestandtwo", False)],
    "004": [("mailuser@maildomain.example", "123456", True),
            ("MailUser@MailDomain.example", "123456", True),    # %Lu
            ("mailuser@maildomain.example", "1234567", False)],
}

TEST_KNOBS = {"syslog": "no", "auth_failure_delay": "0", "auth_penalty": "no"}


def lmtpd_binary():
    path = os.environ.get("POSTERN_LMTPD", "")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"POSTERN_LMTPD={path!r} is not an executable; run through ctest")
    return path


def set_key(text, key, value):
    """Sets `key = value` in a key = value text (replaces the line, or appends)."""
    pattern = re.compile(rf"^{re.escape(key)}\s*=.*$", re.M)
    line = f"{key} = {value}"
    return pattern.sub(line, text) if pattern.search(text) else text + line + "\n"


class Rendered:
    """examples/seed-NNN copied under root with the absolute paths moved there."""

    def __init__(self, seed, root, db_port=None, dbname=None, spool=None):
        self.seed, self.root = seed, root
        self.spool = spool or os.path.join(root, "spool")
        prefixes = {"/etc/postfix/": os.path.join(root, "etc", "postfix") + "/",
                    "/etc/dovecot/": os.path.join(root, "etc", "dovecot") + "/",
                    "/etc/postern/": os.path.join(root, "etc", "postern") + "/",
                    "/var/spool/postfix/": self.spool.rstrip("/") + "/",
                    "/var/mail/vhosts/": os.path.join(root, "mail") + "/",
                    "/var/vmail/": os.path.join(root, "vmail") + "/"}
        os.makedirs(os.path.join(self.spool, "private"), exist_ok=True)
        src = os.path.join(EXAMPLES, f"seed-{seed}")
        for sub in ("postfix", "dovecot", "postern"):
            if not os.path.isdir(os.path.join(src, sub)):
                continue
            os.makedirs(os.path.join(root, "etc", sub, *(["private"] if sub == "dovecot" else [])),
                        exist_ok=True)
            for name in os.listdir(os.path.join(src, sub)):
                with open(os.path.join(src, sub, name)) as f:
                    text = f.read()
                for old, new in prefixes.items():
                    text = text.replace(old, new)
                if db_port is not None:
                    text = re.sub(r"^hosts = .*$", f"hosts = inet:127.0.0.1:{db_port}", text, flags=re.M)
                    text = re.sub(r"^dbname = .*$", f"dbname = {dbname}", text, flags=re.M)
                    text = re.sub(r"connect = host=\S+ dbname=\S+",
                                  f"connect = host=127.0.0.1 port={db_port} dbname={dbname}", text)
                # vmail does not exist on a test machine.
                text = text.replace("uid=vmail gid=vmail", "uid=nobody gid=nogroup")
                text = re.sub(r"^user = vmail$", "user = nobody", text, flags=re.M)
                text = re.sub(r"^group = vmail$", "group = nogroup", text, flags=re.M)
                if sub == "postern":
                    for key, value in TEST_KNOBS.items():
                        if key == "syslog" or name == "authd.conf":
                            text = set_key(text, key, value)
                path = os.path.join(root, "etc", sub, name)
                with open(path, "w") as f:
                    f.write(text)
                os.chmod(path, 0o644)
                peers.backdate(path)
        for d in ("etc", "etc/postfix", "etc/dovecot", "etc/postern"):
            if os.path.isdir(os.path.join(root, d)):
                os.chmod(os.path.join(root, d), 0o755)

    def path(self, sub, name):
        return os.path.join(self.root, "etc", sub, name)

    def conf(self, daemon):
        return self.path("postern", f"{daemon}.conf")

    def listen_path(self, daemon, key):
        """The unix socket path the rendered config listens on."""
        with open(self.conf(daemon)) as f:
            m = re.search(rf"^{key}\s*=\s*unix:(\S+)", f.read(), re.M)
        return m.group(1)


class Daemon(peers.DaemonHandle):
    """One postern daemon started from a rendered example config (foreground)."""
    kind = "postern"

    def __init__(self, binary, conf, socket_path, log_path, name):
        self.name, self.socket, self.log_path = name, socket_path, log_path
        self.proc = start_daemon([binary, "-c", conf], log_path)
        self.wait_listening([socket_path], 15, f"socket {socket_path}")


def sha512_crypt(password):
    openssl = require_program("openssl", "openssl")
    rc, out, err = run([openssl, "passwd", "-6", password])
    if rc != 0:
        raise RuntimeError(f"openssl passwd -6 failed: {err}")
    return out.strip()


def fill_hashes(sql):
    return re.sub(r"@HASH:([^@]+)@", lambda m: sha512_crypt(m.group(1)), sql)


# ---------------------------------------------------------------- every config loads

class ExampleConfigs(unittest.TestCase):
    """Every postern config of every example passes `-n` once rendered."""

    def test_every_config_checks(self):
        binaries = {"lookupd": peers.lookupd_binary(), "authd": sp.authd_binary(),
                    "lmtpd": lmtpd_binary()}
        ws = peers.Workspace("seed-configs")
        self.addCleanup(ws.remove)
        checked = []
        for seed in ("001", "002", "003", "004"):
            r = Rendered(seed, ws.mkdir(seed))
            for daemon, binary in binaries.items():
                if seed == "004" and daemon == "lookupd":
                    self.assertFalse(os.path.exists(r.conf(daemon)), "seed 004 has no lookupd")
                    continue
                rc, out, err = run([binary, "-c", r.conf(daemon), "-n"], timeout=30)
                with self.subTest(seed=seed, daemon=daemon):
                    self.assertEqual(rc, 0, out + err)
                    self.assertIn(": ok", out + err)
                checked.append(f"{seed}/{daemon}")
        self.assertEqual(len(checked), 11)


# ---------------------------------------------------------------- seeds 001-003 (SQL)

class SqlSeeds(unittest.TestCase):
    """Seeds 001-003 on one MariaDB (one database and DB account per seed), one lookupd
    and one authd per seed, each started from its rendered example config."""

    @classmethod
    def setUpClass(cls):
        cls.ws = peers.Workspace("seed-sql")
        cls.addClassCleanup(cls.ws.remove)
        cls.db = peers.class_mariadb(cls, schema=None)
        cls.postfix = peers.Postfix(cls.ws)
        loads = {"001": SCHEMA_A.format(enable="") + fill_hashes(DATA_001),
                 "002": SCHEMA_A.format(enable="\n  `enable` int(1) NOT NULL DEFAULT '1',")
                 + fill_hashes(DATA_002),
                 "003": SCHEMA_DATA_003}
        cls.rendered, cls.lookupd, cls.authd = {}, {}, {}
        for seed, (dbname, user, password) in ACCOUNTS.items():
            stmts = [f"CREATE DATABASE `{dbname}`;"]
            for host in ("127.0.0.1", "localhost"):
                stmts.append(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}';")
                stmts.append(f"GRANT SELECT ON `{dbname}`.* TO '{user}'@'{host}';")
            cls.db.sql("\n".join(stmts))
            cls.db.sql(loads[seed], db=dbname)
            r = Rendered(seed, cls.ws.mkdir(seed), db_port=cls.db.port, dbname=dbname)
            cls.rendered[seed] = r
            d = Daemon(peers.lookupd_binary(), r.conf("lookupd"),
                       r.listen_path("lookupd", "socketmap_listen"),
                       os.path.join(r.root, "lookupd.log"), f"lookupd-{seed}")
            cls.addClassCleanup(d.stop)
            cls.lookupd[seed] = d
            a = Daemon(sp.authd_binary(), r.conf("authd"), r.listen_path("authd", "auth_listen"),
                       os.path.join(r.root, "authd.log"), f"authd-{seed}")
            cls.addClassCleanup(a.stop)
            cls.authd[seed] = a

    def socketmap(self, seed, map_name):
        return f"socketmap:unix:{self.lookupd[seed].socket}:{map_name}"

    def postmap(self, key, table):
        """postmap -q -> the value, or NOT_FOUND (an error is a failure)."""
        rc, out, err = self.postfix.query(key, table)
        if rc == 0:
            return out.rstrip("\n")
        self.assertEqual((rc, out, err), (1, "", ""), f"postmap -q {key} {table} failed")
        return NOT_FOUND

    def native(self, seed, key, cf_names):
        """The first hit over the seed's mysql: tables, as Postfix tries a table list."""
        for name in cf_names:
            value = self.postmap(key, f"mysql:{self.rendered[seed].path('postfix', name)}")
            if value is not NOT_FOUND:
                return value
        return NOT_FOUND

    def check_lookups(self, seed):
        for map_name, key, expected, cf_names in CASES[seed]:
            with self.subTest(seed=seed, map=map_name, key=key):
                self.assertEqual(self.postmap(key, self.socketmap(seed, map_name)), expected,
                                 tail(self.lookupd[seed].log_path))
                self.assertEqual(self.native(seed, key, cf_names), expected, "native mysql:")

    def check_auth(self, seed):
        for user, password, ok in AUTH_CASES[seed]:
            with self.subTest(seed=seed, user=user, ok=ok):
                rc, out, err = sp.authd_test(self.authd[seed].socket, user, password)
                if ok:
                    self.assertEqual(rc, 0, out + err)
                    self.assertIn("auth succeeded", out)
                else:
                    self.assertNotEqual(rc, 0, out + err)
                    self.assertIn("auth failed", out)

    def test_001_lookups(self):
        self.check_lookups("001")

    def test_001_auth(self):
        self.check_auth("001")
        rc, out, _ = sp.authd_test(self.authd["001"].socket, "email1@example.com", "firstpassword")
        self.assertIn("user=email1@example.com", out)

    def test_001_rows_added_without_restart(self):
        """L11: the seed adds a domain, a user and an alias with INSERTs and no restart."""
        keys = [("domains", "newdomain.com", "1"),
                ("mailboxes", "email3@newdomain.com", "1"),
                ("aliases", "alias@newdomain.com", "myemail@gmail.com")]
        for map_name, key, _ in keys:  # cached as misses first
            self.assertIs(self.postmap(key, self.socketmap("001", map_name)), NOT_FOUND)
        dbname = ACCOUNTS["001"][0]
        self.db.sql(fill_hashes(DATA_001_LATER), db=dbname)
        self.addCleanup(self.db.sql, "DELETE FROM virtual_aliases WHERE domain_id = 5;"
                        "DELETE FROM virtual_users WHERE domain_id = 5;"
                        "DELETE FROM virtual_domains WHERE id = 5;", dbname)
        self.assertEqual(self.db.sql("SELECT id FROM virtual_domains WHERE name='newdomain.com'",
                                     db=dbname).strip(), "5")
        # The example's cache_miss_ttl is 5s: every new row must show by then (+ slack).
        for map_name, key, expected in keys:
            value, waited = wait_until(
                lambda: self.postmap(key, self.socketmap("001", map_name)) == expected,
                timeout=8, interval=0.25, what=f"{key} in {map_name}")
            self.assertEqual(self.native("001", key, [
                {"domains": "mysql-virtual-mailbox-domains.cf",
                 "mailboxes": "mysql-virtual-mailbox-maps.cf",
                 "aliases": "mysql-virtual-alias-maps.cf"}[map_name]]), expected)

    def test_002_lookups(self):
        self.check_lookups("002")

    def test_002_auth(self):
        self.check_auth("002")

    def test_003_lookups(self):
        self.check_lookups("003")

    def test_003_auth(self):
        self.check_auth("003")
        # password_query returns only the password: user= is the name as given (%Lu).
        rc, out, _ = sp.authd_test(self.authd["003"].socket, "Frank@mail.rockylinux.me",
                                   "onetestandone")
        self.assertEqual(rc, 0, out)
        self.assertIn("user=frank@mail.rockylinux.me", out)


# ---------------------------------------------------------------- seed 004 (Postfix)

# Restrictions in the example that need DNS answers a test machine does not have.
DNS_CHECKS = {"reject_unknown_recipient_domain", "reject_unknown_client_hostname",
              "reject_unknown_helo_hostname", "reject_unknown_sender_domain",
              "reject_unverified_recipient"}


def parse_main_cf(text):
    """Postfix main.cf text -> ordered dict of key -> value (continuation lines joined)."""
    out, key = {}, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and key:
            out[key] += " " + line.strip()
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        out[key] = value.strip()
    return out


class Seed004Postfix(sp.PostfixInstance):
    """The fixture's private Postfix with the example's main.cf lines on top (and the
    tlsmgr service that STARTTLS needs)."""

    SERVICES = sp.PostfixInstance.SERVICES + "tlsmgr    unix  -  -  n  1000? 1  tlsmgr\n"

    def __init__(self, ws, name, example_main_cf):
        super().__init__(ws, name)
        self.example = example_main_cf

    def _write_config(self):
        super()._write_config()
        path = os.path.join(self.conf_dir, "main.cf")
        with open(path) as f:
            base = parse_main_cf(f.read())
        settings = dict(self.example)
        settings["smtpd_recipient_restrictions"] = ", ".join(
            r for r in re.split(r"[\s,]+", settings["smtpd_recipient_restrictions"])
            if r and r not in DNS_CHECKS)
        settings["mynetworks"] = "127.0.0.2/32"  # this client (127.0.0.1) is an outsider
        base.update(settings)
        with open(path, "w") as f:
            f.write("".join(f"{k} = {v}\n" for k, v in base.items()))
        peers.backdate(path)


class Seed004(unittest.TestCase):
    """Seed 004: authd from the example on the example's private/auth of a private
    Postfix running the example's main.cf lines; the seed's telnet transcripts."""

    USER, PASSWORD = "mailuser@maildomain.example", "123456"

    @classmethod
    def setUpClass(cls):
        cls.ws = peers.Workspace("seed-004")
        cls.addClassCleanup(cls.ws.remove)
        # Rendered with /var/spool/postfix/ = the private Postfix's queue directory, so
        # main.cf's smtpd_sasl_path = private/auth reaches the example's authd socket.
        cls.postfix_dir = cls.ws.mkdir("postfix-004")
        spool = os.path.join(cls.postfix_dir, "spool")
        cls.r = Rendered("004", cls.ws.mkdir("004"), spool=spool)
        os.chmod(spool, 0o755)
        shutil.chown(os.path.join(spool, "private"), "postfix", "postfix")
        os.chmod(os.path.join(spool, "private"), 0o700)
        with open(cls.r.path("postfix", "main.cf.postern")) as f:
            example = parse_main_cf(f.read())
        # The certificate the seed takes from the Dovecot package.
        openssl = require_program("openssl", "openssl")
        rc, out, err = run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                            "-subj", "/CN=mailhost.maildomain.example",
                            "-keyout", example["smtpd_tls_key_file"],
                            "-out", example["smtpd_tls_cert_file"]])
        if rc != 0:
            raise RuntimeError(f"openssl req failed: {err}")
        cls.authd = Daemon(sp.authd_binary(), cls.r.conf("authd"),
                           cls.r.listen_path("authd", "auth_listen"),
                           os.path.join(cls.r.root, "authd.log"), "authd-004")
        cls.addClassCleanup(cls.authd.stop)
        assert cls.authd.socket == os.path.join(spool, "private", "auth"), cls.authd.socket
        cls.pf = Seed004Postfix(cls.ws, "postfix-004", example)
        cls.port = cls.pf.add_smtpd("smtp", example["smtpd_sasl_path"])
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()

    def smtp(self):
        s = smtplib.SMTP(timeout=20)
        s._host = "mailhost.maildomain.example"  # starttls() needs a name; SMTP(host) would eat the banner
        self.addCleanup(s.close)
        code, banner = s.connect("127.0.0.1", self.port)
        self.assertEqual(code, 220)
        self.assertIn(b"mailhost.maildomain.example ESMTP", banner)
        return s

    def tls(self, s):
        self.assertEqual(s.ehlo("exthost.extdomain.example")[0], 250)
        self.assertFalse(s.has_extn("auth"), "AUTH offered before STARTTLS (smtpd_tls_auth_only)")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.assertEqual(s.starttls(context=ctx)[0], 220)
        self.assertEqual(s.ehlo("exthost.extdomain.example")[0], 250)
        self.assertIn("PLAIN", s.esmtp_features.get("auth", "").upper())

    def auth_plain(self, s, user, password):
        blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return s.docmd("AUTH", "PLAIN " + blob)

    def test_authd_test_seed_hash(self):
        for user, password, ok in AUTH_CASES["004"]:
            with self.subTest(user=user, ok=ok):
                rc, out, err = sp.authd_test(self.authd.socket, user, password)
                self.assertEqual(rc == 0, ok, out + err)

    def test_relay_denied_without_auth(self):
        s = self.smtp()
        code, msg = s.helo("exthost.extdomain.example")
        self.assertEqual((code, msg), (250, b"mailhost.maildomain.example"))
        self.assertEqual(s.mail("extuser@extdomain.example")[0], 250)
        code, msg = s.rcpt("extuser@extdomain.example")
        self.assertEqual(code, 554, msg)
        self.assertIn(b"5.7.1 <extuser@extdomain.example>: Relay access denied", msg)
        s.quit()

    def test_relay_after_auth_plain(self):
        s = self.smtp()
        self.tls(s)
        code, msg = self.auth_plain(s, self.USER, self.PASSWORD)
        self.assertEqual(code, 235, f"{msg}\n{tail(self.authd.log_path)}")
        self.assertEqual(s.mail("mailuser@maildomain.example")[0], 250)
        self.assertEqual(s.rcpt("extuser@extdomain.example")[0], 250)
        self.assertEqual(s.data(b"Subject: seed 004\r\n\r\nTest\r\n")[0], 250)
        self.assertEqual(s.quit()[0], 221)

    def test_wrong_password_535(self):
        s = self.smtp()
        self.tls(s)
        code, msg = self.auth_plain(s, self.USER, "654321")
        self.assertEqual(code, 535, msg)
        self.assertEqual(s.mail("mailuser@maildomain.example")[0], 250)
        self.assertEqual(s.rcpt("extuser@extdomain.example")[0], 554)
        s.quit()


if __name__ == "__main__":
    peers.main()
