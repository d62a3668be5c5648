// lookupd_config.hpp - lookupd's own config file (examples/lookupd.conf documents it).
//
// Loading reads every referenced map .cf file too, so a config that loads is complete:
// a reload either swaps in a fully valid config or keeps the old one.
#pragma once

#include "common/daemon_config.hpp"
#include "common/net.hpp"
#include "common/result.hpp"
#include "lookupd/map_lookup.hpp"
#include "lookupd/result_cache.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace postern::lookupd {

struct MapConfig {
  MapDefinition definition;
  std::optional<ListenAddress> tcp_listen;
};

// path, socket_options, user, group, log_level, syslog: see DaemonSettings.
struct LookupdConfig : DaemonSettings {
  std::vector<ListenAddress> socketmap_listen;
  std::vector<MapConfig> maps;  // in file order
  ResultCache::Settings cache;
  int sql_workers = 4;
  uint64_t idle_timeout_ms = 300000;
  size_t max_queue = 10000;

  const MapConfig* find_map(std::string_view name) const;
  // Every listener as "socketmap unix:/path" / "tcp inet:127.0.0.1:10041 aliases", to
  // tell whether a reload changed them.
  std::vector<std::string> listener_signature() const;
  // Endpoint keys of every source, to drop unused SQL connections after a reload.
  std::vector<std::string> endpoint_keys() const;
};

Result<std::shared_ptr<const LookupdConfig>> load_lookupd_config(const std::string& path);

}  // namespace postern::lookupd
