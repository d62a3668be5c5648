// ceiling_server.cpp - the "limit" column of tests/bench: a socketmap server on a unix
// socket that answers "OK 1" to every complete netstring without looking at it. One
// blocking thread per connection, the least work a socketmap server can do; stops on
// SIGTERM. A benchmark tool, not part of postern.
//   bench_ceiling_server /path/to/socket
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

void serve(int fd) {
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
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || listen(lfd, 64) < 0) return 1;
  chmod(argv[1], 0666);
  std::signal(SIGPIPE, SIG_IGN);
  for (;;) {
    int fd = accept(lfd, nullptr, nullptr);
    if (fd < 0) continue;
    std::thread(serve, fd).detach();
  }
}
