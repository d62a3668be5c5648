// bare_server.hpp - what the benches' bare servers share (bench_ceiling_server,
// bench_lmtp_bare_server, bench_auth_bare_server, bench_lookup_bare_server): a unix
// socket served by one blocking thread per connection, line reading and whole writes. The
// least a server can be, as a reference for postern's daemons under the same load.
// Benchmark code, not part of postern.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace bench {

// Writes all of text; false once the peer is gone.
inline bool send_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// What one connection sent and its reader has not taken yet.
class ReadBuffer {
 protected:
  explicit ReadBuffer(int fd) : fd_(fd) {}

  // Drops what was taken and reads more: false at EOF or on a read error.
  bool fill() {
    buffer_.erase(0, start_);
    start_ = 0;
    char chunk[65536];
    ssize_t n;
    do {
      n = ::read(fd_, chunk, sizeof chunk);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string buffer_;
  size_t start_ = 0;  // where what is not taken yet begins
};

// Lines of one connection, without their LF or CRLF.
class LineReader : ReadBuffer {
 public:
  LineReader(int fd, size_t max_line) : ReadBuffer(fd), max_line_(max_line) {}

  // False at EOF, on a read error or on a line longer than max_line.
  bool next(std::string* line) {
    for (;;) {
      size_t lf = buffer_.find('\n', start_);
      if (lf != std::string::npos) {
        size_t end = lf > start_ && buffer_[lf - 1] == '\r' ? lf - 1 : lf;
        line->assign(buffer_, start_, end - start_);
        start_ = lf + 1;
        return true;
      }
      if (buffer_.size() - start_ > max_line_ || !fill()) return false;
    }
  }

 private:
  size_t max_line_;
};

// Socketmap requests of one connection: netstrings, "<length>:<payload>,".
class NetstringReader : ReadBuffer {
 public:
  NetstringReader(int fd, size_t max_payload) : ReadBuffer(fd), max_payload_(max_payload) {}

  // The next payload, valid until the next call. False at EOF, on a read error or on a
  // malformed or over-long netstring.
  bool next(std::string_view* payload) {
    for (;;) {
      int got = take(payload);
      if (got != 0) return got > 0;
      if (!fill()) return false;
    }
  }

 private:
  static constexpr size_t kMaxDigits = 9;

  // 1: a payload taken; 0: incomplete; -1: malformed.
  int take(std::string_view* payload) {
    size_t colon = buffer_.find(':', start_);
    if (colon == std::string::npos) return buffer_.size() - start_ > kMaxDigits ? -1 : 0;
    if (colon == start_ || colon - start_ > kMaxDigits || buffer_.find_first_not_of("0123456789", start_) != colon)
      return -1;
    size_t length = std::stoul(buffer_.substr(start_, colon - start_));
    if (length > max_payload_) return -1;
    if (buffer_.size() < colon + 1 + length + 1) return 0;
    if (buffer_[colon + 1 + length] != ',') return -1;
    *payload = std::string_view(buffer_).substr(colon + 1, length);
    start_ = colon + 1 + length + 1;
    return 1;
  }

  size_t max_payload_;
};

// Listens on path (mode 0666) and runs serve(fd, n) on a new detached thread for the n-th
// connection (from 1), closing fd when serve returns. Returns 1 if the socket cannot be made; else runs
// until killed.
template <class Serve>
int serve_unix_socket(const char* tool, const char* path, Serve serve) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(lfd, 256) < 0) {
    std::fprintf(stderr, "%s: %s: %s\n", tool, path, std::strerror(errno));
    return 1;
  }
  ::chmod(path, 0666);  // clients that dropped root (postmap) can connect
  std::signal(SIGPIPE, SIG_IGN);
  for (unsigned long n = 1;; ++n) {
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::thread([serve, fd, n] {
      serve(fd, n);
      ::close(fd);
    }).detach();
  }
}

}  // namespace bench
