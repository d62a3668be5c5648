// result_cache_test.cpp - tests for lookupd/result_cache.hpp, with explicit time points.
#include "lookupd/result_cache.hpp"

#include <catch2/catch.hpp>

using namespace postern::lookupd;
using namespace std::chrono_literals;

namespace {

using Clock = ResultCache::Clock;
const Clock::time_point t0 = Clock::time_point{} + 1000h;

ResultCache::Settings settings(size_t max = 100, std::chrono::milliseconds hit = 60s,
                               std::chrono::milliseconds miss = 10s, bool stale = false) {
  ResultCache::Settings s;
  s.max_entries = max;
  s.hit_ttl = hit;
  s.miss_ttl = miss;
  s.serve_stale = stale;
  return s;
}

}  // namespace

TEST_CASE("cache: a stored answer is returned until its ttl passes", "[result_cache]") {
  ResultCache c(settings());
  c.put("aliases", "a@x", LookupResult::found("b@x"), t0);
  auto hit = c.get("aliases", "a@x", t0 + 59s);
  REQUIRE(hit);
  CHECK(hit->outcome == Outcome::found);
  CHECK(hit->value == "b@x");
  CHECK_FALSE(c.get("aliases", "a@x", t0 + 60s));
  CHECK_FALSE(c.get("aliases", "a@x", t0 + 61s));
}

TEST_CASE("cache: hits and misses have their own ttl", "[result_cache]") {
  ResultCache c(settings(100, 60s, 10s));
  c.put("m", "found", LookupResult::found("1"), t0);
  c.put("m", "missing", LookupResult::not_found(), t0);
  CHECK(c.get("m", "missing", t0 + 9s));
  CHECK(c.get("m", "missing", t0 + 9s)->outcome == Outcome::not_found);
  CHECK_FALSE(c.get("m", "missing", t0 + 10s));
  CHECK(c.get("m", "found", t0 + 10s));
}

TEST_CASE("cache: keyed by map name and case-insensitive key", "[result_cache]") {
  ResultCache c(settings());
  c.put("aliases", "A@X", LookupResult::found("v"), t0);
  CHECK(c.get("aliases", "a@x", t0));
  CHECK_FALSE(c.get("mailboxes", "a@x", t0));
  // The map name and key do not run together.
  c.put("ab", "c", LookupResult::found("1"), t0);
  CHECK_FALSE(c.get("a", "bc", t0));
}

TEST_CASE("cache: put replaces an older answer", "[result_cache]") {
  ResultCache c(settings());
  c.put("m", "k", LookupResult::found("old"), t0);
  c.put("m", "k", LookupResult::found("new"), t0 + 1s);
  CHECK(c.size() == 1);
  CHECK(c.get("m", "k", t0 + 1s)->value == "new");
  // The ttl restarts from the new put.
  CHECK(c.get("m", "k", t0 + 60s));
}

TEST_CASE("cache: errors are never stored and do not evict a good answer", "[result_cache]") {
  ResultCache c(settings(100, 60s, 10s, true));
  c.put("m", "k", LookupResult::temp("db down"), t0);
  c.put("m", "p", LookupResult::perm("bad"), t0);
  CHECK(c.size() == 0);
  CHECK_FALSE(c.get("m", "k", t0));
  c.put("m", "k", LookupResult::found("v"), t0);
  c.put("m", "k", LookupResult::temp("db down"), t0 + 1s);
  REQUIRE(c.get("m", "k", t0 + 1s));
  CHECK(c.get("m", "k", t0 + 1s)->value == "v");
}

TEST_CASE("cache: serve_stale returns expired answers only when on", "[result_cache]") {
  ResultCache on(settings(100, 1s, 1s, true));
  on.put("m", "k", LookupResult::found("v"), t0);
  CHECK_FALSE(on.get("m", "k", t0 + 2s));
  auto stale = on.get_stale("m", "k");
  REQUIRE(stale);
  CHECK(stale->value == "v");
  CHECK_FALSE(on.get_stale("m", "other"));

  ResultCache off(settings(100, 1s, 1s, false));
  off.put("m", "k", LookupResult::found("v"), t0);
  CHECK_FALSE(off.get("m", "k", t0 + 2s));
  CHECK_FALSE(off.get_stale("m", "k"));
}

