// Tests for common/sql.hpp: host parsing, endpoint identity, the SQLite backend, and the
// MariaDB backend's host order and failover bookkeeping (per Connection and shared across
// the process) against hosts that cannot be reached or never answer.
#include "common/sql.hpp"

#include "common/sql_backends.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

using namespace postern;
using namespace postern::sql;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "postern-sql-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// An empty database file, made with the SQLite API because the backend never creates one.
void create_db(const fs::path& file) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

Endpoint sqlite_endpoint(const fs::path& file) {
  Endpoint ep;
  ep.driver = Driver::sqlite;
  ep.dbname = file.string();
  return ep;
}

const char* kSchema =
    "CREATE TABLE virtual_users (email TEXT PRIMARY KEY, password TEXT, quota INTEGER);\n"
    "INSERT INTO virtual_users VALUES ('alice@example.org', '{SHA512-CRYPT}$6$x', 100);\n"
    "INSERT INTO virtual_users VALUES ('bob@example.org', NULL, NULL);\n";

}  // namespace

TEST_CASE("parse_mysql_host accepts every mysql_table(5) form", "[sql]") {
  auto unix1 = parse_mysql_host("unix:/var/run/mysqld/mysqld.sock");
  REQUIRE(unix1);
  CHECK(unix1->unix_socket);
  CHECK(unix1->host == "/var/run/mysqld/mysqld.sock");

  auto unix2 = parse_mysql_host("/run/mysqld/mysqld.sock");
  REQUIRE(unix2);
  CHECK(unix2->unix_socket);
  CHECK(unix2->host == "/run/mysqld/mysqld.sock");

  auto inet_port = parse_mysql_host("inet:db1.example.org:3307");
  REQUIRE(inet_port);
  CHECK_FALSE(inet_port->unix_socket);
  CHECK(inet_port->host == "db1.example.org");
  CHECK(inet_port->port == 3307);

  auto inet = parse_mysql_host("inet:10.0.0.5");
  REQUIRE(inet);
  CHECK(inet->host == "10.0.0.5");
  CHECK(inet->port == 3306);

  auto bare = parse_mysql_host("localhost");
  REQUIRE(bare);
  CHECK_FALSE(bare->unix_socket);
  CHECK(bare->host == "localhost");
  CHECK(bare->port == 3306);

  auto host_port = parse_mysql_host(" 127.0.0.1:65535 ");
  REQUIRE(host_port);
  CHECK(host_port->host == "127.0.0.1");
  CHECK(host_port->port == 65535);

  auto v6 = parse_mysql_host("inet:[::1]:3308");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 3308);

  auto v6_bare = parse_mysql_host("::1");
  REQUIRE(v6_bare);
  CHECK(v6_bare->host == "::1");
  CHECK(v6_bare->port == 3306);
}

TEST_CASE("parse_mysql_host rejects bad entries", "[sql]") {
  for (const char* bad : {"", "   ", "unix:", "inet:", "host:", ":3306", "host:0", "host:65536", "host:99999999999",
                          "host:33a6", "host:-1", "inet:[::1", "[::1]x", "[]:3306", "my host"}) {
    INFO(bad);
    auto r = parse_mysql_host(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("invalid database host"));
  }
  CHECK_THAT(parse_mysql_host("h:70000").error().message, Catch::Contains("out of range"));
}

TEST_CASE("Endpoint::key identifies the endpoint without the password", "[sql]") {
  Endpoint a;
  a.hosts = {"127.0.0.1:3306", "unix:/x.sock"};
  a.user = "mailuser";
  a.password = "Sup3rSecret!";
  a.dbname = "mailserver";
  Endpoint b = a;

  CHECK(a.key() == b.key());
  CHECK(a.key().find("Sup3rSecret!") == std::string::npos);
  CHECK(a.key().find("mailuser") != std::string::npos);

  b.password = "other";
  CHECK(a.key() != b.key());
  b = a;
  b.read_timeout = std::chrono::milliseconds(1);
  CHECK(a.key() != b.key());
  b = a;
  b.hosts = {"127.0.0.1:3306"};
  CHECK(a.key() != b.key());
  b = a;
  b.driver = Driver::sqlite;
  CHECK(a.key() != b.key());
  // Field contents must not be able to imitate a different split between fields.
  Endpoint c = a, d = a;
  c.user = "ab";
  c.dbname = "c";
  d.user = "a";
  d.dbname = "bc";
  CHECK(c.key() != d.key());
}

