// userdb.cpp - make_userdb (contract: lmtpd/userdb.hpp): Dovecot's static, sql and
// passwd-file userdbs, the RCPT-time user check and mail_location/mail_home expansion,
// with Dovecot 2.3's field names and defaults. quota_rule parsing is in quota_rule.cpp.
#include "lmtpd/userdb.hpp"

#include "common/daemon.hpp"
#include "common/dovecot_sql_conf.hpp"
#include "common/dovecot_template.hpp"
#include "common/log.hpp"
#include "common/passwd_file.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <limits>

namespace postern::lmtpd {
namespace {

using LS = UserLookup::Status;

// What a userdb says about one user; empty strings are fields it did not give.
struct Fields {
  std::string uid, gid, home, mail, quota_rule;
};
struct Answer {
  LS status = LS::not_found;
  Fields fields;
  std::string error;
};

// Stores a userdb field under its Dovecot name; prefetch-style "userdb_" prefixes are
// accepted everywhere. False for a field postern does not use.
bool set_field(Fields& f, std::string_view name, std::string value) {
  if (name.rfind("userdb_", 0) == 0) name.remove_prefix(7);
  std::string* slot = name == "uid" ? &f.uid : name == "gid" ? &f.gid : name == "home" ? &f.home
                    : name == "mail" ? &f.mail : name == "quota_rule" ? &f.quota_rule : nullptr;
  if (slot) *slot = std::move(value);
  return slot != nullptr;
}

DovecotVars vars_for(const std::string& user, const std::string& home = {}) {
  DovecotVars v;
  v.user = user;
  v.service = "lmtp";
  v.home = home;
  return v;
}

// "maildir:PATH[:options]" -> PATH. Options (INDEX=, LAYOUT=...) only matter to readers.
Result<std::string> maildir_path(std::string_view location) {
  size_t colon = location.find(':');
  std::string_view format = location.substr(0, colon);
  if (colon == std::string_view::npos || format != "maildir")
    return Error{fmt::format("mail location \"{}\": only maildir:PATH is supported", location)};
  std::string_view path = location.substr(colon + 1);
  path = path.substr(0, path.find(':'));
  if (path.empty()) return Error{fmt::format("mail location \"{}\": empty path", location)};
  return std::string(path);
}

// Absolute, with no ".." component: an expanded %n or a userdb value must not lead out
// of the mail tree.
bool safe_path(std::string_view p) {
  if (p.empty() || p.front() != '/') return false;
  for (const std::string& part : split_list(p, "/"))
    if (part == "..") return false;
  return true;
}

bool is_number(const std::string& id) {  // empty: no field, the default applies
  return id.find_first_not_of("0123456789") == std::string::npos;
}

std::string rtrim_spaces(std::string s) {  // CHAR columns come back padded
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// One query with the user's variables, every value escaped by the connector.
Result<sql::Rows> run_query(const sql::Endpoint& ep, const std::string& tmpl, const std::string& user,
                            WorkerContext& worker) {
  sql::Connection& conn = worker.connection(ep);
  auto query = expand_dovecot_template(tmpl, vars_for(user), [&conn](std::string_view s) { return conn.escape(s); });
  if (!query) return Error{scrub_secret(query.error().message, ep.password)};
  if (log_enabled(LogLevel::debug)) log_debug("userdb query: {}", *query);
  auto rows = conn.query(*query);
  if (!rows) return Error{scrub_secret(rows.error().message, ep.password)};
  return rows;
}

// A source of users: the userdb proper, or the existence check (user_check).
class Source {
 public:
  virtual ~Source() = default;
  virtual Answer fetch(const std::string& user, WorkerContext& worker) = 0;
  virtual Answer exists(const std::string& user, WorkerContext& worker) { return fetch(user, worker); }
  // fetch() and exists() without I/O, or nullopt (see Userdb::lookup_now).
  virtual std::optional<Answer> fetch_now(const std::string&) { return std::nullopt; }
  virtual std::optional<Answer> exists_now(const std::string& user) { return fetch_now(user); }
  virtual std::string describe() const = 0;
  virtual std::vector<std::string> endpoint_keys() const { return {}; }
};

class StaticSource final : public Source {
 public:
  explicit StaticSource(Fields fields) : fields_(std::move(fields)) {}
  Answer fetch(const std::string& user, WorkerContext&) override { return answer(user); }
  std::optional<Answer> fetch_now(const std::string& user) override { return answer(user); }
  std::string describe() const override { return "static"; }

 private:
  Answer answer(const std::string& user) const {
    Answer a{LS::found, fields_, {}};
    if (!a.fields.home.empty()) {  // home= is a template (%d/%n); mail= is expanded later
      auto home = expand_dovecot_template(fields_.home, vars_for(user));
      if (!home) return Answer{LS::temp_error, {}, "home: " + home.error().message};
      a.fields.home = *home;
    }
    return a;
  }
  Fields fields_;
};

class NoneCheck final : public Source {
 public:
  Answer fetch(const std::string&, WorkerContext&) override { return Answer{LS::found, {}, {}}; }
  std::optional<Answer> fetch_now(const std::string&) override { return Answer{LS::found, {}, {}}; }
  std::string describe() const override { return "none"; }
};

class SqlSource final : public Source {
 public:
  explicit SqlSource(DovecotSqlConf conf) : conf_(std::move(conf)) {}

  Answer fetch(const std::string& user, WorkerContext& worker) override {
    auto rows = run_query(conf_.endpoint, conf_.user_query, user, worker);
    if (!rows) return Answer{LS::temp_error, {}, describe() + ": user_query failed: " + rows.error().message};
    if (rows->rows.empty()) return Answer{};
    if (rows->rows.size() > 1) log_warning("{}: user_query returned {} rows for {}; using the first",
                                           describe(), rows->rows.size(), user);
    Answer a{LS::found, {}, {}};
    const auto& row = rows->rows.front();
    for (size_t i = 0; i < rows->columns.size() && i < row.size(); ++i)
      if (row[i]) set_field(a.fields, to_lower_ascii(rows->columns[i]), rtrim_spaces(*row[i]));
    return a;
  }

  // The seeds' virtual_users check: any row from password_query means the user exists.
  Answer exists(const std::string& user, WorkerContext& worker) override {
    auto rows = run_query(conf_.endpoint, conf_.password_query, user, worker);
    if (!rows) return Answer{LS::temp_error, {}, describe() + ": password_query failed: " + rows.error().message};
    return Answer{rows->rows.empty() ? LS::not_found : LS::found, {}, {}};
  }

  std::string describe() const override { return fmt::format("sql({}: {})", conf_.path, conf_.endpoint.describe()); }
  std::vector<std::string> endpoint_keys() const override { return {conf_.endpoint.key()}; }

 private:
  DovecotSqlConf conf_;
};

class PasswdFileSource final : public Source {
 public:
  explicit PasswdFileSource(PasswdFileArgs args) : file_(args.path), format_(std::move(args.username_format)) {}

  Answer fetch(const std::string& user, WorkerContext&) override { return answer(file_.snapshot(), user); }
  std::optional<Answer> fetch_now(const std::string& user) override {
    std::optional<PasswdFile::Snapshot> snap = file_.snapshot_if_fresh();
    if (!snap) return std::nullopt;
    return answer(*snap, user);
  }
  std::string describe() const override { return fmt::format("passwd-file({})", file_.path()); }

 private:
  Answer answer(const PasswdFile::Snapshot& snap, const std::string& user) const {
    if (!snap.users) return Answer{LS::temp_error, {}, snap.error};
    auto key = expand_dovecot_template(format_, vars_for(user));
    if (!key) return Answer{LS::temp_error, {}, describe() + ": username_format: " + key.error().message};
    auto it = snap.users->find(*key);  // case-sensitive, as Dovecot's
    if (it == snap.users->end()) return Answer{};
    const PasswdFileEntry& e = it->second;
    Answer a{LS::found, {}, {}};
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
Result<std::unique_ptr<Source>> make_static(std::string_view args, bool& allow_all_users) {
  Fields f;
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
  return std::unique_ptr<Source>(std::make_unique<StaticSource>(std::move(f)));
}

// "sql FILE" / "passwd-file ARGS" / "none" (user_check only) / "static ARGS" (userdb only).
Result<std::unique_ptr<Source>> make_source(std::string_view spec, const UserdbSettings& s, bool for_check,
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
    return std::unique_ptr<Source>(std::make_unique<SqlSource>(std::move(conf).value()));
  }
  if (driver == "passwd-file") {
    auto parsed = parse_passwd_file_args(args);
    if (!parsed) return parsed.error();
    return std::unique_ptr<Source>(std::make_unique<PasswdFileSource>(std::move(parsed).value()));
  }
  if (driver == "static" && !for_check) return make_static(args, allow_all_users);
  if (driver == "none" && for_check && args.empty()) return std::unique_ptr<Source>(std::make_unique<NoneCheck>());
  return Error{fmt::format("{} \"{}\": expected {}", for_check ? "user_check" : "userdb", spec,
                           for_check ? "sql FILE, passwd-file ARGS or none" : "static ARGS, sql FILE or passwd-file ARGS")};
}

Result<std::optional<unsigned>> default_id(const std::string& name, bool group) {
  if (name.empty()) return std::optional<unsigned>();
  auto id = group ? resolve_gid(name) : resolve_uid(name);
  if (!id) return Error{fmt::format("{}: {}", group ? "mail_gid" : "mail_uid", id.error().message)};
  return std::optional<unsigned>(*id);
}

class DovecotUserdb final : public Userdb {
 public:
  DovecotUserdb(std::unique_ptr<Source> userdb, std::unique_ptr<Source> check, const UserdbSettings& s,
                std::string location, std::optional<unsigned> uid, std::optional<unsigned> gid,
                std::optional<uint64_t> quota)
      : userdb_(std::move(userdb)), check_(std::move(check)), mail_home_(s.mail_home), location_(std::move(location)),
        uid_(uid), gid_(gid), quota_(quota) {}

  UserLookup lookup(const std::string& user, WorkerContext& worker) override {
    if (check_) {
      Answer c = check_->exists(user, worker);
      if (c.status != LS::found) return fail(user, c.status, std::move(c.error));
    }
    Answer a = userdb_->fetch(user, worker);
    if (a.status != LS::found) return fail(user, a.status, std::move(a.error));
    return finish(user, a.fields);
  }

  std::optional<UserLookup> lookup_now(const std::string& user) override {
    if (check_) {
      std::optional<Answer> c = check_->exists_now(user);
      if (!c) return std::nullopt;
      if (c->status != LS::found) return fail(user, c->status, std::move(c->error));
    }
    std::optional<Answer> a = userdb_->fetch_now(user);
    if (!a) return std::nullopt;
    if (a->status != LS::found) return fail(user, a->status, std::move(a->error));
    // A uid or gid by name goes through NSS, which may block (LDAP, NIS).
    if (!is_number(a->fields.uid) || !is_number(a->fields.gid)) return std::nullopt;
    return finish(user, a->fields);
  }

  std::string describe() const override {
    return "userdb " + userdb_->describe() + (check_ ? ", user_check " + check_->describe() : "");
  }
  std::vector<std::string> endpoint_keys() const override {
    std::vector<std::string> keys = userdb_->endpoint_keys();
    if (check_)
      for (std::string& k : check_->endpoint_keys()) keys.push_back(std::move(k));
    return keys;
  }

 private:
  UserLookup fail(const std::string& user, LS status, std::string why) const {
    UserLookup out;
    out.status = status;
    out.user.user = user;
    out.error = std::move(why);
    if (status == LS::temp_error) log_error("userdb lookup of {}: {}", user, out.error);
    return out;
  }

  // Turns the userdb's fields into a MailUser: ids, home, maildir, quota.
  UserLookup finish(const std::string& user, const Fields& f) const {
    UserLookup out;
    out.status = LS::found;
    MailUser& mu = out.user;
    mu.user = user;
    auto id = [](const std::string& given, std::optional<unsigned> fallback, bool group) -> Result<unsigned> {
      if (given.empty()) {
        if (!fallback) return Error{group ? "user is missing GID (see mail_gid)" : "user is missing UID (see mail_uid)"};
        return *fallback;
      }
      auto r = group ? resolve_gid(given) : resolve_uid(given);
      if (r && *r == 0) return Error{group ? "gid 0 is not allowed for mail" : "uid 0 is not allowed for mail"};
      return r;
    };
    auto uid = id(f.uid, uid_, false);
    if (!uid) return fail(user, LS::temp_error, uid.error().message);
    auto gid = id(f.gid, gid_, true);
    if (!gid) return fail(user, LS::temp_error, gid.error().message);
    mu.uid = static_cast<uid_t>(*uid);
    mu.gid = static_cast<gid_t>(*gid);

    mu.home = f.home;
    if (mu.home.empty() && !mail_home_.empty()) {
      auto home = expand_dovecot_template(mail_home_, vars_for(user));
      if (!home) return fail(user, LS::temp_error, "mail_home: " + home.error().message);
      mu.home = *home;
    }
    if (!mu.home.empty() && !safe_path(mu.home))
      return fail(user, LS::temp_error, fmt::format("unsafe home \"{}\"", mu.home));

    std::string tmpl = location_;
    if (!f.mail.empty()) {
      auto path = maildir_path(f.mail);
      if (!path) return fail(user, LS::temp_error, "userdb mail field: " + path.error().message);
      tmpl = *path;
    }
    bool uses_home = tmpl.front() == '~' || tmpl.find("%h") != std::string::npos ||
                     tmpl.find("%{home}") != std::string::npos;
    if (uses_home && mu.home.empty())
      return fail(user, LS::temp_error, "mail location uses the home directory, but the user has none (see mail_home)");
    auto expanded = expand_dovecot_template(tmpl, vars_for(user, mu.home));
    if (!expanded) return fail(user, LS::temp_error, "mail location: " + expanded.error().message);
    mu.maildir = tmpl.front() == '~' ? mu.home + expanded->substr(1) : *expanded;
    if (!safe_path(mu.maildir)) return fail(user, LS::temp_error, fmt::format("unsafe mail location \"{}\"", mu.maildir));

    mu.quota_bytes = quota_;
    if (!f.quota_rule.empty()) {
      auto q = parse_quota_rule(f.quota_rule);
      if (q) mu.quota_bytes = *q;
      else log_warning("userdb: quota_rule of {}: {}; using the default", user, q.error().message);
    }
    return out;
  }

  std::unique_ptr<Source> userdb_;
  std::unique_ptr<Source> check_;  // null: the userdb alone answers existence
  std::string mail_home_;
  std::string location_;  // the path part of mail_location, a template
  std::optional<unsigned> uid_, gid_;
  std::optional<uint64_t> quota_;
};

}  // namespace

Result<std::unique_ptr<Userdb>> make_userdb(const UserdbSettings& s) {
  auto location = maildir_path(trim(s.mail_location));
  if (!location) return Error{"mail_location: " + location.error().message};
  if (Status st = check_dovecot_template(*location); !st) return Error{"mail_location: " + st.error().message};
  if (Status st = check_dovecot_template(s.mail_home); !st) return Error{"mail_home: " + st.error().message};
  auto uid = default_id(s.mail_uid, false);
  if (!uid) return uid.error();
  auto gid = default_id(s.mail_gid, true);
  if (!gid) return gid.error();
  if ((*uid && **uid == 0) || (*gid && **gid == 0)) return Error{"mail_uid/mail_gid: root (0) is not allowed"};
  auto quota = parse_quota_rule(s.quota_rule);
  if (!quota) return Error{"quota_rule: " + quota.error().message};

  bool allow_all_users = false;
  if (trim(s.userdb).empty()) return Error{"userdb not set (e.g. \"static uid=vmail gid=vmail home=/var/mail/vhosts/%d/%n\")"};
  auto userdb = make_source(s.userdb, s, false, allow_all_users);
  if (!userdb) return userdb.error();
  bool is_static = (*userdb)->describe() == "static";
  std::unique_ptr<Source> check;
  std::string_view check_spec = trim(s.user_check);
  if (!check_spec.empty() && check_spec != "none") {
    auto made = make_source(check_spec, s, true, allow_all_users);
    if (!made) return made.error();
    check = std::move(made).value();
  } else if (check_spec.empty() && is_static && !allow_all_users) {
    log_warning("userdb static without user_check: every address is accepted at RCPT, unknown users included "
                "(set user_check = sql FILE or passwd-file ARGS, or allow_all_users=yes to silence this)");
  }
  return std::unique_ptr<Userdb>(std::make_unique<DovecotUserdb>(std::move(userdb).value(), std::move(check), s,
                                                                 std::move(location).value(), *uid, *gid, *quota));
}

}  // namespace postern::lmtpd
