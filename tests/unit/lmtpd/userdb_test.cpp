// userdb_test.cpp - tests for lmtpd/userdb.hpp: the seeds' static userdb and mail
// locations, SQL and passwd-file userdbs and user checks, quota rules, unsafe paths.
#include "lmtpd/userdb.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

using namespace postern;
using namespace postern::lmtpd;
using LS = UserLookup::Status;
using postern::testing::TempDir;

namespace {

// Schema A (seeds 000/001) with seed 002's enable column, plus a table for user_query.
std::string make_db(const TempDir& dir) {
  std::string file = (dir / "mail.sqlite").string();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK);
  const char* script =
      "CREATE TABLE virtual_users (id INTEGER PRIMARY KEY, domain_id INT NOT NULL, password VARCHAR(106) NOT NULL,"
      " email VARCHAR(100) NOT NULL UNIQUE, enable INT NOT NULL DEFAULT 1);"
      "INSERT INTO virtual_users VALUES (1, 1, '$6$x', 'email1@example.com', 1);"
      "INSERT INTO virtual_users VALUES (2, 1, '$6$y', 'email2@example.com', 0);"
      "CREATE TABLE mailboxes (email TEXT, uid TEXT, gid TEXT, home TEXT, quota_rule TEXT, maildir TEXT);"
      "INSERT INTO mailboxes VALUES ('email1@example.com', '5000', '5000', '/srv/mail/example.com/email1',"
      " '*:storage=1G', NULL);"
      "INSERT INTO mailboxes VALUES ('email2@example.com', NULL, NULL, '/srv/mail/example.com/email2  ', NULL,"
      " 'maildir:/srv/other/email2:INDEX=/tmp/x');"
      "INSERT INTO mailboxes VALUES ('evil@example.com', '5000', '5000', '/srv/mail/../../etc', NULL, NULL);";
  char* err = nullptr;
  int rc = sqlite3_exec(db, script, nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
  return file;
}

std::unique_ptr<Userdb> make(const UserdbSettings& s) {
  auto u = make_userdb(s);
  INFO((u.ok() ? std::string() : u.error().message));
  REQUIRE(u.ok());
  return std::move(u).value();
}

UserLookup look(Userdb& db, const std::string& user) {
  WorkerContext worker(0);
  return db.lookup(user, worker);
}

UserdbSettings static_settings(const std::string& location) {
  UserdbSettings s;
  s.userdb = "static uid=5000 gid=5000 home=/var/mail/vhosts/%d/%n";
  s.mail_location = location;
  return s;
}

}  // namespace

TEST_CASE("userdb: static with the seeds' three mail locations", "[userdb]") {
  // Seeds 000/002/003: the maildir is the home.
  UserLookup a = look(*make(static_settings("maildir:/var/mail/vhosts/%d/%n")), "alice@example.com");
  REQUIRE(a.status == LS::found);
  CHECK(a.user.user == "alice@example.com");
  CHECK(a.user.uid == 5000);
  CHECK(a.user.gid == 5000);
  CHECK(a.user.home == "/var/mail/vhosts/example.com/alice");
  CHECK(a.user.maildir == "/var/mail/vhosts/example.com/alice");
  CHECK_FALSE(a.user.quota_bytes);

  // Seed 001: ~/Maildir under the static home.
  UserLookup b = look(*make(static_settings("maildir:~/Maildir")), "alice@example.com");
  CHECK(b.user.maildir == "/var/mail/vhosts/example.com/alice/Maildir");
  CHECK(look(*make(static_settings("maildir:%h/Maildir:INDEX=/var/idx/%u")), "a@b.c").user.maildir ==
        "/var/mail/vhosts/b.c/a/Maildir");

  // Seed 004: no home in the userdb; mail_home, mail_uid and mail_gid give them.
  UserdbSettings s;
  s.userdb = "static allow_all_users=yes";
  s.mail_home = "/var/vmail/%d/%n";
  s.mail_location = "maildir:~/mail";
  s.mail_uid = "nobody";
  s.mail_gid = "nogroup";
  UserLookup c = look(*make(s), "mailuser@maildomain");
  REQUIRE(c.status == LS::found);
  CHECK(c.user.home == "/var/vmail/maildomain/mailuser");
  CHECK(c.user.maildir == "/var/vmail/maildomain/mailuser/mail");
  CHECK(c.user.uid == 65534);
  CHECK(c.user.gid == 65534);
}

