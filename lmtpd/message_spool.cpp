// message_spool.cpp - MessageSpool: the DATA section, dot-unstuffed, LF-terminated,
// in memory up to a limit and then in an unlinked temp file; copied out per recipient.
#include "lmtpd/message_spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

namespace postern::lmtpd {
namespace {

// Once spilled, lines are gathered into writes of about this size.
constexpr size_t kFlushSize = 64 * 1024;
// pread/write fallback chunk in write_to().
constexpr size_t kCopyChunk = 256 * 1024;

// Writes all of [data, data+len) to fd at its current offset. Returns 0 or errno.
int write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // a regular file or pipe never legitimately writes 0
    data += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

}  // namespace

MessageSpool::MessageSpool(std::string temp_dir, size_t memory_limit, uint64_t max_size)
    : temp_dir_(std::move(temp_dir)), memory_limit_(memory_limit), max_size_(max_size) {}

MessageSpool::~MessageSpool() {
  if (fd_ >= 0) ::close(fd_);
}

MessageSpool::Status MessageSpool::add_line(std::string_view line) {
  if (status_ != Status::more) return status_;  // the final dot has been seen
  if (line == ".") {
    if (!overflow_ && error_.empty() && fd_ >= 0) flush_pending();
    if (!error_.empty())
      status_ = Status::io_error;
    else if (overflow_)
      status_ = Status::too_large;
    else
      status_ = Status::done;
    return status_;
  }
  // RFC 5321 §4.5.2: the client doubled every leading dot; remove one.
  if (!line.empty() && line.front() == '.') line.remove_prefix(1);
  if (overflow_ || !error_.empty()) return Status::more;  // discard to the final dot

  uint64_t added = line.size() + 1;
  if (max_size_ > 0 && size_ + added > max_size_) {
    overflow_ = true;
    memory_.clear();
    memory_.shrink_to_fit();
    return Status::more;
  }
  if (fd_ < 0 && memory_.size() + added > memory_limit_) {
    if (spill_to_file() != Status::more) return Status::more;
  }
  memory_.append(line);
  memory_ += '\n';
  size_ += added;
  ++lines_;
  if (fd_ >= 0 && memory_.size() >= kFlushSize) flush_pending();
  return Status::more;
}

// Moves the in-memory content to a temp file that has no name, so nothing is left
// behind after a crash. O_TMPFILE needs filesystem support; otherwise mkstemp + unlink.
MessageSpool::Status MessageSpool::spill_to_file() {
  int fd = ::open(temp_dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    std::string path = temp_dir_ + "/lmtpd-spool.XXXXXX";
    fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd >= 0 && ::unlink(path.c_str()) != 0) {
      int err = errno;
      ::close(fd);
      errno = err;
      fd = -1;
    }
  }
  if (fd < 0) {
    error_ = errno_text(("temp file in " + temp_dir_).c_str(), errno);
    memory_.clear();
    memory_.shrink_to_fit();
    return Status::io_error;
  }
  fd_ = fd;
  if (!flush_pending()) return Status::io_error;
  return Status::more;
}

// Appends the pending buffer to the temp file. The receiving thread is the only user
// of the file offset; readers use pread with explicit offsets.
bool MessageSpool::flush_pending() {
  int err = write_all(fd_, memory_.data(), memory_.size());
  memory_.clear();
  if (err != 0) {
    error_ = errno_text("temp file write", err);
    memory_.shrink_to_fit();
    return false;
  }
  if (memory_.capacity() > 2 * kFlushSize) memory_.shrink_to_fit();
  return true;
}

int MessageSpool::write_to(int fd) const {
  if (status_ != Status::done) return EINVAL;
  if (fd_ < 0) return write_all(fd, memory_.data(), memory_.size());

  // Kernel-side copy first: explicit source offsets keep concurrent callers apart.
  loff_t off = 0;
  const auto total = static_cast<loff_t>(size_);
  while (off < total) {
    ssize_t n = ::copy_file_range(fd_, &off, fd, nullptr, static_cast<size_t>(total - off), 0);
    if (n > 0) continue;  // off was advanced by the kernel
    if (n == 0) return EIO;  // the temp file is shorter than what we stored
    if (errno == EINTR) continue;
    // Pipes, older kernels, cross-device copies: fall back to pread + write from where
    // the kernel stopped (fd's offset has moved by exactly what was copied).
    if (errno == EINVAL || errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
        errno == EBADF)
      break;
    return errno;
  }
  if (off >= total) return 0;

  auto buf = std::make_unique<char[]>(kCopyChunk);
  while (off < total) {
    size_t want = static_cast<size_t>(std::min<loff_t>(total - off, kCopyChunk));
    ssize_t n = ::pread(fd_, buf.get(), want, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    if (int err = write_all(fd, buf.get(), static_cast<size_t>(n)); err != 0) return err;
    off += n;
  }
  return 0;
}

}  // namespace postern::lmtpd
