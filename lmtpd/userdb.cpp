// userdb.cpp - make_userdb (contract: lmtpd/userdb.hpp): a userdb source plus the
// RCPT-time user check, and the Dovecot 2.3 defaults that turn their fields into a
// MailUser (mail_uid/mail_gid, mail_home, mail_location, quota_rule). The sources are in
// userdb_source.cpp, quota_rule parsing in quota_rule.cpp.
#include "lmtpd/userdb.hpp"

#include "common/daemon.hpp"
#include "common/dovecot_template.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "lmtpd/userdb_source.hpp"

#include <fmt/format.h>

namespace postern::lmtpd {
namespace {

using LS = UserLookup::Status;

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

Result<std::optional<unsigned>> default_id(const std::string& name, bool group) {
  if (name.empty()) return std::optional<unsigned>();
  auto id = group ? resolve_gid(name) : resolve_uid(name);
  if (!id) return Error{fmt::format("{}: {}", group ? "mail_gid" : "mail_uid", id.error().message)};
  return std::optional<unsigned>(*id);
}

class DovecotUserdb final : public Userdb {
 public:
  DovecotUserdb(std::unique_ptr<UserSource> userdb, std::unique_ptr<UserSource> check, const UserdbSettings& s,
                std::string location, std::optional<unsigned> uid, std::optional<unsigned> gid,
                std::optional<uint64_t> quota)
      : userdb_(std::move(userdb)), check_(std::move(check)), mail_home_(s.mail_home), location_(std::move(location)),
        uid_(uid), gid_(gid), quota_(quota) {}

  UserLookup lookup(const std::string& user, WorkerContext& worker) override {
    if (check_) {
      SourceAnswer c = check_->exists(user, worker);
      if (c.status != LS::found) return fail(user, c.status, std::move(c.error));
    }
    SourceAnswer a = userdb_->fetch(user, worker);
    if (a.status != LS::found) return fail(user, a.status, std::move(a.error));
    return finish(user, a.fields);
  }

  std::optional<UserLookup> lookup_now(const std::string& user) override {
    if (check_) {
      std::optional<SourceAnswer> c = check_->exists_now(user);
      if (!c) return std::nullopt;
      if (c->status != LS::found) return fail(user, c->status, std::move(c->error));
    }
    std::optional<SourceAnswer> a = userdb_->fetch_now(user);
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
  UserLookup finish(const std::string& user, const UserdbFields& f) const {
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
      auto home = expand_dovecot_template(mail_home_, lmtp_vars(user));
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
    auto expanded = expand_dovecot_template(tmpl, lmtp_vars(user, mu.home));
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

  std::unique_ptr<UserSource> userdb_;
  std::unique_ptr<UserSource> check_;  // null: the userdb alone answers existence
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
  auto userdb = make_user_source(s.userdb, s, false, allow_all_users);
  if (!userdb) return userdb.error();
  bool is_static = (*userdb)->describe() == "static";
  std::unique_ptr<UserSource> check;
  std::string_view check_spec = trim(s.user_check);
  if (!check_spec.empty() && check_spec != "none") {
    auto made = make_user_source(check_spec, s, true, allow_all_users);
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
