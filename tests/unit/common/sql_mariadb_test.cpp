// sql_mariadb_test.cpp - tests for the MariaDB sql::Connection: host order, and failover
// bookkeeping per Connection and shared across the process, against dead or silent hosts.
#include "common/sql.hpp"

#include "common/sql_backends.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <thread>

using namespace postern;
using namespace postern::sql;

TEST_CASE("MariaDB with unreachable hosts fails fast and skips dead hosts", "[sql][mariadb]") {
  Endpoint ep;
  ep.hosts = {"unix:/nonexistent/postern/mysqld.sock", "inet:127.0.0.1:1"};
  ep.user = "mail";
  ep.password = "Pa55w0rdNeverShown";
  ep.dbname = "mailserver";
  ep.connect_timeout = std::chrono::milliseconds(1000);
  ep.retry_interval = std::chrono::milliseconds(400);
  auto conn = make_connection(ep);
  using Clock = std::chrono::steady_clock;

  auto t0 = Clock::now();
  auto first = conn->query("SELECT 1");
  auto first_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  REQUIRE_FALSE(first);
  CHECK(first_ms < 900);  // refused and missing sockets fail at once, not at the timeout
  const std::string& m1 = first.error().message;
  CHECK_THAT(m1, Catch::Contains("mysql(unix:/nonexistent/postern/mysqld.sock/mailserver): connect failed"));
  CHECK_THAT(m1, Catch::Contains("mysql(127.0.0.1:1/mailserver): connect failed"));
  CHECK(m1.find("Pa55w0rd") == std::string::npos);

  // Both hosts are dead now: the next calls must not try them.
  t0 = Clock::now();
  auto second = conn->query("SELECT 1");
  auto esc = conn->escape("x");
  auto second_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  REQUIRE_FALSE(second);
  REQUIRE_FALSE(esc);
  CHECK(second_ms < 50);
  CHECK_THAT(second.error().message, Catch::StartsWith("no database host available: "));
  CHECK_THAT(second.error().message, Catch::Contains("(retry in "));
  CHECK_THAT(esc.error().message, Catch::StartsWith("no database host available: "));
  CHECK(second.error().message.find("Pa55w0rd") == std::string::npos);
  CHECK_FALSE(conn->execute_script("CREATE TABLE t (a INT)").ok());

  // After the retry interval both hosts are tried again.
  std::this_thread::sleep_for(ep.retry_interval + std::chrono::milliseconds(50));
  auto third = conn->query("SELECT 1");
  REQUIRE_FALSE(third);
  CHECK_THAT(third.error().message, Catch::Contains("127.0.0.1:1/mailserver): connect failed"));
  CHECK_THAT(third.error().message, !Catch::StartsWith("no database host available"));
}

TEST_CASE("MariaDB refuses NUL before connecting and reports invalid hosts", "[sql][mariadb]") {
  Endpoint ep;
  ep.hosts = {"inet:127.0.0.1:1"};
  ep.dbname = "mailserver";
  auto conn = make_connection(ep);
  auto nul = conn->escape(std::string_view("a\0b", 3));
  REQUIRE_FALSE(nul);
  CHECK_THAT(nul.error().message, Catch::Contains("NUL"));

  Endpoint invalid;
  invalid.hosts = {"host:70000"};
  invalid.dbname = "mailserver";
  auto bad = make_connection(invalid)->query("SELECT 1");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("no valid database host"));
}

TEST_CASE("MariaDB host order: unix sockets first, random within each group", "[sql][mariadb]") {
  std::vector<HostSpec> hosts;
  for (const char* text : {"inet:10.0.0.1", "unix:/run/a.sock", "10.0.0.2:3307", "/run/b.sock", "LocalHost",
                           "inet:10.0.0.3", "unix:/run/c.sock"}) {
    auto spec = parse_mysql_host(text);
    REQUIRE(spec);
    hosts.push_back(*spec);
  }
  // "localhost" goes over the connector's default socket, so it counts as one.
  CHECK(is_unix_socket_host(hosts[4]));
  CHECK_FALSE(is_unix_socket_host(hosts[0]));

  std::set<size_t> first_unix, first_tcp;
  for (unsigned seed = 0; seed < 200; ++seed) {
    std::mt19937 rng(seed);
    std::vector<size_t> order = connect_order(hosts, rng);
    REQUIRE(order.size() == hosts.size());
    std::vector<size_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    REQUIRE(sorted == std::vector<size_t>{0, 1, 2, 3, 4, 5, 6});
    for (size_t i = 0; i < 4; ++i) REQUIRE(is_unix_socket_host(hosts[order[i]]));
    for (size_t i = 4; i < order.size(); ++i) REQUIRE_FALSE(is_unix_socket_host(hosts[order[i]]));
    first_unix.insert(order[0]);
    first_tcp.insert(order[4]);
  }
  // Every host of a group leads it sometimes, so the workers spread over them.
  CHECK(first_unix == std::set<size_t>{1, 3, 4, 6});
  CHECK(first_tcp == std::set<size_t>{0, 2, 5});

  std::mt19937 rng(1);
  CHECK(connect_order({}, rng).empty());
}