TEST_CASE("Endpoint::describe names hosts, user and database, never the password", "[sql]") {
  Endpoint a;
  a.hosts = {"inet:127.0.0.1", "/x.sock"};
  a.user = "user";
  a.password = "hunter2hunter2";
  a.dbname = "mailserver";
  CHECK(a.describe() == "mysql(127.0.0.1:3306,unix:/x.sock/user@mailserver)");
  CHECK(a.describe().find("hunter2") == std::string::npos);

  Endpoint s;
  s.driver = Driver::sqlite;
  s.dbname = "/etc/postfix/virtual.sqlite";
  s.password = "hunter2hunter2";
  CHECK(s.describe() == "sqlite(/etc/postfix/virtual.sqlite)");
}

TEST_CASE("SQLite connection queries rows, NULLs and statements without rows", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir.path / "mail.sqlite";
  create_db(file);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn);
  auto script = conn->execute_script(kSchema);
  REQUIRE(script.ok());

  auto rows = conn->query("SELECT email, password, quota FROM virtual_users ORDER BY email");
  REQUIRE(rows);
  CHECK(rows->columns == std::vector<std::string>{"email", "password", "quota"});
  REQUIRE(rows->rows.size() == 2);
  CHECK(rows->rows[0][0] == std::optional<std::string>("alice@example.org"));
  CHECK(rows->rows[0][1] == std::optional<std::string>("{SHA512-CRYPT}$6$x"));
  CHECK(rows->rows[0][2] == std::optional<std::string>("100"));
  CHECK(rows->rows[1][1] == std::nullopt);
  CHECK(rows->rows[1][2] == std::nullopt);

  auto none = conn->query("SELECT email FROM virtual_users WHERE email = 'nobody@example.org'");
  REQUIRE(none);
  CHECK(none->rows.empty());
  CHECK(none->columns.size() == 1);

  auto insert = conn->query("INSERT INTO virtual_users VALUES ('carol@example.org', 'x', 1)");
  REQUIRE(insert);
  CHECK(insert->rows.empty());
  auto count = conn->query("SELECT count(*) FROM virtual_users");
  REQUIRE(count);
  CHECK(count->rows.at(0).at(0) == std::optional<std::string>("3"));
}

TEST_CASE("SQLite errors come back as values and the connection stays usable", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir.path / "mail.sqlite";
  create_db(file);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn->execute_script(kSchema).ok());

  auto bad = conn->query("SELEKT * FROM virtual_users");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::StartsWith("sqlite(" + file.string() + "): "));
  CHECK_THAT(bad.error().message, Catch::Contains("syntax error"));

  auto two = conn->query("SELECT 1; DELETE FROM virtual_users");
  REQUIRE_FALSE(two);
  auto still = conn->query("SELECT count(*) FROM virtual_users");
  REQUIRE(still);
  CHECK(still->rows.at(0).at(0) == std::optional<std::string>("2"));

  auto bad_script = conn->execute_script("CREATE TABLE t (a); INSERT INTO nope VALUES (1);");
  REQUIRE_FALSE(bad_script.ok());
  CHECK_THAT(bad_script.error().message, Catch::Contains("nope"));
}

