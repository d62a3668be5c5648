// dovecot_sql_conf.cpp - dovecot-sql.conf.ext reader (contract: common/dovecot_sql_conf.hpp).
// Key names, defaults and the connect-string words follow Dovecot 2.3 src/auth/db-sql.c
// and src/lib-sql/driver-mysql.c / driver-sqlite.c.
#include "common/dovecot_sql_conf.hpp"

#include "common/config_file.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <array>
#include <vector>

namespace postern {
namespace {

// db-sql.c's defaults when the file does not set them. Dovecot's scheme is literally
// "MD5", which password-scheme.c treats as MD5-CRYPT (and also accepts a PLAIN-MD5 hex).
constexpr std::string_view kDefaultScheme = "MD5";
constexpr std::string_view kDefaultPasswordQuery =
    "SELECT username, domain, password FROM users WHERE username = '%n' AND domain = '%d'";
constexpr std::string_view kDefaultUserQuery =
    "SELECT home, uid, gid FROM users WHERE username = '%n' AND domain = '%d'";
constexpr std::string_view kDefaultIterateQuery = "SELECT username, domain FROM users";

// Every key db-sql.c knows; anything else is a typo worth a warning.
constexpr std::array<std::string_view, 8> kKnownKeys = {
    "driver",        "connect",       "password_query",      "user_query",
    "update_query",  "iterate_query", "default_pass_scheme", "userdb_warning_disable"};

Result<long> parse_seconds(std::string_view key, std::string_view value) {
  long n = 0;
  for (char c : value) {
    if (c < '0' || c > '9' || n > 86400) return Error{fmt::format("connect: {}={}: expected seconds", key, value)};
    n = n * 10 + (c - '0');
  }
  if (value.empty() || n == 0) return Error{fmt::format("connect: {}={}: expected seconds", key, value)};
  return n;
}

// Dovecot's mysql connect string: no quoting (so no spaces in values); every host= is one
// more server to fail over to; a host starting with '/' is a unix socket.
Result<sql::Endpoint> parse_mysql_connect(std::string_view connect, sql::Endpoint ep) {
  std::vector<std::string> hosts;
  std::string port;
  for (const std::string& word : split_list(connect, " \t")) {
    size_t eq = word.find('=');
    if (eq == std::string::npos)  // not echoed: it may be a password after a stray space
      return Error{"connect: a word without '=' (expected name=value, and no spaces inside values)"};
    std::string name = word.substr(0, eq);
    std::string value = word.substr(eq + 1);
    if (name == "host" || name == "hostaddr") {
      hosts.push_back(value);
    } else if (name == "user") {
      ep.user = value;
    } else if (name == "password") {
      ep.password = value;
    } else if (name == "dbname") {
      ep.dbname = value;
    } else if (name == "port") {
      port = value;
    } else if (name == "connect_timeout" || name == "read_timeout") {
      auto secs = parse_seconds(name, value);
      if (!secs) return secs.error();
      (name == "connect_timeout" ? ep.connect_timeout : ep.read_timeout) = std::chrono::seconds(*secs);
    } else if (name == "write_timeout" || name == "client_flags" || name == "maxconns") {
      log_warning("connect: {} is not used by postern; ignored", name);
    } else if (name.rfind("ssl_", 0) == 0 || name == "option_file" || name == "option_group") {
      // Ignoring these would silently drop TLS or credentials the admin asked for.
      return Error{fmt::format("connect: {} is not supported by postern", name)};
    } else {
      return Error{fmt::format("connect: unknown parameter \"{}\"", name)};
    }
  }
  if (hosts.empty()) return Error{"connect: no host= given"};
  for (const std::string& h : hosts) {
    std::string entry = h;
    if (!port.empty() && !h.empty() && h.front() != '/')
      entry = h.find(':') != std::string::npos ? fmt::format("[{}]:{}", h, port) : fmt::format("{}:{}", h, port);
    auto spec = sql::parse_mysql_host(entry);
    if (!spec) return Error{"connect: " + spec.error().message};
    ep.hosts.push_back(entry);
  }
  return ep;
}

// One trailing ';' is a terminator, not a second statement; the SQLite backend would
// otherwise see an empty statement after it.
std::string normalize_query(std::string_view q) {
  q = trim(q);
  if (!q.empty() && q.back() == ';') q = trim(q.substr(0, q.size() - 1));
  return std::string(q);
}

}  // namespace

std::string DovecotSqlConf::where(std::string_view key) const {
  auto it = lines.find(key);
  return it == lines.end() || it->second == 0 ? path : fmt::format("{} line {}", path, it->second);
}

Result<sql::Endpoint> parse_dovecot_connect(std::string_view driver, std::string_view connect, sql::Endpoint base) {
  if (driver == "mysql") {
    base.driver = sql::Driver::mysql;
    return parse_mysql_connect(connect, std::move(base));
  }
  if (driver == "sqlite") {
    // driver-sqlite.c: the whole connect value is the database file.
    base.driver = sql::Driver::sqlite;
    base.dbname = std::string(trim(connect));
    if (base.dbname.empty()) return Error{"connect: empty SQLite database path"};
    return base;
  }
  if (driver == "pgsql") return Error{"driver pgsql is not supported by postern (use mysql or sqlite)"};
  return Error{fmt::format("unknown driver \"{}\" (expected mysql or sqlite)", driver)};
}

Result<DovecotSqlConf> load_dovecot_sql_conf(const std::string& path, const SqlConnectTimeouts& timeouts) {
  auto loaded = ConfigFile::load(path, ConfigDialect::dovecot);
  if (!loaded) return loaded.error();
  const ConfigFile& cf = *loaded;
  DovecotSqlConf conf;
  conf.path = path;
  for (const std::string& key : cf.keys()) {
    conf.lines[key] = cf.line_of(key);
    bool known = false;
    for (std::string_view k : kKnownKeys) known = known || key == k;
    if (!known) log_warning("{} line {}: unknown setting \"{}\" ignored", path, cf.line_of(key), key);
  }
  auto fail = [&conf](std::string_view key, const std::string& why) {
    return Error{fmt::format("{}: {}", conf.where(key), why)};
  };

  const std::string* driver = cf.find("driver");
  const std::string* connect = cf.find("connect");
  if (!driver) return Error{fmt::format("{}: driver not set", path)};
  if (!connect) return Error{fmt::format("{}: connect string not set", path)};
  sql::Endpoint base;
  base.connect_timeout = timeouts.connect;
  base.read_timeout = timeouts.read;
  base.retry_interval = timeouts.retry;
  auto ep = parse_dovecot_connect(trim(*driver), *connect, std::move(base));
  if (!ep) {
    bool driver_problem = ep.error().message.rfind("connect:", 0) != 0;
    return fail(driver_problem ? "driver" : "connect", ep.error().message);
  }
  conf.endpoint = std::move(ep).value();

  struct QuerySlot {
    std::string_view key;
    std::string_view fallback;
    std::string* value;
    bool* is_default;
  };
  bool iterate_default = false;
  for (const QuerySlot& q : {QuerySlot{"password_query", kDefaultPasswordQuery, &conf.password_query,
                                       &conf.password_query_is_default},
                             QuerySlot{"user_query", kDefaultUserQuery, &conf.user_query, &conf.user_query_is_default},
                             QuerySlot{"iterate_query", kDefaultIterateQuery, &conf.iterate_query, &iterate_default}}) {
    const std::string* set = cf.find(q.key);
    *q.is_default = set == nullptr;
    *q.value = normalize_query(set ? *set : q.fallback);
    if (q.value->empty()) return fail(q.key, fmt::format("{} is empty", q.key));
  }

  conf.default_pass_scheme = std::string(trim(cf.get("default_pass_scheme", kDefaultScheme)));
  if (conf.default_pass_scheme.empty()) return fail("default_pass_scheme", "default_pass_scheme is empty");
  return conf;
}

std::string scrub_secret(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  constexpr std::string_view kMask = "<password>";
  for (size_t p = text.find(secret); p != std::string::npos; p = text.find(secret, p + kMask.size()))
    text.replace(p, secret.size(), kMask);
  return text;
}

}  // namespace postern
