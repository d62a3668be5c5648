// maildir_name.cpp - unique Maildir names (<sec>.M<usec>P<pid>Q<n>R<rand>.<host>) and
// exclusive, symlink-refusing creation of a file under a directory fd.
#include "lmtpd/maildir_name.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>

namespace postern::lmtpd::maildir {

namespace {

struct NameClock {
  std::mutex mu;
  int64_t last_sec = 0;
  int64_t last_usec = -1;
  uint64_t counter = 0;
};

NameClock& name_clock() {
  static NameClock clock;
  return clock;
}

uint32_t random32() {
  uint32_t value = 0;
  // getrandom() with 4 bytes does not block once the pool is initialised; if it ever
  // fails, uniqueness still rests on (sec,usec,pid,Q) and the value is merely predictable.
  if (getrandom(&value, sizeof value, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof value)) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    value = static_cast<uint32_t>(ts.tv_nsec) ^ static_cast<uint32_t>(getpid() * 2654435761u);
  }
  return value;
}

}  // namespace

std::string escape_hostname(std::string_view host) {
  std::string out;
  out.reserve(host.size());
  for (char c : host) {
    if (c == '/')
      out += "\\057";
    else if (c == ':')
      out += "\\072";
    else
      out += c;
  }
  return out;
}

std::string local_hostname(std::string_view configured) {
  if (!configured.empty()) return escape_hostname(configured);
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return escape_hostname(buf);
}

std::string unique_base_name(std::string_view escaped_host) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t sec = now.tv_sec;
  int64_t usec = now.tv_nsec / 1000;
  uint64_t q = 0;
  {
    NameClock& clock = name_clock();
    std::lock_guard<std::mutex> lock(clock.mu);
    // Like Dovecot, force (sec,usec) forward so two names of this process never share it,
    // even when the wall clock steps back or two calls land in the same microsecond.
    if (sec < clock.last_sec || (sec == clock.last_sec && usec <= clock.last_usec)) {
      sec = clock.last_sec;
      usec = clock.last_usec + 1;
      if (usec >= 1000000) {
        ++sec;
        usec = 0;
      }
    }
    clock.last_sec = sec;
    clock.last_usec = usec;
    q = ++clock.counter;
  }
  char head[128];
  std::snprintf(head, sizeof head, "%lld.M%lldP%ldQ%lluR%08x.", static_cast<long long>(sec),
                static_cast<long long>(usec), static_cast<long>(getpid()), static_cast<unsigned long long>(q),
                random32());
  std::string name(head);
  name += escaped_host;
  return name;
}

std::string final_name(std::string_view base, uint64_t size) {
  std::string name(base);
  name += ",S=";
  name += std::to_string(size);
  return name;
}

int create_exclusive_at(int dir_fd, const std::string& name, unsigned mode) {
  int fd = openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  if (fchmod(fd, mode) != 0) {
    int err = errno;
    close(fd);
    unlinkat(dir_fd, name.c_str(), 0);
    return -err;
  }
  return fd;
}

}  // namespace postern::lmtpd::maildir
