// userdb_source.hpp - where a userdb's fields come from: Dovecot's static, sql and
// passwd-file drivers, and "none" for the RCPT-time existence check (user_check).
// Each gives the fields raw (ids as given, mail= unexpanded); userdb.cpp turns them
// into a MailUser. fetch()/exists() may block and run on a worker; the _now forms
// answer without I/O or give nullopt (see Userdb::lookup_now).
#pragma once

#include "common/dovecot_template.hpp"
#include "common/result.hpp"
#include "common/worker_pool.hpp"
#include "lmtpd/userdb.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::lmtpd {

// What a userdb says about one user; empty strings are fields it did not give.
struct UserdbFields {
  std::string uid, gid, home, mail, quota_rule;
};

struct SourceAnswer {
  UserLookup::Status status = UserLookup::Status::not_found;
  UserdbFields fields;
  std::string error;
};

class UserSource {
 public:
  virtual ~UserSource() = default;
  virtual SourceAnswer fetch(const std::string& user, WorkerContext& worker) = 0;
  virtual SourceAnswer exists(const std::string& user, WorkerContext& worker) { return fetch(user, worker); }
  virtual std::optional<SourceAnswer> fetch_now(const std::string&) { return std::nullopt; }
  virtual std::optional<SourceAnswer> exists_now(const std::string& user) { return fetch_now(user); }
  virtual std::string describe() const = 0;
  virtual std::vector<std::string> endpoint_keys() const { return {}; }
};

// "sql FILE" / "passwd-file ARGS" / "none" (for_check only) / "static ARGS" (userdb only).
// A static userdb's allow_all_users=yes sets allow_all_users.
Result<std::unique_ptr<UserSource>> make_user_source(std::string_view spec, const UserdbSettings& settings,
                                                     bool for_check, bool& allow_all_users);

// The template variables of a user in the lmtp service.
DovecotVars lmtp_vars(const std::string& user, const std::string& home = {});

}  // namespace postern::lmtpd
