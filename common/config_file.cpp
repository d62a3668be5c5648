// config_file.cpp - reader for `key = value` files: the Postfix .cf dialect, the file reader
// both dialects share, and the getters. Contract and the Postfix dialect's rules:
// common/config_file.hpp; the Dovecot dialect is in config_file_dovecot.cpp.
#include "common/config_file.hpp"

#include "common/config_file_dialects.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern {

namespace {

// Config files are small; a larger one is almost certainly the wrong file.
constexpr size_t kMaxFileBytes = 16 * 1024 * 1024;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

// One logical line, remembered with the physical line it started on so that errors
// point at the line the admin has to edit.
struct Logical {
  std::string text;
  int line = 0;
};

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

}  // namespace

namespace config_detail {

Status read_config_text(const std::string& path, std::string* text, bool* open_failed) {
  // Plain POSIX I/O: an ifstream happily "opens" a directory and then reads nothing,
  // which would turn a typo in -c into an empty configuration.
  if (open_failed) *open_failed = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (open_failed) *open_failed = true;
    return Error{fmt::format("{}: cannot open: {}", path, std::strerror(errno))};
  }
  FdCloser closer{fd};
  std::string problem;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    problem = std::strerror(errno);
  } else if (S_ISDIR(st.st_mode)) {
    problem = "is a directory";
  } else {
    char chunk[8192];
    for (;;) {
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        problem = std::string("read error: ") + std::strerror(errno);
        break;
      }
      if (n == 0) break;
      text->append(chunk, static_cast<size_t>(n));
      if (text->size() > kMaxFileBytes) {
        problem = fmt::format("file is larger than {} bytes", kMaxFileBytes);
        break;
      }
    }
  }
  if (!problem.empty()) return Error{fmt::format("{}: {}", path, problem)};
  return Status::Ok();
}

}  // namespace config_detail

Result<ConfigFile> ConfigFile::load(const std::string& path, ConfigDialect dialect) {
  std::string text;
  if (Status st = config_detail::read_config_text(path, &text); !st) return st.error();
  return parse(text, path, dialect);
}

Result<ConfigFile> ConfigFile::parse(std::string_view text, std::string origin, ConfigDialect dialect) {
  ConfigFile cf;
  cf.origin_ = std::move(origin);
  if (dialect == ConfigDialect::dovecot) {
    std::vector<config_detail::DovecotSetting> settings;
    if (Status st = config_detail::parse_dovecot(text, cf.origin_, settings); !st) return st.error();
    for (config_detail::DovecotSetting& d : settings) {
      auto it = cf.entries_.find(d.key);
      if (it == cf.entries_.end()) {
        cf.order_.push_back(d.key);
        cf.entries_.emplace(std::move(d.key), Entry{std::move(d.value), d.line});
      } else {
        it->second = Entry{std::move(d.value), d.line};
      }
    }
    return cf;
  }

  // First pass: physical lines -> logical lines. Comment and blank lines vanish entirely,
  // so (as in Postfix) they do not end a logical line that continues after them.
  std::vector<Logical> logicals;
  std::vector<std::string_view> physical = split_lines(text);
  for (size_t i = 0; i < physical.size(); ++i) {
    std::string_view phys = physical[i];
    int lineno = static_cast<int>(i) + 1;
    if (phys.find('\0') != std::string_view::npos)
      return Error{fmt::format("{} line {}: NUL byte in line", cf.origin_, lineno)};
    std::string_view body = trim(phys);
    if (body.empty() || body.front() == '#') continue;
    if (is_blank(phys.front())) {
      if (logicals.empty())
        return Error{fmt::format("{} line {}: continuation line (starts with whitespace) without a preceding "
                                 "\"key = value\" line",
                                 cf.origin_, lineno)};
      logicals.back().text += ' ';
      logicals.back().text += body;
      continue;
    }
    logicals.push_back({std::string(body), lineno});
  }

  // Second pass: split each logical line into name and value.
  for (Logical& l : logicals) {
    size_t eq = l.text.find('=');
    if (eq == std::string::npos)
      // The text is not echoed: a mistyped "password secret" line must not reach a log.
      return Error{fmt::format("{} line {}: missing '=' (expected \"name = value\")", cf.origin_, l.line)};
    std::string_view key = trim(std::string_view(l.text).substr(0, eq));
    if (key.empty()) return Error{fmt::format("{} line {}: missing name before '='", cf.origin_, l.line)};
    for (char c : key)
      if (is_blank(c))
        return Error{fmt::format("{} line {}: whitespace inside the name before '='", cf.origin_, l.line)};
    std::string value(trim(std::string_view(l.text).substr(eq + 1)));
    auto it = cf.entries_.find(key);
    if (it == cf.entries_.end()) {
      cf.order_.emplace_back(key);
      cf.entries_.emplace(std::string(key), Entry{std::move(value), l.line});
    } else {
      it->second = Entry{std::move(value), l.line};
    }
  }
  return cf;
}

