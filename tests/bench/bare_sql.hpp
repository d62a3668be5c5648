// bare_sql.hpp - the SQL side of the benches' bare servers (bench_auth_bare_server,
// bench_lookup_bare_server): one blocking MariaDB connection per thread, queried the way
// Dovecot's and Postfix's mysql clients do (text protocol, the key escaped into the query).
// Benchmark code, not part of postern.
#pragma once

#include <mysql.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

// Where a bare server's queries go, from its command line: HOST PORT DBNAME USER PASSWORD.
struct SqlTarget {
  std::string host, dbname, user, password;
  unsigned port = 0;
};

// One blocking MariaDB connection (text protocol, as Dovecot's and Postfix's mysql clients
// use), opened on first use and opened afresh after an error. One per thread, made on that
// thread. REQUIRES: mysql_library_init() was called.
class SqlSession {
 public:
  using Row = std::vector<std::pair<std::string, std::string>>;  // column name, value ("" for NULL)

  explicit SqlSession(const SqlTarget& target) : target_(target) { mysql_thread_init(); }
  ~SqlSession() {
    if (mysql_ != nullptr) mysql_close(mysql_);
    mysql_thread_end();
  }
  SqlSession(const SqlSession&) = delete;
  SqlSession& operator=(const SqlSession&) = delete;

  // The first row of query with every `placeholder` replaced by key, escaped as the
  // mysql clients do: an empty Row if there is none, nullopt if the database did not answer.
  std::optional<Row> first_row(std::string query, std::string_view placeholder, std::string_view key) {
    if (mysql_ == nullptr && !connect()) return std::nullopt;
    std::string escaped(key.size() * 2 + 1, '\0');
    escaped.resize(mysql_real_escape_string(mysql_, escaped.data(), key.data(), key.size()));
    for (size_t at = query.find(placeholder); at != std::string::npos;
         at = query.find(placeholder, at + escaped.size()))
      query.replace(at, placeholder.size(), escaped);
    MYSQL_RES* result = nullptr;
    if (mysql_real_query(mysql_, query.data(), query.size()) != 0 || (result = mysql_store_result(mysql_)) == nullptr) {
      drop();  // the next query connects afresh
      return std::nullopt;
    }
    Row row;
    if (MYSQL_ROW values = mysql_fetch_row(result); values != nullptr) {
      for (unsigned i = 0; i < mysql_num_fields(result); ++i)
        row.emplace_back(mysql_fetch_field_direct(result, i)->name, values[i] ? values[i] : "");
    }
    mysql_free_result(result);
    return row;
  }

 private:
  bool connect() {
    mysql_ = mysql_init(nullptr);
    if (mysql_ != nullptr && mysql_real_connect(mysql_, target_.host.c_str(), target_.user.c_str(),
                                                target_.password.c_str(), target_.dbname.c_str(), target_.port,
                                                nullptr, 0) != nullptr)
      return true;
    std::fprintf(stderr, "bare server: %s\n", mysql_ ? mysql_error(mysql_) : "mysql_init failed");
    drop();
    return false;
  }

  void drop() {
    if (mysql_ != nullptr) mysql_close(mysql_);
    mysql_ = nullptr;
  }

  const SqlTarget& target_;
  MYSQL* mysql_ = nullptr;
};

// HOST PORT DBNAME USER PASSWORD from argv[0..4].
inline SqlTarget sql_target(char** argv) {
  return SqlTarget{argv[0], argv[2], argv[3], argv[4], static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10))};
}

}  // namespace bench
