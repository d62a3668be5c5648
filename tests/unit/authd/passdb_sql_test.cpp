// passdb_sql_test.cpp - tests for authd/passdb.hpp's SQL passdb: the seeds' schemas and
// queries against SQLite files made here, dovecot-sql.conf.ext connect strings and errors.
#include "authd/passdb.hpp"

#include "tests/unit/authd/passdb_test_support.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

using namespace postern;
using namespace postern::authd;
using namespace passdb_test;
using LS = PassdbLookup::Status;

namespace {

// Schema A (seeds 000/001) in SQLite, plus seed 002's enable column and the identity
// aliases seed 001's alias-login note asks for.
void create_mailserver_db(const std::string& file) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK);
  std::string script =
      "CREATE TABLE virtual_domains (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);\n"
      "CREATE TABLE virtual_users (id INTEGER PRIMARY KEY, domain_id INT NOT NULL, password VARCHAR(106) NOT NULL,"
      " email VARCHAR(100) NOT NULL UNIQUE, enable INT NOT NULL DEFAULT 1);\n"
      "CREATE TABLE virtual_aliases (id INTEGER PRIMARY KEY, domain_id INT NOT NULL, source VARCHAR(100) NOT NULL,"
      " destination VARCHAR(100) NOT NULL);\n"
      "INSERT INTO virtual_domains VALUES (1, 'example.com');\n"
      "INSERT INTO virtual_users VALUES (1, 1, '" + kFrankHash + "', 'email1@example.com', 1);\n"
      "INSERT INTO virtual_users VALUES (2, 1, '" + kLeeoHash + "', 'email2@example.com', 0);\n"
      "INSERT INTO virtual_aliases VALUES (1, 1, 'alias@example.com', 'email1@example.com');\n"
      "INSERT INTO virtual_aliases VALUES (2, 1, 'email1@example.com', 'email1@example.com');\n"
      // Dovecot's example table, for username/domain columns and the built-in default query.
      "CREATE TABLE users (username VARCHAR(128), domain VARCHAR(128), password VARCHAR(64), active CHAR(1));\n"
      "INSERT INTO users VALUES ('bob', 'example.org', '{PLAIN}bobpw', 'Y');\n"
      "INSERT INTO users VALUES ('padded', 'example.org', '{PLAIN}pw     ', 'Y');\n"
      "INSERT INTO users VALUES ('twin', 'example.org', 'a', 'Y');\n"
      "INSERT INTO users VALUES ('twin', 'example.org', 'b', 'Y');\n"
      "INSERT INTO users VALUES ('open', 'example.org', NULL, 'Y');\n";
  char* err = nullptr;
  int rc = sqlite3_exec(db, script.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

struct SqlFixture {
  TempDir dir;
  std::string db_file = (dir / "mail.sqlite").string();
  WorkerContext worker{0};
  SqlFixture() { create_mailserver_db(db_file); }

  std::unique_ptr<Passdb> make(const std::string& query_lines, const std::string& scheme = "SHA512-CRYPT") {
    std::string conf = dir.write("dovecot-sql.conf.ext", "driver = sqlite\nconnect = " + db_file +
                                                             "\ndefault_pass_scheme = " + scheme + "\n" + query_lines);
    auto p = make_sql_passdb(conf, SqlTimeouts{});
    INFO((p.ok() ? std::string() : p.error().message));
    REQUIRE(p.ok());
    return std::move(p).value();
  }
  PassdbLookup lookup(Passdb& p, const std::string& user) {
    PassdbRequest r;
    r.user = user;
    return p.lookup(r, worker);
  }
};

std::string sql_conf_error(TempDir& dir, const std::string& text) {
  auto p = make_sql_passdb(dir.write("bad.conf.ext", text), SqlTimeouts{});
  REQUIRE_FALSE(p.ok());
  return p.error().message;
}

}  // namespace

