// durable_file.hpp - the file work of one durable Maildir delivery, shared by the lmtp
// bench's limits (bench_fsync_ceiling, bench_lmtp_bare_server): create tmp/NAME
// (O_CREAT|O_EXCL), write the content, fsync, close, rename into new/NAME,S=SIZE, fsync
// new/. What a careful LMTP server does per message, with nothing around it. Benchmark
// code, not part of postern.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>

namespace bench {

// Returns false with errno set, leaving nothing in tmp/. On success *landed is the path in new/.
inline bool land_durably(const std::string& maildir, int new_fd, const std::string& name,
                         std::string_view content, std::string* landed) {
  std::string tmp = maildir + "/tmp/" + name;
  *landed = maildir + "/new/" + name + ",S=" + std::to_string(content.size());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = true;
  while (ok && !content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n >= 0)
      content.remove_prefix(static_cast<size_t>(n));
    else
      ok = errno == EINTR;
  }
  ok = ok && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  ok = ok && ::rename(tmp.c_str(), landed->c_str()) == 0;
  if (!ok) {
    int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
    return false;
  }
  return ::fsync(new_fd) == 0;
}

}  // namespace bench
