// auth_protocol.cpp - Dovecot auth protocol v1 codec (protocols.md §1.1-1.5): tab-escaping,
// client line parsing (VERSION, CPID, AUTH, CONT, CANCEL), handshake and reply formatting.
// Pure string work; framing, state and policy live in the auth session.
#include "authd/auth_protocol.hpp"

#include <limits>

namespace postern::authd {

namespace {

constexpr char kEscape = '\001';

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

// Plain decimal, digits only (no sign, no spaces), within `max`. Leading zeros are
// accepted as Dovecot's str_to_uint does; we always echo ids back without them.
bool parse_decimal(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (max - digit) / 10) return false;  // v * 10 + digit would exceed max
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

bool parse_id(std::string_view s, uint32_t* id) {
  uint64_t v = 0;
  if (!parse_decimal(s, std::numeric_limits<uint32_t>::max(), &v) || v == 0) return false;
  *id = static_cast<uint32_t>(v);
  return true;
}

std::optional<ClientLine> fail(std::string* error, std::string what) {
  if (error != nullptr) *error = std::move(what);
  return std::nullopt;
}

std::optional<ClientLine> parse_version(ClientLine line, const std::vector<std::string_view>& f,
                                        std::string* error) {
  uint64_t major = 0, minor = 0;
  const uint64_t max = std::numeric_limits<unsigned>::max();
  if (f.size() != 3 || !parse_decimal(f[1], max, &major) || !parse_decimal(f[2], max, &minor))
    return fail(error, "VERSION needs exactly two numbers");
  line.major = static_cast<unsigned>(major);
  line.minor = static_cast<unsigned>(minor);
  return line;
}

std::optional<ClientLine> parse_cpid(ClientLine line, const std::vector<std::string_view>& f,
                                     std::string* error) {
  // Dovecot refuses PID 0; extra fields are ignored like unknown parameters.
  if (f.size() < 2 || !parse_decimal(f[1], std::numeric_limits<uint64_t>::max(), &line.pid) || line.pid == 0)
    return fail(error, "CPID needs a non-zero decimal pid");
  return line;
}

std::optional<ClientLine> parse_auth(ClientLine line, const std::vector<std::string_view>& f,
                                     std::string* error) {
  if (f.size() < 3) return fail(error, "AUTH needs an id and a mechanism");
  if (!parse_id(f[1], &line.id)) return fail(error, "AUTH id must be a decimal number in 1..4294967295");
  line.mechanism = tab_unescape(f[2]);
  if (line.mechanism.empty()) return fail(error, "AUTH with an empty mechanism name");

  bool have_service = false;
  for (size_t i = 3; i < f.size(); ++i) {
    std::string field = tab_unescape(f[i]);
    size_t eq = field.find('=');
    std::string_view name = std::string_view(field).substr(0, eq);
    std::string_view value = eq == std::string::npos ? std::string_view() : std::string_view(field).substr(eq + 1);

    if (name == "resp") {
      // resp= must be the last parameter; Dovecot treats anything after it as a client bug.
      if (i + 1 != f.size()) return fail(error, "AUTH parameters after resp=");
      // Empty value: no initial response (Dovecot, and what Exim sends). "=": the RFC 4954
      // marker for a present-but-empty initial response, normalised to "" here so that the
      // caller can base64-decode `resp` uniformly.
      if (value == "=")
        line.resp = std::string();
      else if (!value.empty())
        line.resp = std::string(value);
    } else if (name == "service" || name == "protocol") {  // "protocol" is Dovecot 2.4's name
      line.service = std::string(value);
      have_service = true;
    } else if (name == "lip") {
      line.lip = std::string(value);  // may be empty: Postfix sends "lip=" when unknown
    } else if (name == "rip") {
      line.rip = std::string(value);
    } else if (name == "secured") {
      line.secured = true;  // bare flag (Postfix) or "secured=tls" (Dovecot 2.3+ login)
    }
    // Anything else ("nologin", "lport=", "session=", ...) is ignored, as the protocol requires.
  }
  if (!have_service) return fail(error, "AUTH without service=");
  return line;
}

}  // namespace

std::string tab_escape(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    switch (c) {
      case kEscape: out += "\0011"; break;
      case '\t': out += "\001t"; break;
      case '\r': out += "\001r"; break;
      case '\n': out += "\001n"; break;
      case '\0': out += "\0010"; break;
      default: out += c;
    }
  }
  return out;
}

