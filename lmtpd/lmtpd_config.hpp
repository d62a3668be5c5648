// lmtpd_config.hpp - lmtpd's own config file (examples/lmtpd.conf documents it).
//
// Loading also opens the userdb, so a config that loads is complete and a reload swaps
// all or nothing.
#pragma once

#include "common/daemon_config.hpp"
#include "common/net.hpp"
#include "common/result.hpp"
#include "lmtpd/maildir_writer.hpp"
#include "lmtpd/userdb.hpp"

#include <memory>
#include <string>
#include <vector>

namespace postern::lmtpd {

// path, socket_options, user, group, log_level, syslog: see DaemonSettings.
struct LmtpdConfig : DaemonSettings {
  std::vector<ListenAddress> listen;
  std::shared_ptr<Userdb> userdb;
  std::string recipient_delimiter = "+";
  bool save_to_detail_mailbox = false;
  MaildirOptions maildir;  // modes, hostname, quota_full_tempfail
  uint64_t max_size = 100ull << 20;  // 0 = no limit
  size_t spool_memory = 1 << 20;
  std::string temp_dir = "/tmp";
  std::string hostname;
  std::string postmaster_address;
  int workers = 0;  // 0 = four per core
  uint64_t idle_timeout_ms = 300000;
};

Result<std::shared_ptr<const LmtpdConfig>> load_lmtpd_config(const std::string& path);

}  // namespace postern::lmtpd
