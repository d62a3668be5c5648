// resolver.cpp - cache, in-flight sharing and worker dispatch; see resolver.hpp.
#include "lookupd/resolver.hpp"

#include "common/log.hpp"
#include "common/strings.hpp"

namespace postern::lookupd {

Resolver::Resolver(uv_loop_t* loop, std::shared_ptr<const LookupdConfig> config)
    : config_(std::move(config)),
      cache_(config_->cache),
      loop_lookups_(loop, pool_, config_->endpoint_keys()),
      pool_(loop, config_->sql_workers, config_->max_queue) {}

void Resolver::set_config(std::shared_ptr<const LookupdConfig> config) {
  config_ = std::move(config);
  ++generation_;
  cache_ = ResultCache(config_->cache);
  std::vector<std::string> keys = config_->endpoint_keys();
  loop_lookups_.keep_only(keys);
  pool_.broadcast([keys](WorkerContext& ctx) { ctx.forget_connections_except(keys); });
}

void Resolver::resolve(std::string_view map_name, std::string_view raw_key, Callback cb) {
  const MapConfig* map = config_->find_map(map_name);
  if (map == nullptr) {
    cb(LookupResult::perm(std::string("unknown map name: ") + std::string(map_name)));
    return;
  }
  // Keys are case-insensitive, but an alias map puts a stripped extension back as the
  // client wrote it (Postfix keeps its case), so its answers depend on the exact key.
  std::string key = map->definition.kind == MapKind::alias ? std::string(raw_key) : to_lower_ascii(raw_key);
  auto now = ResultCache::Clock::now();
  if (auto hit = cache_.get(map_name, key, now)) {
    cb(*hit);
    return;
  }
  std::string id = std::to_string(generation_) + '\0' + std::string(map_name) + '\0' + key;
  auto [it, first] = inflight_.try_emplace(id);
  it->second.push_back(std::move(cb));
  if (!first) return;

  // The lookup keeps its config alive, so a reload while it runs is harmless.
  auto pending = std::make_shared<const Pending>(
      Pending{config_, &map->definition, std::move(id), generation_, std::string(map_name), std::move(key)});
  bool on_loop = loop_lookups_.try_start(pending->config, *pending->definition, pending->key,
                                         [this, pending](std::optional<LookupResult> result) {
                                           if (result) finish(*pending, std::move(*result));
                                           else run_on_worker(pending);
                                         });
  if (!on_loop) run_on_worker(pending);
}

void Resolver::run_on_worker(std::shared_ptr<const Pending> pending) {
  bool queued = pool_.submit_for<LookupResult>(
      [pending](WorkerContext& ctx) {
        return lookup(*pending->definition, pending->key, [&ctx](const MapSource& source, std::string_view k) {
          return run_sql_source(source, k, ctx.connection(source.endpoint));
        });
      },
      [this, pending](std::optional<LookupResult> result) {
        finish(*pending,
               result ? std::move(*result) : LookupResult::temp("lookup not completed (internal error or stopping)"));
      });
  if (!queued) finish(*pending, LookupResult::temp("server busy"));
}

void Resolver::finish(const Pending& pending, LookupResult result) {
  if (pending.generation == generation_) {
    if (result.outcome == Outcome::temp_error) {
      if (auto stale = cache_.get_stale(pending.map, pending.key)) {
        log_warning("map {}: serving a stale answer: {}", pending.map, result.reason);
        result = *stale;
      }
    } else {
      cache_.put(pending.map, pending.key, result, ResultCache::Clock::now());
    }
  }
  auto node = inflight_.extract(pending.id);
  if (node.empty()) return;
  for (auto& cb : node.mapped()) cb(result);
}

}  // namespace postern::lookupd
