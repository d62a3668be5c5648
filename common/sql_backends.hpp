// sql_backends.hpp - private to common/sql_*.cpp (and their tests): the per-driver
// constructors behind sql::make_connection(), the host labels shared by describe() and
// the MariaDB logs, the MariaDB host order, and what the loop's non-blocking MariaDB
// connection (sql_async.hpp) shares with the blocking one.
#pragma once

#include "common/sql.hpp"

#include <memory>
#include <random>
#include <string>
#include <vector>

struct st_mysql;      // MYSQL
struct st_mysql_res;  // MYSQL_RES

namespace postern::sql {

std::unique_ptr<Connection> make_mariadb_connection(const Endpoint& endpoint);
std::unique_ptr<Connection> make_sqlite_connection(const Endpoint& endpoint);

// "127.0.0.1:3306", "[::1]:3307", "unix:/run/mysqld/mysqld.sock".
std::string host_label(const HostSpec& host);

// The hosts an endpoint names; an empty list means the connector's "localhost".
std::vector<std::string> effective_hosts(const Endpoint& endpoint);

// Whether the connector reaches host over a unix-domain socket: a socket path, or
// "localhost" (any port), for which it uses its default socket; Postfix counts it so too.
bool is_unix_socket_host(const HostSpec& host);

// The order a MariaDB Connection tries hosts in, as mysql_table(5): unix-domain sockets
// before TCP, shuffled with rng within each group. Returns positions in hosts.
std::vector<size_t> connect_order(const std::vector<HostSpec>& hosts, std::mt19937& rng);

// A MariaDB handle connected the way a Connection connects (host order, failover, the
// process-wide host health record, the same options and log lines), with the
// non-blocking API enabled. Blocking: call it on a worker. The caller owns mysql and
// closes it with mysql_close(); where is "mysql(host/dbname)" for messages.
struct MariaDbHandle {
  st_mysql* mysql = nullptr;
  std::string where;
};
Result<MariaDbHandle> connect_mariadb_nonblocking(const Endpoint& endpoint);

// Per-thread connector setup; every thread calls it before it touches a handle.
void mariadb_prepare_thread();
// Whether a connector error code means the connection itself is unusable.
bool mariadb_connection_broken(unsigned code);
// Appends res's column names and rows to rows (NULL as nullopt).
void mariadb_read_rows(st_mysql_res* res, Rows& rows);

}  // namespace postern::sql
