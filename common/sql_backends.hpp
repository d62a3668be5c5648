// sql_backends.hpp - private to common/sql_*.cpp: the per-driver constructors behind
// sql::make_connection() and the host labels shared by describe() and the MariaDB logs.
#pragma once

#include "common/sql.hpp"

#include <memory>
#include <string>

namespace postern::sql {

std::unique_ptr<Connection> make_mariadb_connection(const Endpoint& endpoint);
std::unique_ptr<Connection> make_sqlite_connection(const Endpoint& endpoint);

// "127.0.0.1:3306", "[::1]:3307", "unix:/run/mysqld/mysqld.sock".
std::string host_label(const HostSpec& host);

// The hosts an endpoint names; an empty list means the connector's "localhost".
std::vector<std::string> effective_hosts(const Endpoint& endpoint);

}  // namespace postern::sql
