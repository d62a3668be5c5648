// result_cache.hpp - answers of recent lookups, so hot keys do not reach SQL.
//
// Keyed by (map name, key) exactly as given: the resolver folds case where the answer does
// not depend on it. Found answers live hit_ttl, not-found answers
// miss_ttl; errors are never stored. Bounded both by max_entries and by max_bytes (key +
// value + a fixed per-entry overhead, see entry_bytes()); least recently used out first.
// A key longer than kMaxKeyBytes or a value longer than kMaxValueBytes is never stored:
// such lookups are rare, and one of them could otherwise push out thousands of hot ones.
// A ttl of 0 turns that half off; max_entries 0 turns the cache off.
//
// Serve-stale: when serve_stale is on, an expired *found* answer is kept (until evicted)
// so that it can be served while the database is down. An expired not-found answer is
// never served stale: a user created after it was cached would have mail bounced for as
// long as the outage lasts, while a deferral costs only a delay. So expired not-found
// answers, and every expired answer when serve_stale is off, are dropped as soon as get()
// meets them. Loop thread only.
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
    size_t max_bytes = size_t{64} << 20;
  };

  static constexpr size_t kMaxKeyBytes = 1024;
  static constexpr size_t kMaxValueBytes = 65536;
  // Roughly what one entry costs beyond its key and value: the list node with its Entry,
  // the hash node and bucket, and allocator headers.
  static constexpr size_t kEntryOverhead = 256;

  explicit ResultCache(Settings settings) : settings_(settings) {}

  // A fresh answer, or nullopt.
  std::optional<LookupResult> get(std::string_view map, std::string_view key, Clock::time_point now);
  // An expired found answer, when serve_stale is on; nullopt otherwise (never not_found).
  std::optional<LookupResult> get_stale(std::string_view map, std::string_view key);
  // Stores found/not_found answers; ignores errors. An answer too large to store also
  // drops whatever was stored for the key, so an outdated answer cannot be served stale.
  void put(std::string_view map, std::string_view key, const LookupResult& result, Clock::time_point now);
  void clear();
  size_t size() const { return index_.size(); }
  // What the entries count against max_bytes.
  size_t bytes() const { return bytes_; }
  const Settings& settings() const { return settings_; }

  // The budget one entry with this map name, key and value takes.
  static size_t entry_bytes(std::string_view map, std::string_view key, std::string_view value);

 private:
  struct Entry {
    std::string id;  // never changed after insertion: the index points into it
    LookupResult result;
    Clock::time_point expires;
    size_t bytes;
  };
  using List = std::list<Entry>;
  static std::string make_id(std::string_view map, std::string_view key);
  void erase(List::iterator it);

  Settings settings_;
  List lru_;  // front = most recent; nodes never move, so the views below stay valid
  std::unordered_map<std::string_view, List::iterator> index_;  // views of Entry::id
  size_t bytes_ = 0;
};

}  // namespace postern::lookupd
