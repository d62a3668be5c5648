// verification_cache.cpp - see verification_cache.hpp.
#include "authd/verification_cache.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace postern::authd {

VerificationCache::VerificationCache(size_t max_entries, std::chrono::milliseconds ttl)
    : max_entries_(max_entries), ttl_(ttl), secret_(32, '\0') {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret_.data()), static_cast<int>(secret_.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
}

std::string VerificationCache::key(std::string_view user, std::string_view password, std::string_view stored) const {
  // Length-prefixed fields, so ("ab","c") and ("a","bc") can never collide.
  std::string message;
  for (std::string_view part : {user, password, stored}) {
    message += std::to_string(part.size());
    message += ':';
    message += part;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  OPENSSL_cleanse(message.data(), message.size());
  return std::string(reinterpret_cast<char*>(digest), length);
}

bool VerificationCache::contains(const std::string& key, Clock::time_point now) {
  if (!enabled()) return false;
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  if (now >= it->second->second) {
    order_.erase(it->second);
    index_.erase(it);
    return false;
  }
  return true;
}

void VerificationCache::insert(const std::string& key, Clock::time_point now) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it != index_.end()) {
    order_.erase(it->second);
    index_.erase(it);
  }
  order_.emplace_front(key, now + ttl_);
  index_[key] = order_.begin();
  while (index_.size() > max_entries_) {
    index_.erase(order_.back().first);
    order_.pop_back();
  }
}

}  // namespace postern::authd