std::string tab_unescape(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    char c = escaped[i];
    if (c != kEscape || i + 1 == escaped.size()) {
      out += c;  // a trailing lone \001 is kept as is: there is nothing to unescape
      continue;
    }
    char e = escaped[++i];
    switch (e) {
      case '1': out += kEscape; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'n': out += '\n'; break;
      case '0': out += '\0'; break;
      default: out += e;  // unknown escape: the character itself, as Dovecot does
    }
  }
  return out;
}

std::optional<ClientLine> parse_client_line(std::string_view line, std::string* error) {
  // CONT's payload is taken verbatim (not split), so handle it before splitting.
  ClientLine out;
  size_t tab = line.find('\t');
  out.command = std::string(line.substr(0, tab));

  if (out.command == "CONT") {
    out.kind = ClientLine::Kind::cont;
    if (tab == std::string_view::npos) return fail(error, "CONT needs an id");
    std::string_view rest = line.substr(tab + 1);
    size_t tab2 = rest.find('\t');
    // "CONT\t5" (no payload field) is tolerated as an empty response.
    if (!parse_id(rest.substr(0, tab2), &out.id))
      return fail(error, "CONT id must be a decimal number in 1..4294967295");
    if (tab2 != std::string_view::npos) out.data = std::string(rest.substr(tab2 + 1));
    return out;
  }

  std::vector<std::string_view> f = split_tabs(line);
  if (out.command == "VERSION") {
    out.kind = ClientLine::Kind::version;
    return parse_version(std::move(out), f, error);
  }
  if (out.command == "CPID") {
    out.kind = ClientLine::Kind::cpid;
    return parse_cpid(std::move(out), f, error);
  }
  if (out.command == "AUTH") {
    out.kind = ClientLine::Kind::auth;
    return parse_auth(std::move(out), f, error);
  }
  if (out.command == "CANCEL") {
    out.kind = ClientLine::Kind::cancel;
    if (f.size() < 2 || !parse_id(f[1], &out.id))
      return fail(error, "CANCEL id must be a decimal number in 1..4294967295");
    return out;
  }
  out.kind = ClientLine::Kind::unknown;
  return out;
}

std::string server_handshake(const std::vector<std::pair<std::string, std::vector<std::string>>>& mechanisms,
                             uint64_t spid, uint64_t cuid, std::string_view cookie_hex) {
  // Dovecot 2.3's order and minor version: Postfix needs MECH lines before SPID (it takes
  // an SPID without MECH to mean "auth-master socket"), and stops reading at DONE.
  std::string out = "VERSION\t1\t2\n";
  for (const auto& [name, flags] : mechanisms) {
    out += "MECH\t" + tab_escape(name);
    for (const std::string& flag : flags) out += "\t" + tab_escape(flag);
    out += '\n';
  }
  out += "SPID\t" + std::to_string(spid) + "\n";
  out += "CUID\t" + std::to_string(cuid) + "\n";
  out += "COOKIE\t" + tab_escape(cookie_hex) + "\n";
  out += "DONE\n";
  return out;
}

std::string format_cont(uint32_t id, std::string_view base64) {
  // Always keep the TAB after the id, even for an empty challenge: Postfix treats
  // "CONT\t<id>" without it as a protocol error.
  return "CONT\t" + std::to_string(id) + "\t" + tab_escape(base64) + "\n";
}

std::string format_ok(uint32_t id, std::string_view user) {
  // user= is mandatory for Postfix; values are escaped only defensively (the session
  // refuses usernames that would need escaping, since Postfix never unescapes).
  return "OK\t" + std::to_string(id) + "\tuser=" + tab_escape(user) + "\n";
}

std::string format_fail(uint32_t id, std::string_view user, std::string_view reason) {
  std::string out = "FAIL\t" + std::to_string(id);
  if (!user.empty()) out += "\tuser=" + tab_escape(user);
  if (!reason.empty()) out += "\treason=" + tab_escape(reason);
  out += '\n';
  return out;
}

}  // namespace postern::authd
