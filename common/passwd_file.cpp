// passwd_file.cpp - Dovecot passwd-file args and reader (contract: common/passwd_file.hpp).
// Follows Dovecot 2.3 src/auth/db-passwd-file.c and passdb-/userdb-passwd-file.c: args
// syntax, line format, first-entry-wins, re-read on change.
#include "common/passwd_file.hpp"

#include "common/dovecot_template.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern {
namespace {

constexpr auto kCheckInterval = std::chrono::seconds(1);
constexpr size_t kMaxFileBytes = 256 * 1024 * 1024;

// A stored crypt string ($1$, $5$, $6$, $2y$, $argon2id$...) only ever holds these. Seed 004
// printed its users.db with a stray markdown backtick after the hash; such a line can never
// verify, so it is refused loudly instead of failing every login quietly.
// Only crypt-style values are checked: a {PLAIN} password may hold anything.
bool plausible_crypt(std::string_view password) {
  if (!password.empty() && password.front() == '{') {
    size_t close = password.find('}');
    if (close == std::string_view::npos) return true;
    std::string_view scheme = password.substr(1, close - 1);
    bool crypt_family = scheme.size() >= 5 && iequals(scheme.substr(scheme.size() - 5), "CRYPT");
    if (!crypt_family) return true;
    password.remove_prefix(close + 1);
  }
  if (password.empty() || password.front() != '$') return true;
  for (char c : password) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("./$=,+-").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string_view> split_colons(std::string_view line) {
  std::vector<std::string_view> out;
  for (size_t pos = 0;;) {
    size_t colon = line.find(':', pos);
    out.push_back(line.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos));
    if (colon == std::string_view::npos) return out;
    pos = colon + 1;
  }
}

// libpam-pwdfile's "hash[NN]" suffix, which Dovecot also reads: 34 = MD5, 56 =
// DIGEST-MD5, anything else crypt().
std::string legacy_suffix_to_scheme(std::string pw) {
  size_t n = pw.size();
  if (n > 4 && pw[0] != '{' && pw[0] != '$' && pw[n - 1] == ']' && pw[n - 4] == '[') {
    std::string type = pw.substr(n - 3, 2);
    pw.resize(n - 4);
    pw = (type == "34" ? "{PLAIN-MD5}" : type == "56" ? "{DIGEST-MD5}" : "{CRYPT}") + pw;
  }
  return pw;
}

PasswdFileUsers parse_users(std::string_view text, const std::string& path) {
  PasswdFileUsers users;
  std::vector<std::string_view> lines = split_lines(text);
  for (size_t n = 0; n < lines.size(); ++n) {
    std::string_view line = lines[n];
    int lineno = static_cast<int>(n) + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view body = trim(line);
    if (body.empty() || body.front() == '#' || line.front() == ':') continue;
    std::vector<std::string_view> f = split_colons(line);
    std::string name(f[0]);
    PasswdFileEntry entry;
    if (f.size() > 1) {
      std::string pw = legacy_suffix_to_scheme(std::string(f[1]));
      if (!plausible_crypt(pw)) {
        log_warning("passwd-file {} line {}: user {}: the password field holds a character no crypt hash "
                    "contains (a stray quote or backtick?); line ignored",
                    path, lineno, name);
        continue;
      }
      entry.password = std::move(pw);
    }
    if (f.size() > 2) entry.uid = std::string(f[2]);
    if (f.size() > 3) entry.gid = std::string(f[3]);
    if (f.size() > 5) entry.home = std::string(f[5]);
    if (f.size() > 7) {
      std::string extra;
      for (size_t i = 7; i < f.size(); ++i) extra += (i > 7 ? ":" : "") + std::string(f[i]);
      entry.extra = split_list(extra, " ");
    }
    if (users.count(name)) {
      log_warning("passwd-file {} line {}: user {} exists more than once; the first entry is used", path, lineno, name);
      continue;
    }
    users.emplace(std::move(name), std::move(entry));
  }
  return users;
}

}  // namespace

