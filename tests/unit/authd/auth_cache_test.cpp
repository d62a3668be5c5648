// auth_cache_test.cpp - the auth cache and the Authenticator's use of it: Dovecot's rules
// (fresh entries answer, a changed password is looked up again, expired entries answer
// through an outage), and the loop-thread answer to a repeated login.
#include "authd/auth_cache.hpp"
#include "authd/authenticator.hpp"

#include "tests/unit/authd/fake_passdb.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace postern;
using namespace postern::authd;
using std::chrono::milliseconds;

namespace {

PassdbLookup found(const std::string& user, const std::string& password) {
  PassdbLookup out;
  out.status = PassdbLookup::Status::found;
  out.user = user;
  out.password = password;
  out.default_scheme = "PLAIN";
  return out;
}

AuthCacheSettings settings(size_t entries, milliseconds ttl, milliseconds negative_ttl) {
  AuthCacheSettings s;
  s.entries = entries;
  s.ttl = ttl;
  s.negative_ttl = negative_ttl;
  return s;
}

PassdbRequest request(const std::string& user) {
  PassdbRequest r;
  r.user = user;
  return r;
}

}  // namespace

TEST_CASE("auth cache: entries expire after their TTL, unknown users after the negative TTL", "[cache]") {
  AuthCache cache(settings(10, milliseconds(1000), milliseconds(100)));
  auto t = AuthCache::Clock::now();
  CHECK_FALSE(cache.find("alice", t));
  cache.store("alice", found("alice", "{PLAIN}secret"), t);
  cache.store("ghost", PassdbLookup{}, t);
  REQUIRE(cache.find("alice", t + milliseconds(999)));
  CHECK(cache.find("alice", t + milliseconds(999))->fresh);
  CHECK(cache.find("alice", t + milliseconds(999))->answer.password == "{PLAIN}secret");
  // Expired entries are still there (for outages), marked stale.
  REQUIRE(cache.find("alice", t + milliseconds(1000)));
  CHECK_FALSE(cache.find("alice", t + milliseconds(1000))->fresh);
  CHECK(cache.find("ghost", t + milliseconds(99))->fresh);
  CHECK_FALSE(cache.find("ghost", t + milliseconds(100))->fresh);
  // Temporary failures are never cached.
  PassdbLookup down;
  down.status = PassdbLookup::Status::temp_error;
  cache.store("bob", down, t);
  CHECK_FALSE(cache.find("bob", t));
}

TEST_CASE("auth cache: the verified password is a digest of user, password and stored hash", "[cache]") {
  AuthCache cache(settings(10, milliseconds(1000), milliseconds(1000)));
  auto t = AuthCache::Clock::now();
  cache.store("alice", found("alice", "$6$salt$hash"), t);
  CHECK_FALSE(cache.verified("alice", "secret", t));
  cache.record("alice", "secret", true);
  CHECK(cache.verified("alice", "secret", t));
  CHECK(cache.find("alice", t)->last_success);
  CHECK_FALSE(cache.verified("alice", "other", t));
  CHECK_FALSE(cache.verified("alice", "secret", t + milliseconds(1000)));  // stale: no
  // A failed check is remembered, and a right password then counts as a success again.
  cache.record("alice", "other", false);
  CHECK_FALSE(cache.find("alice", t)->last_success);
  CHECK(cache.verified("alice", "secret", t));
  CHECK(cache.find("alice", t)->last_success);
  // A new stored hash forgets the verified password.
  cache.store("alice", found("alice", "$6$salt$newhash"), t);
  CHECK_FALSE(cache.verified("alice", "secret", t));
}

TEST_CASE("auth cache: bounded, least recently used out first; 0 entries is off", "[cache]") {
  AuthCache cache(settings(2, milliseconds(1000), milliseconds(1000)));
  auto t = AuthCache::Clock::now();
  cache.store("a", found("a", "x"), t);
  cache.store("b", found("b", "x"), t);
  CHECK(cache.find("a", t));  // a is now the most recently used
  cache.store("c", found("c", "x"), t);
  CHECK(cache.find("a", t));
  CHECK_FALSE(cache.find("b", t));
  CHECK(cache.find("c", t));
  AuthCache off(settings(0, milliseconds(1000), milliseconds(1000)));
  off.store("a", found("a", "x"), t);
  CHECK_FALSE(off.enabled());
  CHECK_FALSE(off.find("a", t));
}

