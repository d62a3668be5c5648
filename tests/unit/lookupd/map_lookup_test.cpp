// map_lookup_test.cpp - tests for lookupd/map_lookup.hpp: fallbacks, multi-source order,
// extension propagation, filters and limits (fake SourceRunner), and run_sql_source
// (fake sql::Connection).
#include "lookupd/map_lookup.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <utility>

using namespace postern;
using namespace postern::lookupd;

namespace {

using Table = std::map<std::string, std::vector<std::string>>;

MapSource source(std::string path) {
  MapSource s;
  s.path = std::move(path);
  s.query = "SELECT v FROM t WHERE k='%s'";
  return s;
}

// Answers from an in-memory table per source path, and records every (path, key) asked.
struct FakeRunner {
  std::map<std::string, Table> tables;
  std::map<std::string, std::string> failing;  // path -> reason
  std::vector<std::pair<std::string, std::string>> calls;

  SourceRunner runner() {
    return [this](const MapSource& s, std::string_view key) {
      calls.emplace_back(s.path, std::string(key));
      SourceAnswer a;
      if (auto f = failing.find(s.path); f != failing.end()) {
        a.outcome = Outcome::temp_error;
        a.reason = f->second;
        return a;
      }
      auto& t = tables[s.path];
      if (auto it = t.find(std::string(key)); it != t.end()) {
        a.outcome = Outcome::found;
        a.values = it->second;
      }
      return a;
    };
  }
};

MapDefinition def(MapKind kind, std::vector<MapSource> sources, std::string delim = "+") {
  MapDefinition d;
  d.name = "m";
  d.kind = kind;
  d.recipient_delimiter = std::move(delim);
  d.sources = std::move(sources);
  return d;
}

using Keys = std::vector<std::string>;

}  // namespace

TEST_CASE("fallback_keys: user+tag@dom -> full, stripped, @dom", "[map_lookup]") {
  auto d = def(MapKind::address, {source("a")});
  CHECK(fallback_keys(d, "user+tag@dom.example") == Keys{"user+tag@dom.example", "user@dom.example", "@dom.example"});
  CHECK(fallback_keys(d, "user@dom.example") == Keys{"user@dom.example", "@dom.example"});
}

TEST_CASE("fallback_keys: case folding", "[map_lookup]") {
  auto d = def(MapKind::address, {source("a")});
  CHECK(fallback_keys(d, "User+Tag@Dom.EXAMPLE") == Keys{"user+tag@dom.example", "user@dom.example", "@dom.example"});
  CHECK(fallback_keys(def(MapKind::plain, {source("a")}), "Example.COM") == Keys{"example.com"});
}

TEST_CASE("fallback_keys: plain kind and keys without @ get only the full key", "[map_lookup]") {
  CHECK(fallback_keys(def(MapKind::plain, {source("a")}), "user+tag@dom") == Keys{"user+tag@dom"});
  CHECK(fallback_keys(def(MapKind::alias, {source("a")}), "example.com") == Keys{"example.com"});
}

TEST_CASE("fallback_keys: delimiter edge cases follow split_addr", "[map_lookup]") {
  auto d = def(MapKind::alias, {source("a")});
  // A local part that starts with the delimiter is not split at all.
  CHECK(fallback_keys(d, "+foo@x") == Keys{"+foo@x", "@x"});
  // Cut at the first delimiter; the extension may be empty.
  CHECK(fallback_keys(d, "a+b+c@x") == Keys{"a+b+c@x", "a@x", "@x"});
  CHECK(fallback_keys(d, "a+@x") == Keys{"a+@x", "a@x", "@x"});
  // Every character of recipient_delimiter is a delimiter.
  auto multi = def(MapKind::alias, {source("a")}, "+-");
  CHECK(fallback_keys(multi, "a-b@x") == Keys{"a-b@x", "a@x", "@x"});
  // ... but owner-foo, foo-request and the reserved names are not split with '-'.
  CHECK(fallback_keys(multi, "owner-list@x") == Keys{"owner-list@x", "@x"});
  CHECK(fallback_keys(multi, "list-request@x") == Keys{"list-request@x", "@x"});
  CHECK(fallback_keys(multi, "mailer-daemon@x") == Keys{"mailer-daemon@x", "@x"});
  // No delimiter configured: no stripping.
  CHECK(fallback_keys(def(MapKind::alias, {source("a")}, ""), "a+b@x") == Keys{"a+b@x", "@x"});
  // A catch-all key is not tried twice; an empty domain has no catch-all.
  CHECK(fallback_keys(d, "@x") == Keys{"@x"});
  CHECK(fallback_keys(d, "user@") == Keys{"user@"});
}

