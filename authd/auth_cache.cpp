// auth_cache.cpp - see auth_cache.hpp.
#include "authd/auth_cache.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace postern::authd {

AuthCache::AuthCache(const AuthCacheSettings& settings)
    : max_entries_(settings.entries), ttl_(settings.ttl), negative_ttl_(settings.negative_ttl), secret_(32, '\0') {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret_.data()), static_cast<int>(secret_.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
}

std::string AuthCache::digest(const PassdbLookup& answer, std::string_view password) const {
  // Length-prefixed fields, so ("ab","c") and ("a","bc") can never collide.
  std::string message;
  for (std::string_view part : {std::string_view(answer.user), password, std::string_view(*answer.password)}) {
    message += std::to_string(part.size());
    message += ':';
    message += part;
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &length);
  OPENSSL_cleanse(message.data(), message.size());
  return std::string(reinterpret_cast<char*>(out), length);
}

AuthCache::Entry* AuthCache::lookup_locked(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return &*it->second;
}

std::optional<AuthCache::Hit> AuthCache::find(const std::string& key, Clock::time_point now) {
  if (!enabled()) return std::nullopt;
  std::lock_guard lock(mutex_);
  Entry* entry = lookup_locked(key);
  if (!entry) return std::nullopt;
  return Hit{entry->answer, now < entry->expires, entry->last_success};
}

void AuthCache::store(const std::string& key, const PassdbLookup& answer, Clock::time_point now) {
  if (!enabled() || answer.status == PassdbLookup::Status::temp_error) return;
  bool found = answer.status == PassdbLookup::Status::found;
  std::lock_guard lock(mutex_);
  Entry* entry = lookup_locked(key);
  if (!entry) {
    order_.push_front(Entry{key, {}, {}, false, {}});
    index_[key] = order_.begin();
    entry = &order_.front();
  }
  entry->answer = answer;
  entry->answer.error.clear();
  entry->expires = now + (found ? ttl_ : negative_ttl_);
  while (index_.size() > max_entries_) {
    index_.erase(order_.back().key);
    order_.pop_back();
  }
}

void AuthCache::record(const std::string& key, std::string_view password, bool success) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  Entry* entry = lookup_locked(key);
  if (!entry) return;
  entry->last_success = success;
  if (success && entry->answer.password) entry->verified_digest = digest(entry->answer, password);
}

bool AuthCache::verified(const std::string& key, std::string_view password, Clock::time_point now) {
  if (!enabled()) return false;
  std::lock_guard lock(mutex_);
  Entry* entry = lookup_locked(key);
  if (!entry || now >= entry->expires || entry->verified_digest.empty() || !entry->answer.password) return false;
  std::string candidate = digest(entry->answer, password);
  bool same = candidate.size() == entry->verified_digest.size() &&
              CRYPTO_memcmp(candidate.data(), entry->verified_digest.data(), candidate.size()) == 0;
  if (same) entry->last_success = true;
  return same;
}

}  // namespace postern::authd
