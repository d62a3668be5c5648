// maildir_quota.cpp - Maildir++ `maildirsize` reading, recomputation and delta appends,
// and maildir_quota_allows for RCPT-time checks.
#include "lmtpd/maildir_quota.hpp"

#include "lmtpd/maildir_name.hpp"
#include "lmtpd/maildir_writer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

namespace postern::lmtpd::maildir {

namespace {

// Dovecot reads maildirsize into a 5120-byte buffer and recomputes a larger file; doing
// the same keeps the file small for both readers.
constexpr size_t kMaxMaildirsize = 5120;

struct ParsedSize {
  uint64_t limit_bytes = 0;
  uint64_t limit_count = 0;
  int64_t bytes = 0;
  int64_t count = 0;
  size_t deltas = 0;
};

template <class T>
bool parse_number(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool parse_limits(std::string_view line, ParsedSize& p) {
  while (!line.empty()) {
    size_t comma = line.find(',');
    std::string_view item = line.substr(0, comma);
    if (item.size() < 2) return false;
    char unit = item.back();
    uint64_t value = 0;
    if (!parse_number(item.substr(0, item.size() - 1), value)) return false;
    if (unit == 'S')
      p.limit_bytes = value;
    else if (unit == 'C')
      p.limit_count = value;
    else
      return false;
    line = comma == std::string_view::npos ? std::string_view() : line.substr(comma + 1);
  }
  return true;
}

// False when the content is not a complete maildirsize (a torn last line counts as corrupt).
bool parse_maildirsize(std::string_view text, ParsedSize& p) {
  if (text.empty() || text.back() != '\n') return false;
  size_t eol = text.find('\n');
  if (!parse_limits(text.substr(0, eol), p)) return false;
  text.remove_prefix(eol + 1);
  while (!text.empty()) {
    eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    size_t space = line.find(' ');
    if (space == std::string_view::npos) return false;
    int64_t bytes = 0, count = 0;
    if (!parse_number(line.substr(0, space), bytes) || !parse_number(line.substr(space + 1), count)) return false;
    p.bytes += bytes;
    p.count += count;
    ++p.deltas;
  }
  return true;
}

// 0 and the content, or an errno value (ENOENT when missing, EFBIG when too large).
int read_maildirsize(const std::string& path, std::string& out) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[kMaxMaildirsize + 1];
  size_t total = 0;
  int err = 0;
  while (total < sizeof buf) {
    ssize_t n = read(fd, buf + total, sizeof buf - total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  close(fd);
  if (err != 0) return err;
  if (total > kMaxMaildirsize) return EFBIG;
  out.assign(buf, total);
  return 0;
}

uint64_t size_from_name(int dir_fd, const char* name) {
  // ",S=<n>" anywhere in the base name (before ":2,"), ended by ',' ':' or the end.
  std::string_view s(name);
  s = s.substr(0, s.find(':'));
  size_t pos = s.find(",S=");
  if (pos != std::string_view::npos) {
    std::string_view digits = s.substr(pos + 3);
    digits = digits.substr(0, digits.find(','));
    uint64_t value = 0;
    if (parse_number(digits, value)) return value;
  }
  struct stat st {};
  if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
    return static_cast<uint64_t>(st.st_size);
  return 0;
}

void scan_messages(const std::string& dir, QuotaUsage& usage) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;  // ".", ".." and hidden files are not messages
    usage.bytes += size_from_name(dirfd(d), e->d_name);
    ++usage.messages;
  }
  closedir(d);
}

std::string limits_line(uint64_t limit_bytes) { return std::to_string(limit_bytes) + "S\n"; }

int write_maildirsize(const std::string& root, uint64_t limit_bytes, const QuotaUsage& usage, uid_t uid,
                      gid_t gid) {
  std::string content = limits_line(limit_bytes);
  content += std::to_string(usage.bytes) + " " + std::to_string(usage.messages) + "\n";
  // The temp file goes to tmp/, which readers ignore and Dovecot cleans of stale files;
  // beside maildirsize when tmp/ does not exist yet (RCPT time, before any delivery).
  constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  std::string temp = root + "/tmp/" + unique_base_name("maildirsize");
  int fd = open(temp.c_str(), kFlags, 0600);
  if (fd < 0 && errno == ENOENT) {
    temp = root + "/maildirsize." + unique_base_name("tmp");
    fd = open(temp.c_str(), kFlags, 0600);
  }
  if (fd < 0) return errno;
  int err = 0;
  if (geteuid() == 0 && fchown(fd, uid, gid) != 0) err = errno;
  if (err == 0) {
    ssize_t n = write(fd, content.data(), content.size());
    if (n < 0)
      err = errno;
    else if (static_cast<size_t>(n) != content.size())
      err = ENOSPC;
  }
  if (close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && rename(temp.c_str(), (root + "/maildirsize").c_str()) != 0) err = errno;
  if (err != 0) unlink(temp.c_str());
  return err;
}

}  // namespace

QuotaUsage scan_usage(const std::string& root) {
  QuotaUsage usage;
  scan_messages(root + "/cur", usage);
  scan_messages(root + "/new", usage);
  DIR* d = opendir(root.c_str());
  if (d == nullptr) return usage;
  while (const dirent* e = readdir(d)) {
    std::string_view name(e->d_name);
    if (name.size() < 2 || name[0] != '.' || name == "..") continue;
    struct stat st {};
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
    scan_messages(root + "/" + e->d_name + "/cur", usage);
    scan_messages(root + "/" + e->d_name + "/new", usage);
  }
  closedir(d);
  return usage;
}

QuotaState load_quota(const std::string& root, uint64_t limit_bytes, uid_t uid, gid_t gid) {
  QuotaState state;
  std::string text;
  ParsedSize parsed;
  if (read_maildirsize(root + "/maildirsize", text) == 0 && parse_maildirsize(text, parsed) &&
      parsed.limit_bytes == limit_bytes && parsed.limit_count == 0) {
    uint64_t bytes = parsed.bytes < 0 ? 0 : static_cast<uint64_t>(parsed.bytes);
    // Like Dovecot: when the file says "over quota" after several deltas, trust a fresh
    // scan instead (expunges may have gone unrecorded) before refusing mail.
    if (!(bytes > limit_bytes && parsed.deltas > 1)) {
      state.usage.bytes = bytes;
      state.usage.messages = parsed.count < 0 ? 0 : static_cast<uint64_t>(parsed.count);
      return state;
    }
  }
  state.usage = scan_usage(root);
  state.write_error = write_maildirsize(root, limit_bytes, state.usage, uid, gid);
  return state;
}

int append_quota_delta(const std::string& root, int64_t bytes, int64_t count) {
  int fd = open((root + "/maildirsize").c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : errno;
  std::string line = std::to_string(bytes) + " " + std::to_string(count) + "\n";
  int err = 0;
  ssize_t n = write(fd, line.data(), line.size());  // one write: readers never see half a line
  if (n < 0)
    err = errno;
  else if (static_cast<size_t>(n) != line.size())
    err = ENOSPC;
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

}  // namespace postern::lmtpd::maildir

namespace postern::lmtpd {

bool maildir_quota_allows(const MaildirTarget& target, uint64_t size) {
  if (!target.quota_bytes || *target.quota_bytes == 0) return true;
  if (!maildir_path_is_safe(target.maildir)) return true;  // the delivery refuses it with a reason
  // At RCPT time the maildir may not exist yet: the scan then finds 0 bytes, and the
  // rewrite fails harmlessly (no tmp/), leaving directory creation to the delivery.
  maildir::QuotaState state = maildir::load_quota(target.maildir, *target.quota_bytes, target.uid, target.gid);
  return state.usage.bytes + size <= *target.quota_bytes;
}

}  // namespace postern::lmtpd
