// dovecot_sql_conf_test.cpp - tests for common/dovecot_sql_conf.hpp: connect strings,
// queries and their defaults, refusals, and password scrubbing.
#include "common/dovecot_sql_conf.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace postern;

namespace {

struct ConfFile {
  testing::TempDir dir{"postern-sqlconf"};
  Result<DovecotSqlConf> load(const std::string& text) {
    return load_dovecot_sql_conf(dir.write("dovecot-sql.conf.ext", text), SqlConnectTimeouts{});
  }
};

}  // namespace

TEST_CASE("dovecot-sql.conf.ext: the seeds' file", "[dovecot_sql_conf]") {
  ConfFile f;
  auto c = f.load("driver = mysql\n"
                  "connect = host=127.0.0.1 dbname=mailserver user=mailuser password=mailuserpass\n"
                  "default_pass_scheme = SHA512-CRYPT\n"
                  "password_query = SELECT email as user, password FROM virtual_users WHERE email='%u';\n");
  INFO((c.ok() ? std::string() : c.error().message));
  REQUIRE(c.ok());
  CHECK(c->endpoint.driver == sql::Driver::mysql);
  CHECK(c->endpoint.hosts == std::vector<std::string>{"127.0.0.1"});
  CHECK(c->endpoint.dbname == "mailserver");
  CHECK(c->endpoint.user == "mailuser");
  CHECK(c->endpoint.password == "mailuserpass");
  CHECK(c->default_pass_scheme == "SHA512-CRYPT");
  CHECK(c->password_query == "SELECT email as user, password FROM virtual_users WHERE email='%u'");  // ';' dropped
  CHECK_FALSE(c->password_query_is_default);
  CHECK(c->user_query_is_default);  // Dovecot's built-in user_query
  CHECK_THAT(c->user_query, Catch::Contains("FROM users"));
  CHECK_THAT(c->where("password_query"), Catch::EndsWith("line 4"));
}

TEST_CASE("dovecot-sql.conf.ext: connect strings", "[dovecot_sql_conf]") {
  auto ep = parse_dovecot_connect("mysql", "host=/run/mysqld/mysqld.sock host=db1 host=::1 port=3307 dbname=m "
                                  "connect_timeout=7", sql::Endpoint{});
  REQUIRE(ep.ok());
  CHECK(ep->hosts == std::vector<std::string>{"/run/mysqld/mysqld.sock", "db1:3307", "[::1]:3307"});
  CHECK(ep->connect_timeout == std::chrono::seconds(7));
  auto lite = parse_dovecot_connect("sqlite", " /etc/dovecot/authdb.sqlite ", sql::Endpoint{});
  REQUIRE(lite.ok());
  CHECK(lite->driver == sql::Driver::sqlite);
  CHECK(lite->dbname == "/etc/dovecot/authdb.sqlite");

  struct Bad {
    const char* driver;
    const char* connect;
    const char* says;
  };
  for (const Bad& b : {Bad{"mysql", "host=db ssl_ca=/ca.pem", "ssl_ca"}, Bad{"mysql", "host=db option_file=/x", "option_file"},
                       Bad{"mysql", "dbname=x", "no host"}, Bad{"mysql", "host=db colour=blue", "colour"},
                       Bad{"mysql", "host=db connect_timeout=soon", "connect_timeout"},
                       Bad{"pgsql", "host=db", "pgsql"}, Bad{"sqlite", "  ", "empty"}, Bad{"oracle", "x", "unknown driver"}}) {
    auto r = parse_dovecot_connect(b.driver, b.connect, sql::Endpoint{});
    INFO(b.connect);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains(b.says));
  }
  auto spaced = parse_dovecot_connect("mysql", "host=db password= hunter2", sql::Endpoint{});
  REQUIRE_FALSE(spaced.ok());
  CHECK_THAT(spaced.error().message, !Catch::Contains("hunter2"));
}

TEST_CASE("dovecot-sql.conf.ext: file errors name the line", "[dovecot_sql_conf]") {
  ConfFile f;
  auto no_driver = f.load("connect = /x.db\n");
  REQUIRE_FALSE(no_driver.ok());
  CHECK_THAT(no_driver.error().message, Catch::Contains("driver"));
  auto empty_q = f.load("driver = sqlite\nconnect = /x.db\nuser_query = ;\n");
  REQUIRE_FALSE(empty_q.ok());
  CHECK_THAT(empty_q.error().message, Catch::Contains("line 3") && Catch::Contains("user_query is empty"));
  auto ssl = f.load("driver = mysql\nconnect = host=db password=S3cret ssl_cert=/c.pem\n");
  REQUIRE_FALSE(ssl.ok());
  CHECK_THAT(ssl.error().message, Catch::Contains("line 2") && !Catch::Contains("S3cret"));
}

TEST_CASE("scrub_secret", "[dovecot_sql_conf]") {
  CHECK(scrub_secret("Access denied for pw pw", "pw") == "Access denied for <password> <password>");
  CHECK(scrub_secret("nothing here", "") == "nothing here");
  CHECK(scrub_secret("aaaa", "aa") == "<password><password>");
}
