// config_file.cpp - reader for `key = value` files in the Postfix .cf dialect and in
// Dovecot's .conf.ext dialect (the rules of the latter are below, before parse_dovecot).
// Contract and the Postfix dialect's rules: common/config_file.hpp.
#include "common/config_file.hpp"

#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <glob.h>
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

// Reads a whole config file. open_failed (optional) tells !include_try apart from other
// problems: Dovecot ignores a file it cannot open there, but not one it cannot read.
Status read_config_text(const std::string& path, std::string* text, bool* open_failed = nullptr) {
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

// ---- Dovecot dialect -------------------------------------------------------------------
// Dovecot 2.3 reads dovecot-sql.conf.ext with settings_read_nosection() (src/lib-settings/
// settings.c, kept as settings-legacy.c in later trees). Its rules, which we follow:
//  - "white space" is only space and tab; leading white space is skipped, so indented
//    lines are ordinary lines (no Postfix-style continuation by indentation);
//  - a line whose first non-blank character is '#', or that is blank, is skipped; such a
//    line does NOT end a backslash continuation (the next real line still joins);
//  - elsewhere '#' starts a comment unless it is inside '...' or "..." (a backslash inside
//    quotes protects the next character). A '#' not preceded by white space is still a
//    comment; Dovecot warns about it, and so do we;
//  - trailing white space is removed; then a trailing '\' joins the next line: the
//    backslash and the white space before it are dropped and one space is inserted;
//  - "key = value": the key runs up to white space or '='; the value is trimmed; a value
//    that both starts and ends with " (or with ') loses the quotes, and inside them a
//    backslash keeps the next character literally (str_unescape);
//  - "!include PATH" / "!include_try PATH": PATH is relative to the including file's
//    directory and may be a glob (with {a,b}); !include_try ignores files it cannot open
//    or a glob without matches; an include cycle is an error;
//  - a later duplicate key wins; keys are case-sensitive.
// Differences, on purpose: sections ("name {" and "}") are refused (dovecot-sql.conf.ext
// has none and Dovecot would ignore them for this file); a file ending inside a backslash
// continuation is an error (Dovecot silently drops that line, e.g. a whole password_query);
// an unquoted "$ENV:" (later Dovecot versions expand it) is refused rather than kept as text.

constexpr int kMaxIncludeDepth = 16;

bool is_white(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_white(std::string_view s) {
  while (!s.empty() && is_white(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_white(s.back())) s.remove_suffix(1);
  return s;
}

struct DovecotSetting {
  std::string key;
  std::string value;
  int line = 0;
};

// Cuts a comment off the line, honouring quotes; warns about a '#' glued to a value.
std::string_view strip_comment(std::string_view line, const std::string& origin, int lineno) {
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < line.size() && line[j] != c) j += (line[j] == '\\' && j + 1 < line.size()) ? 2 : 1;
      if (j >= line.size()) return line;  // unbalanced quote: the rest is not scanned, as in Dovecot
      i = j;
    } else if (c == '#') {
      if (i > 0 && !is_white(line[i - 1]))
        log_warning("{} line {}: ambiguous '#' character in line, treating it as a comment; add a space "
                    "before it to remove this warning",
                    origin, lineno);
      return line.substr(0, i);
    }
  }
  return line;
}

std::string unescape_quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

bool has_env_reference(std::string_view value) {
  for (size_t p = value.find("$ENV:"); p != std::string_view::npos; p = value.find("$ENV:", p + 1))
    if (p == 0 || is_white(value[p - 1])) return true;
  return false;
}

std::string include_base(std::string_view pattern, const std::string& origin) {
  if (!pattern.empty() && pattern.front() == '/') return std::string(pattern);
  size_t slash = origin.rfind('/');
  if (slash == std::string::npos) return std::string(pattern);
  return origin.substr(0, slash + 1) + std::string(pattern);
}

Status parse_dovecot(std::string_view text, const std::string& origin, std::vector<std::string>& stack,
                     std::vector<DovecotSetting>& out);

