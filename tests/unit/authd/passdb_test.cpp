// passdb_test.cpp - tests for authd/passdb.hpp: the SQL passdb against SQLite files made
// here (the seeds' schemas and queries), dovecot-sql.conf.ext connect strings, and the
// passwd-file passdb (args, format, re-read on change).
#include "authd/passdb.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace postern;
using namespace postern::authd;
using LS = PassdbLookup::Status;
namespace fs = std::filesystem;

namespace {

// Seed 003's `doveadm pw -s SHA512-CRYPT` outputs and seed 004's users.db hash.
const std::string kFrankHash =
    "$6$dEqUVsCirHzV8kHw$hgC0x0ufah.N0PzUVvhLEMnoww5lo.JBmeLSsRNDkgWVylC55Gk6zA1KWsn.SiIAAIDEqHxtugGZWHl1qMex..";
const std::string kLeeoHash =
    "$6$TF7w672arYUk.fGC$enDafylYnih4q140B2Bu4QfEvLCQAiQBHXpqDpHQPHruil4j4QbLXMvctWHdZ/MpuwvhmBGHTlNufVwc9hG34/";
const std::string kSeed004Hash =
    "$6$g6adDoglZXU5CJq1$AMojgOJQPtdEEGt1MW86YZUDMlf1Wi6QLz6RH.7BHJpNzjQmYpRmP./IN0eRP8.eLAmEcnoRtzrS1jonKQT9k/";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "postern-passdb-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream out(path / name, std::ios::binary | std::ios::trunc);
    out << text;
    return (path / name).string();
  }
};

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
  std::string db_file = (dir.path / "mail.sqlite").string();
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
  std::string conf = f.dir.write("gone.conf.ext", "driver = sqlite\nconnect = " + (f.dir.path / "gone.sqlite").string() +
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
                               "connect = host=" + (dir.path / "no-such-mysqld.sock").string() +
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

// ---- passwd-file ----------------------------------------------------------------------

namespace {

std::unique_ptr<Passdb> make_pf(const std::string& args) {
  auto p = make_passwd_file_passdb(args);
  INFO((p.ok() ? std::string() : p.error().message));
  REQUIRE(p.ok());
  return std::move(p).value();
}

PassdbLookup pf_lookup(Passdb& p, const std::string& user) {
  WorkerContext worker(0);
  PassdbRequest r;
  r.user = user;
  return p.lookup(r, worker);
}

// Rewrites a file in place and moves its mtime, as an editor saving twice in a second might not.
void rewrite(const std::string& path, const std::string& text, int mtime_bump_s) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  timespec times[2] = {st.st_atim, st.st_mtim};
  times[1].tv_sec += mtime_bump_s;
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

void wait_past_check_interval() { std::this_thread::sleep_for(std::chrono::milliseconds(1100)); }

}  // namespace

TEST_CASE("passwd-file: args as Dovecot reads them", "[passdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users.db", "MAILUSER@MAILDOMAIN:123456\n");
  CHECK(pf_lookup(*make_pf("scheme=PLAIN " + users), "MAILUSER@MAILDOMAIN").default_scheme == "PLAIN");
  CHECK(pf_lookup(*make_pf(users), "MAILUSER@MAILDOMAIN").default_scheme == "CRYPT");  // Dovecot's default
  CHECK(make_pf("scheme=SHA512-CRYPT " + users)->describe() == "passwd-file(" + users + ")");

  for (const std::string& bad : std::vector<std::string>{"scheme=PLAIN", "", "users.db", "scheme=PLAIN relative/users.db", "colour=blue " + users,
                          "username_format=%x " + users, "scheme= " + users, "scheme=PLAIN /etc/dovecot/%d/passwd"}) {
    INFO(bad);
    CHECK_FALSE(make_passwd_file_passdb(bad).ok());
  }
}