TEST_CASE("SQLite escape keeps hostile input a literal", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir.path / "mail.sqlite";
  create_db(file);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn->execute_script(kSchema).ok());

  auto esc = conn->escape("' OR 1=1 --");
  REQUIRE(esc);
  CHECK(*esc == "'' OR 1=1 --");
  auto rows = conn->query("SELECT email FROM virtual_users WHERE email = '" + *esc + "'");
  REQUIRE(rows);
  CHECK(rows->rows.empty());

  auto unchanged = conn->escape("alice@example.org");
  REQUIRE(unchanged);
  CHECK(*unchanged == "alice@example.org");

  auto nul = conn->escape(std::string_view("a\0b", 3));
  REQUIRE_FALSE(nul);
  CHECK_THAT(nul.error().message, Catch::Contains("NUL"));
}

TEST_CASE("SQLite never creates a missing database file", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir.path / "missing.sqlite";
  auto conn = make_connection(sqlite_endpoint(file));
  auto rows = conn->query("SELECT 1");
  REQUIRE_FALSE(rows);
  CHECK(rows.error().message == "sqlite(" + file.string() + "): unable to open database file");
  CHECK_FALSE(fs::exists(file));
  CHECK_FALSE(conn->execute_script("CREATE TABLE t (a)").ok());
  CHECK_FALSE(fs::exists(file));
}

TEST_CASE("SQLite follows a database file that is replaced or removed", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir.path / "mail.sqlite";
  fs::path next = dir.path / "mail.sqlite.new";
  create_db(file);
  create_db(next);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn->execute_script("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('old');").ok());
  {
    auto writer = make_connection(sqlite_endpoint(next));
    REQUIRE(writer->execute_script("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('new');").ok());
  }
  REQUIRE(conn->query("SELECT v FROM t"));

  fs::rename(next, file);  // how admins regenerate a map database
  auto after = conn->query("SELECT v FROM t");
  REQUIRE(after);
  CHECK(after->rows.at(0).at(0) == std::optional<std::string>("new"));

  fs::remove(file);
  auto gone = conn->query("SELECT v FROM t");
  REQUIRE_FALSE(gone);
  CHECK_THAT(gone.error().message, Catch::Contains("unable to open database file"));
}

TEST_CASE("SQLite reports a file that is not a database", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir.path / "garbage.sqlite";
  {
    FILE* f = std::fopen(file.c_str(), "w");
    REQUIRE(f);
    std::fputs("this is certainly not an SQLite database, just some text padding it out.......\n", f);
    std::fclose(f);
  }
  auto conn = make_connection(sqlite_endpoint(file));
  auto rows = conn->query("SELECT 1 FROM sqlite_master");
  REQUIRE_FALSE(rows);
  CHECK_THAT(rows.error().message, Catch::Contains("not a database"));
}

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

TEST_CASE("SQLite tells a statement without a result set from an empty one", "[sql][sqlite]") {
  TempDir dir;
  fs::path file = dir.path / "mail.sqlite";
  create_db(file);
  auto conn = make_connection(sqlite_endpoint(file));
  REQUIRE(conn->execute_script(kSchema).ok());

  auto empty = conn->query("SELECT email FROM virtual_users WHERE email = 'nobody@example.org'");
  REQUIRE(empty);
  CHECK(empty->has_result_set);
  CHECK(empty->rows.empty());
  auto update = conn->query("UPDATE virtual_users SET quota = quota WHERE email = 'alice@example.org'");
  REQUIRE(update);
  CHECK_FALSE(update->has_result_set);
  auto set_pragma = conn->query("PRAGMA user_version = 7");
  REQUIRE(set_pragma);
  CHECK_FALSE(set_pragma->has_result_set);
  auto read_pragma = conn->query("PRAGMA user_version");
  REQUIRE(read_pragma);
  CHECK(read_pragma->has_result_set);
  CHECK(read_pragma->rows.at(0).at(0) == std::optional<std::string>("7"));
  auto comment = conn->query("-- nothing to run");
  REQUIRE(comment);
  CHECK_FALSE(comment->has_result_set);
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
