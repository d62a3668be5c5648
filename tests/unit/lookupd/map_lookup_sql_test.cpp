// map_lookup_sql_test.cpp - tests for lookupd/map_lookup.hpp's run_sql_source(): query
// expansion, escaping, values and errors, over a fake sql::Connection and over SQLite.
#include "lookupd/map_lookup.hpp"

#include "tests/unit/lookupd/map_lookup_test_support.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

using namespace postern;
using namespace postern::lookupd;
using namespace map_lookup_test;

namespace {

class FakeConnection : public sql::Connection {
 public:
  sql::Rows rows;
  std::optional<std::string> query_error;
  bool escape_fails = false;
  std::vector<std::string> statements;

  Result<std::string> escape(std::string_view s) override {
    if (escape_fails) return Error{"cannot connect"};
    std::string out;
    for (char c : s) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out;
  }
  Result<sql::Rows> query(const std::string& statement) override {
    statements.push_back(statement);
    if (query_error) return Error{*query_error};
    return rows;
  }
  Status execute_script(const std::string&) override { return Error{"not used"}; }
};

}  // namespace

TEST_CASE("run_sql_source expands with the connection's escaping and returns values", "[map_lookup][sql]") {
  FakeConnection conn;
  conn.rows.rows = {{std::string("frank@x")}, {std::nullopt}, {std::string("")}, {std::string("leeo@x")}};
  MapSource s = source("alias.cf");
  s.query = "SELECT destination FROM virtual_aliases WHERE source='%s'";
  std::vector<std::string> lines;
  auto a = run_sql_source(s, "all@x", conn, [&](std::string_view l) { lines.emplace_back(l); });
  CHECK(a.outcome == Outcome::found);
  CHECK(a.values == std::vector<std::string>{"frank@x", "leeo@x"});
  REQUIRE(conn.statements.size() == 1);
  CHECK(conn.statements[0] == "SELECT destination FROM virtual_aliases WHERE source='all@x'");
  bool traced_sql = false;
  for (auto& l : lines) traced_sql |= l.find(conn.statements[0]) != std::string::npos;
  CHECK(traced_sql);
}

TEST_CASE("run_sql_source escapes hostile keys", "[map_lookup][sql]") {
  FakeConnection conn;
  MapSource s = source("d.cf");
  s.query = "SELECT 1 FROM virtual_domains WHERE name='%s'";
  auto a = run_sql_source(s, "' OR 1=1 --", conn);
  CHECK(a.outcome == Outcome::not_found);
  REQUIRE(conn.statements.size() == 1);
  CHECK(conn.statements[0] == "SELECT 1 FROM virtual_domains WHERE name='\\' OR 1=1 --'");
}

