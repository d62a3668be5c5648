// resume_lookup_test.cpp - tests for lookupd/map_lookup.hpp's resume_lookup() (a lookup
// answered one question at a time, as the loop's non-blocking SQL drives it) and the two
// halves of run_sql_source(): prepare_sql_source() and answer_from_rows().
#include "lookupd/map_lookup.hpp"

#include "tests/unit/lookupd/map_lookup_test_support.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace postern;
using namespace postern::lookupd;
using namespace map_lookup_test;

namespace {

using Table = std::map<std::string, std::vector<std::string>>;
using Calls = std::vector<std::pair<std::string, std::string>>;  // (source path, key)

SourceAnswer answer_from(const std::map<std::string, Table>& tables, const std::string& path, const std::string& key) {
  SourceAnswer a;
  auto t = tables.find(path);
  if (t == tables.end()) return a;
  if (auto it = t->second.find(key); it != t->second.end()) {
    a.outcome = Outcome::found;
    a.values = it->second;
  }
  return a;
}

// Drives resume_lookup() to the end, answering from tables (a path in failing answers
// temp_error), and records the questions in the order asked.
LookupResult resume_to_end(const MapDefinition& d, const std::string& key, const std::map<std::string, Table>& tables,
                           Calls& asked, const std::string& failing = "") {
  KnownAnswers known;
  for (int guard = 0; guard < 100; ++guard) {
    ResumedLookup r = resume_lookup(d, key, known);
    if (r.result) {
      REQUIRE_FALSE(r.next);
      return *r.result;
    }
    REQUIRE(r.next);
    KnownAnswer q = std::move(*r.next);
    asked.emplace_back(q.source->path, q.key);
    if (q.source->path == failing) q.answer = SourceAnswer{Outcome::temp_error, {}, "down"};
    else q.answer = answer_from(tables, q.source->path, q.key);
    known.push_back(std::move(q));
  }
  FAIL("resume_lookup never completed");
  return LookupResult::not_found();
}

// The same lookup through lookup() with a runner over the same tables.
LookupResult direct(const MapDefinition& d, const std::string& key, const std::map<std::string, Table>& tables,
                    Calls& asked, const std::string& failing = "") {
  return lookup(d, key, [&](const MapSource& s, std::string_view k) {
    asked.emplace_back(s.path, std::string(k));
    if (s.path == failing) return SourceAnswer{Outcome::temp_error, {}, "down"};
    return answer_from(tables, s.path, std::string(k));
  });
}

void check_same(const MapDefinition& d, const std::string& key, const std::map<std::string, Table>& tables,
                const std::string& failing = "") {
  Calls resumed_calls;
  Calls direct_calls;
  LookupResult resumed = resume_to_end(d, key, tables, resumed_calls, failing);
  LookupResult expected = direct(d, key, tables, direct_calls, failing);
  CHECK(resumed.outcome == expected.outcome);
  CHECK(resumed.value == expected.value);
  CHECK(resumed_calls == direct_calls);
}

}  // namespace

TEST_CASE("resume_lookup asks lookup()'s questions in lookup()'s order and gives its result", "[map_lookup]") {
  std::map<std::string, Table> tables = {
      {"a", {{"user@x", {"u1"}}, {"@y", {"catchall"}}}},
      {"b", {{"other+tag@x", {"o1", "o2"}}, {"user@y", {"b-user"}}}},
  };
  auto alias = def(MapKind::alias, {source("a"), source("b")});
  for (const char* key : {"user@x", "user+news@x", "Other+Tag@X", "user@y", "nobody+z@y", "nobody@z", "", "@x"}) {
    INFO("alias map, key '" << key << "'");
    check_same(alias, key, tables);
  }
  check_same(def(MapKind::address, {source("a"), source("b")}), "user+ext@x", tables);
  check_same(def(MapKind::plain, {source("b")}), "user@y", tables);
}

TEST_CASE("resume_lookup stops at a failing source with lookup()'s temp_error", "[map_lookup]") {
  std::map<std::string, Table> tables = {{"b", {{"user@x", {"u"}}}}};
  auto d = def(MapKind::address, {source("a"), source("b")});
  check_same(d, "user@x", tables, "a");
  Calls asked;
  LookupResult r = resume_to_end(d, "user@x", tables, asked, "a");
  CHECK(r.outcome == Outcome::temp_error);
  CHECK(asked.size() == 1);
}

TEST_CASE("resume_lookup with nothing to ask completes at once", "[map_lookup]") {
  // A domain filter that rules out every key: lookup() asks no source at all.
  auto s = source("a");
  s.domains = {"only.example"};
  auto d = def(MapKind::alias, {s});
  ResumedLookup r = resume_lookup(d, "user@other.example", {});
  REQUIRE(r.result);
  CHECK_FALSE(r.next);
  CHECK(r.result->outcome == Outcome::not_found);
}

TEST_CASE("prepare_sql_source: statement, suppressed queries and escaping errors", "[map_lookup]") {
  auto escape = [](std::string_view s) -> Result<std::string> {
    std::string out;
    for (char c : s) {
      if (c == '\'') out += '\\';
      out += c;
    }
    return out;
  };
  auto s = source("a");
  PreparedSql p = prepare_sql_source(s, "o'brien@x", escape);
  CHECK_FALSE(p.answer);
  CHECK(p.statement == "SELECT v FROM t WHERE k='o\\'brien@x'");

  s.query = "SELECT v FROM t WHERE d='%d'";
  PreparedSql no_domain = prepare_sql_source(s, "user", escape);  // %d of a key without '@'
  REQUIRE(no_domain.answer);
  CHECK(no_domain.answer->outcome == Outcome::not_found);

  PreparedSql failed = prepare_sql_source(s, "user@x", [](std::string_view) -> Result<std::string> {
    return Error{"cannot escape"};
  });
  REQUIRE(failed.answer);
  CHECK(failed.answer->outcome == Outcome::temp_error);
  CHECK(failed.answer->reason == "cannot escape");
}

TEST_CASE("answer_from_rows: values in row order, errors and missing result sets", "[map_lookup]") {
  auto s = source("a");
  sql::Rows rows;
  rows.columns = {"v", "w"};
  rows.rows = {{std::string("one"), std::nullopt}, {std::string(""), std::string("two")}};
  SourceAnswer found = answer_from_rows(s, Result<sql::Rows>(rows));
  CHECK(found.outcome == Outcome::found);
  CHECK(found.values == std::vector<std::string>{"one", "two"});

  SourceAnswer failed = answer_from_rows(s, Result<sql::Rows>(Error{"gone away"}));
  CHECK(failed.outcome == Outcome::temp_error);
  CHECK(failed.reason == "gone away");

  sql::Rows none;
  none.has_result_set = false;
  CHECK(answer_from_rows(s, Result<sql::Rows>(none)).outcome == Outcome::temp_error);
  s.require_result_set = false;
  CHECK(answer_from_rows(s, Result<sql::Rows>(none)).outcome == Outcome::not_found);
}
