// resolver.hpp - answers (map, key) on the loop: from the cache, else from SQL, on the
// loop's own non-blocking MariaDB connection when it is free (loop_lookups.hpp), else on
// a worker.
//
// Identical lookups in flight at once share one SQL round (a hot key that just expired
// costs one query, not one per client). A temporary failure is replaced by the expired
// cached answer when cache_serve_stale is on. Loop thread only.
#pragma once

#include "common/worker_pool.hpp"
#include "lookupd/loop_lookups.hpp"
#include "lookupd/lookup_types.hpp"
#include "lookupd/lookupd_config.hpp"
#include "lookupd/result_cache.hpp"

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace postern::lookupd {

class Resolver {
 public:
  using Callback = std::function<void(const LookupResult&)>;

  Resolver(uv_loop_t* loop, std::shared_ptr<const LookupdConfig> config);
  // Stops the loop's lookups and the pool first: their last completions still reach finish().
  ~Resolver() {
    loop_lookups_.stop();
    pool_.stop();
  }

  // cb runs exactly once: synchronously on a cache hit, an unknown map or a lookup that
  // needs no query, later otherwise.
  void resolve(std::string_view map_name, std::string_view key, Callback cb);

  // Takes a reloaded config: the cache starts empty, workers drop unused connections.
  void set_config(std::shared_ptr<const LookupdConfig> config);

  // Lookups in flight, on the loop's connections or on the workers.
  size_t pending() const { return inflight_.size(); }
  // Lookups still queued or on the loop's connections are answered "stopping" without
  // (further) touching the database.
  void stop() {
    loop_lookups_.stop();
    pool_.cancel_queued();
    pool_.stop();
  }

 private:
  // One lookup not answered from the cache, from resolve() to finish().
  struct Pending {
    std::shared_ptr<const LookupdConfig> config;  // keeps definition alive
    const MapDefinition* definition;
    std::string id;
    uint64_t generation;
    std::string map;
    std::string key;
  };
  void run_on_worker(std::shared_ptr<const Pending> pending);
  void finish(const Pending& pending, LookupResult result);

  std::shared_ptr<const LookupdConfig> config_;
  uint64_t generation_ = 0;
  ResultCache cache_;
  // generation + map + key: requests after a reload never join a lookup of the old config.
  std::unordered_map<std::string, std::vector<Callback>> inflight_;
  // Last: stopped first (their completions touch the state above), the loop's lookups
  // before the pool, which makes their connections.
  LoopLookups loop_lookups_;
  WorkerPool pool_;
};

}  // namespace postern::lookupd
