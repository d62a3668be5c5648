// sql_endpoint_test.cpp - tests for common/sql.hpp's endpoint side: mysql_table(5) host
// parsing, Endpoint::key and Endpoint::describe.
#include "common/sql.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace postern;
using namespace postern::sql;

TEST_CASE("parse_mysql_host accepts every mysql_table(5) form", "[sql]") {
  auto unix1 = parse_mysql_host("unix:/var/run/mysqld/mysqld.sock");
  REQUIRE(unix1);
  CHECK(unix1->unix_socket);
  CHECK(unix1->host == "/var/run/mysqld/mysqld.sock");

  auto unix2 = parse_mysql_host("/run/mysqld/mysqld.sock");
  REQUIRE(unix2);
  CHECK(unix2->unix_socket);
  CHECK(unix2->host == "/run/mysqld/mysqld.sock");

  auto inet_port = parse_mysql_host("inet:db1.example.org:3307");
  REQUIRE(inet_port);
  CHECK_FALSE(inet_port->unix_socket);
  CHECK(inet_port->host == "db1.example.org");
  CHECK(inet_port->port == 3307);

  auto inet = parse_mysql_host("inet:10.0.0.5");
  REQUIRE(inet);
  CHECK(inet->host == "10.0.0.5");
  CHECK(inet->port == 3306);

  auto bare = parse_mysql_host("localhost");
  REQUIRE(bare);
  CHECK_FALSE(bare->unix_socket);
  CHECK(bare->host == "localhost");
  CHECK(bare->port == 3306);

  auto host_port = parse_mysql_host(" 127.0.0.1:65535 ");
  REQUIRE(host_port);
  CHECK(host_port->host == "127.0.0.1");
  CHECK(host_port->port == 65535);

  auto v6 = parse_mysql_host("inet:[::1]:3308");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 3308);

  auto v6_bare = parse_mysql_host("::1");
  REQUIRE(v6_bare);
  CHECK(v6_bare->host == "::1");
  CHECK(v6_bare->port == 3306);
}

TEST_CASE("parse_mysql_host rejects bad entries", "[sql]") {
  for (const char* bad : {"", "   ", "unix:", "inet:", "host:", ":3306", "host:0", "host:65536", "host:99999999999",
                          "host:33a6", "host:-1", "inet:[::1", "[::1]x", "[]:3306", "my host"}) {
    INFO(bad);
    auto r = parse_mysql_host(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("invalid database host"));
  }
  CHECK_THAT(parse_mysql_host("h:70000").error().message, Catch::Contains("out of range"));
}

TEST_CASE("Endpoint::key identifies the endpoint without the password", "[sql]") {
  Endpoint a;
  a.hosts = {"127.0.0.1:3306", "unix:/x.sock"};
  a.user = "mailuser";
  a.password = "Sup3rSecret!";
  a.dbname = "mailserver";
  Endpoint b = a;

  CHECK(a.key() == b.key());
  CHECK(a.key().find("Sup3rSecret!") == std::string::npos);
  CHECK(a.key().find("mailuser") != std::string::npos);

  b.password = "other";
  CHECK(a.key() != b.key());
  b = a;
  b.read_timeout = std::chrono::milliseconds(1);
  CHECK(a.key() != b.key());
  b = a;
  b.hosts = {"127.0.0.1:3306"};
  CHECK(a.key() != b.key());
  b = a;
  b.driver = Driver::sqlite;
  CHECK(a.key() != b.key());
  // Field contents must not be able to imitate a different split between fields.
  Endpoint c = a, d = a;
  c.user = "ab";
  c.dbname = "c";
  d.user = "a";
  d.dbname = "bc";
  CHECK(c.key() != d.key());
}

TEST_CASE("Endpoint::describe names hosts, user and database, never the password", "[sql]") {
  Endpoint a;
  a.hosts = {"inet:127.0.0.1", "/x.sock"};
  a.user = "user";
  a.password = "hunter2hunter2";
  a.dbname = "mailserver";
  CHECK(a.describe() == "mysql(127.0.0.1:3306,unix:/x.sock/user@mailserver)");
  CHECK(a.describe().find("hunter2") == std::string::npos);

  Endpoint s;
  s.driver = Driver::sqlite;
  s.dbname = "/etc/postfix/virtual.sqlite";
  s.password = "hunter2hunter2";
  CHECK(s.describe() == "sqlite(/etc/postfix/virtual.sqlite)");
}
