// maildir_name.hpp - unique Maildir file names, and claiming a name in a directory.
//
// Internal to lmtpd's Maildir writer. Names follow Dovecot:
//   <sec>.M<usec>P<pid>Q<counter>R<8 hex random>.<escaped host>
// (sec,usec) never repeats or goes backwards within the process; Q is a process-wide
// counter; P is read at each call, so a forked child never shares names with its parent.
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace postern::lmtpd::maildir {

// Maildir spec: '/' -> "\057", ':' -> "\072" (both would break the name's structure).
std::string escape_hostname(std::string_view host);

// The host part to use: `configured` if not empty, else gethostname(); escaped.
std::string local_hostname(std::string_view configured);

// A base name never returned before by this process. escaped_host as from escape_hostname.
std::string unique_base_name(std::string_view escaped_host);

// The name in new/: "<base>,S=<size>". No W=: it must be exact or absent (Dovecot trusts it).
std::string final_name(std::string_view base, uint64_t size);

// Creates dir_fd/name with O_CREAT|O_EXCL|O_NOFOLLOW and exactly `mode` (fchmod after
// create, so the umask does not matter). An existing file or symlink is never opened.
// Returns the fd, or -errno.
int create_exclusive_at(int dir_fd, const std::string& name, unsigned mode);

}  // namespace postern::lmtpd::maildir
