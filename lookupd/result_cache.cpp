// result_cache.cpp - the LRU answer cache of lookupd: per-outcome TTLs, an entry and a
// byte bound, expired found answers kept for serve-stale, errors never stored. Each key
// is held once, in its list node; the index maps views of it. Contract: result_cache.hpp.
#include "lookupd/result_cache.hpp"


#include <iterator>

namespace postern::lookupd {

std::string ResultCache::make_id(std::string_view map, std::string_view key) {
  // NUL cannot occur in a map name or a key (both are refused earlier), so it separates.
  std::string id(map);
  id += '\0';
  id += key;
  return id;
}

size_t ResultCache::entry_bytes(std::string_view map, std::string_view key, std::string_view value) {
  return map.size() + 1 + key.size() + value.size() + kEntryOverhead;
}

void ResultCache::erase(List::iterator it) {
  // The index key views the node's string: drop the index entry before the node.
  index_.erase(std::string_view(it->id));
  bytes_ -= it->bytes;
  lru_.erase(it);
}

std::optional<LookupResult> ResultCache::get(std::string_view map, std::string_view key, Clock::time_point now) {
  if (settings_.max_entries == 0) return std::nullopt;
  auto it = index_.find(make_id(map, key));
  if (it == index_.end()) return std::nullopt;
  List::iterator entry = it->second;
  if (now >= entry->expires) {
    // Only a found answer may be served stale; anything else expired is dead weight.
    if (!settings_.serve_stale || entry->result.outcome != Outcome::found) erase(entry);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, entry);
  return entry->result;
}

std::optional<LookupResult> ResultCache::get_stale(std::string_view map, std::string_view key) {
  if (settings_.max_entries == 0 || !settings_.serve_stale) return std::nullopt;
  auto it = index_.find(make_id(map, key));
  if (it == index_.end() || it->second->result.outcome != Outcome::found) return std::nullopt;
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
  size_t bytes = entry_bytes(map, key, result.value);
  bool storable = ttl.count() > 0 && key.size() <= kMaxKeyBytes && result.value.size() <= kMaxValueBytes &&
                  bytes <= settings_.max_bytes;
  if (!storable) {
    // That half of the cache is off, or the answer is too big. An older answer must not
    // survive to be served stale after the data changed.
    if (it != index_.end()) erase(it->second);
    return;
  }
  if (it != index_.end()) {
    List::iterator entry = it->second;
    bytes_ = bytes_ - entry->bytes + bytes;
    entry->result = result;
    entry->expires = now + ttl;
    entry->bytes = bytes;
    lru_.splice(lru_.begin(), lru_, entry);
  } else {
    lru_.push_front(Entry{std::move(id), result, now + ttl, bytes});
    index_.emplace(std::string_view(lru_.front().id), lru_.begin());
    bytes_ += bytes;
  }
  // The newest entry fits the budget by itself (checked above), so this never drops it.
  while (index_.size() > settings_.max_entries || bytes_ > settings_.max_bytes) erase(std::prev(lru_.end()));
}

void ResultCache::clear() {
  index_.clear();
  lru_.clear();
  bytes_ = 0;
}

}  // namespace postern::lookupd
