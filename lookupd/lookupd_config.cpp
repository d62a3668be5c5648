// lookupd_config.cpp - reads lookupd.conf and the map .cf files it names; see lookupd_config.hpp.
#include "lookupd/lookupd_config.hpp"

#include "common/config_file.hpp"
#include "common/daemon_config.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <set>

namespace postern::lookupd {
namespace {

using std::chrono::milliseconds;

// "mysql:/etc/postfix/a.cf, sqlite:/etc/postfix/b.cf" (a lone "+" also separates).
Result<std::vector<MapSource>> load_sources(const ConfigFile& file, const std::string& key, milliseconds connect_timeout,
                                            milliseconds read_timeout, milliseconds retry_interval) {
  std::vector<MapSource> sources;
  for (const std::string& item : split_list(file.get(key), ", \t")) {
    if (item == "+") continue;
    sql::Driver driver = sql::Driver::mysql;
    std::string path = item;
    if (item.rfind("mysql:", 0) == 0) {
      path = item.substr(6);
    } else if (item.rfind("sqlite:", 0) == 0) {
      driver = sql::Driver::sqlite;
      path = item.substr(7);
    } else if (item.find(':') != std::string::npos) {
      return file.error(key, fmt::format("table type of '{}' is not supported (use mysql: or sqlite:)", item));
    }
    if (path.empty() || path[0] != '/')
      return file.error(key, fmt::format("'{}' is not an absolute .cf file path", item));
    auto source = load_map_source(path, driver);
    if (!source) return source.error();
    source->endpoint.connect_timeout = connect_timeout;
    source->endpoint.read_timeout = read_timeout;
    // The .cf file's own retry_interval, when it has one, is what the admin asked for.
    auto cf = ConfigFile::load(path);
    if (cf && !cf->has("retry_interval")) source->endpoint.retry_interval = retry_interval;
    source->endpoint_key = source->endpoint.key();  // the endpoint is final now
    sources.push_back(std::move(*source));
  }
  if (sources.empty()) return file.error(key, "no tables listed");
  return sources;
}

Result<MapKind> parse_kind(const ConfigFile& file, const std::string& key) {
  std::string kind = to_lower_ascii(trim(file.get(key, "plain")));
  if (kind == "plain") return MapKind::plain;
  if (kind == "address") return MapKind::address;
  if (kind == "alias") return MapKind::alias;
  return file.error(key, "must be plain, address or alias");
}

const std::set<std::string, std::less<>> kGlobalKeys = {
    "socketmap_listen", "recipient_delimiter",
    "cache_size", "cache_hit_ttl", "cache_miss_ttl", "cache_serve_stale", "sql_workers",
    "sql_connect_timeout", "sql_read_timeout", "sql_retry_interval", "idle_timeout", "max_queue"};

}  // namespace

const MapConfig* LookupdConfig::find_map(std::string_view name) const {
  for (const MapConfig& m : maps)
    if (m.definition.name == name) return &m;
  return nullptr;
}

std::vector<std::string> LookupdConfig::listener_signature() const {
  std::vector<std::string> out;
  for (const ListenAddress& a : socketmap_listen) out.push_back("socketmap " + a.str());
  for (const MapConfig& m : maps)
    if (m.tcp_listen) out.push_back("tcp " + m.tcp_listen->str() + " " + m.definition.name);
  if (!socketmap_listen.empty() && socketmap_listen.front().kind == ListenAddress::Kind::unix_path)
    out.push_back(socket_signature(socket_options));
  return out;
}

std::vector<std::string> LookupdConfig::endpoint_keys() const {
  std::vector<std::string> out;
  for (const MapConfig& m : maps)
    for (const MapSource& s : m.definition.sources) out.push_back(s.endpoint.key());
  return out;
}

Result<std::shared_ptr<const LookupdConfig>> load_lookupd_config(const std::string& path) {
  auto loaded = ConfigFile::load(path);
  if (!loaded) return loaded.error();
  const ConfigFile& file = *loaded;
  auto config = std::make_shared<LookupdConfig>();

  // Typos in key names would silently change behaviour, so unknown keys are errors.
  std::set<std::string> map_names;
  for (const std::string& key : file.keys()) {
    if (kGlobalKeys.count(key) || is_daemon_setting(key)) continue;
    if (key.rfind("map.", 0) == 0) {
      std::string rest = key.substr(4);
      size_t dot = rest.find('.');
      std::string name = rest.substr(0, dot);
      std::string attr = dot == std::string::npos ? "" : rest.substr(dot + 1);
      if (!name.empty() && name.find_first_of(" \t:,") == std::string::npos &&
          (attr.empty() || attr == "kind" || attr == "tcp_listen")) {
        if (attr.empty()) map_names.insert(name);
        continue;
      }
    }
    return file.error(key, "unknown setting");
  }

  auto socketmap_listen = read_listeners(file, "socketmap_listen");
  if (!socketmap_listen) return socketmap_listen.error();
  config->socketmap_listen = std::move(*socketmap_listen);
  if (Status s = read_daemon_settings(file, 0660, config.get()); !s) return s.error();

  auto cache_size = file.get_int("cache_size", 100000, 0, 100000000);
  auto hit_ttl = file.get_duration("cache_hit_ttl", milliseconds(30000));
  auto miss_ttl = file.get_duration("cache_miss_ttl", milliseconds(5000));
  auto stale = file.get_bool("cache_serve_stale", false);
  auto workers = file.get_int("sql_workers", 4, 1, 256);
  auto connect_timeout = file.get_duration("sql_connect_timeout", milliseconds(2000));
  auto read_timeout = file.get_duration("sql_read_timeout", milliseconds(5000));
  auto retry_interval = file.get_duration("sql_retry_interval", milliseconds(1000));
  auto idle = file.get_duration("idle_timeout", milliseconds(300000));
  auto max_queue = file.get_int("max_queue", 10000, 1, 10000000);
  if (auto bad = first_error(cache_size, hit_ttl, miss_ttl, stale, workers, connect_timeout, read_timeout,
                             retry_interval, idle, max_queue))
    return *bad;
  config->cache = ResultCache::Settings{static_cast<size_t>(*cache_size), *hit_ttl, *miss_ttl, *stale};
  config->sql_workers = static_cast<int>(*workers);
  config->idle_timeout_ms = static_cast<uint64_t>(idle->count());
  config->max_queue = static_cast<size_t>(*max_queue);

  std::string delimiter = std::string(trim(file.get("recipient_delimiter", "+")));
  // Map names in file order, so lookups and logs follow the admin's order.
  for (const std::string& key : file.keys()) {
    if (key.rfind("map.", 0) != 0 || !map_names.count(key.substr(4))) continue;
    std::string name = key.substr(4);
    MapConfig map;
    map.definition.name = name;
    map.definition.recipient_delimiter = delimiter;
    auto kind = parse_kind(file, "map." + name + ".kind");
    if (!kind) return kind.error();
    map.definition.kind = *kind;
    auto sources = load_sources(file, key, *connect_timeout, *read_timeout, *retry_interval);
    if (!sources) return sources.error();
    map.definition.sources = std::move(*sources);
    std::string tcp_key = "map." + name + ".tcp_listen";
    if (file.has(tcp_key)) {
      auto address = ListenAddress::parse(trim(file.get(tcp_key)));
      if (!address) return file.error(tcp_key, address.error().message);
      if (address->kind != ListenAddress::Kind::tcp) return file.error(tcp_key, "must be a TCP address");
      map.tcp_listen = *address;
    }
    config->maps.push_back(std::move(map));
  }
  for (const std::string& key : file.keys()) {
    size_t last = key.rfind('.');
    if (key.rfind("map.", 0) == 0 && last > 4 && !map_names.count(key.substr(4, last - 4)))
      return file.error(key, "belongs to no map (define map." + key.substr(4, last - 4) + " first)");
  }
  if (config->maps.empty()) return Error{fmt::format("{}: no maps defined (map.NAME = mysql:/path.cf)", path)};
  bool any_tcp = false;
  for (const MapConfig& m : config->maps) any_tcp = any_tcp || m.tcp_listen.has_value();
  if (config->socketmap_listen.empty() && !any_tcp)
    return Error{fmt::format("{}: no listeners (socketmap_listen or map.NAME.tcp_listen)", path)};
  return std::shared_ptr<const LookupdConfig>(std::move(config));
}

}  // namespace postern::lookupd
