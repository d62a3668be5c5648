// net_test_support.hpp - shared by the net tests: temp dirs for sockets and blocking socket
// clients that run beside the libuv loop under test.
#pragma once

#include "common/net.hpp"
#include "tests/unit/temp_dir.hpp"

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

namespace net_test {

// Under /tmp whatever $TMPDIR says: a unix socket's path must stay short.
struct TempDir : postern::testing::TempDir {
  TempDir() : postern::testing::TempDir("postern-net", "/tmp") {}
};

inline void set_timeouts(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

inline int unix_client(const std::string& path) {
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

inline int tcp_client(const std::string& host, unsigned port) {
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

inline void send_str(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads until EOF, a reset, a timeout, or max bytes.
inline std::string read_upto(int fd, size_t max = SIZE_MAX) {
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

inline ConnectionLimits limits_with(size_t max_frame, uint64_t idle_ms, size_t high_water = 1 << 20) {
  ConnectionLimits l;
  l.max_frame = max_frame;
  l.idle_timeout_ms = idle_ms;
  l.write_high_water = high_water;
  return l;
}

// Line server replying "<frame>!" to every frame.
inline void echo(Connection& c, std::vector<std::string>* frames) {
  c.on_frame = [&c, frames](std::string_view f) {
    frames->emplace_back(f);
    c.write(std::string(f) + "!\n");
  };
}

}  // namespace net_test