TEST_CASE("lookup tries steps in order, each across every source", "[map_lookup]") {
  FakeRunner f;
  f.tables["b"]["@dom"] = {"catch@dom"};
  auto d = def(MapKind::address, {source("a"), source("b")});
  auto r = lookup(d, "user+tag@dom", f.runner());
  CHECK(r.outcome == Outcome::found);
  CHECK(r.value == "catch@dom");
  using Call = std::pair<std::string, std::string>;
  CHECK(f.calls == std::vector<Call>{{"a", "user+tag@dom"}, {"b", "user+tag@dom"}, {"a", "user@dom"},
                                     {"b", "user@dom"},     {"a", "@dom"},         {"b", "@dom"}});
}

TEST_CASE("a catch-all in an earlier source does not capture an address a later one lists", "[map_lookup]") {
  // Seed 003: virtual_alias_maps = alias-maps.cf, email2email.cf.
  FakeRunner f;
  f.tables["aliases"]["@x"] = {"catchall@x"};
  f.tables["email2email"]["frank@x"] = {"frank@x"};
  auto d = def(MapKind::alias, {source("aliases"), source("email2email")});
  auto r = lookup(d, "frank@x", f.runner());
  CHECK(r.outcome == Outcome::found);
  CHECK(r.value == "frank@x");
  // Someone no source lists does fall through to the catch-all.
  CHECK(lookup(d, "nobody@x", f.runner()).value == "catchall@x");
}

TEST_CASE("the first source with a value wins within a step", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["u@x"] = {"from-a@x"};
  f.tables["b"]["u@x"] = {"from-b@x"};
  auto r = lookup(def(MapKind::address, {source("a"), source("b")}), "u@x", f.runner());
  CHECK(r.value == "from-a@x");
  CHECK(f.calls.size() == 1);
}

TEST_CASE("extension propagation: alias kind, stripped step only", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["user@x"] = {"one@y", "two@z", "local"};
  f.tables["a"]["full+tag@x"] = {"f@y"};
  f.tables["a"]["@x"] = {"all@y"};
  auto alias = def(MapKind::alias, {source("a")});
  CHECK(lookup(alias, "user+tag@x", f.runner()).value == "one+tag@y,two+tag@z,local+tag");
  // Step 1 and step 3 matches are returned as they are.
  CHECK(lookup(alias, "full+tag@x", f.runner()).value == "f@y");
  CHECK(lookup(alias, "other+tag@x", f.runner()).value == "all@y");
  // Address kind never propagates.
  CHECK(lookup(def(MapKind::address, {source("a")}), "user+tag@x", f.runner()).value == "one@y,two@z,local");
}

TEST_CASE("extension propagation keeps the extension as written and handles list values", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["user@x"] = {"a@y, b@y", "@otherdomain"};
  auto r = lookup(def(MapKind::alias, {source("a")}), "User+Tag@X", f.runner());
  // "@otherdomain" is left for Postfix, which puts the original user in front of it.
  CHECK(r.value == "a+Tag@y,b+Tag@y,@otherdomain");
}

TEST_CASE("plain kind tries only the full key", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["user@x"] = {"1"};
  f.tables["a"]["@x"] = {"1"};
  auto r = lookup(def(MapKind::plain, {source("a")}), "user+tag@x", f.runner());
  CHECK(r.outcome == Outcome::not_found);
  REQUIRE(f.calls.size() == 1);
  CHECK(f.calls[0].second == "user+tag@x");
}

TEST_CASE("keys reach the runner lower-cased", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["example.com"] = {"1"};
  auto r = lookup(def(MapKind::plain, {source("a")}), "EXAMPLE.Com", f.runner());
  CHECK(r.outcome == Outcome::found);
  CHECK(f.calls.at(0).second == "example.com");
}

TEST_CASE("domain pre-filter: only user@listed-domain keys are looked up", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["u@listed.example"] = {"hit"};
  f.tables["a"]["@listed.example"] = {"catchall"};
  MapSource s = source("a");
  s.domains = {"listed.example"};
  auto d = def(MapKind::address, {s});
  CHECK(lookup(d, "u@listed.example", f.runner()).value == "hit");
  // @domain fallbacks are not looked up in a filtered source...
  f.calls.clear();
  CHECK(lookup(d, "other@listed.example", f.runner()).outcome == Outcome::not_found);
  CHECK(f.calls == std::vector<std::pair<std::string, std::string>>{{"a", "other@listed.example"}});
  // ...nor other domains, bare domains or @domain keys.
  f.calls.clear();
  CHECK(lookup(d, "u@other.example", f.runner()).outcome == Outcome::not_found);
  CHECK(lookup(def(MapKind::plain, {s}), "listed.example", f.runner()).outcome == Outcome::not_found);
  CHECK(lookup(def(MapKind::plain, {s}), "@listed.example", f.runner()).outcome == Outcome::not_found);
  CHECK(f.calls.empty());
}

