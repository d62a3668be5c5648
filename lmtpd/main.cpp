// main.cpp - lmtpd: an LMTP delivery agent writing Dovecot-compatible Maildir.
//
//   lmtpd [-c FILE]                 run in the foreground (logs to stderr, and syslog if set)
//   lmtpd [-c FILE] -n              check the config (and open the userdb), then exit
#include "lmtpd/lmtp_server.hpp"
#include "lmtpd/lmtpd_config.hpp"
#include "common/daemon.hpp"
#include "common/log.hpp"

#include <fmt/format.h>
#include <uv.h>

#include <cstring>
#include <memory>
#include <string>

using namespace postern;
using namespace postern::lmtpd;

namespace {

constexpr const char* kDefaultConfig = "/etc/postern/lmtpd.conf";
constexpr uint64_t kStopGraceMs = 10000;

int run_daemon(std::shared_ptr<const LmtpdConfig> config) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  {
    LmtpServer server(&loop, config);
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
          auto fresh = load_lmtpd_config(path);
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
      log_info("ready: userdb {}", config->userdb->describe());
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
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (std::strcmp(argv[i], "-n") == 0) {
      check_only = true;
    } else {
      fmt::print(stderr, "usage: lmtpd [-c FILE] [-n]\n");
      return 2;
    }
  }
  log_init("lmtpd", LogLevel::info, false);
  auto config = load_lmtpd_config(config_path);
  if (!config) {
    log_error("{}", config.error().message);
    return 1;
  }
  if (check_only) {
    fmt::print("{}: ok, userdb {}\n", config_path, (*config)->userdb->describe());
    return 0;
  }
  log_init("lmtpd", (*config)->log_level, (*config)->syslog);
  return run_daemon(*config);
}
