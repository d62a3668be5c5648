// maildir_tmp_file.cpp - MaildirTmpFile (contract: lmtpd/maildir_tmp_file.hpp).
#include "lmtpd/maildir_tmp_file.hpp"

#include "lmtpd/maildir_name.hpp"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace postern::lmtpd {

namespace {

// EEXIST retries: names are unique by construction, so repeated collisions mean trouble.
constexpr int kNameAttempts = 16;

// An unnamed file gets a name by linking its /proc/self/fd entry (linkat with
// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH); without /proc it cannot get one.
bool proc_fd_links_work() {
  static const bool works = access("/proc/self/fd", X_OK) == 0;
  return works;
}

int rename_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  if (renameat2(from_dir, from.c_str(), to_dir, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  // Filesystems without RENAME_NOREPLACE: link() refuses to replace as well.
  if (linkat(from_dir, from.c_str(), to_dir, to.c_str(), 0) != 0) return errno;
  unlinkat(from_dir, from.c_str(), 0);
  return 0;
}

}  // namespace

int MaildirTmpFile::create(int tmp_dir_fd, unsigned mode, bool allow_unnamed, const std::string& escaped_host) {
  discard();
  tmp_dir_fd_ = tmp_dir_fd;
  name_.clear();
  if (allow_unnamed && proc_fd_links_work()) {
    int fd = openat(tmp_dir_fd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, mode);
    if (fd >= 0) {
      fd_ = UniqueFd(fd);
      state_ = State::unnamed;
      if (fchmod(fd, mode) != 0) {  // the umask filtered open()'s mode
        int err = errno;
        discard();
        return err;
      }
      return 0;
    }
    // EOPNOTSUPP: this filesystem has no O_TMPFILE; EISDIR: this kernel has none.
    if (errno != EOPNOTSUPP && errno != EISDIR) return errno;
  }
  int fd_or_err = -EEXIST;
  for (int i = 0; i < kNameAttempts && fd_or_err == -EEXIST; ++i) {
    name_ = maildir::unique_base_name(escaped_host);
    fd_or_err = maildir::create_exclusive_at(tmp_dir_fd, name_, mode);
  }
  if (fd_or_err < 0) return -fd_or_err;
  fd_ = UniqueFd(fd_or_err);
  state_ = State::in_tmp;
  return 0;
}

std::string MaildirTmpFile::describe() const { return name_.empty() ? "unnamed file in tmp/" : "tmp/" + name_; }

int MaildirTmpFile::finish_writing() { return state_ == State::in_tmp ? fd_.close_checked() : 0; }

int MaildirTmpFile::link_into(int new_dir_fd, const std::string& name) {
  if (state_ == State::unnamed) {
    std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
    return linkat(AT_FDCWD, self.c_str(), new_dir_fd, name.c_str(), AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
  }
  if (state_ != State::in_tmp) return EBADF;
  return linkat(tmp_dir_fd_, name_.c_str(), new_dir_fd, name.c_str(), 0) == 0 ? 0 : errno;
}

int MaildirTmpFile::move_into(int new_dir_fd, const std::string& name) {
  if (state_ != State::in_tmp) return link_into(new_dir_fd, name);
  int err = rename_noreplace(tmp_dir_fd_, name_, new_dir_fd, name);
  if (err == 0) state_ = State::moved;
  return err;
}

void MaildirTmpFile::discard() {
  if (state_ == State::in_tmp) unlinkat(tmp_dir_fd_, name_.c_str(), 0);
  fd_.reset();
  state_ = State::none;
}

}  // namespace postern::lmtpd
