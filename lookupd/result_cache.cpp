// result_cache.cpp - the LRU answer cache of lookupd: per-outcome TTLs, expired entries
// kept for serve-stale, errors never stored. Contract: result_cache.hpp.
#include "lookupd/result_cache.hpp"

#include "common/strings.hpp"

namespace postern::lookupd {

std::string ResultCache::make_id(std::string_view map, std::string_view key) {
  // NUL cannot occur in a map name or a key (both are refused earlier), so it separates.
  std::string id(map);
  id += '\0';
  id += to_lower_ascii(key);
  return id;
}

std::optional<LookupResult> ResultCache::get(std::string_view map, std::string_view key, Clock::time_point now) {
  if (settings_.max_entries == 0) return std::nullopt;
  auto it = index_.find(make_id(map, key));
  if (it == index_.end() || now >= it->second->expires) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->result;
}

std::optional<LookupResult> ResultCache::get_stale(std::string_view map, std::string_view key) {
  if (settings_.max_entries == 0 || !settings_.serve_stale) return std::nullopt;
  auto it = index_.find(make_id(map, key));
  if (it == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->result;
}

void ResultCache::put(std::string_view map, std::string_view key, const LookupResult& result, Clock::time_point now) {
  if (settings_.max_entries == 0) return;
  std::chrono::milliseconds ttl;
  if (result.outcome == Outcome::found) ttl = settings_.hit_ttl;
  else if (result.outcome == Outcome::not_found) ttl = settings_.miss_ttl;
  else return;  // errors: keep whatever answer we had, it may be served stale

  std::string id = make_id(map, key);
  auto it = index_.find(id);
  if (ttl.count() <= 0) {
    // That half of the cache is off. An older answer of the other kind must not survive
    // to be served stale after the data changed.
    if (it != index_.end()) {
      lru_.erase(it->second);
      index_.erase(it);
    }
    return;
  }
  if (it != index_.end()) {
    it->second->result = result;
    it->second->expires = now + ttl;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(Entry{id, result, now + ttl});
  index_.emplace(std::move(id), lru_.begin());
  if (index_.size() > settings_.max_entries) {
    index_.erase(lru_.back().id);
    lru_.pop_back();
  }
}

void ResultCache::clear() {
  index_.clear();
  lru_.clear();
}

}  // namespace postern::lookupd
