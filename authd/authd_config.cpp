// authd_config.cpp - reads authd.conf and opens its passdb; see authd_config.hpp.
#include "authd/authd_config.hpp"

#include "authd/sasl_mechanism.hpp"
#include "common/config_file.hpp"
#include "common/daemon_config.hpp"
#include "common/dovecot_template.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <set>

namespace postern::authd {
namespace {

using std::chrono::milliseconds;

// Dovecot's default auth_username_chars.
constexpr const char* kDefaultUsernameChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@";
// What one auth cache entry costs (key, user, stored hash, digest, bookkeeping), to turn
// Dovecot's byte size into entries.
constexpr size_t kCacheEntryBytes = 512;

const std::set<std::string, std::less<>> kKeys = {
    "auth_listen", "passdb", "auth_mechanisms",
    "disable_plaintext_auth", "auth_verbose", "auth_username_format", "auth_username_chars", "auth_failure_delay",
    "auth_penalty", "auth_penalty_max", "auth_request_timeout", "auth_cache_size", "auth_cache_ttl",
    "auth_cache_negative_ttl",
    "auth_workers", "sql_connect_timeout", "sql_read_timeout", "sql_retry_interval", "hostname"};

Result<std::shared_ptr<Passdb>> open_passdb(const ConfigFile& file, const SqlTimeouts& timeouts) {
  std::string text(trim(file.get("passdb")));
  if (text.empty()) return file.error("passdb", "missing (sql FILE, or passwd-file ARGS)");
  size_t space = text.find_first_of(" \t");
  std::string driver = text.substr(0, space);
  std::string args = space == std::string::npos ? "" : std::string(trim(text.substr(space)));
  if (driver == "sql") {
    auto passdb = make_sql_passdb(args, timeouts);
    if (!passdb) return passdb.error();
    return std::shared_ptr<Passdb>(std::move(*passdb));
  }
  if (driver == "passwd-file") {
    auto passdb = make_passwd_file_passdb(args);
    if (!passdb) return passdb.error();
    return std::shared_ptr<Passdb>(std::move(*passdb));
  }
  return file.error("passdb", fmt::format("unknown driver '{}' (sql or passwd-file)", driver));
}

}  // namespace

Result<std::shared_ptr<const AuthdConfig>> load_authd_config(const std::string& path) {
  auto loaded = ConfigFile::load(path);
  if (!loaded) return loaded.error();
  const ConfigFile& file = *loaded;
  for (const std::string& key : file.keys())
    if (!kKeys.count(key) && !is_daemon_setting(key)) return file.error(key, "unknown setting");

  auto config = std::make_shared<AuthdConfig>();
  auto listen = read_listeners(file, "auth_listen");
  if (!listen) return listen.error();
  config->listen = std::move(*listen);
  if (config->listen.empty()) return file.error("auth_listen", "no listeners");
  if (Status s = read_daemon_settings(file, 0660, config.get()); !s) return s.error();

  auto plaintext = file.get_bool("disable_plaintext_auth", false);
  auto verbose = file.get_bool("auth_verbose", false);
  auto delay = file.get_duration("auth_failure_delay", milliseconds(2000));
  auto penalty = file.get_bool("auth_penalty", true);
  auto penalty_max = file.get_duration("auth_penalty_max", milliseconds(8000));
  auto request_timeout = file.get_duration("auth_request_timeout", milliseconds(60000));
  auto cache_ttl = file.get_duration("auth_cache_ttl", milliseconds(3600000));
  auto cache_negative_ttl = file.get_duration("auth_cache_negative_ttl", milliseconds(3600000));
  auto workers = file.get_int("auth_workers", 0, 0, 256);
  auto connect_timeout = file.get_duration("sql_connect_timeout", milliseconds(2000));
  auto read_timeout = file.get_duration("sql_read_timeout", milliseconds(3000));
  auto retry_interval = file.get_duration("sql_retry_interval", milliseconds(1000));
  if (auto bad = first_error(plaintext, verbose, delay, penalty, penalty_max, request_timeout, cache_ttl, cache_negative_ttl, workers,
                             connect_timeout, read_timeout, retry_interval))
    return *bad;

  config->disable_plaintext_auth = *plaintext;
  config->auth_verbose = *verbose;
  config->failure_delay = *delay;
  config->penalty = *penalty;
  config->penalty_max = *penalty_max;
  // Postfix gives up after 10 s and answers 454: a FAIL must come sooner to be a 535.
  if (config->failure_delay.count() >= 10000)
    return file.error("auth_failure_delay", "must stay under Postfix's 10 s auth timeout");
  if (config->penalty_max.count() >= 10000)
    return file.error("auth_penalty_max", "must stay under Postfix's 10 s auth timeout");
  config->request_timeout = *request_timeout;
  config->cache.ttl = *cache_ttl;
  config->cache.negative_ttl = *cache_negative_ttl;
  config->workers = static_cast<int>(*workers);
  config->hostname = file.get("hostname");
  if (config->hostname.empty()) config->hostname = default_hostname();

  auto cache_bytes = file.get_size("auth_cache_size", 0);
  if (!cache_bytes) return cache_bytes.error();
  config->cache.entries = static_cast<size_t>(*cache_bytes / kCacheEntryBytes);

  config->username_format = std::string(trim(file.get("auth_username_format", "%Lu")));
  if (Status s = check_dovecot_template(config->username_format); !s)
    return file.error("auth_username_format", s.error().message);
  config->username_chars = file.has("auth_username_chars") ? file.get("auth_username_chars") : kDefaultUsernameChars;

  for (const std::string& name : split_list(file.get("auth_mechanisms", "plain login"))) {
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    bool known = false;
    for (const MechanismInfo& info : known_mechanisms()) known = known || info.name == upper;
    if (!known) return file.error("auth_mechanisms", fmt::format("unknown mechanism '{}'", name));
    config->mechanisms.push_back(upper);
  }
  if (config->mechanisms.empty()) return file.error("auth_mechanisms", "no mechanisms");

  SqlTimeouts timeouts{*connect_timeout, *read_timeout, *retry_interval};
  auto passdb = open_passdb(file, timeouts);
  if (!passdb) return passdb.error();
  config->passdb = std::move(*passdb);
  config->passdb_text = std::string(trim(file.get("passdb")));
  return std::shared_ptr<const AuthdConfig>(std::move(config));
}

}  // namespace postern::authd
