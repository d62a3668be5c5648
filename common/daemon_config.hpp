// daemon_config.hpp - the settings every daemon's own config file shares, read one way.
//
//   socket_mode, socket_user, socket_group   mode and owner of the unix listeners
//   user, group                              who the daemon runs as once it has bound
//   log_level                                debug, info, warning or error
//   syslog                                   yes/no: log to syslog as well as stderr
// plus a listener list under a key the daemon names (auth_listen, lmtp_listen, ...).
// Each daemon's config struct derives from DaemonSettings, so run_daemon()
// (daemon_main.hpp) can reload and drop privileges without knowing the daemon.
#pragma once

#include "common/config_file.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace postern {

struct DaemonSettings {
  std::string path;  // the config file, reread on SIGHUP
  UnixSocketOptions socket_options;
  std::string user;   // empty = keep running as who started us
  std::string group;  // empty = the user's primary group
  LogLevel log_level = LogLevel::info;
  bool syslog = false;
};

// True for the keys read_daemon_settings() reads, so a daemon's unknown-key check
// accepts them.
bool is_daemon_setting(std::string_view key);

// Fills *out from file (path = file.origin()). Reports the first bad value in the order
// socket_mode, syslog, log_level.
Status read_daemon_settings(const ConfigFile& file, unsigned default_socket_mode, DaemonSettings* out);

// The addresses listed under key (commas or spaces between them); empty if none.
Result<std::vector<ListenAddress>> read_listeners(const ConfigFile& file, std::string_view key);

// "mode 660 OWNER GROUP", and each address's str() followed by it: compared across a
// reload to tell whether the listeners changed.
std::string socket_signature(const UnixSocketOptions& options);
std::vector<std::string> listener_signature(const std::vector<ListenAddress>& listen,
                                            const UnixSocketOptions& options);

// This host's name (gethostname), or "localhost" when it has none.
std::string default_hostname();

}  // namespace postern
