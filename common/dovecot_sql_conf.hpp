// dovecot_sql_conf.hpp - Dovecot's dovecot-sql.conf.ext, read unchanged, turned into what
// the SQL code needs: an sql::Endpoint and the queries. Shared by authd (passdb) and
// lmtpd (userdb, user check); neither daemon includes the other's headers.
//
// Keys (Dovecot 2.3 db-sql.c): driver (mysql | sqlite; pgsql is refused), connect,
// default_pass_scheme, password_query, user_query, iterate_query; update_query and
// userdb_warning_disable are accepted and unused; any other key logs a warning.
// mysql connect: space-separated name=value words: host= (repeatable: failover list; a
// leading '/' is a unix socket), port= (every TCP host), dbname=, user=, password=,
// connect_timeout=, read_timeout= (seconds). ssl_*, option_file and option_group are
// refused (silently dropping TLS or credentials would be worse); write_timeout,
// client_flags and maxconns are ignored with a warning. sqlite connect: the database path.
// Errors and log lines never contain the password.
#pragma once

#include "common/result.hpp"
#include "common/sql.hpp"

#include <chrono>
#include <map>
#include <string>
#include <string_view>

namespace postern {

struct DovecotSqlConf {
  std::string path;
  sql::Endpoint endpoint;
  std::string default_pass_scheme;  // Dovecot's default "MD5" (= MD5-CRYPT) when unset
  // Trimmed, one trailing ';' removed (the seeds end queries with it). When a key is not
  // set the query holds Dovecot's built-in default and *_is_default is true, so callers
  // can warn. Templates are not checked here: each caller checks the query it runs.
  std::string password_query;
  bool password_query_is_default = false;
  std::string user_query;
  bool user_query_is_default = false;
  std::string iterate_query;
  std::map<std::string, int, std::less<>> lines;  // key -> line number, for error messages

  // "PATH line N" for key (just PATH when the key is not in the file).
  std::string where(std::string_view key) const;
};

struct SqlConnectTimeouts {
  std::chrono::milliseconds connect{2000};
  std::chrono::milliseconds read{3000};
  std::chrono::milliseconds retry{1000};
};

// Reads and checks path. connect_timeout=/read_timeout= in the connect string override
// the given timeouts.
Result<DovecotSqlConf> load_dovecot_sql_conf(const std::string& path, const SqlConnectTimeouts& timeouts);

// The connect value alone, for a driver name as in the file ("mysql", "sqlite"). base
// supplies the timeouts.
Result<sql::Endpoint> parse_dovecot_connect(std::string_view driver, std::string_view connect, sql::Endpoint base);

// Replaces every occurrence of secret in text by "<password>" (no-op for an empty secret).
// For connector messages, which should never carry it but must not be trusted not to.
std::string scrub_secret(std::string text, const std::string& secret);

}  // namespace postern
