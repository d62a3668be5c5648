// lmtpd_config.cpp - reads lmtpd.conf and opens its userdb; see lmtpd_config.hpp.
#include "lmtpd/lmtpd_config.hpp"

#include "common/config_file.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <optional>
#include <set>

namespace postern::lmtpd {
namespace {

using std::chrono::milliseconds;

const std::set<std::string, std::less<>> kKeys = {
    "lmtp_listen", "socket_mode", "socket_user", "socket_group", "userdb", "user_check", "mail_location",
    "mail_home", "mail_uid", "mail_gid", "mail_file_mode", "mail_dir_mode", "recipient_delimiter",
    "lmtp_save_to_detail_mailbox", "quota_rule", "quota_full_tempfail", "mail_max_size", "lmtp_spool_memory",
    "mail_temp_dir", "hostname", "postmaster_address", "lmtp_workers", "idle_timeout", "sql_connect_timeout",
    "sql_read_timeout", "sql_retry_interval", "user", "group", "log_level", "syslog"};

Error config_error(const ConfigFile& file, std::string_view key, std::string_view what) {
  return Error{fmt::format("{} line {}: {}: {}", file.origin(), file.line_of(key), key, what)};
}

std::string default_hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

std::vector<std::string> LmtpdConfig::listener_signature() const {
  std::vector<std::string> out;
  for (const ListenAddress& a : listen) out.push_back(a.str());
  out.push_back(fmt::format("mode {:o} {} {}", socket_options.mode, socket_options.owner, socket_options.group));
  return out;
}

Result<std::shared_ptr<const LmtpdConfig>> load_lmtpd_config(const std::string& path) {
  auto loaded = ConfigFile::load(path);
  if (!loaded) return loaded.error();
  const ConfigFile& file = *loaded;
  for (const std::string& key : file.keys())
    if (!kKeys.count(key)) return config_error(file, key, "unknown setting");

  auto config = std::make_shared<LmtpdConfig>();
  config->path = path;
  for (const std::string& item : split_list(file.get("lmtp_listen"))) {
    auto address = ListenAddress::parse(item);
    if (!address) return config_error(file, "lmtp_listen", address.error().message);
    config->listen.push_back(*address);
  }
  if (config->listen.empty()) return config_error(file, "lmtp_listen", "no listeners");

  auto mode = file.get_mode("socket_mode", 0600);
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
  auto syslog = file.get_bool("syslog", false);
  std::optional<Error> bad;
  auto check = [&bad](const auto& r) {
    if (!r && !bad) bad = r.error();
  };
  check(mode), check(file_mode), check(dir_mode), check(detail), check(tempfail), check(max_size), check(spool);
  check(workers), check(idle), check(connect_timeout), check(read_timeout), check(retry_interval), check(syslog);
  if (bad) return *bad;

  config->socket_options = UnixSocketOptions{*mode, file.get("socket_user"), file.get("socket_group")};
  config->recipient_delimiter = std::string(trim(file.get("recipient_delimiter", "+")));
  config->save_to_detail_mailbox = *detail;
  config->max_size = *max_size;
  config->spool_memory = static_cast<size_t>(*spool);
  config->temp_dir = file.get("mail_temp_dir", "/tmp");
  config->hostname = file.get("hostname");
  if (config->hostname.empty()) config->hostname = default_hostname();
  if (config->hostname.find_first_of("/\r\n\t ") != std::string::npos)
    return config_error(file, "hostname", "must not contain '/', spaces or control characters");
  config->postmaster_address = file.get("postmaster_address", "postmaster@" + config->hostname);
  config->maildir = MaildirOptions{*file_mode, *dir_mode, config->hostname, *tempfail};
  config->workers = static_cast<int>(*workers);
  config->idle_timeout_ms = static_cast<uint64_t>(idle->count());
  config->user = file.get("user");
  config->group = file.get("group");
  config->syslog = *syslog;
  if (!parse_log_level(file.get("log_level", "info"), &config->log_level))
    return config_error(file, "log_level", "must be debug, info, warning or error");

  UserdbSettings settings;
  settings.userdb = std::string(trim(file.get("userdb")));
  if (settings.userdb.empty()) return config_error(file, "userdb", "missing (static ARGS, sql FILE or passwd-file ARGS)");
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