TEST_CASE("multi-row values are joined with a comma and no spaces, in row order", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["all@x"] = {"frank@x", "leeo@x"};
  CHECK(lookup(def(MapKind::alias, {source("a")}), "all@x", f.runner()).value == "frank@x,leeo@x");
}

TEST_CASE("result_format is applied to each value; skipped values drop out", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["u@x"] = {"host1", "", "host2"};
  f.tables["a"]["v@x"] = {"unqualified"};
  MapSource s = source("a");
  s.result_format = "smtp:[%s]";
  CHECK(lookup(def(MapKind::plain, {s}), "u@x", f.runner()).value == "smtp:[host1],smtp:[host2]");
  // A source whose values are all skipped answers not found, and the next source is asked.
  MapSource needs_domain = source("a");
  needs_domain.result_format = "%d";
  f.tables["b"]["v@x"] = {"from-b"};
  auto r = lookup(def(MapKind::plain, {needs_domain, source("b")}), "v@x", f.runner());
  CHECK(r.value == "from-b");
}

TEST_CASE("empty values are never found", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["u@x"] = {"", ""};
  auto r = lookup(def(MapKind::plain, {source("a")}), "u@x", f.runner());
  CHECK(r.outcome == Outcome::not_found);
  CHECK(r.value.empty());
  // A runner that claims found with no values is treated the same.
  SourceRunner liar = [](const MapSource&, std::string_view) { return SourceAnswer{Outcome::found, {}, {}}; };
  CHECK(lookup(def(MapKind::plain, {source("a")}), "u@x", liar).outcome == Outcome::not_found);
}

TEST_CASE("expansion_limit: more elements than the limit is a temporary error", "[map_lookup]") {
  FakeRunner f;
  f.tables["a"]["list@x"] = {"a@x", "b@x", "c@x"};
  MapSource s = source("a");
  s.expansion_limit = 2;
  auto r = lookup(def(MapKind::alias, {s}), "list@x", f.runner());
  CHECK(r.outcome == Outcome::temp_error);
  CHECK(r.reason.find("expansion_limit") != std::string::npos);
  s.expansion_limit = 3;
  CHECK(lookup(def(MapKind::alias, {s}), "list@x", f.runner()).value == "a@x,b@x,c@x");
}

TEST_CASE("an error in any source is a temporary error at once", "[map_lookup]") {
  FakeRunner f;
  f.tables["b"]["u@x"] = {"found-later"};
  f.failing["a"] = "database down";
  auto r = lookup(def(MapKind::address, {source("a"), source("b")}), "u@x", f.runner());
  CHECK(r.outcome == Outcome::temp_error);
  CHECK(r.reason.find("database down") != std::string::npos);
  CHECK(f.calls.size() == 1);
  // Also when the failing source comes second and the first says not found.
  FakeRunner g;
  g.failing["b"] = "timeout";
  auto r2 = lookup(def(MapKind::address, {source("a"), source("b")}), "u@x", g.runner());
  CHECK(r2.outcome == Outcome::temp_error);
  CHECK(r2.reason.find("timeout") != std::string::npos);
}

TEST_CASE("trace reports each step and source with the answer", "[map_lookup]") {
  FakeRunner f;
  f.tables["b"]["u@x"] = {"v"};
  std::vector<std::string> lines;
  TraceSink sink = [&](std::string_view l) { lines.emplace_back(l); };
  auto r = lookup(def(MapKind::address, {source("a"), source("b")}), "u@x", f.runner(), sink);
  CHECK(r.value == "v");
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].find("'u@x'") != std::string::npos);
  CHECK(lines[0].find(" a") != std::string::npos);
  CHECK(lines[1].find("not found") != std::string::npos);
  CHECK(lines[1].find("ms") != std::string::npos);
  CHECK(lines[3].find("found: v") != std::string::npos);
}

// ---------------------------------------------------------------------------
// run_sql_source

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

namespace {

// A temporary directory, removed with its contents at the end of the test.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "map_lookup_test.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

}  // namespace

TEST_CASE("run_sql_source on SQLite: a statement without a result set", "[map_lookup][sql][sqlite]") {
  ScratchDir dir;
  std::string file = (dir.path / "maps.sqlite").string();
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
