// lookup_bare_server.cpp - a column of tests/bench/lookup_bench.py: the least a socketmap
// server over SQL can do for an uncached lookup. One blocking thread per connection, each
// with its own MariaDB connection: it reads a socketmap request ("<len>:<map> <key>,"), runs
// QUERY with the key escaped into every %s (as Postfix's mysql: table sends it; no other
// expansions) and answers "OK <first column of the first row>" (mysql: would join every
// row's; the bench's query has at most one), "NOTFOUND " or "TEMP ...". No event loop, no
// hand-off between threads, no cache, no log. Against Postfix's own mysql: table it shows
// what a server between postmap and the database costs any design; against lookupd with
// its cache off, what lookupd's own design costs. A benchmark tool, not part of postern.
//
//   bench_lookup_bare_server SOCKET HOST PORT DBNAME USER PASSWORD QUERY
#include "bare_server.hpp"
#include "bare_sql.hpp"

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace {

constexpr size_t kMaxRequest = 100000;  // socketmap's own limit on a request

bench::SqlTarget g_target;
std::string g_query;

std::string netstring(std::string_view payload) {
  return std::to_string(payload.size()) + ":" + std::string(payload) + ",";
}

// The first column of the first row; as mysql: does, an empty or NULL value is no answer.
std::string answer(bench::SqlSession& sql, std::string_view request) {
  size_t space = request.find(' ');
  if (space == std::string_view::npos) return "PERM malformed request";
  std::optional<bench::SqlSession::Row> row = sql.first_row(g_query, "%s", request.substr(space + 1));
  if (!row) return "TEMP database unavailable";
  return row->empty() || row->front().second.empty() ? "NOTFOUND " : "OK " + row->front().second;
}

void serve(int fd, unsigned long) {
  bench::SqlSession sql(g_target);
  bench::NetstringReader requests(fd, kMaxRequest);
  std::string_view request;
  while (requests.next(&request) && bench::send_all(fd, netstring(answer(sql, request)))) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: bench_lookup_bare_server SOCKET HOST PORT DBNAME USER PASSWORD QUERY\n");
    return 2;
  }
  g_target = bench::sql_target(argv + 2);
  g_query = argv[7];
  if (mysql_library_init(0, nullptr, nullptr) != 0) return 1;
  return bench::serve_unix_socket("bench_lookup_bare_server", argv[1], serve);
}
