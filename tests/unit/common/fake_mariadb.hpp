// fake_mariadb.hpp - a MariaDB server just big enough for the connector's client side:
// the v10 handshake (any login is accepted), then per COM_QUERY an answer chosen by the
// statement's text. One client at a time, on a thread, over 127.0.0.1. For the tests of
// the loop's non-blocking connection (sql_async_test.cpp).
//   "SELECT '<v>'"  one column "v", one row with <v>
//   "SELECT none"   one column, no rows
//   "SELECT slow"   no answer until the client goes away
//   "SELECT close"  the server closes the connection
//   anything else   an ERR packet 1064 (a syntax error: the connection stays usable)
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace fake_mariadb {

class Server {
 public:
  Server() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Server() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::string host() const { return "inet:127.0.0.1:" + std::to_string(port_); }
  int queries() const { return queries_; }

 private:
  void serve() {
    while (!stopping_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      session(fd);
      ::close(fd);
    }
  }

  static bool read_exact(int fd, void* buf, size_t n) {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
      ssize_t r = ::read(fd, p, n);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }

  static bool read_packet(int fd, std::string* payload) {
    unsigned char header[4];
    if (!read_exact(fd, header, 4)) return false;
    size_t len = header[0] | header[1] << 8 | header[2] << 16;
    payload->assign(len, '\0');
    return read_exact(fd, payload->data(), len);
  }

  static void send_packet(int fd, uint8_t seq, const std::string& payload) {
    std::string out;
    out += static_cast<char>(payload.size() & 0xff);
    out += static_cast<char>(payload.size() >> 8 & 0xff);
    out += static_cast<char>(payload.size() >> 16 & 0xff);
    out += static_cast<char>(seq);
    out += payload;
    (void)!::write(fd, out.data(), out.size());
  }

  static std::string lenenc(const std::string& s) { return static_cast<char>(s.size()) + s; }

  void session(int fd) {
    // Capabilities: long password, long flag, connect with db, protocol 41,
    // transactions, secure connection, multi results, plugin auth.
    uint32_t caps = 1 | 4 | 8 | 512 | 8192 | 32768 | (1u << 17) | (1u << 19);
    std::string hello;
    hello += '\x0a';
    hello += std::string("5.5.5-10.11.0-fake") + '\0';
    hello += std::string("\x01\x00\x00\x00", 4);  // connection id
    hello += "abcdefgh";                          // scramble, first part
    hello += '\0';
    hello += static_cast<char>(caps & 0xff);
    hello += static_cast<char>(caps >> 8 & 0xff);
    hello += '\x2d';                         // utf8mb4_general_ci
    hello += std::string("\x02\x00", 2);     // status: autocommit
    hello += static_cast<char>(caps >> 16 & 0xff);
    hello += static_cast<char>(caps >> 24 & 0xff);
    hello += '\x15';                         // scramble length, 21
    hello += std::string(10, '\0');
    hello += std::string("ijklmnopqrst") + '\0';  // scramble, second part
    hello += std::string("mysql_native_password") + '\0';
    send_packet(fd, 0, hello);
    std::string packet;
    if (!read_packet(fd, &packet)) return;
    const std::string ok("\x00\x00\x00\x02\x00\x00\x00", 7);
    const std::string eof("\xfe\x00\x00\x02\x00", 5);
    send_packet(fd, 2, ok);
    while (read_packet(fd, &packet)) {
      if (packet.empty() || packet[0] != '\x03') return;  // COM_QUIT, or anything but a query
      ++queries_;
      std::string q = packet.substr(1);
      if (q == "SELECT slow") {
        std::string ignored;
        read_packet(fd, &ignored);  // until the client closes or shuts down
        return;
      }
      if (q == "SELECT close") return;
      bool none = q == "SELECT none";
      if (!none && !(q.size() > 9 && q.compare(0, 8, "SELECT '") == 0 && q.back() == '\'')) {
        std::string err("\xff\x28\x04", 3);  // ERR, code 1064
        send_packet(fd, 1, err + "#42000you have an error in your SQL syntax");
        continue;
      }
      std::string column = lenenc("def") + lenenc("") + lenenc("") + lenenc("") + lenenc("v") + lenenc("");
      column += std::string("\x0c\x2d\x00\xff\x00\x00\x00\xfd\x00\x00\x00\x00\x00", 13);
      send_packet(fd, 1, std::string("\x01", 1));
      send_packet(fd, 2, column);
      send_packet(fd, 3, eof);
      uint8_t seq = 4;
      if (!none) send_packet(fd, seq++, lenenc(q.substr(8, q.size() - 9)));
      send_packet(fd, seq, eof);
    }
  }

  int listen_fd_ = -1;
  unsigned port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

}  // namespace fake_mariadb