TEST_CASE("cache: least recently used entries are evicted first", "[result_cache]") {
  ResultCache c(settings(3));
  c.put("m", "a", LookupResult::found("1"), t0);
  c.put("m", "b", LookupResult::found("2"), t0);
  c.put("m", "c", LookupResult::found("3"), t0);
  // Reading "a" makes "b" the oldest.
  CHECK(c.get("m", "a", t0));
  c.put("m", "d", LookupResult::found("4"), t0);
  CHECK(c.size() == 3);
  CHECK_FALSE(c.get("m", "b", t0));
  CHECK(c.get("m", "a", t0));
  CHECK(c.get("m", "c", t0));
  CHECK(c.get("m", "d", t0));
  // The reads above left "a" the oldest; re-putting it refreshes it, so "c" goes next.
  c.put("m", "a", LookupResult::found("1b"), t0);
  c.put("m", "e", LookupResult::found("5"), t0);
  CHECK_FALSE(c.get("m", "c", t0));
  CHECK(c.get("m", "a", t0)->value == "1b");
}

TEST_CASE("cache: expired entries stay until evicted", "[result_cache]") {
  ResultCache c(settings(2, 1s, 1s, true));
  c.put("m", "a", LookupResult::found("1"), t0);
  CHECK_FALSE(c.get("m", "a", t0 + 5s));
  CHECK(c.size() == 1);
  c.put("m", "b", LookupResult::found("2"), t0 + 5s);
  c.put("m", "c", LookupResult::found("3"), t0 + 5s);
  CHECK(c.size() == 2);
  CHECK_FALSE(c.get_stale("m", "a"));
}

TEST_CASE("cache: max_entries 0 turns the cache off", "[result_cache]") {
  ResultCache c(settings(0, 60s, 60s, true));
  c.put("m", "k", LookupResult::found("v"), t0);
  CHECK(c.size() == 0);
  CHECK_FALSE(c.get("m", "k", t0));
  CHECK_FALSE(c.get_stale("m", "k"));
}

TEST_CASE("cache: a ttl of 0 turns that half off", "[result_cache]") {
  ResultCache no_hits(settings(100, 0s, 10s));
  no_hits.put("m", "f", LookupResult::found("v"), t0);
  no_hits.put("m", "n", LookupResult::not_found(), t0);
  CHECK_FALSE(no_hits.get("m", "f", t0));
  CHECK(no_hits.get("m", "n", t0));

  ResultCache no_misses(settings(100, 60s, 0s, true));
  no_misses.put("m", "f", LookupResult::found("v"), t0);
  no_misses.put("m", "n", LookupResult::not_found(), t0);
  CHECK(no_misses.get("m", "f", t0));
  CHECK_FALSE(no_misses.get("m", "n", t0));
  CHECK(no_misses.size() == 1);
  // A key that became not-found must not keep its old found answer for serve_stale.
  no_misses.put("m", "f", LookupResult::not_found(), t0 + 1s);
  CHECK_FALSE(no_misses.get("m", "f", t0 + 1s));
  CHECK_FALSE(no_misses.get_stale("m", "f"));
  CHECK(no_misses.size() == 0);
}

TEST_CASE("cache: clear empties everything", "[result_cache]") {
  ResultCache c(settings(100, 60s, 60s, true));
  c.put("m", "a", LookupResult::found("1"), t0);
  c.put("m", "b", LookupResult::not_found(), t0);
  REQUIRE(c.size() == 2);
  c.clear();
  CHECK(c.size() == 0);
  CHECK_FALSE(c.get("m", "a", t0));
  CHECK_FALSE(c.get_stale("m", "b"));
  // Still usable afterwards.
  c.put("m", "a", LookupResult::found("2"), t0);
  CHECK(c.get("m", "a", t0)->value == "2");
}
