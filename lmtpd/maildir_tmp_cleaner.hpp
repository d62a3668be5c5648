// maildir_tmp_cleaner.hpp - removes what crashed deliveries left in tmp/.
//
// A delivery cut short (kill -9, power loss) leaves its file in tmp/, never in new/. The
// Maildir spec lets writers delete tmp/ files not touched for 36 hours, and Dovecot does
// so when it syncs; lmtpd does it too, at most once an hour per mailbox, so a maildir
// that no IMAP client opens does not collect them forever. Thread-safe.
#pragma once

#include <string>

namespace postern::lmtpd {

// tmp_dir_fd: an open tmp/ directory; mailbox names it for the rate limit and the log.
// Returns how many files were removed.
int clean_stale_tmp(int tmp_dir_fd, const std::string& mailbox);

}  // namespace postern::lmtpd
