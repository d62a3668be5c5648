// main.cpp - lookupd: Postfix socketmap/tcp_table server over SQL.
//
//   lookupd [-c FILE]              run in the foreground (logs to stderr, and syslog if set)
//   lookupd [-c FILE] -q KEY MAP   one lookup, explained (see query_command.hpp)
//   lookupd [-c FILE] -n           check the config and the .cf files it names, then exit
#include "common/daemon.hpp"
#include "common/log.hpp"
#include "lookupd/lookupd_config.hpp"
#include "lookupd/query_command.hpp"
#include "lookupd/server.hpp"

#include <fmt/format.h>
#include <uv.h>

#include <cstring>
#include <memory>
#include <string>

using namespace postern;
using namespace postern::lookupd;

namespace {

constexpr const char* kDefaultConfig = "/etc/postern/lookupd.conf";
constexpr uint64_t kStopGraceMs = 10000;

int usage() {
  fmt::print(stderr, "usage: lookupd [-c FILE] [-n | -q KEY MAP]\n");
  return 2;
}

int run_daemon(std::shared_ptr<const LookupdConfig> config) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  {
    Server server(&loop, config);
    std::string path = config->path;
    // Installed before the sockets exist: a client that sees the socket may signal at once.
    std::unique_ptr<SignalHandlers> signals;
    signals = std::make_unique<SignalHandlers>(
        &loop,
        [&] {
          server.stop(kStopGraceMs, [&] {
            signals->close();
            log_info("stopped");
          });
        },
        [&] {
          auto fresh = load_lookupd_config(path);
          if (!fresh) {
            log_error("reload failed, keeping the current config: {}", fresh.error().message);
            return;
          }
          log_set_level((*fresh)->log_level);
          server.reload(*fresh);
        });
    Status bound = server.listen();
    if (!bound) {
      log_error("{}", bound.error().message);
      exit_code = 1;
      signals->close();
    } else if (Status dropped = drop_privileges(config->user, config->group); !dropped) {
      log_error("{}", dropped.error().message);
      exit_code = 1;
      signals->close();
    } else {
      server.start_workers();
      log_info("ready: {} maps", config->maps.size());
      uv_run(&loop, UV_RUN_DEFAULT);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) log_warning("event loop closed with handles still open");
  return exit_code;
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
  return run_daemon(*config);
}
