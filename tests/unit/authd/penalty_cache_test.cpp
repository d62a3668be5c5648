// penalty_cache_test.cpp - the per-IP failure penalty and the verification cache.
#include "authd/penalty.hpp"
#include "authd/verification_cache.hpp"

#include <catch2/catch.hpp>

using namespace postern::authd;
using std::chrono::milliseconds;

TEST_CASE("penalty: first failure waits the failure delay, then doubles up to the max", "[penalty]") {
  Penalty p(milliseconds(2000), true, milliseconds(8000));
  auto t = Penalty::Clock::now();
  CHECK(p.failure("192.0.2.1", t) == milliseconds(2000));
  CHECK(p.failure("192.0.2.1", t) == milliseconds(4000));  // 2 s + 2 s
  CHECK(p.failure("192.0.2.1", t) == milliseconds(6000));  // 2 s + 4 s
  CHECK(p.failure("192.0.2.1", t) == milliseconds(9000));  // 2 s + 8 s, capped under Postfix's 10 s
  CHECK(p.failure("192.0.2.1", t) == milliseconds(9000));
  // Another address is not affected.
  CHECK(p.failure("192.0.2.2", t) == milliseconds(2000));
}

TEST_CASE("penalty: a success clears the address; unknown addresses are not tracked", "[penalty]") {
  Penalty p(milliseconds(0), true, milliseconds(8000));
  auto t = Penalty::Clock::now();
  CHECK(p.failure("192.0.2.1", t) == milliseconds(0));
  CHECK(p.failure("192.0.2.1", t) == milliseconds(2000));
  p.success("192.0.2.1");
  CHECK(p.failure("192.0.2.1", t) == milliseconds(0));
  CHECK(p.failure("", t) == milliseconds(0));
  CHECK(p.failure("", t) == milliseconds(0));
  CHECK(p.tracked() == 1);
}

TEST_CASE("penalty: off means only the failure delay; idle addresses start over", "[penalty]") {
  Penalty off(milliseconds(500), false, milliseconds(8000));
  auto t = Penalty::Clock::now();
  for (int i = 0; i < 5; ++i) CHECK(off.failure("192.0.2.1", t) == milliseconds(500));
  Penalty on(milliseconds(0), true, milliseconds(8000));
  CHECK(on.failure("192.0.2.1", t) == milliseconds(0));
  CHECK(on.failure("192.0.2.1", t) == milliseconds(2000));
  CHECK(on.failure("192.0.2.1", t + std::chrono::minutes(16)) == milliseconds(0));
}

TEST_CASE("verification cache: keyed on user, password and stored hash", "[cache]") {
  VerificationCache cache(10, milliseconds(1000));
  auto t = VerificationCache::Clock::now();
  std::string key = cache.key("alice", "secret", "$6$salt$hash");
  CHECK_FALSE(cache.contains(key, t));
  cache.insert(key, t);
  CHECK(cache.contains(key, t));
  // A changed password, a changed stored hash or another user all miss.
  CHECK_FALSE(cache.contains(cache.key("alice", "other", "$6$salt$hash"), t));
  CHECK_FALSE(cache.contains(cache.key("alice", "secret", "$6$salt$newhash"), t));
  CHECK_FALSE(cache.contains(cache.key("bob", "secret", "$6$salt$hash"), t));
  // Field boundaries matter: ("ab","c") is not ("a","bc").
  CHECK(cache.key("ab", "c", "x") != cache.key("a", "bc", "x"));
  // The key is a digest, never the password itself.
  CHECK(key.find("secret") == std::string::npos);
  CHECK(key.size() == 32);
}

TEST_CASE("verification cache: entries expire, the size is bounded, 0 is off", "[cache]") {
  VerificationCache cache(2, milliseconds(1000));
  auto t = VerificationCache::Clock::now();
  auto a = cache.key("a", "p", "s"), b = cache.key("b", "p", "s"), c = cache.key("c", "p", "s");
  cache.insert(a, t);
  CHECK(cache.contains(a, t + milliseconds(999)));
  CHECK_FALSE(cache.contains(a, t + milliseconds(1000)));
  cache.insert(a, t);
  cache.insert(b, t);
  cache.insert(c, t);  // evicts the oldest, a
  CHECK_FALSE(cache.contains(a, t));
  CHECK(cache.contains(b, t));
  CHECK(cache.contains(c, t));
  // Two keys made by different caches differ: the secret is per process (per cache).
  VerificationCache other(2, milliseconds(1000));
  CHECK(other.key("a", "p", "s") != a);
  VerificationCache off(0, milliseconds(1000));
  off.insert(a, t);
  CHECK_FALSE(off.enabled());
  CHECK_FALSE(off.contains(a, t));
}
