// auth_bare_server.cpp - a reference row of tests/bench/auth_bench.py: the least a server on
// the Dovecot auth socket can do for an uncached SQL login. One blocking thread per
// connection, each with its own MariaDB connection: it reads AUTH PLAIN, runs the
// password_query (the user escaped into %u, as Dovecot's mysql driver sends it), verifies
// the stored SHA512-CRYPT hash with crypt_r on that same thread and answers OK or FAIL.
// No event loop, no hand-off between threads, no failure delay, no log. Against the crypt
// ceiling it shows what one SQL round trip per login and the socket cost; against authd,
// what authd's design and features cost. A benchmark tool, not part of postern.
//
//   bench_auth_bare_server [-c] SOCKET HOST PORT DBNAME USER PASSWORD QUERY
//
// -c: remember each (user, password) that verified, and answer it again with OK from memory
// (no SQL, no hash): the least a verification cache can cost, one socket round trip.
// QUERY is a password_query with %u; its "password" column (or its last one) holds the
// hash, with or without a {SCHEME} prefix. Stops on SIGTERM.
#include "bare_server.hpp"
#include "bare_sql.hpp"
#include "common/encoding.hpp"
#include "common/strings.hpp"

#include <crypt.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace {

constexpr size_t kMaxLine = 16 * 1024;  // a longer line ends the session

bench::SqlTarget g_target;
std::string g_query;

// -c: the (user NUL password) pairs that verified.
struct VerifiedCache {
  bool enabled = false;
  std::mutex mutex;
  std::unordered_set<std::string> verified;
};
VerifiedCache g_cache;

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) return out;
    start = tab + 1;
  }
}

// The authcid and password of a PLAIN response ("authzid NUL authcid NUL password" in base64).
bool decode_plain(std::string_view base64, std::string* user, std::string* password) {
  std::optional<std::string> raw = postern::base64_decode(base64);
  if (!raw) return false;
  size_t first = raw->find('\0'), second = first == std::string::npos ? first : raw->find('\0', first + 1);
  if (second == std::string::npos) return false;
  *user = postern::to_lower_ascii(raw->substr(first + 1, second - first - 1));  // %Lu
  password->assign(*raw, second + 1);
  return !user->empty();
}

// One session's database connection and crypt_r state.
class Verifier {
 public:
  Verifier() : sql_(g_target), crypt_(std::make_unique<crypt_data>()) {}

  // "OK", "FAIL", or "" when the database did not answer.
  std::string_view check(const std::string& user, const std::string& password) {
    std::string key = user + '\0' + password;
    if (g_cache.enabled) {
      std::lock_guard lock(g_cache.mutex);
      if (g_cache.verified.count(key) != 0) return "OK";
    }
    std::string_view verdict = check_in_database(user, password);
    if (g_cache.enabled && verdict == "OK") {
      std::lock_guard lock(g_cache.mutex);
      g_cache.verified.insert(std::move(key));
    }
    return verdict;
  }

 private:
  std::string_view check_in_database(const std::string& user, const std::string& password) {
    std::optional<bench::SqlSession::Row> row = sql_.first_row(g_query, "%u", user);
    if (!row) return "";
    std::string stored = row->empty() ? "" : row->back().second;  // the password column, else the last
    for (const auto& [column, value] : *row)
      if (column == "password") stored = value;
    if (stored.empty()) return "FAIL";
    if (stored.front() == '{') stored.erase(0, stored.find('}') + 1);  // {SHA512-CRYPT}$6$...
    const char* hashed = crypt_r(password.c_str(), stored.c_str(), crypt_.get());
    return hashed != nullptr && stored == hashed ? "OK" : "FAIL";
  }

  bench::SqlSession sql_;
  std::unique_ptr<crypt_data> crypt_;
};

void serve(int fd, unsigned long connection) {
  Verifier verifier;
  bench::LineReader in(fd, kMaxLine);
  std::string line, user, password;
  bool alive = bench::send_all(fd, "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t" + std::to_string(::getpid()) +
                                       "\nCUID\t" + std::to_string(connection) +
                                       "\nCOOKIE\t00000000000000000000000000000000\nDONE\n");
  while (alive && in.next(&line)) {
    std::vector<std::string_view> fields = split_tabs(line);
    if (fields[0] != "AUTH") continue;  // VERSION and CPID need no answer
    if (fields.size() < 3) break;
    std::string id(fields[1]);
    std::string_view response;
    for (std::string_view field : fields)
      if (field.substr(0, 5) == "resp=") response = field.substr(5);
    if (fields[2] != "PLAIN" || !decode_plain(response, &user, &password)) {
      alive = bench::send_all(fd, "FAIL\t" + id + "\treason=Invalid request\n");
      continue;
    }
    std::string_view verdict = verifier.check(user, password);
    // No answer from the database: hang up, as Postfix turns every FAIL into 535.
    if (verdict.empty()) break;
    alive = bench::send_all(fd, std::string(verdict) + "\t" + id + "\tuser=" + user + "\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "-c") == 0) {
    g_cache.enabled = true;
    --argc;
    ++argv;
  }
  if (argc != 8) {
    std::fprintf(stderr, "usage: bench_auth_bare_server [-c] SOCKET HOST PORT DBNAME USER PASSWORD QUERY\n");
    return 2;
  }
  g_target = bench::sql_target(argv + 2);
  g_query = argv[7];
  if (mysql_library_init(0, nullptr, nullptr) != 0) return 1;
  return bench::serve_unix_socket("bench_auth_bare_server", argv[1], serve);
}
