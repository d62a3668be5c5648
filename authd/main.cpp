// main.cpp - authd: a Dovecot-compatible SASL auth server for Postfix.
//
//   authd [-c FILE]                 run in the foreground (logs to stderr, and syslog if set)
//   authd [-c FILE] -n              check the config (and open the passdb), then exit
//   authd pw ...                    make or check a password hash, like `doveadm pw`
//   authd test ...                  one login through a running auth socket, like `doveadm auth test`
#include "authd/auth_server.hpp"
#include "authd/auth_test_command.hpp"
#include "authd/authd_config.hpp"
#include "authd/pw_command.hpp"
#include "common/daemon.hpp"
#include "common/log.hpp"

#include <fmt/format.h>
#include <uv.h>

#include <cstring>
#include <memory>
#include <string>

using namespace postern;
using namespace postern::authd;

namespace {

constexpr const char* kDefaultConfig = "/etc/postern/authd.conf";
constexpr uint64_t kStopGraceMs = 10000;

int run_daemon(std::shared_ptr<const AuthdConfig> config) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  {
    AuthServer server(&loop, config);
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
          auto fresh = load_authd_config(path);
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
      log_info("ready: passdb {}, mechanisms {}", config->passdb->describe(), fmt::join(config->mechanisms, " "));
      uv_run(&loop, UV_RUN_DEFAULT);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) log_warning("event loop closed with handles still open");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "pw") == 0) return run_pw_command(argc - 2, argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "test") == 0) return run_auth_test_command(argc - 2, argv + 2);
  std::string config_path = kDefaultConfig;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (std::strcmp(argv[i], "-n") == 0) {
      check_only = true;
    } else {
      fmt::print(stderr, "usage: authd [-c FILE] [-n]\n       authd pw ...\n       authd test ...\n");
      return 2;
    }
  }
  log_init("authd", LogLevel::info, false);
  auto config = load_authd_config(config_path);
  if (!config) {
    log_error("{}", config.error().message);
    return 1;
  }
  if (check_only) {
    fmt::print("{}: ok, passdb {}\n", config_path, (*config)->passdb->describe());
    return 0;
  }
  log_init("authd", (*config)->log_level, (*config)->syslog);
  return run_daemon(*config);
}
