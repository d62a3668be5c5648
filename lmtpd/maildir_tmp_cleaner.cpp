// maildir_tmp_cleaner.cpp - see maildir_tmp_cleaner.hpp.
#include "lmtpd/maildir_tmp_cleaner.hpp"

#include "common/log.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <unordered_map>

namespace postern::lmtpd {
namespace {

constexpr std::time_t kStaleSeconds = 36 * 3600;
constexpr auto kInterval = std::chrono::hours(1);

std::mutex g_mutex;
std::unordered_map<std::string, std::chrono::steady_clock::time_point> g_last_clean;

bool due(const std::string& mailbox) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(g_mutex);
  auto [it, fresh] = g_last_clean.try_emplace(mailbox, now);
  if (!fresh && now - it->second < kInterval) return false;
  it->second = now;
  return true;
}

}  // namespace

int clean_stale_tmp(int tmp_dir_fd, const std::string& mailbox) {
  if (!due(mailbox)) return 0;
  // fdopendir takes the descriptor over; the caller keeps its own.
  int fd = dup(tmp_dir_fd);
  if (fd < 0) return 0;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return 0;
  }
  std::time_t cutoff = std::time(nullptr) - kStaleSeconds;
  int removed = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    struct stat st {};
    if (fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    // atime too: the spec's "not accessed for 36 hours", so a slow delivery is never cut.
    if (st.st_mtime >= cutoff || st.st_atime >= cutoff) continue;
    if (unlinkat(fd, entry->d_name, 0) == 0) ++removed;
  }
  closedir(dir);
  if (removed > 0) log_info("maildir {}: removed {} stale file(s) from tmp/", mailbox, removed);
  return removed;
}

}  // namespace postern::lmtpd
