// main.cpp - lookupd: Postfix socketmap/tcp_table server over SQL.
//
//   lookupd [-c FILE]              run in the foreground (logs to stderr, and syslog if set)
//   lookupd [-c FILE] -q KEY MAP   one lookup, explained (see query_command.hpp)
//   lookupd [-c FILE] -n           check the config and the .cf files it names, then exit
#include "common/daemon_main.hpp"
#include "common/log.hpp"
#include "lookupd/lookupd_config.hpp"
#include "lookupd/query_command.hpp"
#include "lookupd/server.hpp"

#include <fmt/format.h>

#include <cstring>
#include <string>

using namespace postern;
using namespace postern::lookupd;

namespace {

constexpr const char* kDefaultConfig = "/etc/postern/lookupd.conf";

int usage() {
  fmt::print(stderr, "usage: lookupd [-c FILE] [-n | -q KEY MAP]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = kDefaultConfig;
  std::string query_key;
  std::string query_map;
  bool query = false;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (std::strcmp(argv[i], "-q") == 0 && i + 2 < argc) {
      query = true;
      query_key = argv[++i];
      query_map = argv[++i];
    } else if (std::strcmp(argv[i], "-n") == 0) {
      check_only = true;
    } else {
      return usage();
    }
  }
  log_init("lookupd", LogLevel::info, false);
  auto config = load_lookupd_config(config_path);
  if (!config) {
    log_error("{}", config.error().message);
    return query ? 2 : 1;
  }
  if (check_only) {
    fmt::print("{}: ok, {} maps\n", config_path, (*config)->maps.size());
    return 0;
  }
  if (query) {
    log_init("lookupd", LogLevel::warning, false);
    return run_query_command(**config, query_key, query_map);
  }
  log_init("lookupd", (*config)->log_level, (*config)->syslog);
  return run_daemon<Server>(*config, load_lookupd_config, fmt::format("{} maps", (*config)->maps.size()));
}
