// sql.hpp - one interface over the SQL backends (MariaDB Connector/C, SQLite).
//
// A Connection belongs to one thread (a worker); it is not thread-safe. It connects
// lazily on first use and reconnects after failures by itself (failover). A MariaDB
// Connection tries its hosts as mysql_table(5) does: unix-domain sockets before TCP, in
// random order within each group, drawn afresh per Connection so that workers spread
// over the hosts. A host that failed is skipped by every Connection in the process
// (same host, user, database and password) until its retry interval has passed, so only
// one worker pays the connect timeout. Every failure comes back as an Error, which
// callers treat as temporary. User input reaches SQL only through escape().
#pragma once

#include "common/result.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::sql {

enum class Driver { mysql, sqlite };

// Where and how to connect. Built from a Postfix mysql_table(5)/sqlite_table(5) .cf file
// or from Dovecot's `connect =` string by the caller.
struct Endpoint {
  Driver driver = Driver::mysql;
  // MariaDB: in the forms mysql_table(5) accepts (tried in the order described above):
  //   "unix:/path/mysqld.sock", "/path/mysqld.sock", "inet:host:port", "inet:host",
  //   "host:port", "host". Default port 3306. Empty means "localhost".
  std::vector<std::string> hosts;
  std::string user;
  std::string password;  // never logged
  std::string dbname;    // MariaDB database; for SQLite the database file path
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds retry_interval{1000};

  // Identity for connection pooling: equal keys may share a connection. Includes a
  // digest of the password, not the password.
  std::string key() const;
  // For log lines: driver, hosts, user, dbname. Never the password.
  std::string describe() const;
};

struct Rows {
  std::vector<std::string> columns;
  // NULL is std::nullopt.
  std::vector<std::vector<std::optional<std::string>>> rows;
  // False when the statement produced no result set at all (an UPDATE, a PRAGMA that
  // sets something, a CALL whose procedure selects nothing), as opposed to a result set
  // with no rows. Postfix's require_result_set tells the two apart.
  bool has_result_set = true;
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Escapes s for the inside of a single-quoted SQL string literal, through the
  // connector (mysql_real_escape_string: connects first if needed; SQLite doubles ').
  // Fails on a NUL byte or when no connection can be made.
  virtual Result<std::string> escape(std::string_view s) = 0;
  // Runs one statement and returns all rows. On a lost connection the statement is
  // retried once on the next live host.
  virtual Result<Rows> query(const std::string& statement) = 0;
  // Runs several ';'-separated statements that return no rows (schema setup in tests
  // and in the quickstart).
  virtual Status execute_script(const std::string& script) = 0;
};

std::unique_ptr<Connection> make_connection(const Endpoint& endpoint);

// One parsed MariaDB host entry.
struct HostSpec {
  bool unix_socket = false;
  std::string host;  // host name/address, or the socket path
  unsigned port = 3306;
};
Result<HostSpec> parse_mysql_host(std::string_view text);

}  // namespace postern::sql