TEST_CASE("sql: seed 001 query finds the user and returns the canonical name", "[passdb][sql]") {
  SqlFixture f;
  auto p = f.make("password_query = SELECT email as user, password FROM virtual_users WHERE email='%u';\n");
  PassdbLookup r = f.lookup(*p, "email1@example.com");
  CHECK(r.status == LS::found);
  CHECK(r.user == "email1@example.com");
  REQUIRE(r.password);
  CHECK(*r.password == kFrankHash);
  CHECK(r.default_scheme == "SHA512-CRYPT");
  CHECK_FALSE(r.nopassword);
  CHECK(f.lookup(*p, "nobody@example.com").status == LS::not_found);
  // SQLite compares case-sensitively (MySQL's utf8_general_ci would not).
  CHECK(f.lookup(*p, "EMAIL1@example.com").status == LS::not_found);
}

TEST_CASE("sql: seed 002 enable=1 and seed 003 password-only queries", "[passdb][sql]") {
  SqlFixture f;
  auto enabled = f.make(
      "password_query = SELECT email as user, password FROM virtual_users WHERE enable=1 AND email='%u';\n");
  CHECK(f.lookup(*enabled, "email1@example.com").status == LS::found);
  CHECK(f.lookup(*enabled, "email2@example.com").status == LS::not_found);

  auto only_pw = f.make("password_query = SELECT password FROM virtual_users WHERE email='%u'\n");
  PassdbLookup r = f.lookup(*only_pw, "email2@example.com");
  CHECK(r.status == LS::found);
  CHECK(r.user == "email2@example.com");  // no user column: the requested name stays
  REQUIRE(r.password);
  CHECK(*r.password == kLeeoHash);
}

TEST_CASE("sql: seed 001 alias login maps to the primary address", "[passdb][sql]") {
  SqlFixture f;
  auto p = f.make(
      "password_query = SELECT email as user, password FROM virtual_users WHERE "
      "email=(SELECT destination FROM virtual_aliases WHERE source = '%u');\n");
  PassdbLookup r = f.lookup(*p, "alias@example.com");
  CHECK(r.status == LS::found);
  CHECK(r.user == "email1@example.com");
  CHECK(f.lookup(*p, "email1@example.com").user == "email1@example.com");
  CHECK(f.lookup(*p, "email2@example.com").status == LS::not_found);  // no identity alias
}

TEST_CASE("sql: username + domain columns, and Dovecot's built-in default query", "[passdb][sql]") {
  SqlFixture f;
  auto lowered = f.make(
      "password_query = \\\n"
      "  SELECT username, domain, password \\\n"
      "  FROM users WHERE username = lower('%n') AND domain = lower('%d')\n");
  PassdbLookup r = f.lookup(*lowered, "BOB@Example.ORG");
  CHECK(r.status == LS::found);
  CHECK(r.user == "bob@example.org");
  REQUIRE(r.password);
  CHECK(*r.password == "{PLAIN}bobpw");

  // No password_query at all: db-sql.c's default, which uses exactly these columns.
  auto by_default = f.make("", "PLAIN");
  PassdbLookup d = f.lookup(*by_default, "bob@example.org");
  CHECK(d.status == LS::found);
  CHECK(d.user == "bob@example.org");
  CHECK(d.default_scheme == "PLAIN");
}

TEST_CASE("sql: CHAR padding is trimmed from password and user", "[passdb][sql]") {
  SqlFixture f;
  auto p = f.make(
      "password_query = SELECT username || '@' || domain || '   ' AS user, password FROM users "
      "WHERE username = '%n'\n");
  PassdbLookup r = f.lookup(*p, "padded@example.org");
  CHECK(r.status == LS::found);
  CHECK(r.user == "padded@example.org");
  REQUIRE(r.password);
  CHECK(*r.password == "{PLAIN}pw");
}

