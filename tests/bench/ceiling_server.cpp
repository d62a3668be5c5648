// ceiling_server.cpp - the "limit" column of tests/bench: a socketmap server on a unix
// socket that answers "OK 1" to every complete netstring without looking at it. One
// blocking thread per connection, the least work a socketmap server can do; stops on
// SIGTERM. A benchmark tool, not part of postern.
//   bench_ceiling_server /path/to/socket
#include "bare_server.hpp"

#include <unistd.h>

#include <string_view>

namespace {

void serve(int fd, unsigned long) {
  bench::NetstringReader requests(fd, 100000);
  std::string_view request;
  while (requests.next(&request) && bench::send_all(fd, "4:OK 1,")) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  return bench::serve_unix_socket("bench_ceiling_server", argv[1], serve);
}