namespace {

// A TCP port that completes the handshake (the kernel queues the connection) but never
// says anything, so a client waits for the server's greeting until its timeout.
struct SilentServer {
  int fd = -1;
  unsigned port = 0;
  SilentServer() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
  }
  ~SilentServer() { ::close(fd); }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
};

long long ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("MariaDB host health is shared by every Connection in the process", "[sql][mariadb]") {
  SilentServer silent;
  Endpoint ep;
  ep.hosts = {"inet:127.0.0.1:" + std::to_string(silent.port)};
  ep.user = "mail";
  ep.password = "x";
  ep.dbname = "shared_health_test";
  ep.connect_timeout = std::chrono::milliseconds(1000);
  ep.read_timeout = std::chrono::milliseconds(1000);
  ep.retry_interval = std::chrono::milliseconds(60000);
  auto worker1 = make_connection(ep);
  auto worker2 = make_connection(ep);

  // The first worker pays the timeout and marks the host down...
  auto t0 = std::chrono::steady_clock::now();
  auto first = worker1->query("SELECT 1");
  REQUIRE_FALSE(first);
  CHECK(ms_since(t0) >= 500);
  CHECK_THAT(first.error().message, Catch::Contains("connect failed"));

  // ...so the second, which never tried it, skips it at once.
  t0 = std::chrono::steady_clock::now();
  auto second = worker2->query("SELECT 1");
  REQUIRE_FALSE(second);
  CHECK(ms_since(t0) < 50);
  CHECK_THAT(second.error().message, Catch::StartsWith("no database host available: "));
  // It reports the first worker's error, not a bare "down".
  CHECK_THAT(second.error().message, Catch::Contains("shared_health_test"));
  CHECK_THAT(second.error().message, Catch::Contains("(retry in "));

  // Another user (or database) of the same server keeps its own record: a refused login
  // says nothing about other credentials.
  Endpoint other = ep;
  other.user = "someone_else";
  other.connect_timeout = other.read_timeout = std::chrono::milliseconds(1);
  auto t1 = std::chrono::steady_clock::now();
  auto third = make_connection(other)->query("SELECT 1");
  REQUIRE_FALSE(third);
  CHECK_THAT(third.error().message, !Catch::StartsWith("no database host available"));
  CHECK(ms_since(t1) >= 500);  // it did try (1 ms rounds up to the connector's 1 s)
}

TEST_CASE("MariaDB logs a host going down once, not once per Connection", "[sql][mariadb]") {
  Endpoint ep;
  ep.hosts = {"inet:127.0.0.1:1"};
  ep.dbname = "log_once_test";
  ep.retry_interval = std::chrono::milliseconds(100);
  auto a = make_connection(ep);
  auto b = make_connection(ep);

  std::string log;
  {
    fflush(stderr);
    FILE* capture = std::tmpfile();
    REQUIRE(capture);
    int saved = ::dup(2);
    ::dup2(::fileno(capture), 2);
    CHECK_FALSE(a->query("SELECT 1"));
    CHECK_FALSE(b->query("SELECT 1"));
    std::this_thread::sleep_for(ep.retry_interval + std::chrono::milliseconds(20));
    CHECK_FALSE(b->query("SELECT 1"));  // tries again: still down, not a new transition
    fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    std::rewind(capture);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, capture)) > 0) log.append(buf, n);
    std::fclose(capture);
  }
  size_t count = 0;
  for (size_t at = log.find("waiting for"); at != std::string::npos; at = log.find("waiting for", at + 1)) ++count;
  CHECK(count == 1);
  CHECK_THAT(log, Catch::Contains("mysql(127.0.0.1:1): connect failed to database log_once_test"));
}
