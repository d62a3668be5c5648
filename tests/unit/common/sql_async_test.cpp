// sql_async_test.cpp - tests for the loop's non-blocking MariaDB connection
// (common/sql_async.hpp) against a fake server (fake_mariadb.hpp): rows, statement errors
// that leave it usable, a lost connection and a read timeout that break it, abort(), and
// escaping; plus a connect failure against a dead port.
#include "common/sql_async.hpp"

#include "tests/unit/common/fake_mariadb.hpp"

#include <catch2/catch.hpp>
#include <uv.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

using namespace postern;
using namespace postern::sql;

namespace {

Endpoint endpoint_for(const std::string& host) {
  Endpoint ep;
  ep.hosts = {host};
  ep.user = "mailuser";
  ep.password = "secret";
  ep.dbname = "mailserver";
  ep.connect_timeout = std::chrono::milliseconds(1000);
  ep.read_timeout = std::chrono::milliseconds(1000);
  return ep;
}

// A loop and one LoopConnection on it; query() runs the loop until the answer is in.
struct Fixture {
  uv_loop_t loop;
  std::unique_ptr<LoopConnection> conn;

  explicit Fixture(const Endpoint& ep) {
    uv_loop_init(&loop);
    auto made = LoopConnection::connect(ep);
    REQUIRE(made);
    conn = std::move(*made);
    conn->attach(&loop);
  }
  ~Fixture() {
    conn.reset();
    uv_run(&loop, UV_RUN_DEFAULT);  // the handles' close callbacks
    CHECK(uv_loop_close(&loop) == 0);
  }

  Result<Rows> query(const std::string& statement) {
    std::optional<Result<Rows>> answer;
    conn->query(statement, [&answer](Result<Rows> rows) { answer.emplace(std::move(rows)); });
    while (!answer) uv_run(&loop, UV_RUN_ONCE);
    CHECK_FALSE(conn->busy());
    return std::move(*answer);
  }
};

}  // namespace

TEST_CASE("LoopConnection runs statements on the loop and keeps the connection", "[sql][async]") {
  fake_mariadb::Server server;
  Fixture f(endpoint_for(server.host()));
  auto one = f.query("SELECT 'first'");
  REQUIRE(one);
  REQUIRE(one->has_result_set);
  CHECK(one->columns == std::vector<std::string>{"v"});
  REQUIRE(one->rows.size() == 1);
  CHECK(one->rows[0][0] == std::optional<std::string>("first"));

  auto none = f.query("SELECT none");
  REQUIRE(none);
  CHECK(none->has_result_set);
  CHECK(none->rows.empty());

  // A statement error is the statement's fault: the connection stays usable.
  auto bad = f.query("SELEKT 1");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("query failed: you have an error in your SQL syntax"));
  CHECK_FALSE(f.conn->broken());
  auto again = f.query("SELECT 'again'");
  REQUIRE(again);
  CHECK(again->rows[0][0] == std::optional<std::string>("again"));
  CHECK(server.queries() == 4);
}

TEST_CASE("LoopConnection: a connection the server closes is broken", "[sql][async]") {
  fake_mariadb::Server server;
  Fixture f(endpoint_for(server.host()));
  auto lost = f.query("SELECT close");
  REQUIRE_FALSE(lost);
  CHECK(f.conn->broken());
  CHECK_THAT(lost.error().message, Catch::StartsWith("mysql(127.0.0.1:"));
}

TEST_CASE("LoopConnection: a silent server ends the statement at the read timeout", "[sql][async]") {
  fake_mariadb::Server server;
  Fixture f(endpoint_for(server.host()));
  auto started = std::chrono::steady_clock::now();
  auto slow = f.query("SELECT slow");
  auto waited = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(slow);
  CHECK(f.conn->broken());
  CHECK(waited >= std::chrono::milliseconds(900));
  CHECK(waited < std::chrono::milliseconds(5000));
}

TEST_CASE("LoopConnection::abort ends a statement in flight at once", "[sql][async]") {
  fake_mariadb::Server server;
  Fixture f(endpoint_for(server.host()));
  std::optional<Result<Rows>> answer;
  f.conn->query("SELECT slow", [&answer](Result<Rows> rows) { answer.emplace(std::move(rows)); });
  uv_run(&f.loop, UV_RUN_NOWAIT);  // the statement is sent; no answer will come
  REQUIRE_FALSE(answer);
  CHECK(f.conn->busy());
  f.conn->abort();
  REQUIRE(answer);
  CHECK_FALSE(*answer);
  CHECK_FALSE(f.conn->busy());
  CHECK(f.conn->broken());
}

TEST_CASE("LoopConnection destroyed with a statement in flight does not call its done", "[sql][async]") {
  fake_mariadb::Server server;
  Fixture f(endpoint_for(server.host()));
  bool called = false;
  f.conn->query("SELECT slow", [&called](Result<Rows>) { called = true; });
  uv_run(&f.loop, UV_RUN_NOWAIT);
  f.conn.reset();
  CHECK_FALSE(called);
}

TEST_CASE("LoopConnection: a done callback may destroy the connection", "[sql][async]") {
  fake_mariadb::Server server;
  Fixture f(endpoint_for(server.host()));
  bool called = false;
  f.conn->query("SELECT 'x'", [&](Result<Rows> rows) {
    CHECK(rows);
    f.conn.reset();
    called = true;
  });
  while (!called) uv_run(&f.loop, UV_RUN_ONCE);
}

TEST_CASE("LoopConnection escapes with the connection's rules and refuses NUL", "[sql][async]") {
  fake_mariadb::Server server;
  Fixture f(endpoint_for(server.host()));
  auto quoted = f.conn->escape("o'brien\\");
  REQUIRE(quoted);
  CHECK(*quoted == "o\\'brien\\\\");
  auto nul = f.conn->escape(std::string_view("a\0b", 3));
  REQUIRE_FALSE(nul);
  CHECK_THAT(nul.error().message, Catch::Contains("NUL"));
}

TEST_CASE("LoopConnection::connect fails like a Connection on a dead host", "[sql][async]") {
  auto made = LoopConnection::connect(endpoint_for("inet:127.0.0.1:1"));
  REQUIRE_FALSE(made);
  CHECK_THAT(made.error().message, Catch::Contains("127.0.0.1:1/mailserver): connect failed"));
  Endpoint sqlite;
  sqlite.driver = Driver::sqlite;
  sqlite.dbname = "/nonexistent.db";
  REQUIRE_FALSE(LoopConnection::connect(sqlite));
}
