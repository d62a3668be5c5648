// result_cache.hpp - answers of recent lookups, so hot keys do not reach SQL.
//
// Keyed by (map name, lower-cased key). Found answers live hit_ttl, not-found answers
// miss_ttl; errors are never stored. Bounded to max_entries, least recently used out
// first. A ttl of 0 turns that half off; max_entries 0 turns the cache off. Expired
// entries are kept (until evicted) so that, when serve_stale is on, an answer can be
// served while the database is down. Loop thread only.
#pragma once

#include "lookupd/lookup_types.hpp"

#include <chrono>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace postern::lookupd {

class ResultCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Settings {
    size_t max_entries = 100000;
    std::chrono::milliseconds hit_ttl{60000};
    std::chrono::milliseconds miss_ttl{10000};
    bool serve_stale = false;
  };

  explicit ResultCache(Settings settings) : settings_(settings) {}

  // A fresh answer, or nullopt.
  std::optional<LookupResult> get(std::string_view map, std::string_view key, Clock::time_point now);
  // An expired answer, when serve_stale is on; nullopt otherwise.
  std::optional<LookupResult> get_stale(std::string_view map, std::string_view key);
  // Stores found/not_found answers; ignores errors.
  void put(std::string_view map, std::string_view key, const LookupResult& result, Clock::time_point now);
  void clear();
  size_t size() const { return index_.size(); }
  const Settings& settings() const { return settings_; }

 private:
  struct Entry {
    std::string id;
    LookupResult result;
    Clock::time_point expires;
  };
  static std::string make_id(std::string_view map, std::string_view key);

  Settings settings_;
  std::list<Entry> lru_;  // front = most recent
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace postern::lookupd
