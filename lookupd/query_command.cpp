// query_command.cpp - the admin's lookup tracer; see query_command.hpp.
#include "lookupd/query_command.hpp"

#include "common/strings.hpp"
#include "common/worker_pool.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>

namespace postern::lookupd {
namespace {

const char* kind_name(MapKind kind) {
  switch (kind) {
    case MapKind::plain: return "plain";
    case MapKind::address: return "address";
    case MapKind::alias: return "alias";
  }
  return "?";
}

}  // namespace

int run_query_command(const LookupdConfig& config, const std::string& key, const std::string& map_name) {
  const MapConfig* map = config.find_map(map_name);
  if (map == nullptr) {
    fmt::print(stderr, "lookupd: no map named '{}' in {}\n", map_name, config.path);
    return 2;
  }
  const MapDefinition& def = map->definition;
  fmt::print("map {}: kind {}, recipient_delimiter '{}', {} source(s)\n", def.name, kind_name(def.kind),
             def.recipient_delimiter, def.sources.size());
  for (const MapSource& s : def.sources) fmt::print("  source {} on {}\n", s.path, s.endpoint.describe());
  fmt::print("keys to try: {}\n", fmt::join(fallback_keys(def, key), ", "));

  WorkerContext context(0);
  auto start = std::chrono::steady_clock::now();
  LookupResult result = lookup(
      def, to_lower_ascii(key),
      [&context](const MapSource& source, std::string_view k) {
        return run_sql_source(source, k, context.connection(source.endpoint),
                              [](std::string_view line) { fmt::print("    {}\n", line); });
      },
      [](std::string_view line) { fmt::print("  {}\n", line); });
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  switch (result.outcome) {
    case Outcome::found:
      fmt::print("result: found ({:.2f} ms)\n{}\n", ms, result.value);
      return 0;
    case Outcome::not_found:
      fmt::print("result: not found ({:.2f} ms)\n", ms);
      return 1;
    case Outcome::temp_error:
      fmt::print("result: temporary failure: {} ({:.2f} ms)\n", result.reason, ms);
      return 2;
    case Outcome::perm_error:
      fmt::print("result: error: {} ({:.2f} ms)\n", result.reason, ms);
      return 2;
  }
  return 2;
}

}  // namespace postern::lookupd
