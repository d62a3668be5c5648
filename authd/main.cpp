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
#include "common/daemon_main.hpp"

#include <fmt/format.h>

#include <cstring>
#include <string>

using namespace postern;
using namespace postern::authd;

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "pw") == 0) return run_pw_command(argc - 2, argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "test") == 0) return run_auth_test_command(argc - 2, argv + 2);
  return daemon_main<AuthServer>(
      argc, argv,
      DaemonCommand<AuthdConfig>{
          "authd", "/etc/postern/authd.conf", "usage: authd [-c FILE] [-n]\n       authd pw ...\n       authd test ...\n",
          load_authd_config, [](const AuthdConfig& c) { return "passdb " + c.passdb->describe(); },
          [](const AuthdConfig& c) {
            return fmt::format("passdb {}, mechanisms {}", c.passdb->describe(), fmt::join(c.mechanisms, " "));
          }});
}
