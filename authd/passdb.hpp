// passdb.hpp - where authd finds a user's stored password: SQL (dovecot-sql.conf.ext,
// read unchanged) or a Dovecot passwd-file.
//
// lookup() blocks (SQL, file I/O) and runs on a worker; implementations are thread-safe.
// A backend failure is temp_error, never not_found: authd must not call a right
// password wrong because the database is down.
#pragma once

#include "common/dovecot_template.hpp"
#include "common/result.hpp"
#include "common/sql.hpp"
#include "common/worker_pool.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace postern::authd {

struct PassdbRequest {
  std::string user;  // after auth_username_format
  std::string service = "smtp";
  std::string rip;
  std::string lip;
};

// The request's Dovecot variables (%u %s %r %l and their derivatives).
inline DovecotVars passdb_vars(const PassdbRequest& request) {
  DovecotVars vars;
  vars.user = request.user;
  vars.service = request.service;
  vars.rip = request.rip;
  vars.lip = request.lip;
  return vars;
}

struct PassdbLookup {
  enum class Status { found, not_found, temp_error };
  Status status = Status::not_found;
  std::string user;                     // canonical name for OK user=: the `user` column,
                                        // or `username`@`domain`, else the requested name
  std::optional<std::string> password;  // the stored value as found (trailing spaces trimmed)
  bool nopassword = false;              // `nopassword` column/field set: any password is accepted
  std::string default_scheme;           // default_pass_scheme / scheme= arg
  std::string error;                    // temp_error: why (for the log; no secrets)
};

class Passdb {
 public:
  virtual ~Passdb() = default;
  virtual PassdbLookup lookup(const PassdbRequest& request, WorkerContext& worker) = 0;
  // The auth cache key: equal for two requests exactly when every variable the lookup
  // uses is equal (Dovecot's rule); empty = do not cache. Cheap; any thread.
  virtual std::string cache_key(const PassdbRequest& request) const = 0;
  // "sql(/etc/dovecot/dovecot-sql.conf.ext: mysql(127.0.0.1/mailserver))", no secrets.
  virtual std::string describe() const = 0;
  // SQL endpoints this passdb uses (so workers can drop others after a reload).
  virtual std::vector<std::string> endpoint_keys() const { return {}; }
};

struct SqlTimeouts {
  std::chrono::milliseconds connect{2000};
  std::chrono::milliseconds read{3000};
  std::chrono::milliseconds retry{1000};
};

// dovecot-sql.conf.ext: driver (mysql|sqlite), connect, default_pass_scheme (default
// "MD5" = MD5-CRYPT, as in Dovecot 2.3), password_query (Dovecot variables, all escaped; a
// trailing ';' tolerated). Other keys (user_query, iterate_query) are accepted and ignored.
Result<std::unique_ptr<Passdb>> make_sql_passdb(const std::string& conf_path, const SqlTimeouts& timeouts);

// Dovecot's passdb args string, e.g. "scheme=SHA512-CRYPT username_format=%u /etc/dovecot/users".
// Lines: user:password[:uid:gid:gecos:home:shell:extra]; `#` comments. The file is re-read
// when it changes (mtime/size/inode), checked at most once a second.
Result<std::unique_ptr<Passdb>> make_passwd_file_passdb(const std::string& args);

}  // namespace postern::authd
