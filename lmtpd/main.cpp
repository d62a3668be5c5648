// main.cpp - lmtpd: an LMTP delivery agent writing Dovecot-compatible Maildir.
//
//   lmtpd [-c FILE]                 run in the foreground (logs to stderr, and syslog if set)
//   lmtpd [-c FILE] -n              check the config (and open the userdb), then exit
#include "common/daemon_main.hpp"
#include "lmtpd/lmtp_server.hpp"
#include "lmtpd/lmtpd_config.hpp"

using namespace postern;
using namespace postern::lmtpd;

int main(int argc, char** argv) {
  auto userdb = [](const LmtpdConfig& c) { return "userdb " + c.userdb->describe(); };
  return daemon_main<LmtpServer>(argc, argv,
                                 DaemonCommand<LmtpdConfig>{"lmtpd", "/etc/postern/lmtpd.conf",
                                                            "usage: lmtpd [-c FILE] [-n]\n", load_lmtpd_config,
                                                            userdb, userdb});
}
