// authd_config.hpp - authd's own config file (examples/authd.conf documents it).
//
// Loading also opens the passdb (reads dovecot-sql.conf.ext or checks the passwd-file
// args), so a config that loads is complete and a reload swaps all or nothing.
#pragma once

#include "authd/auth_cache.hpp"
#include "authd/passdb.hpp"
#include "common/daemon_config.hpp"
#include "common/net.hpp"
#include "common/result.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace postern::authd {

// path, socket_options, user, group, log_level, syslog: see DaemonSettings.
struct AuthdConfig : DaemonSettings {
  std::vector<ListenAddress> listen;
  std::shared_ptr<Passdb> passdb;
  std::string passdb_text;              // the `passdb` line, for logs
  std::vector<std::string> mechanisms;  // upper case, in advertised order
  bool disable_plaintext_auth = false;
  bool auth_verbose = false;            // log failed logins (at info)
  std::string username_format = "%Lu";
  std::string username_chars;           // empty = any
  std::chrono::milliseconds failure_delay{2000};
  bool penalty = true;
  std::chrono::milliseconds penalty_max{8000};
  std::chrono::milliseconds request_timeout{60000};
  AuthCacheSettings cache;              // entries = auth_cache_size (bytes, as Dovecot) / entry size
  int workers = 0;                      // 0 = one per core
  std::string hostname;
};

Result<std::shared_ptr<const AuthdConfig>> load_authd_config(const std::string& path);

}  // namespace postern::authd