TEST_CASE("authenticator: a repeated login is answered from the cache, without the passdb", "[cache]") {
  auth_test::FakePassdb passdb;
  passdb.users["alice"] = "{PLAIN}secret";
  Authenticator auth(settings(100, milliseconds(60000), milliseconds(60000)));
  WorkerContext worker(0);
  CHECK_FALSE(auth.verify_plain_cached(passdb, request("alice"), "secret"));
  CHECK(auth.verify_plain(passdb, request("alice"), "secret", worker).kind == AuthOutcome::Kind::ok);
  CHECK(passdb.lookups == 1);
  auto hit = auth.verify_plain_cached(passdb, request("alice"), "secret");
  REQUIRE(hit);
  CHECK(hit->kind == AuthOutcome::Kind::ok);
  CHECK(hit->user == "alice");
  CHECK(passdb.lookups == 1);
  // A password never seen to match needs a worker (a hash), never a cached yes.
  CHECK_FALSE(auth.verify_plain_cached(passdb, request("alice"), "guess"));
  // Unknown users are remembered for the negative TTL.
  CHECK(auth.verify_plain(passdb, request("ghost"), "x", worker).kind == AuthOutcome::Kind::fail);
  auto ghost = auth.verify_plain_cached(passdb, request("ghost"), "x");
  REQUIRE(ghost);
  CHECK(ghost->kind == AuthOutcome::Kind::fail);
  CHECK(passdb.lookups == 2);
}

TEST_CASE("authenticator: a changed password is seen at once; a wrong one after a failure is not re-looked up",
          "[cache]") {
  auth_test::FakePassdb passdb;
  passdb.users["alice"] = "{PLAIN}old";
  Authenticator auth(settings(100, milliseconds(60000), milliseconds(60000)));
  WorkerContext worker(0);
  REQUIRE(auth.verify_plain(passdb, request("alice"), "old", worker).kind == AuthOutcome::Kind::ok);
  passdb.users["alice"] = "{PLAIN}new";
  // "old" matched last time, so a mismatch asks the passdb again: the new password works.
  CHECK(auth.verify_plain(passdb, request("alice"), "new", worker).kind == AuthOutcome::Kind::ok);
  CHECK(passdb.lookups == 2);
  CHECK(auth.verify_plain_cached(passdb, request("alice"), "new"));
  CHECK_FALSE(auth.verify_plain_cached(passdb, request("alice"), "old"));
  // The old password fails (one more lookup, since the last check succeeded) ...
  CHECK(auth.verify_plain(passdb, request("alice"), "old", worker).kind == AuthOutcome::Kind::fail);
  CHECK(passdb.lookups == 3);
  // ... and a second wrong one is answered from the entry, as Dovecot does.
  CHECK(auth.verify_plain(passdb, request("alice"), "old", worker).kind == AuthOutcome::Kind::fail);
  CHECK(passdb.lookups == 3);
}

TEST_CASE("authenticator: during an outage expired entries answer; a doubted one is a temporary failure",
          "[cache]") {
  auth_test::FakePassdb passdb;
  passdb.users["alice"] = "{PLAIN}secret";
  Authenticator auth(settings(100, milliseconds(1), milliseconds(1)));
  WorkerContext worker(0);
  REQUIRE(auth.verify_plain(passdb, request("alice"), "secret", worker).kind == AuthOutcome::Kind::ok);
  std::this_thread::sleep_for(milliseconds(5));
  passdb.down = true;
  CHECK_FALSE(auth.verify_plain_cached(passdb, request("alice"), "secret"));  // expired: not on the loop
  CHECK(auth.verify_plain(passdb, request("alice"), "secret", worker).kind == AuthOutcome::Kind::ok);
  // A wrong password against an entry that last matched: only the passdb could tell
  // whether the password changed, and it is down.
  CHECK(auth.verify_plain(passdb, request("alice"), "other", worker).kind == AuthOutcome::Kind::temp);
  // Nobody cached: temporary, never "unknown user".
  CHECK(auth.verify_plain(passdb, request("bob"), "x", worker).kind == AuthOutcome::Kind::temp);
  CHECK(auth.lookup_credentials(passdb, request("bob"), worker).kind == AuthOutcome::Kind::temp);
}

TEST_CASE("authenticator: without a cache every login asks the passdb", "[cache]") {
  auth_test::FakePassdb passdb;
  passdb.users["alice"] = "{PLAIN}secret";
  Authenticator auth(AuthCacheSettings{});
  WorkerContext worker(0);
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(auth.verify_plain_cached(passdb, request("alice"), "secret"));
    CHECK(auth.verify_plain(passdb, request("alice"), "secret", worker).kind == AuthOutcome::Kind::ok);
  }
  CHECK(passdb.lookups == 3);
}
