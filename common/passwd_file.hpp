// passwd_file.hpp - Dovecot's passwd-file: its args string and its file, re-read when it
// changes. Shared by authd (passdb) and lmtpd (userdb, user check).
//
// Args (passdb-/userdb-passwd-file.c): name=value words (scheme=, username_format=) up
// to the first word starting with '/'; the rest is the absolute path (spaces allowed).
// Variables in the path (one file per domain) are refused.
// Lines: user:password:uid:gid:gecos:home:shell:extra_fields, trailing fields optional.
// Blank lines and lines starting with '#' or ':' are skipped; the first entry for a user
// wins; the extra fields are everything after the shell, colons included, split on
// spaces. A crypt-style password ($...) holding a character no crypt hash has (seed 004's
// stray backtick) makes the line ignored, with a warning.
// Thread-safe: snapshot() may be called from any worker.
#pragma once

#include "common/result.hpp"

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace postern {

struct PasswdFileArgs {
  std::string scheme;           // scheme=, else the caller's default
  std::string username_format;  // username_format=, default "%u" (checked as a template)
  std::string path;
};

Result<PasswdFileArgs> parse_passwd_file_args(std::string_view args, std::string_view default_scheme = "CRYPT");

struct PasswdFileEntry {
  std::optional<std::string> password;  // absent: a line with the user name only
  std::string uid;                      // fields as written; empty when absent
  std::string gid;
  std::string home;
  std::vector<std::string> extra;  // "key=value" or "key" words from field 8 on
};
using PasswdFileUsers = std::unordered_map<std::string, PasswdFileEntry>;

class PasswdFile {
 public:
  // Reads the file now. A file that cannot be read yet is logged, not fatal: snapshot()
  // reports the error until the file can be read.
  explicit PasswdFile(std::string path);

  struct Snapshot {
    std::shared_ptr<const PasswdFileUsers> users;  // null when the file cannot be read
    std::string error;                             // then why, naming the path
  };
  // The current contents; re-reads the file first when it changed (mtime, size, inode),
  // checked at most once a second. An unreadable file gives no users (never the last good
  // copy: removing the file must not keep old passwords working).
  Snapshot snapshot();
  // snapshot() without any file access or waiting: nullopt when a re-check is due, or
  // another thread holds the lock (it may be re-reading). For the event loop.
  std::optional<Snapshot> snapshot_if_fresh();
  const std::string& path() const { return path_; }

 private:
  struct Stamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    long mtime_sec = 0;
    long mtime_nsec = 0;
    bool operator==(const Stamp&) const = default;
  };
  void refresh_locked(std::chrono::steady_clock::time_point now);  // REQUIRES: mutex_ held
  Snapshot current_locked() const;  // REQUIRES: mutex_ held. The map, or the error without one
  void fail_locked(const std::string& why);                         // REQUIRES: mutex_ held

  const std::string path_;
  std::mutex mutex_;
  std::shared_ptr<const PasswdFileUsers> users_;
  Stamp stamp_;
  std::chrono::steady_clock::time_point last_check_{};
  std::string error_;
};

}  // namespace postern
