// auth_cache.hpp - Dovecot's auth cache: passdb answers kept for auth_cache_ttl, plus a
// digest of the password that last matched, so a repeated login costs no SQL query and
// no hash.
//
// Dovecot's rules (doc/auth caching), which admins rely on:
// - A fresh entry (auth_cache_ttl; auth_cache_negative_ttl for "unknown user") answers
//   instead of the passdb.
// - When a password that matched last time fails now, the password may have changed: the
//   caller looks the user up again instead of trusting the entry.
// - When the passdb fails, an expired entry still answers, so users keep logging in
//   through a short database outage.
// The key is the passdb's cache_key() (the variables its query uses). The password digest
// is HMAC-SHA256, under a secret made at startup, of user, password and stored hash: the
// password never sits in memory in the clear, and a changed stored hash simply misses.
// Bounded (least recently used out first) and thread-safe: the loop thread answers hits,
// workers fill it.
#pragma once

#include "authd/passdb.hpp"

#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace postern::authd {

// auth_cache_size (as entries), auth_cache_ttl, auth_cache_negative_ttl.
struct AuthCacheSettings {
  size_t entries = 0;  // 0 = no cache
  std::chrono::milliseconds ttl{3600000};
  std::chrono::milliseconds negative_ttl{3600000};
};

class AuthCache {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AuthCache(const AuthCacheSettings& settings);

  bool enabled() const { return max_entries_ > 0; }

  struct Hit {
    PassdbLookup answer;
    bool fresh = false;
    bool last_success = false;  // the last password checked against this entry matched
  };
  // The entry for key, fresh or expired.
  std::optional<Hit> find(const std::string& key, Clock::time_point now);
  // Keeps a passdb answer (found or not_found; temp errors are never cached).
  void store(const std::string& key, const PassdbLookup& answer, Clock::time_point now);
  // After a password check against key's entry: remembers the outcome and, on success,
  // the password's digest.
  void record(const std::string& key, std::string_view password, bool success);
  // True if key's entry is fresh and password is the one that last matched it (which
  // counts as a successful check).
  bool verified(const std::string& key, std::string_view password, Clock::time_point now);

 private:
  struct Entry {
    std::string key;
    PassdbLookup answer;
    Clock::time_point expires;
    bool last_success = false;
    std::string verified_digest;  // of the last password that matched; it covers the stored
                                  // hash, so a new answer never matches an old digest
  };
  std::string digest(const PassdbLookup& answer, std::string_view password) const;
  Entry* lookup_locked(const std::string& key);

  size_t max_entries_;
  std::chrono::milliseconds ttl_;
  std::chrono::milliseconds negative_ttl_;
  std::string secret_;
  std::mutex mutex_;
  std::list<Entry> order_;  // front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace postern::authd
