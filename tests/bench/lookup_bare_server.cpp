// lookup_bare_server.cpp - a column of tests/bench/lookup_bench.py: the least a socketmap
// server over SQL can do for an uncached lookup. One blocking thread per connection, each
// with its own MariaDB connection: it reads a socketmap request ("<len>:<map> <key>,"), runs
// QUERY with the key escaped into %s (as Postfix's mysql: table sends it) and answers
// "OK <first column of the first row>", "NOTFOUND " or "TEMP ...". No event loop, no
// hand-off between threads, no cache, no log. Against Postfix's own mysql: table it shows
// what a server between postmap and the database costs any design; against lookupd with
// its cache off, what lookupd's own design costs. A benchmark tool, not part of postern.
//
//   bench_lookup_bare_server SOCKET HOST PORT DBNAME USER PASSWORD QUERY
#include "bare_server.hpp"
#include "bare_sql.hpp"

#include <unistd.h>

#include <cerrno>
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

// The next complete netstring's payload from buffer at *pos: 1 taken, 0 incomplete, -1 malformed.
int next_request(const std::string& buffer, size_t* pos, std::string_view* payload) {
  size_t colon = buffer.find(':', *pos);
  if (colon == std::string::npos) return buffer.size() - *pos > 6 ? -1 : 0;
  if (colon == *pos || colon - *pos > 6 || buffer.find_first_not_of("0123456789", *pos) != colon) return -1;
  size_t length = std::stoul(buffer.substr(*pos, colon - *pos));
  if (length > kMaxRequest) return -1;
  if (buffer.size() < colon + 1 + length + 1) return 0;
  if (buffer[colon + 1 + length] != ',') return -1;
  *payload = std::string_view(buffer).substr(colon + 1, length);
  *pos = colon + 1 + length + 1;
  return 1;
}

std::string answer(bench::SqlSession& sql, std::string_view request) {
  size_t space = request.find(' ');
  if (space == std::string_view::npos) return "PERM malformed request";
  std::optional<bench::SqlSession::Row> row = sql.first_row(g_query, "%s", request.substr(space + 1));
  if (!row) return "TEMP database unavailable";
  return row->empty() ? "NOTFOUND " : "OK " + row->front().second;
}

void serve(int fd, unsigned long) {
  mysql_thread_init();
  {
    bench::SqlSession sql(g_target);
    std::string buffer;
    size_t pos = 0;
    char chunk[65536];
    for (bool alive = true; alive;) {
      std::string_view request;
      int got = next_request(buffer, &pos, &request);
      if (got < 0) break;
      if (got > 0) {
        alive = bench::send_all(fd, netstring(answer(sql, request)));
        continue;
      }
      buffer.erase(0, pos);
      pos = 0;
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  mysql_thread_end();
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
