// ceiling_server.cpp - the "limit" column of tests/bench: a socketmap server on a unix
// socket that answers "OK 1" to every complete netstring without looking at it. One
// blocking thread per connection, the least work a socketmap server can do; stops on
// SIGTERM. A benchmark tool, not part of postern.
//   bench_ceiling_server /path/to/socket
#include "bare_server.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

void serve(int fd, unsigned long) {
  static constexpr char kReply[] = "4:OK 1,";
  std::vector<char> buf(65536);
  size_t have = 0;
  for (;;) {
    ssize_t n = read(fd, buf.data() + have, buf.size() - have);
    if (n <= 0) break;
    have += static_cast<size_t>(n);
    size_t pos = 0;
    // Every complete "<len>:<bytes>," gets one reply; pipelined requests are fine.
    for (;;) {
      void* colon = std::memchr(buf.data() + pos, ':', have - pos);
      if (colon == nullptr) break;
      size_t len = std::strtoul(buf.data() + pos, nullptr, 10);
      size_t end = static_cast<size_t>(static_cast<char*>(colon) - buf.data()) + 1 + len + 1;
      if (end > have) break;
      pos = end;
      if (write(fd, kReply, sizeof kReply - 1) < 0) {
        close(fd);
        return;
      }
    }
    std::memmove(buf.data(), buf.data() + pos, have - pos);
    have -= pos;
    if (have == buf.size()) break;  // a request larger than the buffer: give up
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  return bench::serve_unix_socket("bench_ceiling_server", argv[1], serve);
}
