// passdb_sql.cpp - the SQL passdb: password_query from dovecot-sql.conf.ext (read by
// common/dovecot_sql_conf) run on the worker's own connection (contract: authd/passdb.hpp).
// Semantics follow Dovecot 2.3 src/auth/db-sql.c, passdb-sql.c and auth-request.c.
#include "authd/passdb.hpp"

#include "authd/passdb_fields.hpp"
#include "common/dovecot_sql_conf.hpp"
#include "common/dovecot_template.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

namespace postern::authd {
namespace {

std::string_view rtrim_spaces(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
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
    auto query = expand_dovecot_template(query_, passdb_vars(request), [&conn](std::string_view s) { return conn.escape(s); });
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

  std::string cache_key(const PassdbRequest& request) const override {
    auto key = dovecot_template_key(query_, passdb_vars(request));
    return key ? *key : std::string();
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
  std::string scrub(std::string text) const { return scrub_secret(std::move(text), endpoint_.password); }

  std::string conf_path_;
  sql::Endpoint endpoint_;
  std::string query_;
  std::string scheme_;
};

}  // namespace

Result<std::unique_ptr<Passdb>> make_sql_passdb(const std::string& conf_path, const SqlTimeouts& timeouts) {
  auto loaded = load_dovecot_sql_conf(conf_path, SqlConnectTimeouts{timeouts.connect, timeouts.read, timeouts.retry});
  if (!loaded) return loaded.error();
  DovecotSqlConf& conf = *loaded;
  if (conf.password_query_is_default)
    log_warning("{}: password_query not set; using Dovecot's built-in default: {}", conf_path, conf.password_query);
  if (Status st = check_dovecot_template(conf.password_query); !st)
    return Error{fmt::format("{}: password_query: {}", conf.where("password_query"), st.error().message)};
  return std::unique_ptr<Passdb>(std::make_unique<SqlPassdb>(conf_path, std::move(conf.endpoint),
                                                             std::move(conf.password_query),
                                                             std::move(conf.default_pass_scheme)));
}

}  // namespace postern::authd