Result<PasswdFileArgs> parse_passwd_file_args(std::string_view args, std::string_view default_scheme) {
  PasswdFileArgs out{std::string(default_scheme), "%u", ""};
  std::string_view rest = trim(args);
  while (!rest.empty() && rest.front() != '/') {
    size_t end = rest.find_first_of(" \t");
    std::string_view word = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : trim(rest.substr(end));
    size_t eq = word.find('=');
    std::string_view name = word.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : word.substr(eq + 1);
    if (name == "scheme") {
      out.scheme = std::string(value);
    } else if (name == "username_format") {
      out.username_format = std::string(value);
    } else {
      return Error{fmt::format("passwd-file args \"{}\": unknown setting \"{}\" (the file path must be absolute)",
                               args, name)};
    }
  }
  if (rest.empty()) return Error{fmt::format("passwd-file args \"{}\": no file path given", args)};
  if (out.scheme.empty()) return Error{fmt::format("passwd-file args \"{}\": empty scheme=", args)};
  if (out.username_format.empty()) return Error{fmt::format("passwd-file args \"{}\": empty username_format=", args)};
  if (Status st = check_dovecot_template(out.username_format); !st)
    return Error{fmt::format("passwd-file args: username_format: {}", st.error().message)};
  // Dovecot can keep one file per domain (/etc/dovecot/%d/passwd); postern reads one file.
  if (rest.find('%') != std::string_view::npos)
    return Error{fmt::format("passwd-file args \"{}\": variables in the file path are not supported", args)};
  out.path = std::string(rest);
  return out;
}

PasswdFile::PasswdFile(std::string path) : path_(std::move(path)) {
  std::lock_guard lock(mutex_);
  refresh_locked(std::chrono::steady_clock::now());
}

PasswdFile::Snapshot PasswdFile::snapshot() {
  // A re-read happens under the lock, so other workers wait for it once a second at
  // most; they then share the new map through the shared_ptr without copying it.
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  if (now - last_check_ >= kCheckInterval) refresh_locked(now);
  return current_locked();
}

std::optional<PasswdFile::Snapshot> PasswdFile::snapshot_if_fresh() {
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || std::chrono::steady_clock::now() - last_check_ >= kCheckInterval) return std::nullopt;
  return current_locked();
}

PasswdFile::Snapshot PasswdFile::current_locked() const { return Snapshot{users_, users_ ? std::string() : error_}; }

void PasswdFile::refresh_locked(std::chrono::steady_clock::time_point now) {
  last_check_ = now;
  auto stamp_of = [](const struct stat& st) {
    return Stamp{st.st_dev, st.st_ino, st.st_size, static_cast<long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec};
  };
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) return fail_locked(fmt::format("stat: {}", std::strerror(errno)));
  if (users_ && stamp_of(st) == stamp_) return;
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_locked(fmt::format("cannot open: {}", std::strerror(errno)));
  std::string text;
  std::string problem;
  if (::fstat(fd, &st) != 0) problem = std::strerror(errno);
  else if (!S_ISREG(st.st_mode)) problem = "not a regular file";
  while (problem.empty()) {
    char chunk[16384];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) problem = std::string("read error: ") + std::strerror(errno);
    if (n <= 0) break;
    text.append(chunk, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) problem = "file too large";
  }
  ::close(fd);
  if (!problem.empty()) return fail_locked(problem);
  // The stamp is the one fstat saw before reading: a write that lands during the read
  // changes size or mtime, and the next check reads the file again.
  auto users = std::make_shared<const PasswdFileUsers>(parse_users(text, path_));
  if (users_) log_info("passwd-file({}): re-read, {} users", path_, users->size());
  users_ = std::move(users);
  stamp_ = stamp_of(st);
  error_.clear();
}

void PasswdFile::fail_locked(const std::string& why) {
  std::string message = fmt::format("passwd-file({}): {}", path_, why);
  if (message != error_) log_error("{}", message);  // once per distinct problem
  error_ = std::move(message);
  users_.reset();
  stamp_ = Stamp{};
}

}  // namespace postern