TEST_CASE("userdb: uid/gid by name and number, and what is refused at load", "[userdb]") {
  UserdbSettings s = static_settings("maildir:~/Maildir");
  s.userdb = "static uid=nobody gid=nogroup home=/m/%n";
  UserLookup r = look(*make(s), "x@y");
  CHECK(r.user.uid == 65534);
  CHECK(r.user.gid == 65534);
  s.userdb = "static uid=nobody gid=123 home=/m/%n quota_rule=*:storage=2M";
  r = look(*make(s), "x@y");
  CHECK(r.user.gid == 123);
  CHECK(r.user.quota_bytes == std::optional<uint64_t>(2u << 20));

  for (std::string bad : {"static uid=no-such-user-here gid=5000", "static uid=5000 gid=no-such-group-here",
                                 "static uid=0 gid=5000 home=/m", "static uid=5000 gid=5000 home=/m/%x",
                                 "ldap /etc/dovecot/ldap.conf", "", "none"}) {
    UserdbSettings t = static_settings("maildir:~/Maildir");
    t.userdb = bad;
    INFO(bad);
    CHECK_FALSE(make_userdb(t).ok());
  }
  for (std::string loc : {"mbox:~/mail:INBOX=/var/mail/%u", "maildir:", "/var/mail/%u", "maildir:/m/%q"}) {
    INFO(loc);
    CHECK_FALSE(make_userdb(static_settings(loc)).ok());
  }
  UserdbSettings q = static_settings("maildir:~/Maildir");
  q.quota_rule = "*:storage=lots";
  CHECK_FALSE(make_userdb(q).ok());
  q.quota_rule = "*:storage=1G";
  CHECK(look(*make(q), "a@b").user.quota_bytes == std::optional<uint64_t>(1ull << 30));
}

TEST_CASE("userdb: no uid anywhere is a temporary failure, like Dovecot's missing-UID error", "[userdb]") {
  UserdbSettings s;
  s.userdb = "static home=/m/%d/%n";
  s.user_check = "none";
  UserLookup r = look(*make(s), "a@b");
  CHECK(r.status == LS::temp_error);
  CHECK_THAT(r.error, Catch::Contains("mail_uid"));
}

TEST_CASE("userdb: an unsafe mail location is a temporary failure for that user", "[userdb]") {
  auto db = make(static_settings("maildir:/var/mail/vhosts/%d/%n"));
  for (const char* user : {"../../etc@example.com", "x@..", "a@../../root"}) {
    INFO(user);
    UserLookup r = look(*db, user);
    CHECK(r.status == LS::temp_error);
    CHECK_THAT(r.error, Catch::Contains("unsafe"));
  }
  CHECK(look(*db, "a..b@example.com").status == LS::found);  // ".." inside a name is harmless
  UserdbSettings rel = static_settings("maildir:%n/Maildir");
  CHECK(look(*make(rel), "a@b").status == LS::temp_error);  // relative
  UserdbSettings nohome = static_settings("maildir:~/Maildir");
  nohome.userdb = "static uid=5000 gid=5000";
  UserLookup r = look(*make(nohome), "a@b");
  CHECK(r.status == LS::temp_error);
  CHECK_THAT(r.error, Catch::Contains("home"));
}

TEST_CASE("userdb: sql user_query, userdb_ columns, defaults and not found", "[userdb][sql]") {
  TempDir dir;
  std::string db = make_db(dir);
  std::string conf = dir.write("dovecot-sql.conf.ext",
                               "driver = sqlite\nconnect = " + db +
                                   "\nuser_query = SELECT uid, gid, home, quota_rule, maildir AS userdb_mail "
                                   "FROM mailboxes WHERE email = '%u';\n");
  UserdbSettings s;
  s.userdb = "sql " + conf;
  s.mail_location = "maildir:~/Maildir";
  s.mail_uid = "nobody";
  s.mail_gid = "65534";
  s.quota_rule = "*:storage=100M";
  auto u = make(s);
  CHECK_THAT(u->describe(), Catch::Contains("sql(") && Catch::Contains("sqlite"));
  CHECK(u->endpoint_keys().size() == 1);

  UserLookup one = look(*u, "email1@example.com");
  REQUIRE(one.status == LS::found);
  CHECK(one.user.uid == 5000);
  CHECK(one.user.home == "/srv/mail/example.com/email1");
  CHECK(one.user.maildir == "/srv/mail/example.com/email1/Maildir");
  CHECK(one.user.quota_bytes == std::optional<uint64_t>(1ull << 30));  // per-user rule wins

  UserLookup two = look(*u, "email2@example.com");
  REQUIRE(two.status == LS::found);
  CHECK(two.user.uid == 65534);  // NULL uid: mail_uid
  CHECK(two.user.home == "/srv/mail/example.com/email2");  // CHAR padding trimmed
  CHECK(two.user.maildir == "/srv/other/email2");  // the mail column overrides mail_location
  CHECK(two.user.quota_bytes == std::optional<uint64_t>(100ull << 20));

  CHECK(look(*u, "nobody@example.com").status == LS::not_found);
  CHECK(look(*u, "' OR 1=1 --").status == LS::not_found);
  CHECK(look(*u, "x' OR '1'='1").status == LS::not_found);
  UserLookup evil = look(*u, "evil@example.com");
  CHECK(evil.status == LS::temp_error);
  CHECK_THAT(evil.error, Catch::Contains("unsafe"));
}