TEST_CASE("sql: nopassword and NULL passwords", "[passdb][sql]") {
  SqlFixture f;
  auto yes = f.make("password_query = SELECT password, 'Y' AS NoPassword FROM users WHERE username = '%n'\n");
  PassdbLookup open = f.lookup(*yes, "open@example.org");
  CHECK(open.status == LS::found);
  CHECK(open.nopassword);
  CHECK_FALSE(open.password);
  // A real password wins over nopassword, as in Dovecot ("password is non-empty").
  PassdbLookup bob = f.lookup(*yes, "bob@example.org");
  CHECK_FALSE(bob.nopassword);
  REQUIRE(bob.password);
  CHECK(*bob.password == "{PLAIN}bobpw");

  auto no = f.make("password_query = SELECT password, 'N' AS nopassword FROM users WHERE username = '%n'\n");
  PassdbLookup closed = f.lookup(*no, "open@example.org");
  CHECK(closed.status == LS::found);  // Dovecot: "password mismatch", not "unknown user"
  CHECK_FALSE(closed.nopassword);
  CHECK_FALSE(closed.password);

  auto null_flag = f.make("password_query = SELECT password, NULL AS nopassword FROM users WHERE username = '%n'\n");
  CHECK_FALSE(f.lookup(*null_flag, "open@example.org").nopassword);

  // password_noscheme: a leading "{...}" is part of the password, so the default scheme is spelled out.
  auto noscheme = f.make("password_query = SELECT '{x}y' AS password_noscheme FROM users WHERE username = '%n'\n");
  PassdbLookup ns = f.lookup(*noscheme, "bob@example.org");
  REQUIRE(ns.password);
  CHECK(*ns.password == "{SHA512-CRYPT}{x}y");
}

TEST_CASE("sql: multiple rows, a missing password column and SQL errors are temporary", "[passdb][sql]") {
  SqlFixture f;
  auto p = f.make("password_query = SELECT password FROM users WHERE username = '%n'\n");
  PassdbLookup twins = f.lookup(*p, "twin@example.org");
  CHECK(twins.status == LS::temp_error);
  CHECK_THAT(twins.error, Catch::Contains("multiple"));

  auto no_pw = f.make("password_query = SELECT username AS user FROM users WHERE username = '%n'\n");
  PassdbLookup r = f.lookup(*no_pw, "bob@example.org");
  CHECK(r.status == LS::temp_error);
  CHECK_THAT(r.error, Catch::Contains("'password'"));

  auto broken = f.make("password_query = SELECT password FROM no_such_table WHERE x = '%u'\n");
  CHECK(f.lookup(*broken, "bob@example.org").status == LS::temp_error);
}

TEST_CASE("sql: an injection key stays a literal and finds nothing", "[passdb][sql]") {
  SqlFixture f;
  auto p = f.make("password_query = SELECT email as user, password FROM virtual_users WHERE email='%u';\n");
  for (const char* key : {"' OR 1=1 --", "x' OR '1'='1", "'; DROP TABLE virtual_users; --"}) {
    INFO(key);
    CHECK(f.lookup(*p, key).status == LS::not_found);
  }
  CHECK(f.lookup(*p, "email1@example.com").status == LS::found);  // the table survived
}

TEST_CASE("sql: a missing database file is a temporary failure", "[passdb][sql]") {
  SqlFixture f;
  std::string conf = f.dir.write("gone.conf.ext", "driver = sqlite\nconnect = " + (f.dir / "gone.sqlite").string() +
                                                      "\npassword_query = SELECT password FROM t WHERE u='%u'\n");
  auto p = make_sql_passdb(conf, SqlTimeouts{});
  REQUIRE(p.ok());
  PassdbLookup r = f.lookup(**p, "email1@example.com");
  CHECK(r.status == LS::temp_error);
  CHECK_FALSE(r.error.empty());
}

TEST_CASE("sql: connect strings, and describe() without the password", "[passdb][sql]") {
  TempDir dir;
  std::string seed = dir.write("seed.conf.ext",
                               "driver = mysql\n"
                               "connect = host=127.0.0.1 dbname=mailserver user=mailuser password=mailuserpass\n"
                               "default_pass_scheme = SHA512-CRYPT\n"
                               "password_query = SELECT email as user, password FROM virtual_users WHERE email='%u';\n");
  auto p = make_sql_passdb(seed, SqlTimeouts{});
  REQUIRE(p.ok());
  CHECK((*p)->describe() == "sql(" + seed + ": mysql(127.0.0.1:3306/mailuser@mailserver))");
  REQUIRE((*p)->endpoint_keys().size() == 1);
  CHECK_THAT((*p)->endpoint_keys()[0], !Catch::Contains("mailuserpass"));

  std::string multi = dir.write("multi.conf.ext",
                                "driver = mysql\n"
                                "connect = host=/var/run/mysqld/mysqld.sock host=sql1.example.org host=::1 "
                                "port=3307 dbname=mail user=u password=p4ss\n");
  auto m = make_sql_passdb(multi, SqlTimeouts{});
  INFO((m.ok() ? std::string() : m.error().message));
  REQUIRE(m.ok());
  CHECK((*m)->describe() == "sql(" + multi + ": mysql(unix:/var/run/mysqld/mysqld.sock,sql1.example.org:3307,"
                                             "[::1]:3307/u@mail))");
  CHECK_THAT((*m)->describe(), !Catch::Contains("p4ss"));

  std::string lite = dir.write("lite.conf.ext", "driver = sqlite\nconnect = /etc/dovecot/authdb.sqlite\n");
  auto l = make_sql_passdb(lite, SqlTimeouts{});
  REQUIRE(l.ok());
  CHECK((*l)->describe() == "sql(" + lite + ": sqlite(/etc/dovecot/authdb.sqlite))");
}

