// userdb.hpp - who a recipient is and where their mail goes (Dovecot's userdb, read unchanged).
//
// lookup() is given the address with the detail removed and lower-cased
// ("alice@example.com"). It answers whether the user exists, then their uid/gid, home
// and maildir (mail_location with %u %n %d %h and ~ expanded), and their quota.
// Blocks (SQL, files): runs on a worker; implementations are thread-safe. A backend
// failure is temp_error (451 4.3.0 at RCPT), never not_found.
#pragma once

#include "common/result.hpp"
#include "common/worker_pool.hpp"

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace postern::lmtpd {

struct MailUser {
  std::string user;     // canonical name (%u)
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;     // may be empty
  std::string maildir;  // absolute maildir root, from mail_location
  std::optional<uint64_t> quota_bytes;
};

struct UserLookup {
  enum class Status { found, not_found, temp_error };
  Status status = Status::not_found;
  MailUser user;
  std::string error;  // temp_error: why (no secrets)
};

class Userdb {
 public:
  virtual ~Userdb() = default;
  virtual UserLookup lookup(const std::string& user, WorkerContext& worker) = 0;
  // lookup()'s answer given at once, on the event loop, when the userdb needs no I/O for
  // it (static, a passwd-file checked within the last second, numeric ids); nullopt when
  // only lookup() on a worker can answer (SQL, a passwd-file re-check due, ids by name).
  virtual std::optional<UserLookup> lookup_now(const std::string&) { return std::nullopt; }
  virtual std::string describe() const = 0;
  virtual std::vector<std::string> endpoint_keys() const { return {}; }
};

struct UserdbSettings {
  // Dovecot's userdb: "static uid=vmail gid=vmail home=/var/mail/vhosts/%d/%n" or
  // "sql /etc/dovecot/dovecot-sql.conf.ext" (user_query: uid, gid, home, mail, quota_rule columns).
  std::string userdb;
  // How existence is checked: "sql FILE" (its password_query finds the user),
  // "passwd-file ARGS" (the user has a line), or "none" (every address exists; the
  // default with an sql userdb, whose user_query already answers it).
  std::string user_check;
  std::string mail_location = "maildir:~/Maildir";  // Dovecot's mail_location
  std::string mail_home;                              // Dovecot's mail_home (templates), optional
  std::string mail_uid;                               // defaults when the userdb gives none
  std::string mail_gid;
  std::string quota_rule;                             // default, e.g. "*:storage=1G"; empty = none
  std::chrono::milliseconds sql_connect_timeout{2000};
  std::chrono::milliseconds sql_read_timeout{3000};
  std::chrono::milliseconds sql_retry_interval{1000};
};

Result<std::unique_ptr<Userdb>> make_userdb(const UserdbSettings& settings);

// "*:storage=1G" / "*:storage=512M" / "*:storage=100000" (kilobytes, as Dovecot) -> bytes.
Result<std::optional<uint64_t>> parse_quota_rule(std::string_view rule);

}  // namespace postern::lmtpd
