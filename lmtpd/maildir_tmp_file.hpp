// maildir_tmp_file.hpp - a message file from its creation until it is in new/.
//
// Where the filesystem supports O_TMPFILE (ext4, xfs, btrfs, tmpfs) the file is created
// without a name on tmp/'s filesystem and gets its only names by linkat() into new/: no
// tmp/ entry is created and removed, nothing is renamed, and a crash before the link
// leaves nothing behind. Elsewhere (NFS, or without /proc) it is tmp/<unique name>, as
// the Maildir spec describes: hard-linked into other mailboxes' new/ and finally renamed
// into its own. Either way no reader ever sees it before it is complete and fsynced.
// Internal to lmtpd's Maildir writer.
#pragma once

#include "lmtpd/unique_fd.hpp"

#include <string>

namespace postern::lmtpd {

class MaildirTmpFile {
 public:
  MaildirTmpFile() = default;
  MaildirTmpFile(const MaildirTmpFile&) = delete;
  MaildirTmpFile& operator=(const MaildirTmpFile&) = delete;
  ~MaildirTmpFile() { discard(); }

  // Creates the file in tmp_dir_fd with exactly `mode`, unnamed if allow_unnamed and the
  // filesystem can. Returns 0 or an errno.
  int create(int tmp_dir_fd, unsigned mode, bool allow_unnamed, const std::string& escaped_host);
  int fd() const { return fd_.get(); }
  bool unnamed() const { return state_ == State::unnamed; }
  // For error messages: "tmp/<name>" or "unnamed file in tmp/".
  std::string describe() const;

  // After the content is written and fsynced: a named file is closed (close() errors
  // reported); an unnamed one stays open, since its descriptor is what links it.
  int finish_writing();
  // Adds new_dir_fd/name as a further name. Returns 0 or an errno (EEXIST: name taken).
  int link_into(int new_dir_fd, const std::string& name);
  // The last new/ entry: a named file is renamed there (never replacing a file) and
  // tmp/ no longer has it; an unnamed one is linked. Returns 0 or an errno.
  int move_into(int new_dir_fd, const std::string& name);
  // Removes what is left in tmp/ (nothing if unnamed or moved) and closes the file.
  void discard();

 private:
  enum class State { none, unnamed, in_tmp, moved };
  State state_ = State::none;
  UniqueFd fd_;
  int tmp_dir_fd_ = -1;
  std::string name_;  // the tmp/ name tried or taken; empty for an unnamed file
};

}  // namespace postern::lmtpd
