// resolver.hpp - answers (map, key) on the loop: from the cache, else from SQL on a worker.
//
// Identical lookups in flight at once share one SQL round (a hot key that just expired
// costs one query, not one per client). A temporary failure is replaced by the expired
// cached answer when cache_serve_stale is on. Loop thread only.
#pragma once

#include "common/worker_pool.hpp"
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
  // Stops the pool first: its last completions still reach finish().
  ~Resolver() { pool_.stop(); }

  // cb runs exactly once: synchronously on a cache hit or an unknown map, later otherwise.
  void resolve(std::string_view map_name, std::string_view key, Callback cb);

  // Takes a reloaded config: the cache starts empty, workers drop unused connections.
  void set_config(std::shared_ptr<const LookupdConfig> config);

  // Lookups waiting for a worker.
  size_t pending() const { return inflight_.size(); }
  // Lookups still queued are answered "stopping" without touching the database.
  void stop() {
    pool_.cancel_queued();
    pool_.stop();
  }

 private:
  void finish(const std::string& id, uint64_t generation, const std::string& map, const std::string& key,
              LookupResult result);

  std::shared_ptr<const LookupdConfig> config_;
  uint64_t generation_ = 0;
  ResultCache cache_;
  // generation + map + key: requests after a reload never join a lookup of the old config.
  std::unordered_map<std::string, std::vector<Callback>> inflight_;
  // Last: destroyed first, while the state its completions touch is still alive.
  WorkerPool pool_;
};

}  // namespace postern::lookupd