TEST_CASE("userdb: sql user_check with the seeds' password_query and a static userdb", "[userdb][sql]") {
  TempDir dir;
  std::string db = make_db(dir);
  UserdbSettings s = static_settings("maildir:~/Maildir");
  s.user_check = "sql " + dir.write("seed001.conf.ext", "driver = sqlite\nconnect = " + db +
                                                            "\npassword_query = SELECT email as user, password FROM "
                                                            "virtual_users WHERE email='%u';\n");
  auto u = make(s);
  CHECK(look(*u, "email1@example.com").status == LS::found);
  CHECK(look(*u, "email1@example.com").user.maildir == "/var/mail/vhosts/example.com/email1/Maildir");
  CHECK(look(*u, "email2@example.com").status == LS::found);
  CHECK(look(*u, "stranger@example.com").status == LS::not_found);
  CHECK(look(*u, "' OR 1=1 --").status == LS::not_found);

  s.user_check = "sql " + dir.write("seed002.conf.ext", "driver = sqlite\nconnect = " + db +
                                                            "\npassword_query = SELECT email as user, password FROM "
                                                            "virtual_users WHERE email='%u' and enable = 1;\n");
  auto enabled = make(s);
  CHECK(look(*enabled, "email1@example.com").status == LS::found);
  CHECK(look(*enabled, "email2@example.com").status == LS::not_found);  // enable = 0
}

TEST_CASE("userdb: a missing database is temp_error and hides no password", "[userdb][sql]") {
  TempDir dir;
  UserdbSettings s = static_settings("maildir:~/Maildir");
  s.user_check = "sql " + dir.write("gone.conf.ext", "driver = sqlite\nconnect = " + (dir / "gone.sqlite").string() +
                                                         "\npassword_query = SELECT email FROM virtual_users WHERE "
                                                         "email='%u'\n");
  UserLookup r = look(*make(s), "email1@example.com");
  CHECK(r.status == LS::temp_error);
  CHECK_FALSE(r.error.empty());

  UserdbSettings m;
  m.userdb = "sql " + dir.write("down.conf.ext", "driver = mysql\nconnect = host=" +
                                                     (dir / "no-mysqld.sock").string() +
                                                     " dbname=mail user=mailuser password=Sup3rS3cretPw\n"
                                                     "user_query = SELECT home FROM users WHERE u='%u'\n");
  m.mail_uid = "5000";
  m.mail_gid = "5000";
  m.sql_connect_timeout = std::chrono::milliseconds(300);
  auto down = make(m);
  CHECK_THAT(down->describe(), !Catch::Contains("Sup3rS3cretPw"));
  UserLookup d = look(*down, "a@b");
  CHECK(d.status == LS::temp_error);
  CHECK_THAT(d.error, !Catch::Contains("Sup3rS3cretPw"));

  UserdbSettings bad;
  bad.userdb = "sql " + dir.write("bad.conf.ext", "driver = sqlite\nconnect = /x.db\nuser_query = SELECT 1 WHERE u='%x'\n");
  CHECK_FALSE(make_userdb(bad).ok());
}

TEST_CASE("userdb: passwd-file userdb and user_check (seed 004)", "[userdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users.db",
                                "mailuser@maildomain:{PLAIN}123456\n"
                                "full@maildomain:{PLAIN}x:5001:5002::/home/full::userdb_mail=maildir:~/box "
                                "userdb_quota_rule=*:storage=10M\n");
  UserdbSettings s;
  s.userdb = "static allow_all_users=yes";
  s.user_check = "passwd-file scheme=PLAIN " + users;
  s.mail_home = "/var/vmail/%d/%n";
  s.mail_location = "maildir:~/mail";
  s.mail_uid = "5000";
  s.mail_gid = "5000";
  auto checked = make(s);
  UserLookup r = look(*checked, "mailuser@maildomain");
  REQUIRE(r.status == LS::found);
  CHECK(r.user.maildir == "/var/vmail/maildomain/mailuser/mail");
  CHECK(look(*checked, "other@maildomain").status == LS::not_found);

  s.userdb = "passwd-file " + users;
  s.user_check = "";
  auto pf = make(s);
  UserLookup full = look(*pf, "full@maildomain");
  REQUIRE(full.status == LS::found);
  CHECK(full.user.uid == 5001);
  CHECK(full.user.gid == 5002);
  CHECK(full.user.maildir == "/home/full/box");
  CHECK(full.user.quota_bytes == std::optional<uint64_t>(10ull << 20));
  CHECK(look(*pf, "mailuser@maildomain").user.uid == 5000);  // empty field: mail_uid
  CHECK(look(*pf, "other@maildomain").status == LS::not_found);

  s.userdb = "passwd-file " + (dir / "missing.db").string();
  UserLookup gone = look(*make(s), "mailuser@maildomain");
  CHECK(gone.status == LS::temp_error);
  CHECK_THAT(gone.error, Catch::Contains("missing.db"));

  s.user_check = "passwd-file relative.db";
  CHECK_FALSE(make_userdb(s).ok());
}

