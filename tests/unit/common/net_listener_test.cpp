// net_listener_test.cpp - ListenAddress and Listener (common/net.hpp) over real sockets.
#include "tests/unit/common/net_test_support.hpp"

using namespace postern;
using namespace net_test;
namespace fs = std::filesystem;

TEST_CASE("ListenAddress parses the accepted forms", "[net]") {
  struct Case {
    const char* text;
    const char* str;
  };
  for (auto [text, str] : {Case{"unix:/run/a.sock", "unix:/run/a.sock"}, Case{"/run/a.sock", "unix:/run/a.sock"},
                           Case{"unix:private/auth", "unix:private/auth"},
                           Case{"inet:127.0.0.1:10042", "inet:127.0.0.1:10042"}, Case{"10.1.2.3:25", "inet:10.1.2.3:25"},
                           Case{"[::1]:24", "inet:[::1]:24"}, Case{"inet:[::]:24", "inet:[::]:24"},
                           Case{":10042", "inet:127.0.0.1:10042"}, Case{"10042", "inet:127.0.0.1:10042"},
                           Case{"127.0.0.1:0", "inet:127.0.0.1:0"}}) {
    INFO(text);
    auto a = ListenAddress::parse(text);
    REQUIRE(a.ok());
    CHECK(a->str() == str);
  }
  auto v6 = ListenAddress::parse("inet:[::1]:24");
  REQUIRE(v6.ok());
  CHECK(v6->kind == ListenAddress::Kind::tcp);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 24);
}

TEST_CASE("ListenAddress rejects bad addresses with a reason", "[net]") {
  for (const char* text : {"", "unix:", "inet:", "localhost:25", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:2x",
                           "::1:25", "[::1]25", "[::1", "[127.0.0.1]:25", "1.2.3.4.5:6", "private/auth"}) {
    INFO(text);
    auto a = ListenAddress::parse(text);
    REQUIRE_FALSE(a.ok());
    CHECK_FALSE(a.error().message.empty());
  }
  CHECK_THAT(ListenAddress::parse("localhost:25").error().message, Catch::Contains("not an IP address"));
}

TEST_CASE("unix listener delivers lines and its replies reach the client", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  std::string peer;
  h.listen(Framing::line, {}, [&](Connection& c) {
    peer = c.peer();
    echo(c, &frames);
  });
  struct stat st {};
  REQUIRE(lstat(h.path().c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0666);
  CHECK(std::distance(fs::directory_iterator(h.dir.path), fs::directory_iterator()) == 1);  // no temp dir left

  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "hello\nwith cr\r\n");
    got = read_upto(fd, 16);
    close(fd);
  });
  CHECK(got == "hello!\nwith cr!\n");
  CHECK(frames == std::vector<std::string>{"hello", "with cr"});
  CHECK(peer == "unix");
  CHECK(h.closes == 1);
  CHECK_FALSE(fs::exists(h.path()));  // listener->close() removed it
}

TEST_CASE("a stale unix socket file is replaced", "[net]") {
  Harness h;
  int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  h.path().copy(sun.sun_path, sizeof sun.sun_path - 1);
  REQUIRE(bind(stale, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
  close(stale);  // the file stays; nothing listens on it
  REQUIRE(fs::is_socket(h.path()));

  std::vector<std::string> frames;
  h.listen(Framing::line, {}, [&](Connection& c) { echo(c, &frames); });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "x\n");
    got = read_upto(fd, 3);
    close(fd);
  });
  CHECK(got == "x!\n");
}

TEST_CASE("a live unix socket is never stolen", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  h.listen(Framing::line, {}, [&](Connection& c) { echo(c, &frames); });
  auto addr = ListenAddress::parse("unix:" + h.path());
  REQUIRE(addr.ok());
  auto second = Listener::open(&h.loop, *addr, {}, Framing::line, {}, [](std::shared_ptr<Connection>) {});
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(second.error().message, Catch::Contains(h.path()) && Catch::Contains("in use by a running process"));
  CHECK(fs::is_socket(h.path()));
  h.closes_to_stop = 2;  // the second listener's probe was accepted too

  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "still here\n");
    got = read_upto(fd, 12);
    close(fd);
  });
  CHECK(got == "still here!\n");
}