TEST_CASE("passwd-file: seed 004's users.db, corrected and as printed", "[passdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users.db", "MAILUSER@MAILDOMAIN:" + kSeed004Hash + "\n");
  auto p = make_pf("scheme=SHA512-CRYPT " + users);
  PassdbLookup r = pf_lookup(*p, "MAILUSER@MAILDOMAIN");
  CHECK(r.status == LS::found);
  CHECK(r.user == "MAILUSER@MAILDOMAIN");
  REQUIRE(r.password);
  CHECK(*r.password == kSeed004Hash);
  CHECK(r.default_scheme == "SHA512-CRYPT");
  // Case-sensitive, as Dovecot's passwd-file is unless the format lowercases.
  CHECK(pf_lookup(*p, "mailuser@maildomain").status == LS::not_found);

  // The markdown backtick after the hash: the line is refused, not half-used.
  std::string printed = dir.write("printed.db", "MAILUSER@MAILDOMAIN:" + kSeed004Hash + "`\nother@x:{PLAIN}ok\n");
  auto q = make_pf("scheme=SHA512-CRYPT " + printed);
  CHECK(pf_lookup(*q, "MAILUSER@MAILDOMAIN").status == LS::not_found);
  CHECK(pf_lookup(*q, "other@x").status == LS::found);
}

TEST_CASE("passwd-file: line format", "[passdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users",
                                "# comment:line\n"
                                "\n"
                                "plain@x:{PLAIN}secret:5000:5000::/var/mail/x/plain::\r\n"
                                "bare@x:" + kFrankHash + "\n"
                                "nameonly@x\n"
                                ":nobody:\n"
                                "open@x::::::: nopassword\n"
                                "notopen@x::::::: nopassword=no\n"
                                "alias@x:{PLAIN}a:::::: user=Real@x userdb_home=/h\n"
                                "joined@x:{PLAIN}j::::::username=other\n"
                                "legacy@x:0123456789abcdef0123456789abcdef[34]\n"
                                "dollar@x:{PLAIN}$ with `odd` chars\n"
                                "prefixed@x:{SHA512-CRYPT}$6$salt$hash`\n"
                                "emptied@x:{PLAIN}e:::::: user=\n"
                                "dup@x:first\n"
                                "dup@x:second\n");
  auto p = make_pf("scheme=SHA512-CRYPT " + users);
  PassdbLookup plain = pf_lookup(*p, "plain@x");
  REQUIRE(plain.password);
  CHECK(*plain.password == "{PLAIN}secret");
  CHECK(*pf_lookup(*p, "bare@x").password == kFrankHash);

  PassdbLookup nameonly = pf_lookup(*p, "nameonly@x");
  CHECK(nameonly.status == LS::found);
  CHECK_FALSE(nameonly.password);
  CHECK_FALSE(nameonly.nopassword);

  PassdbLookup open = pf_lookup(*p, "open@x");
  CHECK(open.status == LS::found);
  CHECK(open.nopassword);
  CHECK_FALSE(pf_lookup(*p, "notopen@x").nopassword);

  CHECK(pf_lookup(*p, "alias@x").user == "Real@x");
  CHECK(pf_lookup(*p, "joined@x").user == "other@x");
  CHECK(*pf_lookup(*p, "legacy@x").password == "{PLAIN-MD5}0123456789abcdef0123456789abcdef");
  CHECK(*pf_lookup(*p, "dup@x").password == "first");
  CHECK(*pf_lookup(*p, "dollar@x").password == "{PLAIN}$ with `odd` chars");  // only crypt values are checked
  CHECK(pf_lookup(*p, "prefixed@x").status == LS::not_found);
  PassdbLookup emptied = pf_lookup(*p, "emptied@x");
  CHECK(emptied.status == LS::found);
  CHECK_FALSE(emptied.password);  // an empty user= fails the login, as in Dovecot
  CHECK(emptied.user == "emptied@x");
  CHECK(pf_lookup(*p, "# comment").status == LS::not_found);
  CHECK(pf_lookup(*p, "").status == LS::not_found);
}

