// sql_backends.hpp - private to common/sql_*.cpp (and their tests): the per-driver
// constructors behind sql::make_connection(), the host labels shared by describe() and
// the MariaDB logs, and the MariaDB host order.
#pragma once

#include "common/sql.hpp"

#include <memory>
#include <random>
#include <string>
#include <vector>

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

}  // namespace postern::sql
