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

TEST_CASE("cache: keyed by map name and the exact key (the resolver folds case)", "[result_cache]") {
  ResultCache c(settings());
  c.put("aliases", "A+Foo@X", LookupResult::found("t+Foo@y"), t0);
  CHECK(c.get("aliases", "A+Foo@X", t0));
  // An alias answer carries the client's extension case, so other spellings miss.
  CHECK_FALSE(c.get("aliases", "a+foo@x", t0));
  CHECK_FALSE(c.get("mailboxes", "A+Foo@X", t0));
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

TEST_CASE("cache: without serve_stale an expired entry is dropped when met", "[result_cache]") {
  ResultCache c(settings(100, 1s, 1s, false));
  c.put("m", "f", LookupResult::found("v"), t0);
  c.put("m", "n", LookupResult::not_found(), t0);
  REQUIRE(c.size() == 2);
  size_t both = c.bytes();
  CHECK_FALSE(c.get("m", "f", t0 + 2s));
  CHECK(c.size() == 1);
  CHECK(c.bytes() == both - ResultCache::entry_bytes("m", "f", "v"));
  CHECK_FALSE(c.get("m", "n", t0 + 2s));
  CHECK(c.size() == 0);
  CHECK(c.bytes() == 0);
}

TEST_CASE("cache: with serve_stale only expired found answers are kept", "[result_cache]") {
  ResultCache c(settings(100, 1s, 1s, true));
  c.put("m", "f", LookupResult::found("v"), t0);
  c.put("m", "n", LookupResult::not_found(), t0);
  CHECK_FALSE(c.get("m", "f", t0 + 2s));
  CHECK_FALSE(c.get("m", "n", t0 + 2s));
  CHECK(c.size() == 1);
  REQUIRE(c.get_stale("m", "f"));
  CHECK(c.get_stale("m", "f")->value == "v");
}

TEST_CASE("cache: a stale not-found answer is never served", "[result_cache]") {
  // During an outage, a NOTFOUND cached before a user was created would bounce their mail.
  ResultCache c(settings(100, 1s, 1s, true));
  c.put("m", "new-user@x", LookupResult::not_found(), t0);
  CHECK_FALSE(c.get_stale("m", "new-user@x"));
  // Not even while it is still fresh: get_stale is only asked when the database failed.
  CHECK(c.get("m", "new-user@x", t0));
  CHECK_FALSE(c.get_stale("m", "new-user@x"));
}

TEST_CASE("cache: bytes count each key once, plus value and a fixed overhead", "[result_cache]") {
  ResultCache c(settings());
  std::string key(1000, 'k');
  std::string value(2000, 'v');
  c.put("aliases", key, LookupResult::found(value), t0);
  size_t one = ResultCache::entry_bytes("aliases", key, value);
  CHECK(one == 7 + 1 + 1000 + 2000 + ResultCache::kEntryOverhead);
  CHECK(c.bytes() == one);
  // Replacing the answer re-counts the value; the key is still counted once.
  c.put("aliases", key, LookupResult::found("short"), t0);
  CHECK(c.bytes() == ResultCache::entry_bytes("aliases", key, "short"));
  c.put("aliases", "b", LookupResult::not_found(), t0);
  CHECK(c.bytes() == ResultCache::entry_bytes("aliases", key, "short") + ResultCache::entry_bytes("aliases", "b", ""));
  c.clear();
  CHECK(c.bytes() == 0);
}

TEST_CASE("cache: the byte budget evicts least recently used entries", "[result_cache]") {
  std::string value(1000, 'v');
  size_t each = ResultCache::entry_bytes("m", "a", value);
  ResultCache::Settings s = settings(100);
  s.max_bytes = 3 * each;  // room for exactly three
  ResultCache c(s);
  c.put("m", "a", LookupResult::found(value), t0);
  c.put("m", "b", LookupResult::found(value), t0);
  c.put("m", "c", LookupResult::found(value), t0);
  CHECK(c.size() == 3);
  CHECK(c.get("m", "a", t0));  // "b" is now the oldest
  c.put("m", "d", LookupResult::found(value), t0);
  CHECK(c.size() == 3);
  CHECK(c.bytes() <= s.max_bytes);
  CHECK_FALSE(c.get("m", "b", t0));
  CHECK(c.get("m", "a", t0));
  CHECK(c.get("m", "c", t0));
  CHECK(c.get("m", "d", t0));
  // A bigger answer for an existing key can push out others too.
  c.put("m", "a", LookupResult::found(std::string(2000, 'w')), t0);
  CHECK(c.bytes() <= s.max_bytes);
  CHECK(c.get("m", "a", t0));
  CHECK(c.size() == 2);
  CHECK_FALSE(c.get("m", "c", t0));
  // An answer bigger than the whole budget is not stored and evicts nothing.
  c.put("m", "huge", LookupResult::found(std::string(4 * each, 'h')), t0);
  CHECK_FALSE(c.get("m", "huge", t0));
  CHECK(c.size() == 2);
}

TEST_CASE("cache: oversized keys and values are not stored", "[result_cache]") {
  ResultCache c(settings(100, 60s, 60s, true));
  std::string long_key(ResultCache::kMaxKeyBytes + 1, 'k');
  c.put("m", long_key, LookupResult::found("v"), t0);
  c.put("m", long_key, LookupResult::not_found(), t0);
  CHECK(c.size() == 0);
  CHECK_FALSE(c.get("m", long_key, t0));
  std::string max_key(ResultCache::kMaxKeyBytes, 'k');
  c.put("m", max_key, LookupResult::found("v"), t0);
  CHECK(c.get("m", max_key, t0));

  std::string big(ResultCache::kMaxValueBytes + 1, 'v');
  c.put("m", "k", LookupResult::found(big), t0);
  CHECK_FALSE(c.get("m", "k", t0));
  std::string max_value(ResultCache::kMaxValueBytes, 'v');
  c.put("m", "k", LookupResult::found(max_value), t0);
  REQUIRE(c.get("m", "k", t0));
  CHECK(c.get("m", "k", t0)->value.size() == ResultCache::kMaxValueBytes);
  // The key's answer became too big to store: the older one must not linger for serve_stale.
  c.put("m", "k", LookupResult::found(big), t0 + 1s);
  CHECK_FALSE(c.get("m", "k", t0 + 1s));
  CHECK_FALSE(c.get_stale("m", "k"));
  CHECK(c.size() == 1);
}

TEST_CASE("cache: many distinct long keys stay within the byte budget", "[result_cache]") {
  // The review's case, scaled down: distinct long keys must not grow memory without bound.
  ResultCache::Settings s = settings(1000000, 60s, 60s);
  s.max_bytes = 256 * 1024;
  ResultCache c(s);
  for (int i = 0; i < 2000; ++i) {
    std::string key = std::to_string(i) + std::string(1000, 'k');
    c.put("m", key, LookupResult::not_found(), t0);
    REQUIRE(c.bytes() <= s.max_bytes);
  }
  CHECK(c.size() == s.max_bytes / ResultCache::entry_bytes("m", std::string(1004, 'k'), ""));
}
