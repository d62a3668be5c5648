// daemon_main.hpp - the life of a daemon process: command line, config, run, stop.
//
// daemon_main<Server>(argc, argv, command) is a whole main() for "NAME [-c FILE] [-n]":
// it logs to stderr until the config has loaded, then prints "FILE: ok, <check summary>"
// for -n, or switches to the config's log settings and calls run_daemon(). A bad command
// line prints command.usage and returns 2; a config that does not load returns 1.
//
// run_daemon<Server>(config, load_config, ready_message) makes one libuv loop and a
// Server on it, installs the signal handlers (before binding: a client that sees the
// socket may signal at once), binds, drops privileges to config->user/group, starts the
// workers, logs "ready: <ready_message>" and runs the loop until the server has stopped.
//   SIGHUP   load_config(config->path); on success the new log level applies and the
//            server reloads; on failure the current config stays and the log says why.
//   SIGTERM  server.stop(kStopGraceMs), then "stopped".
// Returns the exit code: 0, or 1 when binding or dropping privileges failed.
//
// Server has: Server(uv_loop_t*, std::shared_ptr<const Config>); Status listen();
// void start_workers(); void reload(std::shared_ptr<const Config>);
// void stop(uint64_t grace_ms, std::function<void()> on_stopped).
// Config derives from DaemonSettings (daemon_config.hpp).
#pragma once

#include "common/daemon.hpp"
#include "common/log.hpp"
#include "common/result.hpp"

#include <uv.h>

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

namespace postern {

constexpr uint64_t kStopGraceMs = 10000;

template <class Config>
using LoadConfig = Result<std::shared_ptr<const Config>> (*)(const std::string& path);

template <class Server, class Config>
int run_daemon(std::shared_ptr<const Config> config, LoadConfig<Config> load_config,
               const std::string& ready_message) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  {
    Server server(&loop, config);
    std::string path = config->path;
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
          auto fresh = load_config(path);
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
      log_info("ready: {}", ready_message);
      uv_run(&loop, UV_RUN_DEFAULT);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) log_warning("event loop closed with handles still open");
  return exit_code;
}

template <class Config>
struct DaemonCommand {
  const char* name;            // the log ident
  const char* default_config;  // without -c
  const char* usage;           // the whole usage text, ending in a newline
  LoadConfig<Config> load;
  std::function<std::string(const Config&)> check_summary;  // -n: "FILE: ok, <this>"
  std::function<std::string(const Config&)> ready_summary;  // "ready: <this>"
};

template <class Server, class Config>
int daemon_main(int argc, char** argv, const DaemonCommand<Config>& command) {
  std::string config_path = command.default_config;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (std::strcmp(argv[i], "-n") == 0) {
      check_only = true;
    } else {
      fmt::print(stderr, "{}", command.usage);
      return 2;
    }
  }
  log_init(command.name, LogLevel::info, false);
  auto config = command.load(config_path);
  if (!config) {
    log_error("{}", config.error().message);
    return 1;
  }
  if (check_only) {
    fmt::print("{}: ok, {}\n", config_path, command.check_summary(**config));
    return 0;
  }
  log_init(command.name, (*config)->log_level, (*config)->syslog);
  return run_daemon<Server>(*config, command.load, command.ready_summary(**config));
}

}  // namespace postern
