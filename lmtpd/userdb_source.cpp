// userdb_source.cpp - make_user_source (contract: lmtpd/userdb_source.hpp): the static,
// sql, passwd-file and none drivers, with Dovecot 2.3's field names.
#include "lmtpd/userdb_source.hpp"

#include "common/daemon.hpp"
#include "common/dovecot_sql_conf.hpp"
#include "common/log.hpp"
#include "common/passwd_file.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

namespace postern::lmtpd {
namespace {

using LS = UserLookup::Status;

// Stores a userdb field under its Dovecot name; prefetch-style "userdb_" prefixes are
// accepted everywhere. False for a field postern does not use.
bool set_field(UserdbFields& f, std::string_view name, std::string value) {
  if (name.rfind("userdb_", 0) == 0) name.remove_prefix(7);
  std::string* slot = name == "uid" ? &f.uid : name == "gid" ? &f.gid : name == "home" ? &f.home
                    : name == "mail" ? &f.mail : name == "quota_rule" ? &f.quota_rule : nullptr;
  if (slot) *slot = std::move(value);
  return slot != nullptr;
}

std::string rtrim_spaces(std::string s) {  // CHAR columns come back padded
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// One query with the user's variables, every value escaped by the connector.
Result<sql::Rows> run_query(const sql::Endpoint& ep, const std::string& tmpl, const std::string& user,
                            WorkerContext& worker) {
  sql::Connection& conn = worker.connection(ep);
  auto query = expand_dovecot_template(tmpl, lmtp_vars(user), [&conn](std::string_view s) { return conn.escape(s); });
  if (!query) return Error{scrub_secret(query.error().message, ep.password)};
  if (log_enabled(LogLevel::debug)) log_debug("userdb query: {}", *query);
  auto rows = conn.query(*query);
  if (!rows) return Error{scrub_secret(rows.error().message, ep.password)};
  return rows;
}

class StaticSource final : public UserSource {
 public:
  explicit StaticSource(UserdbFields fields) : fields_(std::move(fields)) {}
  SourceAnswer fetch(const std::string& user, WorkerContext&) override { return answer(user); }
  std::optional<SourceAnswer> fetch_now(const std::string& user) override { return answer(user); }
  std::string describe() const override { return "static"; }

 private:
  SourceAnswer answer(const std::string& user) const {
    SourceAnswer a{LS::found, fields_, {}};
    if (!a.fields.home.empty()) {  // home= is a template (%d/%n); mail= is expanded later
      auto home = expand_dovecot_template(fields_.home, lmtp_vars(user));
      if (!home) return SourceAnswer{LS::temp_error, {}, "home: " + home.error().message};
      a.fields.home = *home;
    }
    return a;
  }
  UserdbFields fields_;
};

class NoneCheck final : public UserSource {
 public:
  SourceAnswer fetch(const std::string&, WorkerContext&) override { return SourceAnswer{LS::found, {}, {}}; }
  std::optional<SourceAnswer> fetch_now(const std::string&) override { return SourceAnswer{LS::found, {}, {}}; }
  std::string describe() const override { return "none"; }
};

class SqlSource final : public UserSource {
 public:
  explicit SqlSource(DovecotSqlConf conf) : conf_(std::move(conf)) {}

  SourceAnswer fetch(const std::string& user, WorkerContext& worker) override {
    auto rows = run_query(conf_.endpoint, conf_.user_query, user, worker);
    if (!rows) return SourceAnswer{LS::temp_error, {}, describe() + ": user_query failed: " + rows.error().message};
    if (rows->rows.empty()) return SourceAnswer{};
    if (rows->rows.size() > 1) log_warning("{}: user_query returned {} rows for {}; using the first",
                                           describe(), rows->rows.size(), user);
    SourceAnswer a{LS::found, {}, {}};
    const auto& row = rows->rows.front();
    for (size_t i = 0; i < rows->columns.size() && i < row.size(); ++i)
      if (row[i]) set_field(a.fields, to_lower_ascii(rows->columns[i]), rtrim_spaces(*row[i]));
    return a;
  }

  // The seeds' virtual_users check: any row from password_query means the user exists.
  SourceAnswer exists(const std::string& user, WorkerContext& worker) override {
    auto rows = run_query(conf_.endpoint, conf_.password_query, user, worker);
    if (!rows) return SourceAnswer{LS::temp_error, {}, describe() + ": password_query failed: " + rows.error().message};
    return SourceAnswer{rows->rows.empty() ? LS::not_found : LS::found, {}, {}};
  }

  std::string describe() const override { return fmt::format("sql({}: {})", conf_.path, conf_.endpoint.describe()); }
  std::vector<std::string> endpoint_keys() const override { return {conf_.endpoint.key()}; }

 private:
  DovecotSqlConf conf_;
};

class PasswdFileSource final : public UserSource {
 public:
  explicit PasswdFileSource(PasswdFileArgs args) : file_(args.path), format_(std::move(args.username_format)) {}

  SourceAnswer fetch(const std::string& user, WorkerContext&) override { return answer(file_.snapshot(), user); }
  std::optional<SourceAnswer> fetch_now(const std::string& user) override {
    std::optional<PasswdFile::Snapshot> snap = file_.snapshot_if_fresh();
    if (!snap) return std::nullopt;
    return answer(*snap, user);
  }
  std::string describe() const override { return fmt::format("passwd-file({})", file_.path()); }

 private:
  SourceAnswer answer(const PasswdFile::Snapshot& snap, const std::string& user) const {
    if (!snap.users) return SourceAnswer{LS::temp_error, {}, snap.error};
    auto key = expand_dovecot_template(format_, lmtp_vars(user));
    if (!key) return SourceAnswer{LS::temp_error, {}, describe() + ": username_format: " + key.error().message};
    auto it = snap.users->find(*key);  // case-sensitive, as Dovecot's
    if (it == snap.users->end()) return SourceAnswer{};
    const PasswdFileEntry& e = it->second;
    SourceAnswer a{LS::found, {}, {}};
    a.fields.uid = e.uid;
    a.fields.gid = e.gid;
    a.fields.home = e.home;
    for (const std::string& word : e.extra) {  // userdb_mail=..., userdb_quota_rule=...
      size_t eq = word.find('=');
      if (eq != std::string::npos && word.rfind("userdb_", 0) == 0)
        set_field(a.fields, std::string_view(word).substr(0, eq), word.substr(eq + 1));
    }
    return a;
  }

  PasswdFile file_;
  std::string format_;
};

// "static uid=vmail gid=vmail home=/var/mail/vhosts/%d/%n [allow_all_users=yes]".
Result<std::unique_ptr<UserSource>> make_static(std::string_view args, bool& allow_all_users) {
  UserdbFields f;
  for (const std::string& word : split_list(args, " \t")) {
    size_t eq = word.find('=');
    std::string name = word.substr(0, eq);
    std::string value = eq == std::string::npos ? std::string() : word.substr(eq + 1);
    if (name == "allow_all_users") {
      allow_all_users = value.empty() || iequals(value, "yes");
    } else if (!set_field(f, name, value)) {
      log_warning("userdb static: field \"{}\" is not used by lmtpd; ignored", name);
    }
  }
  for (const std::string* t : {&f.home, &f.mail})
    if (Status st = check_dovecot_template(*t); !st) return Error{"userdb static: " + st.error().message};
  // Names are resolved once, at load; the numbers are what every lookup hands out.
  if (!f.uid.empty()) {
    auto uid = resolve_uid(f.uid);
    if (!uid) return Error{"userdb static: uid=" + f.uid + ": " + uid.error().message};
    f.uid = std::to_string(*uid);
  }
  if (!f.gid.empty()) {
    auto gid = resolve_gid(f.gid);
    if (!gid) return Error{"userdb static: gid=" + f.gid + ": " + gid.error().message};
    f.gid = std::to_string(*gid);
  }
  if (f.uid == "0" || f.gid == "0") return Error{"userdb static: root (0) is not allowed as mail uid/gid"};
  return std::unique_ptr<UserSource>(std::make_unique<StaticSource>(std::move(f)));
}

}  // namespace

DovecotVars lmtp_vars(const std::string& user, const std::string& home) {
  DovecotVars v;
  v.user = user;
  v.service = "lmtp";
  v.home = home;
  return v;
}

Result<std::unique_ptr<UserSource>> make_user_source(std::string_view spec, const UserdbSettings& s, bool for_check,
                                                     bool& allow_all_users) {
  spec = trim(spec);
  size_t sp = spec.find_first_of(" \t");
  std::string_view driver = spec.substr(0, sp);
  std::string_view args = sp == std::string_view::npos ? std::string_view() : trim(spec.substr(sp));
  if (driver == "sql") {
    auto conf = load_dovecot_sql_conf(std::string(args),
                                      SqlConnectTimeouts{s.sql_connect_timeout, s.sql_read_timeout, s.sql_retry_interval});
    if (!conf) return conf.error();
    std::string_view key = for_check ? "password_query" : "user_query";
    const std::string& query = for_check ? conf->password_query : conf->user_query;
    if ((for_check ? conf->password_query_is_default : conf->user_query_is_default))
      log_warning("{}: {} not set; using Dovecot's built-in default: {}", conf->path, key, query);
    if (Status st = check_dovecot_template(query); !st)
      return Error{fmt::format("{}: {}: {}", conf->where(key), key, st.error().message)};
    return std::unique_ptr<UserSource>(std::make_unique<SqlSource>(std::move(conf).value()));
  }
  if (driver == "passwd-file") {
    auto parsed = parse_passwd_file_args(args);
    if (!parsed) return parsed.error();
    return std::unique_ptr<UserSource>(std::make_unique<PasswdFileSource>(std::move(parsed).value()));
  }
  if (driver == "static" && !for_check) return make_static(args, allow_all_users);
  if (driver == "none" && for_check && args.empty()) return std::unique_ptr<UserSource>(std::make_unique<NoneCheck>());
  return Error{fmt::format("{} \"{}\": expected {}", for_check ? "user_check" : "userdb", spec,
                           for_check ? "sql FILE, passwd-file ARGS or none" : "static ARGS, sql FILE or passwd-file ARGS")};
}

}  // namespace postern::lmtpd
