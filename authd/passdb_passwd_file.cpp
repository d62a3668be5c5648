// passdb_passwd_file.cpp - the passwd-file passdb (contract: authd/passdb.hpp,
// make_passwd_file_passdb). Follows Dovecot 2.3 src/auth/passdb-passwd-file.c and
// db-passwd-file.c: args syntax, line format, first-entry-wins, re-read on change.
#include "authd/passdb.hpp"

#include "authd/passdb_fields.hpp"
#include "common/dovecot_template.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern::authd {
namespace {

// passdb-passwd-file.c / db-passwd-file.h defaults.
constexpr std::string_view kDefaultScheme = "CRYPT";
constexpr std::string_view kDefaultUsernameFormat = "%u";
constexpr auto kCheckInterval = std::chrono::seconds(1);
constexpr size_t kMaxFileBytes = 256 * 1024 * 1024;

struct UserEntry {
  std::optional<std::string> password;  // absent: a line with the user name only
  std::vector<std::string> extra;       // "key=value" or "key" words from field 8 on
};
using UserMap = std::unordered_map<std::string, UserEntry>;

// What identifies one version of the file. Nanosecond mtime and the inode catch an
// in-place rewrite of the same size within a second and a rename over the file.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};
  bool operator==(const FileStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};
FileStamp stamp_of(const struct stat& st) { return {st.st_dev, st.st_ino, st.st_size, st.st_mtim}; }

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

// user:password:uid:gid:gecos:home:shell:extra_fields (db-passwd-file.c). Blank lines and
// lines starting with '#' or ':' are skipped. The extra fields are everything after the
// shell, colons included, split on spaces.
UserMap parse_users(std::string_view text, const std::string& path) {
  UserMap users;
  int lineno = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view body = trim(line);
    if (body.empty() || body.front() == '#' || line.front() == ':') continue;
    std::vector<std::string_view> f = split_colons(line);
    std::string name(f[0]);
    UserEntry entry;
    if (f.size() > 1) {
      std::string pw(f[1]);
      // libpam-pwdfile's "hash[NN]" suffix, which Dovecot also reads: 34 = MD5, 56 =
      // DIGEST-MD5, anything else crypt().
      size_t n = pw.size();
      if (n > 4 && pw[0] != '{' && pw[0] != '$' && pw[n - 1] == ']' && pw[n - 4] == '[') {
        std::string type = pw.substr(n - 3, 2);
        pw.resize(n - 4);
        pw = (type == "34" ? "{PLAIN-MD5}" : type == "56" ? "{DIGEST-MD5}" : "{CRYPT}") + pw;
      }
      if (!plausible_crypt(pw)) {
        log_warning("passwd-file {} line {}: user {}: the password field holds a character no crypt hash "
                    "contains (a stray quote or backtick?); line ignored",
                    path, lineno, name);
        continue;
      }
      entry.password = std::move(pw);
    }
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

class PasswdFilePassdb final : public Passdb {
 public:
  PasswdFilePassdb(std::string path, std::string scheme, std::string username_format)
      : path_(std::move(path)), scheme_(std::move(scheme)), format_(std::move(username_format)) {
    // A file that cannot be read yet is logged (by fail_locked) but not fatal: lookups
    // answer temp_error until it appears, and a reload does not take authd down.
    std::lock_guard lock(mutex_);
    refresh_locked(std::chrono::steady_clock::now());
  }

  PassdbLookup lookup(const PassdbRequest& request, WorkerContext&) override {
    PassdbLookup out;
    out.user = request.user;
    out.default_scheme = scheme_;
    std::shared_ptr<const UserMap> users;
    {
      // A re-read happens under the lock, so other workers wait for it once a second at
      // most; they then share the new map through the shared_ptr without copying it.
      std::lock_guard lock(mutex_);
      auto now = std::chrono::steady_clock::now();
      if (now - last_check_ >= kCheckInterval) refresh_locked(now);
      users = users_;
      if (!users) out.error = error_;
    }
    if (!users) {
      out.status = PassdbLookup::Status::temp_error;
      return out;
    }
    DovecotVars vars;
    vars.user = request.user;
    vars.service = request.service;
    vars.rip = request.rip;
    vars.lip = request.lip;
    auto key = expand_dovecot_template(format_, vars);
    if (!key) return temp_error(std::move(out), "username_format: " + key.error().message);
    // Exact, case-sensitive match, as Dovecot's hash of the file; %Lu in the format lowercases.
    auto it = users->find(*key);
    if (it == users->end()) {
      out.status = PassdbLookup::Status::not_found;
      return out;
    }
    out.status = PassdbLookup::Status::found;
    out.password = it->second.password;
    bool nopassword = false;
    for (const std::string& field : it->second.extra) {
      size_t eq = field.find('=');
      std::string name = field.substr(0, eq);
      std::string raw = eq == std::string::npos ? std::string() : field.substr(eq + 1);
      if (name == "nopassword") {
        nopassword = nopassword_value(raw);
      } else if (is_username_field(name)) {
        // Extra field values are expanded with the request's variables (passdb-passwd-file.c).
        auto value = expand_dovecot_template(raw, vars);
        if (!value) return temp_error(std::move(out), fmt::format("user {}: {}: {}", *key, name, value.error().message));
        std::string next = updated_username(out.user, name, *value);
        if (next.empty()) {
          // auth-request.c fails the request; without a password the caller rejects it.
          log_warning("{}: user {}: {} field makes the user name empty", describe(), *key, name);
          out.password.reset();
          return out;
        }
        out.user = std::move(next);
      }
    }
    if (nopassword && (!out.password || empty_password(*out.password))) {
      out.nopassword = true;
      out.password.reset();
    }
    return out;
  }

  std::string describe() const override { return fmt::format("passwd-file({})", path_); }

 private:
  PassdbLookup temp_error(PassdbLookup out, std::string why) const {
    out.status = PassdbLookup::Status::temp_error;
    out.password.reset();
    out.error = describe() + ": " + why;
    return out;
  }

  // REQUIRES: mutex_ held. Re-reads the file when its stamp changed.
  //
  // When the file cannot be read (removed, permissions, a directory) lookups answer
  // temp_error until it can, like Dovecot, instead of serving the last good copy: the file
  // is the only place an admin can lock an account, and removing or breaking it must not
  // leave old passwords working. A temporary failure closes the SASL connection (454), so
  // users with the right password are not told it is wrong meanwhile.
  void refresh_locked(std::chrono::steady_clock::time_point now) {
    last_check_ = now;
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
    auto users = std::make_shared<const UserMap>(parse_users(text, path_));
    if (users_) log_info("{}: re-read, {} users", describe(), users->size());
    users_ = std::move(users);
    stamp_ = stamp_of(st);
    error_.clear();
  }

  void fail_locked(const std::string& why) {
    std::string message = fmt::format("{}: {}", describe(), why);
    if (message != error_) log_error("{}", message);  // once per distinct problem
    error_ = std::move(message);
    users_.reset();
    stamp_ = FileStamp{};
  }

  const std::string path_;
  const std::string scheme_;
  const std::string format_;
  std::mutex mutex_;
  std::shared_ptr<const UserMap> users_;  // null while the file cannot be read
  FileStamp stamp_;
  std::chrono::steady_clock::time_point last_check_{};
  std::string error_;
};

}  // namespace

Result<std::unique_ptr<Passdb>> make_passwd_file_passdb(const std::string& args) {
  // passdb-passwd-file.c: name=value words until a word starting with '/'; the rest of
  // the string is the path (so it may contain spaces). Unknown names are errors.
  std::string scheme(kDefaultScheme);
  std::string format(kDefaultUsernameFormat);
  std::string_view rest = trim(args);
  while (!rest.empty() && rest.front() != '/') {
    size_t end = rest.find_first_of(" \t");
    std::string_view word = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : trim(rest.substr(end));
    size_t eq = word.find('=');
    std::string_view name = word.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : word.substr(eq + 1);
    if (name == "scheme") {
      scheme = std::string(value);
    } else if (name == "username_format") {
      format = std::string(value);
    } else {
      return Error{fmt::format("passwd-file args \"{}\": unknown setting \"{}\" (the file path must be absolute)",
                               args, name)};
    }
  }
  if (rest.empty()) return Error{fmt::format("passwd-file args \"{}\": no file path given", args)};
  if (scheme.empty()) return Error{fmt::format("passwd-file args \"{}\": empty scheme=", args)};
  if (format.empty()) return Error{fmt::format("passwd-file args \"{}\": empty username_format=", args)};
  if (Status st = check_dovecot_template(format); !st)
    return Error{fmt::format("passwd-file args: username_format: {}", st.error().message)};
  // Dovecot can keep one file per domain (/etc/dovecot/%d/passwd); postern reads one file.
  if (rest.find('%') != std::string_view::npos)
    return Error{fmt::format("passwd-file args \"{}\": variables in the file path are not supported", args)};
  return std::unique_ptr<Passdb>(
      std::make_unique<PasswdFilePassdb>(std::string(rest), std::move(scheme), std::move(format)));
}

}  // namespace postern::authd