TEST_CASE("run_sql_source: every non-empty column of every row, in order", "[map_lookup][sql]") {
  FakeConnection conn;
  conn.rows.rows = {{std::string("a"), std::string("b")}, {std::nullopt, std::string("c")}};
  auto a = run_sql_source(source("x.cf"), "k", conn);
  CHECK(a.values == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("run_sql_source: no rows, or only NULL/empty, is not found", "[map_lookup][sql]") {
  FakeConnection conn;
  CHECK(run_sql_source(source("x.cf"), "k", conn).outcome == Outcome::not_found);
  conn.rows.rows = {{std::nullopt}, {std::string("")}};
  auto a = run_sql_source(source("x.cf"), "k", conn);
  CHECK(a.outcome == Outcome::not_found);
  CHECK(a.values.empty());
}

TEST_CASE("run_sql_source: a suppressed query is not run", "[map_lookup][sql]") {
  FakeConnection conn;
  MapSource s = source("x.cf");
  s.query = "SELECT v FROM t WHERE d='%d'";
  std::vector<std::string> lines;
  auto a = run_sql_source(s, "example.com", conn, [&](std::string_view l) { lines.emplace_back(l); });
  CHECK(a.outcome == Outcome::not_found);
  CHECK(conn.statements.empty());
  REQUIRE_FALSE(lines.empty());
  CHECK(lines[0].find("query suppressed") != std::string::npos);
  // A result_format that needs the key's domain suppresses the query too.
  MapSource r = source("y.cf");
  r.result_format = "%s@%D";
  CHECK(run_sql_source(r, "example.com", conn).outcome == Outcome::not_found);
  CHECK(conn.statements.empty());
}

TEST_CASE("run_sql_source: query and escape failures are temporary errors", "[map_lookup][sql]") {
  FakeConnection conn;
  conn.query_error = "Lost connection to MySQL server";
  auto a = run_sql_source(source("x.cf"), "k", conn);
  CHECK(a.outcome == Outcome::temp_error);
  CHECK(a.reason == "Lost connection to MySQL server");
  FakeConnection down;
  down.escape_fails = true;
  auto b = run_sql_source(source("x.cf"), "k", down);
  CHECK(b.outcome == Outcome::temp_error);
  CHECK(b.reason.find("cannot connect") != std::string::npos);
  CHECK(down.statements.empty());
}

TEST_CASE("lookup over run_sql_source end to end", "[map_lookup][sql]") {
  FakeConnection conn;
  conn.rows.rows = {{std::string("1")}};
  MapSource s = source("mailboxes.cf");
  s.query = "SELECT 1 FROM virtual_users WHERE email='%s'";
  SourceRunner runner = [&](const MapSource& src, std::string_view key) { return run_sql_source(src, key, conn); };
  auto r = lookup(def(MapKind::address, {s}), "Email1@Example.com", runner);
  CHECK(r.outcome == Outcome::found);
  CHECK(r.value == "1");
  REQUIRE(conn.statements.size() == 1);
  CHECK(conn.statements[0] == "SELECT 1 FROM virtual_users WHERE email='email1@example.com'");
}

TEST_CASE("run_sql_source: no result set is a temporary error unless require_result_set = no",
          "[map_lookup][sql]") {
  FakeConnection conn;
  conn.rows.has_result_set = false;
  MapSource s = source("x.cf");
  auto a = run_sql_source(s, "k", conn);
  CHECK(a.outcome == Outcome::temp_error);
  CHECK_THAT(a.reason, Catch::Contains("query returned no result set"));
  s.require_result_set = false;
  auto b = run_sql_source(s, "k", conn);
  CHECK(b.outcome == Outcome::not_found);
  CHECK(b.reason.empty());
  // An empty result set is an ordinary "not found" either way.
  conn.rows.has_result_set = true;
  s.require_result_set = true;
  CHECK(run_sql_source(s, "k", conn).outcome == Outcome::not_found);
}

TEST_CASE("run_sql_source on SQLite: a statement without a result set", "[map_lookup][sql][sqlite]") {
  postern::testing::TempDir dir;
  std::string file = (dir / "maps.sqlite").string();
  std::ofstream(file).close();  // SQLite takes an empty file as an empty database
  sql::Endpoint ep;
  ep.driver = sql::Driver::sqlite;
  ep.dbname = file;
  auto conn = sql::make_connection(ep);
  REQUIRE(conn->execute_script("CREATE TABLE t (k TEXT, v TEXT); INSERT INTO t VALUES ('a@x', 'b@x');").ok());

  MapSource s = source("update.cf");
  s.query = "UPDATE t SET v = v WHERE k='%s'";
  auto a = run_sql_source(s, "a@x", *conn);
  CHECK(a.outcome == Outcome::temp_error);
  CHECK_THAT(a.reason, Catch::Contains("no result set"));
  // Through lookup() the error stops the fallbacks: Postfix defers rather than bounces.
  SourceRunner runner = [&](const MapSource& src, std::string_view key) { return run_sql_source(src, key, *conn); };
  CHECK(lookup(def(MapKind::address, {s}), "a@x", runner).outcome == Outcome::temp_error);
  s.require_result_set = false;
  CHECK(run_sql_source(s, "a@x", *conn).outcome == Outcome::not_found);
  CHECK(lookup(def(MapKind::address, {s}), "a@x", runner).outcome == Outcome::not_found);

  MapSource pragma = source("pragma.cf");
  pragma.query = "PRAGMA user_version = 3";
  CHECK(run_sql_source(pragma, "a@x", *conn).outcome == Outcome::temp_error);

  MapSource select = source("select.cf");
  select.query = "SELECT v FROM t WHERE k='%s'";
  auto found = run_sql_source(select, "a@x", *conn);
  CHECK(found.outcome == Outcome::found);
  CHECK(found.values == std::vector<std::string>{"b@x"});
  CHECK(run_sql_source(select, "nobody@x", *conn).outcome == Outcome::not_found);
}
