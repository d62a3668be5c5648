// maildir_writer.hpp - Maildir delivery that never loses or half-writes a message.
//
// For each target: create missing directories (maildir root, cur/new/tmp; for a folder
// also the Maildir++ ".folder" dir and its maildirfolder file) owned by the target's
// uid/gid; create tmp/<unique> with O_CREAT|O_EXCL|O_NOFOLLOW and the configured mode;
// write headers + body; fsync; move into new/<unique>,S=<size> (link/rename, never
// replacing a file); fsync new/. Only then is the target's outcome `saved`.
// Targets on the same filesystem with the same uid/gid share one written file by hard
// links: the content is written and fsynced once. A crash leaves at most files in tmp/.
// Names are Dovecot-style <sec>.M<usec>P<pid>Q<n>R<random>.<host>, unique across threads
// and processes. When running as root, files and directories are chowned to the target's
// owner; otherwise they are created as the daemon's user.
// Thread-safe: deliveries run on workers.
#pragma once

#include "lmtpd/message_spool.hpp"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::lmtpd {

struct MaildirTarget {
  std::string maildir;  // absolute maildir root (INBOX), e.g. /var/mail/vhosts/example.com/alice/Maildir
  std::string folder;   // empty = INBOX; else a Maildir++ folder name ("tag" -> <maildir>/.tag)
  uid_t uid = 0;
  gid_t gid = 0;
  std::optional<uint64_t> quota_bytes;  // Maildir++ maildirsize limit; nullopt/0 = none
};

struct MaildirOptions {
  unsigned file_mode = 0600;
  unsigned dir_mode = 0700;
  std::string hostname;       // for file names; '/' and ':' are escaped
  bool quota_full_tempfail = false;
};

struct DeliveryOutcome {
  enum class Kind { saved, over_quota, disk_full, failed };
  Kind kind = Kind::failed;
  std::string filename;  // saved: the name in new/
  std::string error;     // for the log and the reply text
};

// headers: the prepended header block (LF line endings), the same for every target.
std::vector<DeliveryOutcome> deliver_to_maildirs(const std::vector<MaildirTarget>& targets, std::string_view headers,
                                                 const MessageSpool& body, const MaildirOptions& options);

// Whether `size` more bytes fit the target's quota (reads maildirsize, computing it
// from the maildir when it is missing). true when there is no quota. For RCPT-time checks.
bool maildir_quota_allows(const MaildirTarget& target, uint64_t size);

// True if path is absolute and has no "." or ".." component (and no NUL). Deliveries to
// other paths fail with "unsafe path".
bool maildir_path_is_safe(const std::string& path);

// True if the Maildir++ folder exists under maildir (for lmtp_save_to_detail_mailbox).
bool maildir_folder_exists(const std::string& maildir, const std::string& folder);

}  // namespace postern::lmtpd