bool ConfigFile::has(std::string_view key) const { return entries_.find(key) != entries_.end(); }

const std::string* ConfigFile::find(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second.value;
}

std::string ConfigFile::get(std::string_view key, std::string_view fallback) const {
  const std::string* v = find(key);
  return v ? *v : std::string(fallback);
}

Result<long> ConfigFile::get_int(std::string_view key, long fallback, long min, long max) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  long n = 0;
  const char* b = v->data();
  const char* e = b + v->size();
  // from_chars rejects '+', people write it anyway; "+-1" must still fail.
  if (e - b >= 2 && b[0] == '+' && b[1] >= '0' && b[1] <= '9') ++b;
  auto [p, ec] = std::from_chars(b, e, n);
  if (v->empty() || ec != std::errc() || p != e || n < min || n > max)
    return Error{fmt::format("{} line {}: {}: expected an integer in [{}, {}], got \"{}\"", origin_, line_of(key), key,
                             min, max, *v)};
  return n;
}

Result<bool> ConfigFile::get_bool(std::string_view key, bool fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  if (iequals(*v, "yes") || iequals(*v, "true") || *v == "1") return true;
  if (iequals(*v, "no") || iequals(*v, "false") || *v == "0") return false;
  return Error{fmt::format("{} line {}: {}: expected yes/no/true/false/1/0, got \"{}\"", origin_, line_of(key), key, *v)};
}

Result<std::chrono::milliseconds> ConfigFile::get_duration(std::string_view key,
                                                           std::chrono::milliseconds fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  auto bad = [&] {
    return Error{fmt::format("{} line {}: {}: expected a duration such as 10, 10s, 500ms, 2m, 1h or 1d, got \"{}\"",
                             origin_, line_of(key), key, *v)};
  };
  std::string_view s = *v;
  size_t ndigits = 0;
  while (ndigits < s.size() && s[ndigits] >= '0' && s[ndigits] <= '9') ++ndigits;
  if (ndigits == 0) return bad();
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + ndigits, n);
  if (ec != std::errc() || p != s.data() + ndigits) return bad();
  std::string_view unit = s.substr(ndigits);
  std::uint64_t scale;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60 * 1000;
  else if (unit == "h") scale = 3600 * 1000;
  else if (unit == "d") scale = 86400 * 1000;
  else return bad();
  // Keep the product representable in milliseconds::rep (signed 64-bit).
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
  if (n > kMax / scale) return bad();
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(n * scale));
}

Result<unsigned> ConfigFile::get_mode(std::string_view key, unsigned fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  unsigned mode = 0;
  bool ok = !v->empty();
  for (char c : *v) {
    if (c < '0' || c > '7') {
      ok = false;
      break;
    }
    mode = mode * 8 + static_cast<unsigned>(c - '0');
    if (mode > 07777) {
      ok = false;
      break;
    }
  }
  if (!ok)
    return Error{fmt::format("{} line {}: {}: expected an octal file mode such as 0660 (at most 07777), got \"{}\"",
                             origin_, line_of(key), key, *v)};
  return mode;
}

Result<uint64_t> ConfigFile::get_size(std::string_view key, uint64_t fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  std::string text = to_lower_ascii(trim(*v));
  uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 't': multiplier <<= 10; [[fallthrough]];
      case 'g': multiplier <<= 10; [[fallthrough]];
      case 'm': multiplier <<= 10; [[fallthrough]];
      case 'k': multiplier <<= 10; [[fallthrough]];
      case 'b': text.pop_back(); break;
      default: break;
    }
  }
  bool ok = !text.empty() && text.size() <= 15 && text.find_first_not_of("0123456789") == std::string::npos;
  if (!ok)
    return Error{fmt::format("{} line {}: {}: expected a size such as 0, 512k, 10M or 1G, got \"{}\"", origin_,
                             line_of(key), key, *v)};
  return std::stoull(text) * multiplier;
}

std::vector<std::string> ConfigFile::keys() const { return order_; }

int ConfigFile::line_of(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.line;
}

Error ConfigFile::error(std::string_view key, std::string_view what) const {
  return Error{fmt::format("{} line {}: {}: {}", origin_, line_of(key), key, what)};
}

}  // namespace postern
