// lmtpd_config.cpp - reads lmtpd.conf and opens its userdb; see lmtpd_config.hpp.
#include "lmtpd/lmtpd_config.hpp"

#include "common/config_file.hpp"
#include "common/daemon_config.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <set>

namespace postern::lmtpd {
namespace {

using std::chrono::milliseconds;

const std::set<std::string, std::less<>> kKeys = {
    "lmtp_listen", "userdb", "user_check", "mail_location",
    "mail_home", "mail_uid", "mail_gid", "mail_file_mode", "mail_dir_mode", "recipient_delimiter",
    "lmtp_save_to_detail_mailbox", "quota_rule", "quota_full_tempfail", "mail_max_size", "lmtp_spool_memory",
    "mail_temp_dir", "hostname", "postmaster_address", "lmtp_workers", "idle_timeout", "sql_connect_timeout",
    "sql_read_timeout", "sql_retry_interval"};

}  // namespace

Result<std::shared_ptr<const LmtpdConfig>> load_lmtpd_config(const std::string& path) {
  auto loaded = ConfigFile::load(path);
  if (!loaded) return loaded.error();
  const ConfigFile& file = *loaded;
  for (const std::string& key : file.keys())
    if (!kKeys.count(key) && !is_daemon_setting(key)) return file.error(key, "unknown setting");

  auto config = std::make_shared<LmtpdConfig>();
  auto listen = read_listeners(file, "lmtp_listen");
  if (!listen) return listen.error();
  config->listen = std::move(*listen);
  if (config->listen.empty()) return file.error("lmtp_listen", "no listeners");
  if (Status s = read_daemon_settings(file, 0600, config.get()); !s) return s.error();

  auto file_mode = file.get_mode("mail_file_mode", 0600);
  auto dir_mode = file.get_mode("mail_dir_mode", 0700);
  auto detail = file.get_bool("lmtp_save_to_detail_mailbox", false);
  auto tempfail = file.get_bool("quota_full_tempfail", false);
  auto max_size = file.get_size("mail_max_size", 100ull << 20);
  auto spool = file.get_size("lmtp_spool_memory", 1 << 20);
  auto workers = file.get_int("lmtp_workers", 0, 0, 256);
  auto idle = file.get_duration("idle_timeout", milliseconds(300000));
  auto connect_timeout = file.get_duration("sql_connect_timeout", milliseconds(2000));
  auto read_timeout = file.get_duration("sql_read_timeout", milliseconds(3000));
  auto retry_interval = file.get_duration("sql_retry_interval", milliseconds(1000));
  if (auto bad = first_error(file_mode, dir_mode, detail, tempfail, max_size, spool, workers, idle, connect_timeout,
                             read_timeout, retry_interval))
    return *bad;

  config->recipient_delimiter = std::string(trim(file.get("recipient_delimiter", "+")));
  config->save_to_detail_mailbox = *detail;
  config->max_size = *max_size;
  config->spool_memory = static_cast<size_t>(*spool);
  config->temp_dir = file.get("mail_temp_dir", "/tmp");
  config->hostname = file.get("hostname");
  if (config->hostname.empty()) config->hostname = default_hostname();
  if (config->hostname.find_first_of("/\r\n\t ") != std::string::npos)
    return file.error("hostname", "must not contain '/', spaces or control characters");
  config->postmaster_address = file.get("postmaster_address", "postmaster@" + config->hostname);
  config->maildir = MaildirOptions{*file_mode, *dir_mode, config->hostname, *tempfail};
  config->workers = static_cast<int>(*workers);
  config->idle_timeout_ms = static_cast<uint64_t>(idle->count());

  UserdbSettings settings;
  settings.userdb = std::string(trim(file.get("userdb")));
  if (settings.userdb.empty()) return file.error("userdb", "missing (static ARGS, sql FILE or passwd-file ARGS)");
  settings.user_check = std::string(trim(file.get("user_check")));
  settings.mail_location = std::string(trim(file.get("mail_location", "maildir:~/Maildir")));
  settings.mail_home = std::string(trim(file.get("mail_home")));
  settings.mail_uid = file.get("mail_uid");
  settings.mail_gid = file.get("mail_gid");
  settings.quota_rule = std::string(trim(file.get("quota_rule")));
  settings.sql_connect_timeout = *connect_timeout;
  settings.sql_read_timeout = *read_timeout;
  settings.sql_retry_interval = *retry_interval;
  auto userdb = make_userdb(settings);
  if (!userdb) return Error{fmt::format("{}: {}", path, userdb.error().message)};
  config->userdb = std::shared_ptr<Userdb>(std::move(*userdb));
  return std::shared_ptr<const LmtpdConfig>(std::move(config));
}

}  // namespace postern::lmtpd
