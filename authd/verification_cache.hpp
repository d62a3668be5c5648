// verification_cache.hpp - remembers successful password verifications.
//
// The key is HMAC-SHA256, under a secret made at startup, of user, password and the
// stored hash: the password never sits in memory in the clear, and a changed stored
// hash (a changed password) simply misses. Only successes are stored. Bounded (oldest
// out first) and thread-safe: workers consult it between the passdb lookup and the hash.
#pragma once

#include <chrono>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace postern::authd {

class VerificationCache {
 public:
  using Clock = std::chrono::steady_clock;
  // max_entries 0 = off.
  VerificationCache(size_t max_entries, std::chrono::milliseconds ttl);

  bool enabled() const { return max_entries_ > 0; }
  std::string key(std::string_view user, std::string_view password, std::string_view stored) const;
  bool contains(const std::string& key, Clock::time_point now);
  void insert(const std::string& key, Clock::time_point now);

 private:
  size_t max_entries_;
  std::chrono::milliseconds ttl_;
  std::string secret_;
  std::mutex mutex_;
  std::list<std::pair<std::string, Clock::time_point>> order_;  // front = newest
  std::unordered_map<std::string, std::list<std::pair<std::string, Clock::time_point>>::iterator> index_;
};

}  // namespace postern::authd