TEST_CASE("sql: configuration errors", "[passdb][sql]") {
  TempDir dir;
  CHECK_THAT(sql_conf_error(dir, "driver = pgsql\nconnect = host=db dbname=x\n"), Catch::Contains("not supported"));
  CHECK_THAT(sql_conf_error(dir, "driver = oracle\nconnect = host=db\n"), Catch::Contains("unknown driver"));
  CHECK_THAT(sql_conf_error(dir, "driver = mysql\n"), Catch::Contains("connect"));
  CHECK_THAT(sql_conf_error(dir, "connect = host=db\n"), Catch::Contains("driver"));
  CHECK_THAT(sql_conf_error(dir, "driver = mysql\nconnect = dbname=x user=u\n"), Catch::Contains("no host"));
  CHECK_THAT(sql_conf_error(dir, "driver = mysql\nconnect = host=db ssl_ca=/etc/ca.pem\n"),
             Catch::Contains("ssl_ca") && Catch::Contains("not supported"));
  CHECK_THAT(sql_conf_error(dir, "driver = mysql\nconnect = host=db colour=blue\n"), Catch::Contains("colour"));
  std::string spaced = sql_conf_error(dir, "driver = mysql\nconnect = host=db password= hunter2\n");
  CHECK_THAT(spaced, Catch::Contains("without '='") && !Catch::Contains("hunter2"));
  CHECK_THAT(sql_conf_error(dir, "driver = sqlite\nconnect = /x.db\npassword_query = SELECT password WHERE u='%x'\n"),
             Catch::Contains("%x"));
  CHECK_THAT(sql_conf_error(dir, "driver = sqlite\nconnect = /x.db\npassword_query = ;\n"), Catch::Contains("empty"));
  // Unknown keys only warn; user_query and iterate_query are accepted and unused.
  std::string ok = dir.write("ok.conf.ext",
                             "driver = sqlite\nconnect = /x.db\nuser_query = SELECT home FROM u\n"
                             "iterate_query = SELECT username AS user FROM users\nfrobnicate = yes\n");
  CHECK(make_sql_passdb(ok, SqlTimeouts{}).ok());
}

TEST_CASE("sql: an unreachable MariaDB is temp_error and the message hides the password", "[passdb][sql]") {
  TempDir dir;
  std::string conf = dir.write("down.conf.ext",
                               "driver = mysql\n"
                               "connect = host=" + (dir / "no-such-mysqld.sock").string() +
                                   " dbname=mailserver user=mailuser password=Sup3rS3cretPw\n"
                                   "password_query = SELECT password FROM virtual_users WHERE email='%u'\n");
  SqlTimeouts fast;
  fast.connect = std::chrono::milliseconds(300);
  fast.read = std::chrono::milliseconds(300);
  auto p = make_sql_passdb(conf, fast);
  REQUIRE(p.ok());
  WorkerContext worker(0);
  PassdbRequest req;
  req.user = "email1@example.com";
  PassdbLookup r = (*p)->lookup(req, worker);
  CHECK(r.status == LS::temp_error);
  CHECK_FALSE(r.error.empty());
  CHECK_THAT(r.error, !Catch::Contains("Sup3rS3cretPw"));
  CHECK_FALSE(r.password);
}
