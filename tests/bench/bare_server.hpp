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

// Lines of one connection, without their LF or CRLF.
class LineReader {
 public:
  LineReader(int fd, size_t max_line) : fd_(fd), max_line_(max_line) {}

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
      if (buffer_.size() - start_ > max_line_) return false;
      buffer_.erase(0, start_);
      start_ = 0;
      char chunk[65536];
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  size_t max_line_;
  std::string buffer_;
  size_t start_ = 0;
};

// Listens on path (mode 0666) and runs serve(fd, n) on a new detached thread for the n-th
// connection (from 1); serve closes fd. Returns 1 if the socket cannot be made; else runs
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
    std::thread(serve, fd, n).detach();
  }
}

}  // namespace bench