TEST_CASE("passwd-file: username_format", "[passdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users", "email1:{PLAIN}one\nmailuser@maildomain:{PLAIN}two\n");
  auto by_name = make_pf("scheme=PLAIN username_format=%n " + users);
  PassdbLookup r = pf_lookup(*by_name, "email1@example.com");
  CHECK(r.status == LS::found);
  CHECK(r.user == "email1@example.com");  // the login name, not the file's key
  auto lowered = make_pf("username_format=%Lu scheme=PLAIN " + users);
  CHECK(pf_lookup(*lowered, "MailUser@MailDomain").status == LS::found);
  CHECK(pf_lookup(*make_pf(users), "MailUser@MailDomain").status == LS::not_found);
}

TEST_CASE("passwd-file: a missing file is temp_error until it appears", "[passdb][passwd-file]") {
  TempDir dir;
  std::string path = (dir.path / "users.db").string();
  auto p = make_pf("scheme=PLAIN " + path);
  PassdbLookup r = pf_lookup(*p, "a@x");
  CHECK(r.status == LS::temp_error);
  CHECK_THAT(r.error, Catch::Contains(path));
  dir.write("users.db", "a@x:{PLAIN}pw\n");
  wait_past_check_interval();
  CHECK(pf_lookup(*p, "a@x").status == LS::found);
}

TEST_CASE("passwd-file: re-read on change, at most once a second, no stale copy", "[passdb][passwd-file]") {
  TempDir dir;
  std::string path = dir.write("users.db", "a@x:{PLAIN}old1\n");
  auto start = std::chrono::steady_clock::now();
  auto p = make_pf("scheme=PLAIN " + path);
  CHECK(*pf_lookup(*p, "a@x").password == "{PLAIN}old1");

  rewrite(path, "a@x:{PLAIN}new1\n", 5);  // same size: only the stamp tells
  PassdbLookup early = pf_lookup(*p, "a@x");
  if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(900)) {
    CHECK(*early.password == "{PLAIN}old1");  // checked less than a second ago
  }
  wait_past_check_interval();
  CHECK(*pf_lookup(*p, "a@x").password == "{PLAIN}new1");

  // Replaced by rename (new inode), with a user added and one removed.
  std::string next = dir.write("users.db.new", "b@x:{PLAIN}bpw\n");
  fs::rename(next, path);
  wait_past_check_interval();
  CHECK(pf_lookup(*p, "a@x").status == LS::not_found);
  CHECK(pf_lookup(*p, "b@x").status == LS::found);

  // Removed: temporary failure, not the last good content.
  fs::remove(path);
  wait_past_check_interval();
  CHECK(pf_lookup(*p, "b@x").status == LS::temp_error);
}

TEST_CASE("passwd-file: concurrent lookups while the file changes", "[passdb][passwd-file]") {
  TempDir dir;
  std::string path = dir.write("users.db", "a@x:{PLAIN}1\nb@x:{PLAIN}2\n");
  auto p = make_pf("scheme=PLAIN " + path);
  std::atomic<int> found{0};
  std::atomic<int> other{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      WorkerContext worker(t);
      PassdbRequest r;
      r.user = "a@x";
      while (!stop) (p->lookup(r, worker).status == LS::found ? found : other)++;
    });
  // Long enough for the once-a-second check to re-read while lookups run.
  for (int i = 0; i < 12; ++i) {
    rewrite(path, "a@x:{PLAIN}" + std::to_string(i % 10) + "\nb@x:{PLAIN}2\n", i + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (auto& th : threads) th.join();
  CHECK(found > 0);
  CHECK(other == 0);  // every version of the file has a@x
  wait_past_check_interval();
  CHECK(*pf_lookup(*p, "a@x").password == "{PLAIN}1");  // the last write (i = 11)
}
