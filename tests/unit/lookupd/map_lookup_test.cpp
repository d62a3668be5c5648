// map_lookup_test.cpp - tests for lookupd/map_lookup.hpp's lookup(): fallback keys, source
// order, extension propagation, filters and limits, over a fake SourceRunner.
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
