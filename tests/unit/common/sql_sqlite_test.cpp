// sql_sqlite_test.cpp - tests for the SQLite sql::Connection (common/sql.hpp): rows, NULLs,
// errors, escaping, and a database file that is missing, replaced or not a database.
#include "common/sql.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

using namespace postern;
using namespace postern::sql;
using postern::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// An empty database file, made with the SQLite API because the backend never creates one.
void create_db(const fs::path& file) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

Endpoint sqlite_endpoint(const fs::path& file) {
  Endpoint ep;
  ep.driver = Driver::sqlite;
  ep.dbname = file.string();
  return ep;
}

const char* kSchema =
    "CREATE TABLE virtual_users (email TEXT PRIMARY KEY, password TEXT, quota INTEGER);\n"
    "INSERT INTO virtual_users VALUES ('alice@example.org', '{SHA512-CRYPT}$6$x', 100);\n"
    "INSERT INTO virtual_users VALUES ('bob@example.org', NULL, NULL);\n";

}  // namespace

TEST_CASE("SQLite connection queries rows, NULLs and statements without rows", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir / "mail.sqlite";
  create_db(file);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn);
  auto script = conn->execute_script(kSchema);
  REQUIRE(script.ok());

  auto rows = conn->query("SELECT email, password, quota FROM virtual_users ORDER BY email");
  REQUIRE(rows);
  CHECK(rows->columns == std::vector<std::string>{"email", "password", "quota"});
  REQUIRE(rows->rows.size() == 2);
  CHECK(rows->rows[0][0] == std::optional<std::string>("alice@example.org"));
  CHECK(rows->rows[0][1] == std::optional<std::string>("{SHA512-CRYPT}$6$x"));
  CHECK(rows->rows[0][2] == std::optional<std::string>("100"));
  CHECK(rows->rows[1][1] == std::nullopt);
  CHECK(rows->rows[1][2] == std::nullopt);

  auto none = conn->query("SELECT email FROM virtual_users WHERE email = 'nobody@example.org'");
  REQUIRE(none);
  CHECK(none->rows.empty());
  CHECK(none->columns.size() == 1);

  auto insert = conn->query("INSERT INTO virtual_users VALUES ('carol@example.org', 'x', 1)");
  REQUIRE(insert);
  CHECK(insert->rows.empty());
  auto count = conn->query("SELECT count(*) FROM virtual_users");
  REQUIRE(count);
  CHECK(count->rows.at(0).at(0) == std::optional<std::string>("3"));
}

TEST_CASE("SQLite errors come back as values and the connection stays usable", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir / "mail.sqlite";
  create_db(file);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn->execute_script(kSchema).ok());

  auto bad = conn->query("SELEKT * FROM virtual_users");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::StartsWith("sqlite(" + file.string() + "): "));
  CHECK_THAT(bad.error().message, Catch::Contains("syntax error"));

  auto two = conn->query("SELECT 1; DELETE FROM virtual_users");
  REQUIRE_FALSE(two);
  auto still = conn->query("SELECT count(*) FROM virtual_users");
  REQUIRE(still);
  CHECK(still->rows.at(0).at(0) == std::optional<std::string>("2"));

  auto bad_script = conn->execute_script("CREATE TABLE t (a); INSERT INTO nope VALUES (1);");
  REQUIRE_FALSE(bad_script.ok());
  CHECK_THAT(bad_script.error().message, Catch::Contains("nope"));
}

TEST_CASE("SQLite escape keeps hostile input a literal", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir / "mail.sqlite";
  create_db(file);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn->execute_script(kSchema).ok());

  auto esc = conn->escape("' OR 1=1 --");
  REQUIRE(esc);
  CHECK(*esc == "'' OR 1=1 --");
  auto rows = conn->query("SELECT email FROM virtual_users WHERE email = '" + *esc + "'");
  REQUIRE(rows);
  CHECK(rows->rows.empty());

  auto unchanged = conn->escape("alice@example.org");
  REQUIRE(unchanged);
  CHECK(*unchanged == "alice@example.org");

  auto nul = conn->escape(std::string_view("a\0b", 3));
  REQUIRE_FALSE(nul);
  CHECK_THAT(nul.error().message, Catch::Contains("NUL"));
}

TEST_CASE("SQLite never creates a missing database file", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir / "missing.sqlite";
  auto conn = make_connection(sqlite_endpoint(file));
  auto rows = conn->query("SELECT 1");
  REQUIRE_FALSE(rows);
  CHECK(rows.error().message == "sqlite(" + file.string() + "): unable to open database file");
  CHECK_FALSE(fs::exists(file));
  CHECK_FALSE(conn->execute_script("CREATE TABLE t (a)").ok());
  CHECK_FALSE(fs::exists(file));
}

TEST_CASE("SQLite follows a database file that is replaced or removed", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir / "mail.sqlite";
  fs::path next = dir / "mail.sqlite.new";
  create_db(file);
  create_db(next);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn->execute_script("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('old');").ok());
  {
    auto writer = make_connection(sqlite_endpoint(next));
    REQUIRE(writer->execute_script("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('new');").ok());
  }
  REQUIRE(conn->query("SELECT v FROM t"));

  fs::rename(next, file);  // how admins regenerate a map database
  auto after = conn->query("SELECT v FROM t");
  REQUIRE(after);
  CHECK(after->rows.at(0).at(0) == std::optional<std::string>("new"));

  fs::remove(file);
  auto gone = conn->query("SELECT v FROM t");
  REQUIRE_FALSE(gone);
  CHECK_THAT(gone.error().message, Catch::Contains("unable to open database file"));
}

TEST_CASE("SQLite reports a file that is not a database", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir / "garbage.sqlite";
  {
    FILE* f = std::fopen(file.c_str(), "w");
    REQUIRE(f);
    std::fputs("this is certainly not an SQLite database, just some text padding it out.......\n", f);
    std::fclose(f);
  }
  auto conn = make_connection(sqlite_endpoint(file));
  auto rows = conn->query("SELECT 1 FROM sqlite_master");
  REQUIRE_FALSE(rows);
  CHECK_THAT(rows.error().message, Catch::Contains("not a database"));
}

TEST_CASE("SQLite tells a statement without a result set from an empty one", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir / "mail.sqlite";
  create_db(file);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn->execute_script(kSchema).ok());

  auto empty = conn->query("SELECT email FROM virtual_users WHERE email = 'nobody@example.org'");
  REQUIRE(empty);
  CHECK(empty->has_result_set);
  CHECK(empty->rows.empty());
  auto update = conn->query("UPDATE virtual_users SET quota = quota WHERE email = 'alice@example.org'");
  REQUIRE(update);
  CHECK_FALSE(update->has_result_set);
  auto set_pragma = conn->query("PRAGMA user_version = 7");
  REQUIRE(set_pragma);
  CHECK_FALSE(set_pragma->has_result_set);
  auto read_pragma = conn->query("PRAGMA user_version");
  REQUIRE(read_pragma);
  CHECK(read_pragma->has_result_set);
  CHECK(read_pragma->rows.at(0).at(0) == std::optional<std::string>("7"));
  auto comment = conn->query("-- nothing to run");
  REQUIRE(comment);
  CHECK_FALSE(comment->has_result_set);
}