Status include_files(std::string_view pattern, bool try_only, const std::string& origin, int lineno,
                     std::vector<std::string>& stack, std::vector<DovecotSetting>& out) {
  auto fail = [&](std::string_view why) { return Error{fmt::format("{} line {}: {}", origin, lineno, why)}; };
  if (pattern.empty()) return fail("!include needs a file name");
  if (stack.size() >= static_cast<size_t>(kMaxIncludeDepth)) return fail("!include nested too deeply");
  std::string full = include_base(pattern, origin);
  glob_t matches{};
  int rc = ::glob(full.c_str(), GLOB_BRACE, nullptr, &matches);
  std::vector<std::string> paths(matches.gl_pathv, matches.gl_pathv + (rc == 0 ? matches.gl_pathc : 0));
  ::globfree(&matches);
  if (rc == GLOB_NOMATCH) return try_only ? Status::Ok() : fail(fmt::format("!include {}: no such file", full));
  if (rc != 0) return fail(fmt::format("!include {}: glob() failed", full));
  for (const std::string& path : paths) {
    for (const std::string& open_path : stack)
      if (open_path == path) return fail(fmt::format("recursive !include of {}", path));
    std::string body;
    bool open_failed = false;
    if (Status st = read_config_text(path, &body, &open_failed); !st) {
      if (try_only && open_failed) continue;
      return fail(st.error().message);
    }
    stack.push_back(path);
    Status st = parse_dovecot(body, path, stack, out);
    stack.pop_back();
    if (!st) return st;
  }
  return Status::Ok();
}

Status parse_dovecot(std::string_view text, const std::string& origin, std::vector<std::string>& stack,
                     std::vector<DovecotSetting>& out) {
  std::string pending;  // a line continued with '\', not yet complete
  int pending_line = 0;
  int lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++lineno;
    if (line.find('\0') != std::string_view::npos)
      return Error{fmt::format("{} line {}: NUL byte in line", origin, lineno)};
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
    while (!line.empty() && is_white(line.front())) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    line = trim_white(strip_comment(line, origin, lineno));

    if (!line.empty() && line.back() == '\\') {
      if (pending.empty()) pending_line = lineno;
      pending += trim_white(line.substr(0, line.size() - 1));
      pending += ' ';
      continue;
    }
    int start_line = lineno;
    std::string joined;
    if (!pending.empty()) {
      joined = std::move(pending) + std::string(line);
      pending.clear();
      line = trim_white(joined);  // a bare "\" line leaves a lone space in front
      start_line = pending_line;
    }
    auto fail = [&](std::string_view why) { return Error{fmt::format("{} line {}: {}", origin, start_line, why)}; };

    size_t key_end = 0;
    while (key_end < line.size() && !is_white(line[key_end]) && line[key_end] != '=') ++key_end;
    std::string_view key = line.substr(0, key_end);
    std::string_view rest = trim_white(line.substr(key_end));

    if (key == "!include" || key == "!include_try") {
      if (Status st = include_files(rest, key == "!include_try", origin, start_line, stack, out); !st) return st;
      continue;
    }
    if (rest.empty() || rest.front() != '=') {
      // Not echoed: a mistyped "password secret" line must not reach a log.
      if (key == "}" || (!rest.empty() && rest.back() == '{') || (!key.empty() && key.back() == '{'))
        return fail("sections ({ ... }) are not allowed in this file; it holds only \"name = value\" lines");
      return fail("missing '=' (expected \"name = value\")");
    }
    if (key.empty()) return fail("missing name before '='");
    std::string_view raw = trim_white(rest.substr(1));
    std::string value;
    if (raw.size() >= 2 && (raw.front() == '"' || raw.front() == '\'') && raw.back() == raw.front()) {
      value = unescape_quoted(raw.substr(1, raw.size() - 2));
    } else {
      if (has_env_reference(raw))
        return fail(fmt::format("{}: $ENV: references are not supported; write the value itself", key));
      value = std::string(raw);
    }
    out.push_back({std::string(key), std::move(value), start_line});
  }
  if (!pending.empty())
    return Error{fmt::format("{} line {}: the file ends inside a line continued with '\\'", origin, pending_line)};
  return Status::Ok();
}

}  // namespace

Result<ConfigFile> ConfigFile::load(const std::string& path, ConfigDialect dialect) {
  std::string text;
  if (Status st = read_config_text(path, &text); !st) return st.error();
  return parse(text, path, dialect);
}

Result<ConfigFile> ConfigFile::parse(std::string_view text, std::string origin, ConfigDialect dialect) {
  ConfigFile cf;
  cf.origin_ = std::move(origin);
  if (dialect == ConfigDialect::dovecot) {
    std::vector<DovecotSetting> settings;
    std::vector<std::string> stack{cf.origin_};
    if (Status st = parse_dovecot(text, cf.origin_, stack, settings); !st) return st.error();
    for (DovecotSetting& d : settings) {
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
  int lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view phys = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++lineno;
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

std::vector<std::string> ConfigFile::keys() const { return order_; }

int ConfigFile::line_of(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.line;
}

}  // namespace postern