TEST_CASE("a file that is not a socket is refused and left alone", "[net]") {
  Harness h;
  { std::ofstream(h.path()) << "precious\n"; }
  auto addr = ListenAddress::parse(h.path());
  REQUIRE(addr.ok());
  auto r = Listener::open(&h.loop, *addr, {}, Framing::line, {}, [](std::shared_ptr<Connection>) {});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("not a socket"));
  std::ifstream in(h.path());
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(content == "precious\n");
  CHECK(std::distance(fs::directory_iterator(h.dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("unix socket mode, owner and group are applied", "[net]") {
  Harness h;
  auto addr = ListenAddress::parse(h.path());
  REQUIRE(addr.ok());
  UnixSocketOptions opts;
  opts.mode = 0660;
  bool root = geteuid() == 0;
  if (root) {
    opts.owner = "nobody";
    opts.group = "nogroup";
  } else {
    WARN("not root: only the mode is checked, not chown to nobody:nogroup");
  }
  auto r = Listener::open(&h.loop, *addr, opts, Framing::line, {}, [](std::shared_ptr<Connection>) {});
  REQUIRE(r.ok());
  struct stat st {};
  REQUIRE(lstat(h.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0660);
  if (root) {
    passwd* pw = getpwnam("nobody");
    group* gr = getgrnam("nogroup");
    REQUIRE(pw != nullptr);
    REQUIRE(gr != nullptr);
    CHECK(st.st_uid == pw->pw_uid);
    CHECK(st.st_gid == gr->gr_gid);
  }
  r.value()->close();
  CHECK_FALSE(fs::exists(h.path()));

  opts.owner = "no-such-user-postern";
  auto bad = Listener::open(&h.loop, *addr, opts, Framing::line, {}, [](std::shared_ptr<Connection>) {});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains(h.path()) && Catch::Contains("no-such-user-postern"));
}

TEST_CASE("Listener::close removes only the socket file it created", "[net]") {
  Harness h;
  auto addr = ListenAddress::parse(h.path());
  REQUIRE(addr.ok());
  auto r = Listener::open(&h.loop, *addr, {}, Framing::line, {}, [](std::shared_ptr<Connection>) {});
  REQUIRE(r.ok());
  REQUIRE(unlink(h.path().c_str()) == 0);
  { std::ofstream(h.path()) << "someone else's\n"; }
  r.value()->close();
  r.value()->close();  // idempotent
  CHECK(fs::is_regular_file(h.path()));
}

TEST_CASE("tcp listener on a kernel-chosen port reports it and names peers", "[net]") {
  for (std::string host : {"127.0.0.1", "::1"}) {
    INFO(host);
    Harness h;
    std::string where = host == "::1" ? "inet:[::1]:0" : "inet:127.0.0.1:0";
    auto addr = ListenAddress::parse(where);
    REQUIRE(addr.ok());
    auto probe = Listener::open(&h.loop, *addr, {}, Framing::line, {}, [](std::shared_ptr<Connection>) {});
    if (!probe.ok() && host == "::1") {
      WARN("no IPv6 loopback here: " << probe.error().message);
      continue;
    }
    REQUIRE(probe.ok());
    probe.value()->close();
    CHECK(probe.value()->bound_port() == 0);

    std::string peer;
    std::vector<std::string> frames;
    h.listen(Framing::line, {}, [&](Connection& c) {
      peer = c.peer();
      echo(c, &frames);
    }, where);
    unsigned port = h.listener->bound_port();
    REQUIRE(port != 0);

    auto clash = ListenAddress::parse(host == "::1" ? "[::1]:" + std::to_string(port) : "127.0.0.1:" + std::to_string(port));
    REQUIRE(clash.ok());
    auto second = Listener::open(&h.loop, *clash, {}, Framing::line, {}, [](std::shared_ptr<Connection>) {});
    REQUIRE_FALSE(second.ok());
    CHECK_THAT(second.error().message, Catch::Contains(clash->str()));

    std::string got;
    h.run([&] {
      int fd = tcp_client(host, port);
      send_str(fd, "tcp\n");
      got = read_upto(fd, 5);
      close(fd);
    });
    CHECK(got == "tcp!\n");
    std::string prefix = host == "::1" ? "[::1]:" : "127.0.0.1:";
    CHECK_THAT(peer, Catch::StartsWith(prefix));
    CHECK(peer.size() > prefix.size());
  }
}

