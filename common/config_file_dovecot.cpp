// config_file_dovecot.cpp - the Dovecot .conf.ext dialect of ConfigFile (dovecot-sql.conf.ext):
// line syntax, quoting, backslash continuation and !include. Entry point: config_file_dialects.hpp.
#include "common/config_file_dialects.hpp"

#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <glob.h>

namespace postern::config_detail {

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

namespace {

constexpr int kMaxIncludeDepth = 16;

bool is_white(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_white(std::string_view s) {
  while (!s.empty() && is_white(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_white(s.back())) s.remove_suffix(1);
  return s;
}

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

Status parse_text(std::string_view text, const std::string& origin, std::vector<std::string>& stack,
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
    Status st = parse_text(body, path, stack, out);
    stack.pop_back();
    if (!st) return st;
  }
  return Status::Ok();
}

Status parse_text(std::string_view text, const std::string& origin, std::vector<std::string>& stack,
                  std::vector<DovecotSetting>& out) {
  std::string pending;  // a line continued with '\', not yet complete
  int pending_line = 0;
  std::vector<std::string_view> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    int lineno = static_cast<int>(i) + 1;
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

Status parse_dovecot(std::string_view text, const std::string& origin, std::vector<DovecotSetting>& out) {
  std::vector<std::string> stack{origin};
  return parse_text(text, origin, stack, out);
}

}  // namespace postern::config_detail
