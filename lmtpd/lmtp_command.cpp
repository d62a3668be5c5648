// lmtp_command.cpp - parse_lmtp_command(): one LMTP command line into verb, path and
// ESMTP parameters (RFC 5321 §4.1, RFC 2033, RFC 6531 for UTF-8), with the reply
// texts Dovecot's lib-smtp gives for each syntax error.
#include "lmtpd/lmtp_command.hpp"

#include <array>
#include <cstdint>

namespace postern::lmtpd {
namespace {

using Verb = LmtpCommand::Verb;
using Result = std::variant<LmtpCommand, CommandError>;

CommandError error(int code, const char* enhanced, std::string text) {
  return CommandError{code, enhanced, std::move(text)};
}

CommandError invalid_parameters() { return error(501, "5.5.4", "Invalid parameters"); }

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
// Control characters (and DEL) are never legal in a command line; TAB only as blank.
bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }
char upper(unsigned char c) { return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (upper(static_cast<unsigned char>(a[i])) != upper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// RFC 5322 atext; bytes >= 0x80 count too because lmtpd announces SMTPUTF8 (RFC 6531
// extends atext with UTF8-non-ascii). Well-formedness is checked separately.
bool is_atext(unsigned char c) {
  if (is_alnum(c) || c >= 0x80) return true;
  static constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return specials.find(static_cast<char>(c)) != std::string_view::npos;
}

// Accepts only well-formed UTF-8 (no overlongs, no surrogates), so that a mailbox
// name derived from the address is valid UTF-8 too.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

// A cursor over the text after "FROM:" / "TO:".
struct Cursor {
  std::string_view s;
  size_t pos = 0;
  bool at_end() const { return pos >= s.size(); }
  unsigned char peek() const { return at_end() ? 0 : static_cast<unsigned char>(s[pos]); }
  bool eat(char c) {
    if (at_end() || s[pos] != c) return false;
    ++pos;
    return true;
  }
};

// sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]. U-labels are accepted
// as raw UTF-8 (RFC 6531). Returns false if nothing domain-like was consumed.
bool parse_domain(Cursor& c) {
  size_t start = c.pos;
  for (;;) {
    auto first = c.peek();
    if (!(is_alnum(first) || first >= 0x80)) return false;
    unsigned char last = first;
    ++c.pos;
    while (!c.at_end() && (is_alnum(c.peek()) || c.peek() == '-' || c.peek() >= 0x80))
      last = static_cast<unsigned char>(c.s[c.pos++]);
    if (last == '-') return false;
    if (c.peek() != '.') break;
    ++c.pos;
  }
  return c.pos > start;
}

// "[" dcontent "]", dcontent = %d33-90 / %d94-126: kept verbatim, not interpreted.
bool parse_address_literal(Cursor& c) {
  if (!c.eat('[')) return false;
  size_t start = c.pos;
  while (!c.at_end() && c.peek() != ']') {
    auto ch = c.peek();
    if (ch < 33 || ch > 126 || ch == '[' || ch == '\\') return false;
    ++c.pos;
  }
  return c.pos > start && c.eat(']');
}

bool dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    auto ch = static_cast<unsigned char>(s[i]);
    if (ch == '.' ? s[i + 1] == '.' : !is_atext(ch)) return false;
  }
  return true;
}

// The canonical form Dovecot prints (smtp_address_encode): unquoted when the local
// part is a plain dot-atom, otherwise quoted with '\' before '"' and '\'.
std::string encode_local(std::string_view value) {
  if (dot_atom(value)) return std::string(value);
  std::string out = "\"";
  for (char ch : value) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  out += '"';
  return out;
}

struct PathResult {
  std::string address;  // canonical, "" for <>
  std::string error;    // Dovecot's text after "Invalid FROM: " / "Invalid TO: "
};

// Path = "<" [ A-d-l ":" ] Mailbox ">" ; Reverse-path additionally allows "<>".
// Dovecot's error strings (lib-smtp smtp-address.c) are reproduced for each failure.
PathResult parse_path(Cursor& c, bool is_rcpt) {
  if (c.at_end()) return {"", "Path is empty string"};
  if (!c.eat('<')) return {"", "Missing '<' at beginning of path"};
  // Source route: accepted and ignored (RFC 5321 §4.1.2, "SHOULD be ignored").
  bool had_route = false;
  if (c.peek() == '@') {
    had_route = true;
    for (;;) {
      ++c.pos;  // '@'
      if (!parse_domain(c)) return {"", "Missing domain after '@' in source route"};
      if (!c.eat(',')) break;
      if (c.peek() != '@') return {"", "Missing '@' after ',' in source route"};
    }
    if (!c.eat(':')) return {"", "Missing ':' at end of source route"};
  }
  std::string local;
  bool have_local = false;
  if (c.eat('"')) {
    have_local = true;
    for (;;) {
      if (c.at_end()) return {"", "Invalid character in localpart"};
      auto ch = c.peek();
      if (ch == '"') { ++c.pos; break; }
      if (ch == '\\') {
        ++c.pos;
        auto q = c.peek();
        if (c.at_end() || q < 32 || q == 0x7f) return {"", "Invalid character in localpart"};
        local += static_cast<char>(q);
        ++c.pos;
        continue;
      }
      if (is_ctl(ch)) return {"", "Invalid character in localpart"};
      local += static_cast<char>(ch);
      ++c.pos;
    }
  } else {
    // Dot-string, with dots anywhere as Dovecot tolerates (some real addresses have
    // "a..b" or a trailing dot).
    while (!c.at_end() && (is_atext(c.peek()) || c.peek() == '.')) local += c.s[c.pos++];
    have_local = !local.empty();
  }
  if (!have_local) {
    if (c.peek() == '>') {
      if (had_route) return {"", "Path only consists of source route"};
      if (is_rcpt) return {"", "Null path not allowed"};
      ++c.pos;
      return {"", ""};
    }
    return {"", "Invalid character in localpart"};
  }
  if (!valid_utf8(local)) return {"", "Invalid character in localpart"};
  std::string address = encode_local(local);
  if (c.peek() != '@') {
    // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain is a valid forward-path.
    if (is_rcpt && c.peek() == '>' && iequals(local, "postmaster")) {
      ++c.pos;
      return {address, ""};
    }
    if (c.at_end() || c.peek() == '>') return {"", "Missing domain"};
    return {"", "Invalid character in localpart"};
  }
  ++c.pos;
  size_t domain_start = c.pos;
  Cursor probe = c;
  if (parse_domain(probe) && (probe.at_end() || probe.peek() == '>' || probe.peek() == ' ')) {
    c = probe;
  } else if (c.pos = domain_start; !parse_address_literal(c)) {
    c.pos = domain_start;
    if (c.at_end() || c.peek() == '>') return {"", "Missing domain after '@'"};
    return {"", "Invalid domain"};
  }
  std::string_view domain = c.s.substr(domain_start, c.pos - domain_start);
  if (!valid_utf8(domain)) return {"", "Invalid domain"};
  if (!c.eat('>')) return {"", "Missing '>' at end of path"};
  address += '@';
  address += domain;
  return {address, ""};
}

// esmtp-param = esmtp-keyword ["=" esmtp-value]; keyword = (ALPHA/DIGIT)
// *(ALPHA/DIGIT/"-"), value = 1*(%d33-60 / %d62-126 / UTF-8). Several blanks between
// parameters are tolerated.
bool parse_params(std::string_view s, LmtpCommand& cmd) {
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ' || s[i] == '\t') { ++i; continue; }
    size_t end = s.find_first_of(" \t", i);
    if (end == std::string_view::npos) end = s.size();
    std::string_view token = s.substr(i, end - i);
    i = end;
    size_t eq = token.find('=');
    std::string_view key = token.substr(0, eq);
    if (key.empty() || !is_alnum(static_cast<unsigned char>(key[0]))) return false;
    std::string upper_key;
    for (char ch : key) {
      auto uc = static_cast<unsigned char>(ch);
      if (!is_alnum(uc) && uc != '-') return false;
      upper_key += upper(uc);
    }
    std::string value;
    if (eq != std::string_view::npos) {
      std::string_view v = token.substr(eq + 1);
      if (v.empty() || !valid_utf8(v)) return false;
      for (char ch : v) {
        auto uc = static_cast<unsigned char>(ch);
        if (uc == '=' || uc < 33 || uc == 0x7f) return false;
      }
      value = std::string(v);
    }
    cmd.params.emplace_back(std::move(upper_key), std::move(value));
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// MAIL FROM:<path> [params] / RCPT TO:<path> [params].
Result parse_mail_rcpt(LmtpCommand cmd, std::string_view rest) {
  bool is_rcpt = cmd.verb == Verb::rcpt;
  std::string_view prefix = is_rcpt ? "TO:" : "FROM:";
  if (rest.size() < prefix.size() || !iequals(rest.substr(0, prefix.size()), prefix))
    return invalid_parameters();
  rest.remove_prefix(prefix.size());
  // "MAIL FROM: <a@b>": Dovecot's whitespace-before-path workaround, always on here.
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  std::string what = is_rcpt ? "Invalid TO: " : "Invalid FROM: ";
  Cursor c{rest, 0};
  PathResult path = parse_path(c, is_rcpt);
  if (!path.error.empty()) return error(501, "5.5.4", what + path.error);
  if (!c.at_end() && c.peek() != ' ' && c.peek() != '\t')
    return error(501, "5.5.4", what + "Invalid character in path");
  cmd.address = std::move(path.address);
  if (!parse_params(rest.substr(c.pos), cmd)) return invalid_parameters();
  return cmd;
}

// BDAT chunk-size [SP end-marker]: argument = the size digits; "LAST" becomes a param.
Result parse_bdat(LmtpCommand cmd, std::string_view rest) {
  size_t sp = rest.find_first_of(" \t");
  std::string_view size = rest.substr(0, sp);
  std::string_view marker = sp == std::string_view::npos ? "" : trim(rest.substr(sp));
  if (size.empty() || size.size() > 19) return error(501, "5.5.4", "Invalid chunk size parameter");
  for (char ch : size)
    if (!is_digit(static_cast<unsigned char>(ch)))
      return error(501, "5.5.4", "Invalid chunk size parameter");
  if (!marker.empty() && !iequals(marker, "LAST"))
    return error(501, "5.5.4", "Invalid end marker parameter");
  cmd.argument = std::string(size);
  if (!marker.empty()) cmd.params.emplace_back("LAST", "");
  return cmd;
}

struct VerbName {
  std::string_view name;
  Verb verb;
};
constexpr std::array<VerbName, 11> kVerbs{{{"LHLO", Verb::lhlo}, {"MAIL", Verb::mail},
                                            {"RCPT", Verb::rcpt}, {"DATA", Verb::data},
                                            {"RSET", Verb::rset}, {"NOOP", Verb::noop},
                                            {"QUIT", Verb::quit}, {"VRFY", Verb::vrfy},
                                            {"HELO", Verb::helo}, {"EHLO", Verb::ehlo},
                                            {"BDAT", Verb::bdat}}};

}  // namespace

std::variant<LmtpCommand, CommandError> parse_lmtp_command(std::string_view line) {
  size_t sp = line.find_first_of(" \t");
  std::string_view name = line.substr(0, sp);
  LmtpCommand cmd;
  for (const auto& v : kVerbs)
    if (iequals(name, v.name)) cmd.verb = v.verb;
  if (cmd.verb == Verb::unknown) return CommandError{};

  std::string_view rest = sp == std::string_view::npos ? "" : line.substr(sp + 1);
  // Control characters and NUL are refused anywhere: nothing legitimate carries them,
  // and they must not reach logs or Maildir names. 8-bit bytes are allowed (SMTPUTF8).
  for (char ch : rest)
    if (ch != '\t' && is_ctl(static_cast<unsigned char>(ch)))
      return error(501, "5.5.2", "Invalid characters in command parameters");

  switch (cmd.verb) {
    case Verb::mail:
    case Verb::rcpt:
      return parse_mail_rcpt(std::move(cmd), rest);
    case Verb::bdat:
      return parse_bdat(std::move(cmd), trim(rest));
    case Verb::lhlo:
    case Verb::helo:
    case Verb::ehlo:
      rest = trim(rest);
      if (rest.empty()) return error(501, "5.5.4", "Missing hostname");
      cmd.argument = std::string(rest);
      return cmd;
    case Verb::vrfy:
      rest = trim(rest);
      if (rest.empty()) return invalid_parameters();
      cmd.argument = std::string(rest);
      return cmd;
    case Verb::noop:  // "NOOP [SP String]": the string is kept and ignored.
      cmd.argument = std::string(trim(rest));
      return cmd;
    default:  // DATA, RSET, QUIT take no parameters.
      if (!trim(rest).empty()) return invalid_parameters();
      return cmd;
  }
}

}  // namespace postern::lmtpd
