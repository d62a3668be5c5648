// maildir_quota.hpp - Maildir++ quota: the `maildirsize` file of Dovecot's "maildir" backend.
//
// Internal to lmtpd's Maildir writer. Format: first line "<bytes>S[,<count>C]" (the
// limits), then delta lines "<bytes> <count>". Usage is the sum of the deltas. The file is
// recomputed (by scanning cur/ and new/ of the root and of every .folder) and replaced via
// temp file + rename when it is missing, unreadable as a whole, too large, or when its limit
// line differs from the configured limit. Deltas are appended with O_APPEND in one write,
// which Dovecot's reader tolerates without locking.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace postern::lmtpd::maildir {

struct QuotaUsage {
  uint64_t bytes = 0;
  uint64_t messages = 0;
};

// Sums message sizes (",S=" in the name, else the file size) in cur/ and new/ of root and
// of each Maildir++ folder root/.*/.
QuotaUsage scan_usage(const std::string& root);

struct QuotaState {
  QuotaUsage usage;
  int write_error = 0;  // errno if maildirsize had to be rewritten and could not be
};

// Current usage of root under `limit_bytes` (> 0). Rewrites maildirsize when needed (see
// above), owned by uid/gid when running as root. The usage is valid even if the rewrite
// failed (then computed by scanning).
QuotaState load_quota(const std::string& root, uint64_t limit_bytes, uid_t uid, gid_t gid);

// Appends "<bytes> <count>\n" to root/maildirsize in one O_APPEND write. A missing file
// is left missing (the next load recomputes it, new message included). Returns 0 or errno.
int append_quota_delta(const std::string& root, int64_t bytes, int64_t count);

}  // namespace postern::lmtpd::maildir
