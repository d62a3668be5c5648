// net_test.cpp - ListenAddress, Listener and Connection (common/net.hpp) over real sockets:
// the server runs on a libuv loop in the test thread, clients use blocking sockets in a
// second thread and hand their results back after join().
#include "common/net.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace postern;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char templ[] = "/tmp/postern-net-XXXXXX";
    REQUIRE(mkdtemp(templ) != nullptr);
    path = templ;
  }
  ~TempDir() { fs::remove_all(path); }
};

void set_timeouts(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int unix_client(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  path.copy(sun.sun_path, sizeof sun.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    close(fd);
    return -1;
  }
  set_timeouts(fd);
  return fd;
}

int tcp_client(const std::string& host, unsigned port) {
  sockaddr_storage ss{};
  socklen_t len;
  if (host.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  set_timeouts(fd);
  return fd;
}

void send_str(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads until EOF, a reset, a timeout, or max bytes.
std::string read_upto(int fd, size_t max = SIZE_MAX) {
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    ssize_t n = recv(fd, buf, std::min(sizeof buf, max - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A loop with one listener; each accepted connection is configured by setup, and the
// listener closes once closes_to_stop connections have closed, so the loop then ends.
struct Harness {
  uv_loop_t loop;
  TempDir dir;
  std::unique_ptr<Listener> listener;
  std::shared_ptr<Connection> conn;
  int closes = 0;
  int closes_to_stop = 1;

  Harness() { uv_loop_init(&loop); }
  ~Harness() {
    listener.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  std::string path() const { return dir.path + "/sock"; }

  void listen(Framing framing, ConnectionLimits limits, std::function<void(Connection&)> setup,
              std::string where = "") {
    auto addr = ListenAddress::parse(where.empty() ? "unix:" + path() : where);
    REQUIRE(addr.ok());
    auto r = Listener::open(&loop, *addr, {}, framing, limits, [this, setup](std::shared_ptr<Connection> c) {
      conn = c;
      setup(*c);
      auto user_close = std::move(c->on_close);
      c->on_close = [this, user_close] {
        if (user_close) user_close();
        if (++closes == closes_to_stop) listener->close();
      };
    });
    REQUIRE(r.ok());
    listener = std::move(r.value());
  }

  // Runs the client in a thread and the loop until every handle is closed.
  void run(std::function<void()> client) {
    std::thread t(std::move(client));
    bool timed_out = false;
    uv_timer_t watchdog;
    uv_timer_init(&loop, &watchdog);
    watchdog.data = &timed_out;
    uv_timer_start(
        &watchdog,
        [](uv_timer_t* w) {
          *static_cast<bool*>(w->data) = true;
          uv_stop(w->loop);
        },
        15000, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&watchdog), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    t.join();
    REQUIRE_FALSE(timed_out);
  }
};

ConnectionLimits limits_with(size_t max_frame, uint64_t idle_ms, size_t high_water = 1 << 20) {
  ConnectionLimits l;
  l.max_frame = max_frame;
  l.idle_timeout_ms = idle_ms;
  l.write_high_water = high_water;
  return l;
}

// Line server replying "<frame>!" to every frame.
void echo(Connection& c, std::vector<std::string>* frames) {
  c.on_frame = [&c, frames](std::string_view f) {
    frames->emplace_back(f);
    c.write(std::string(f) + "!\n");
  };
}

}  // namespace

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

TEST_CASE("an over-long line gets on_frame_error, the last reply, then a close", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  FrameStatus why = FrameStatus::frame;
  h.listen(Framing::line, limits_with(16, 10000), [&](Connection& c) {
    echo(c, &frames);
    c.on_frame_error = [&c, &why](FrameStatus s) {
      why = s;
      c.write("ERR line too long\n");
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "short\n" + std::string(100, 'x') + "\nafter\n");
    got = read_upto(fd);
    close(fd);
  });
  CHECK(got == "short!\nERR line too long\n");
  CHECK(frames == std::vector<std::string>{"short"});
  CHECK(why == FrameStatus::too_long);
  CHECK(h.closes == 1);
}

TEST_CASE("netstring framing over a socket, and a malformed netstring closes", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  FrameStatus why = FrameStatus::frame;
  h.listen(Framing::netstring, {}, [&](Connection& c) {
    c.on_frame = [&c, &frames](std::string_view f) {
      frames.emplace_back(f);
      c.write(encode_netstring("got " + std::string(f)));
    };
    c.on_frame_error = [&why](FrameStatus s) { why = s; };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "3:abc,0:,12:with\nnewline,");
    send_str(fd, "05:hello,");
    got = read_upto(fd);
    close(fd);
  });
  CHECK(got == "7:got abc,4:got ,16:got with\nnewline,");
  CHECK(frames == std::vector<std::string>{"abc", "", "with\nnewline"});
  CHECK(why == FrameStatus::malformed);
}

TEST_CASE("backpressure: reading stops above the high water and resumes once drained", "[net]") {
  Harness h;
  const size_t reply = 4 << 20;
  std::vector<std::string> frames;
  std::atomic<bool> go{false};
  size_t queued_while_stuck = 0, frames_while_stuck = 0;
  uv_timer_t check;
  uv_timer_init(&h.loop, &check);
  std::function<void()> inspect = [&] {
    queued_while_stuck = h.conn->write_queue_bytes();
    frames_while_stuck = frames.size();
    go = true;
  };
  check.data = &inspect;
  h.listen(Framing::line, limits_with(1024, 10000, 1024), [&](Connection& c) {
    c.on_frame = [&](std::string_view f) {
      frames.emplace_back(f);
      c.write(std::string(reply, 'x'));
      // Look 300 ms later: "two" and "three" have long arrived but must not be delivered.
      if (frames.size() == 1)
        uv_timer_start(&check, [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); }, 300, 0);
    };
  });

  size_t received = 0;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "one\ntwo\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    send_str(fd, "three\n");
    while (!go) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    received = read_upto(fd, 3 * reply).size();
    close(fd);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  CHECK(frames_while_stuck == 1);
  CHECK(queued_while_stuck > 1024);
  CHECK(received == 3 * reply);
  CHECK(frames == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("the idle timeout closes a quiet connection and is reset by traffic", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  h.listen(Framing::line, limits_with(1024, 150), [&](Connection& c) { echo(c, &frames); });
  std::string got;
  std::chrono::milliseconds lived{0};
  h.run([&] {
    auto start = std::chrono::steady_clock::now();
    int fd = unix_client(h.path());
    send_str(fd, "a\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    send_str(fd, "b\n");
    got = read_upto(fd);  // until the server closes
    lived = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    close(fd);
  });
  CHECK(got == "a!\nb!\n");
  CHECK(h.closes == 1);
  CHECK(lived.count() >= 240);   // 100 ms of traffic, then the full 150 ms timeout
  CHECK(lived.count() < 5000);
}

TEST_CASE("close() from inside on_frame stops delivery at once", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  bool closing_after = false;
  h.listen(Framing::line, {}, [&](Connection& c) {
    // Capturing the shared_ptr makes a cycle that the close must break (ASan checks leaks).
    std::shared_ptr<Connection> self = h.conn;
    c.on_frame = [self, &frames, &closing_after](std::string_view f) {
      frames.emplace_back(f);
      self->close();
      self->close();
      closing_after = self->closing();
      self->write("dropped\n");
    };
  });
  std::string got = "unset";
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "a\nb\nc\n");
    got = read_upto(fd);
    close(fd);
  });
  CHECK(frames == std::vector<std::string>{"a"});
  CHECK(closing_after);
  CHECK(got.empty());
  CHECK(h.closes == 1);
}

TEST_CASE("pause_reading holds buffered frames; resume delivers them from the loop", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  int depth = 0, max_depth = 0;
  size_t at_timer = 0, right_after_resume = 0;
  uv_timer_t later;
  uv_timer_init(&h.loop, &later);
  std::function<void()> resume = [&] {
    at_timer = frames.size();
    h.conn->resume_reading();
    right_after_resume = frames.size();
  };
  later.data = &resume;
  h.listen(Framing::line, {}, [&](Connection& c) {
    c.on_frame = [&](std::string_view f) {
      max_depth = std::max(max_depth, ++depth);
      frames.emplace_back(f);
      c.write(std::string(f) + "!\n");
      if (f == "a") {
        c.pause_reading();
        uv_timer_start(&later, [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); }, 50, 0);
      } else if (f == "b") {
        c.pause_reading();
        c.resume_reading();  // from inside on_frame: must not nest
      }
      --depth;
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "a\nb\nc\n");
    got = read_upto(fd, 9);
    close(fd);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&later), nullptr);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  CHECK(at_timer == 1);
  CHECK(right_after_resume == 1);
  CHECK(frames == std::vector<std::string>{"a", "b", "c"});
  CHECK(max_depth == 1);
  CHECK(got == "a!\nb!\nc!\n");
}

TEST_CASE("EOF from the peer: queued replies are flushed, then the connection closes", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  uv_timer_t worker;  // stands in for a worker answering "slow" later
  uv_timer_init(&h.loop, &worker);
  std::function<void()> answer = [&] {
    h.conn->write("slow!\n");
    h.conn->resume_reading();
  };
  worker.data = &answer;
  bool write_after_close_ignored = false;
  h.listen(Framing::line, {}, [&](Connection& c) {
    c.on_frame = [&](std::string_view f) {
      frames.emplace_back(f);
      if (f == "slow") {
        c.pause_reading();
        uv_timer_start(&worker, [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); }, 50, 0);
      } else {
        c.write(std::string(f) + "!\n");
      }
    };
    c.on_close = [&] {
      h.conn->write("too late\n");
      write_after_close_ignored = h.conn->closing() && h.conn->write_queue_bytes() == 0;
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "a\nslow\nb\npartial");
    shutdown(fd, SHUT_WR);
    got = read_upto(fd);
    close(fd);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&worker), nullptr);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  CHECK(got == "a!\nslow!\nb!\n");
  CHECK(frames == std::vector<std::string>{"a", "slow", "b"});
  CHECK(write_after_close_ignored);
  CHECK(h.closes == 1);
}

TEST_CASE("close_after_write sends the last reply and delivers nothing more", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  h.listen(Framing::line, {}, [&](Connection& c) {
    c.on_frame = [&c, &frames](std::string_view f) {
      frames.emplace_back(f);
      c.write("BYE\n");
      c.close_after_write();
      c.write("and this\n");  // still queued: the stream has not closed yet
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "quit\nmore\n");
    got = read_upto(fd);
    close(fd);
  });
  CHECK(got == "BYE\nand this\n");
  CHECK(frames == std::vector<std::string>{"quit"});
}
