// passdb_sql.cpp - the SQL passdb: dovecot-sql.conf.ext read unchanged, password_query run
// on the worker's own connection (contract: authd/passdb.hpp, make_sql_passdb).
// Semantics follow Dovecot 2.3 src/auth/db-sql.c, passdb-sql.c and auth-request.c.
#include "authd/passdb.hpp"

#include "authd/passdb_fields.hpp"
#include "common/config_file.hpp"
#include "common/dovecot_template.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <array>

namespace postern::authd {
namespace {

// db-sql.c's defaults when the file does not set them. Dovecot's scheme is literally
// "MD5", which password-scheme.c treats as MD5-CRYPT (and also accepts a PLAIN-MD5 hex).
constexpr std::string_view kDefaultScheme = "MD5";
constexpr std::string_view kDefaultPasswordQuery =
    "SELECT username, domain, password FROM users WHERE username = '%n' AND domain = '%d'";

// Every key db-sql.c knows; anything else is a typo worth a warning.
constexpr std::array<std::string_view, 8> kKnownKeys = {
    "driver",        "connect",       "password_query",      "user_query",
    "update_query",  "iterate_query", "default_pass_scheme", "userdb_warning_disable"};

std::string_view rtrim_spaces(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

Result<long> parse_seconds(std::string_view key, std::string_view value) {
  long n = 0;
  for (char c : value) {
    if (c < '0' || c > '9' || n > 86400) return Error{fmt::format("connect: {}={}: expected seconds", key, value)};
    n = n * 10 + (c - '0');
  }
  if (value.empty() || n == 0) return Error{fmt::format("connect: {}={}: expected seconds", key, value)};
  return n;
}

// Dovecot's mysql connect string (driver-mysql.c): space-separated name=value words, no
// quoting (so no spaces in values); every host= is one more server to fail over to
// (sql pool); a host starting with '/' is a unix socket; port= applies to every TCP host.
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

class SqlPassdb final : public Passdb {
 public:
  SqlPassdb(std::string conf_path, sql::Endpoint endpoint, std::string query, std::string scheme)
      : conf_path_(std::move(conf_path)),
        endpoint_(std::move(endpoint)),
        query_(std::move(query)),
        scheme_(std::move(scheme)) {}

  PassdbLookup lookup(const PassdbRequest& request, WorkerContext& worker) override {
    PassdbLookup out;
    out.user = request.user;
    out.default_scheme = scheme_;
    sql::Connection& conn = worker.connection(endpoint_);
    DovecotVars vars;
    vars.user = request.user;
    vars.service = request.service;
    vars.rip = request.rip;
    vars.lip = request.lip;
    auto query = expand_dovecot_template(query_, vars, [&conn](std::string_view s) { return conn.escape(s); });
    if (!query) return temp_error(std::move(out), "password_query: " + query.error().message);
    if (log_enabled(LogLevel::debug)) log_debug("{}: query: {}", describe(), *query);
    auto rows = conn.query(*query);
    if (!rows) return temp_error(std::move(out), "password query failed: " + rows.error().message);
    if (rows->rows.empty()) {
      out.status = PassdbLookup::Status::not_found;
      return out;
    }
    // passdb-sql.c: these two are internal failures (temporary), not "unknown user".
    bool has_password_column = false;
    for (const std::string& c : rows->columns)
      if (iequals(c, "password") || iequals(c, "password_noscheme")) has_password_column = true;
    if (!has_password_column)
      return temp_error(std::move(out), "password query must return a field named 'password'");
    if (rows->rows.size() > 1) return temp_error(std::move(out), "password query returned multiple matches");
    apply_row(rows->columns, rows->rows.front(), out);
    return out;
  }

  std::string describe() const override { return fmt::format("sql({}: {})", conf_path_, endpoint_.describe()); }
  std::vector<std::string> endpoint_keys() const override { return {endpoint_.key()}; }

 private:
  void apply_row(const std::vector<std::string>& columns, const std::vector<std::optional<std::string>>& row,
                 PassdbLookup& out) const {
    out.status = PassdbLookup::Status::found;
    bool nopassword = false;
    bool failed = false;
    for (size_t i = 0; i < columns.size() && i < row.size(); ++i) {
      if (!row[i]) continue;  // NULL: the field is simply not set
      std::string name = to_lower_ascii(columns[i]);
      // CHAR columns come back padded with spaces (seed 000's PostgreSQL note).
      std::string_view value = rtrim_spaces(*row[i]);
      if (name == "password" || name == "password_noscheme") {
        if (out.password) {
          log_warning("{}: multiple password values for {}; using the first", describe(), out.user);
          continue;
        }
        // password_noscheme: a leading "{...}" is data, not a scheme (auth-request.c).
        out.password = name == "password" ? std::string(value) : "{" + scheme_ + "}" + std::string(value);
      } else if (is_username_field(name)) {
        std::string next = updated_username(out.user, name, value);
        if (next.empty()) failed = true;
        else out.user = std::move(next);
      } else if (name == "nopassword") {
        nopassword = nopassword_value(value);
      }
      // userdb_* (prefetch) and every other extra field: not used by authd.
    }
    if (failed) {
      // auth-request.c fails the request; no password means the caller rejects it.
      log_warning("{}: the query changed the user name of {} to an empty one", describe(), out.user);
      out.password.reset();
      return;
    }
    if (nopassword) {
      if (out.password && !empty_password(*out.password)) {
        log_warning("{}: nopassword set but password is non-empty for {}; nopassword ignored", describe(), out.user);
      } else {
        out.nopassword = true;
        out.password.reset();
      }
    } else if (!out.password) {
      // passdb-sql.c answers "password mismatch" here, not "unknown user": found, no password.
      log_info("{}: no password returned (and no nopassword) for {}", describe(), out.user);
    }
  }

  PassdbLookup temp_error(PassdbLookup out, std::string why) const {
    out.status = PassdbLookup::Status::temp_error;
    out.password.reset();
    out.error = describe() + ": " + scrub(std::move(why));
    return out;
  }

  // Connector messages should never carry the password, but a log line must not depend on it.
  std::string scrub(std::string text) const {
    const std::string& secret = endpoint_.password;
    if (secret.empty()) return text;
    for (size_t p = text.find(secret); p != std::string::npos; p = text.find(secret, p + 10))
      text.replace(p, secret.size(), "<password>");
    return text;
  }

  std::string conf_path_;
  sql::Endpoint endpoint_;
  std::string query_;
  std::string scheme_;
};

}  // namespace

Result<std::unique_ptr<Passdb>> make_sql_passdb(const std::string& conf_path, const SqlTimeouts& timeouts) {
  auto loaded = ConfigFile::load(conf_path, ConfigDialect::dovecot);
  if (!loaded) return loaded.error();
  const ConfigFile& cf = *loaded;
  auto fail = [&](std::string_view key, std::string why) {
    return Error{fmt::format("{} line {}: {}", conf_path, cf.line_of(key), why)};
  };
  for (const std::string& key : cf.keys()) {
    bool known = false;
    for (std::string_view k : kKnownKeys) known = known || key == k;
    if (!known) log_warning("{} line {}: unknown setting \"{}\" ignored", conf_path, cf.line_of(key), key);
  }

  sql::Endpoint ep;
  ep.connect_timeout = timeouts.connect;
  ep.read_timeout = timeouts.read;
  ep.retry_interval = timeouts.retry;
  const std::string* driver = cf.find("driver");
  const std::string* connect = cf.find("connect");
  if (!driver) return Error{fmt::format("{}: driver not set", conf_path)};
  if (!connect) return Error{fmt::format("{}: connect string not set", conf_path)};
  if (*driver == "mysql") {
    ep.driver = sql::Driver::mysql;
    auto parsed = parse_mysql_connect(*connect, ep);
    if (!parsed) return fail("connect", parsed.error().message);
    ep = std::move(parsed).value();
  } else if (*driver == "sqlite") {
    // driver-sqlite.c: the whole connect value is the database file.
    ep.driver = sql::Driver::sqlite;
    ep.dbname = std::string(trim(*connect));
    if (ep.dbname.empty()) return fail("connect", "connect: empty SQLite database path");
  } else if (*driver == "pgsql") {
    return fail("driver", "driver pgsql is not supported by postern (use mysql or sqlite)");
  } else {
    return fail("driver", fmt::format("unknown driver \"{}\" (expected mysql or sqlite)", *driver));
  }

  std::string query;
  if (const std::string* q = cf.find("password_query")) {
    query = *q;
  } else {
    log_warning("{}: password_query not set; using Dovecot's built-in default: {}", conf_path, kDefaultPasswordQuery);
    query = std::string(kDefaultPasswordQuery);
  }
  // Seeds 000-002 end the query with ';'. One trailing ';' is a terminator, not a second
  // statement; the SQLite backend would otherwise see an empty statement after it.
  query = std::string(trim(query));
  if (!query.empty() && query.back() == ';') query = std::string(trim(std::string_view(query).substr(0, query.size() - 1)));
  if (query.empty()) return fail("password_query", "password_query is empty");
  if (Status st = check_dovecot_template(query); !st) return fail("password_query", "password_query: " + st.error().message);

  std::string scheme(trim(cf.get("default_pass_scheme", kDefaultScheme)));
  if (scheme.empty()) return fail("default_pass_scheme", "default_pass_scheme is empty");
  return std::unique_ptr<Passdb>(std::make_unique<SqlPassdb>(conf_path, std::move(ep), std::move(query), std::move(scheme)));
}

}  // namespace postern::authd