TEST_CASE("userdb: lookup_now answers without I/O or not at all", "[userdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users.db",
                                "mailuser@maildomain:{PLAIN}1::::\n"
                                "named@maildomain:{PLAIN}2:nobody:nogroup::/home/named::\n");
  UserdbSettings s;
  s.userdb = "static uid=5000 gid=5000 allow_all_users=yes";
  s.mail_home = "/var/vmail/%d/%n";
  s.mail_location = "maildir:~/mail";
  CHECK(make(s)->lookup_now("anyone@anywhere")->user.maildir == "/var/vmail/anywhere/anyone/mail");

  s.user_check = "passwd-file " + users;
  auto checked = make(s);
  std::optional<UserLookup> now = checked->lookup_now("mailuser@maildomain");
  REQUIRE(now);
  CHECK(now->status == LS::found);
  CHECK(now->user.maildir == look(*checked, "mailuser@maildomain").user.maildir);
  CHECK(now->user.uid == 5000);
  REQUIRE(checked->lookup_now("other@maildomain"));
  CHECK(checked->lookup_now("other@maildomain")->status == LS::not_found);
  // Once a re-check of the file is due, only a worker may stat it; its lookup makes it fresh.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK_FALSE(checked->lookup_now("mailuser@maildomain"));
  CHECK(look(*checked, "mailuser@maildomain").status == LS::found);
  CHECK(checked->lookup_now("mailuser@maildomain"));

  s.userdb = "passwd-file " + users;
  s.user_check = "";
  s.mail_uid = s.mail_gid = "5000";
  auto pf = make(s);
  CHECK(pf->lookup_now("mailuser@maildomain")->user.uid == 5000);
  CHECK_FALSE(pf->lookup_now("named@maildomain"));  // uid by name: NSS may block
  CHECK(look(*pf, "named@maildomain").user.uid == 65534);

  std::string db = make_db(dir);
  UserdbSettings sql = static_settings("maildir:~/Maildir");
  sql.user_check = "sql " + dir.write("check.conf.ext", "driver = sqlite\nconnect = " + db +
                                                            "\npassword_query = SELECT password FROM virtual_users "
                                                            "WHERE email = '%u'\n");
  CHECK_FALSE(make(sql)->lookup_now("email1@example.com"));
}

TEST_CASE("parse_quota_rule forms", "[userdb][quota]") {
  auto bytes = [](std::string_view rule) {
    auto r = parse_quota_rule(rule);
    INFO(rule);
    REQUIRE(r.ok());
    return *r;
  };
  CHECK(bytes("*:storage=1G") == std::optional<uint64_t>(1ull << 30));
  CHECK(bytes("*:storage=512M") == std::optional<uint64_t>(512ull << 20));
  CHECK(bytes("*:storage=100000") == std::optional<uint64_t>(100000ull * 1024));  // kilobytes
  CHECK(bytes("*:storage=100k") == std::optional<uint64_t>(100ull * 1024));
  CHECK(bytes("*:storage=2T") == std::optional<uint64_t>(2ull << 40));
  CHECK(bytes("*:storage=1GB") == std::optional<uint64_t>(1ull << 30));
  CHECK(bytes("*:storage=4096B") == std::optional<uint64_t>(4096));
  CHECK(bytes(" *:storage=1g ") == std::optional<uint64_t>(1ull << 30));
  CHECK_FALSE(bytes("*:storage=0"));
  CHECK_FALSE(bytes(""));
  CHECK_FALSE(bytes("*:ignore"));
  CHECK_FALSE(bytes("Trash:storage=+100M"));
  CHECK_FALSE(bytes("*:messages=1000"));
  CHECK_FALSE(bytes("*:storage=+10%"));
  for (std::string_view bad : {"1G", "*:storage=", "*:storage=abc", "*:storage=10X", "*:storage=99999999999999999999",
                               "*:storage=17179869184G"}) {
    INFO(bad);
    CHECK_FALSE(parse_quota_rule(bad).ok());
  }
}
