// auth_protocol.hpp - Dovecot auth protocol v1 lines (protocols.md §1), without I/O.
//
// Lines are TAB-separated, LF-terminated. Values use Dovecot's tab-escaping with \001
// (\0011 = \001, \001t = TAB, \001r = CR, \001n = LF, \0010 = NUL).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::authd {

constexpr size_t kMaxAuthLine = 16384;

std::string tab_escape(std::string_view raw);
std::string tab_unescape(std::string_view escaped);

struct ClientLine {
  enum class Kind { version, cpid, auth, cont, cancel, unknown };
  Kind kind = Kind::unknown;
  std::string command;  // as sent
  // version: major/minor. cpid: pid. auth/cont/cancel: id (> 0).
  unsigned major = 0, minor = 0;
  uint64_t pid = 0;
  uint32_t id = 0;
  // auth:
  std::string mechanism;  // as sent
  std::string service;
  std::string lip, rip;
  bool secured = false;
  // The initial response as base64 text, still encoded. nullopt: no initial response
  // (resp= absent, or present with an empty value, as Dovecot treats it). "": the client
  // sent resp== (RFC 4954 "=" = an initial response that is present but empty; Postfix
  // sends it for "AUTH PLAIN ="); decode it to "" and pass that to start().
  std::optional<std::string> resp;
  // cont: the base64 text after the id (may be empty).
  std::string data;
};

// Parses one line (without its LF). nullopt + *error for malformed known commands
// (bad id, missing fields, parameters after resp=, VERSION without 2 numbers).
// Unknown commands come back as Kind::unknown. Commands are case-sensitive, as in
// Dovecot. Not checked here (the session's job): VERSION major == 1, duplicate ids,
// whether the mechanism exists, line length. AUTH fields are tab-unescaped; CONT's
// payload is everything after "CONT\t<id>\t", verbatim ("CONT\t<id>" gives "").
// "protocol=" (Dovecot 2.4) is accepted as service=; unknown parameters are ignored.
std::optional<ClientLine> parse_client_line(std::string_view line, std::string* error);

// "VERSION\t1\t2\nMECH\t...\n...SPID\t<pid>\nCUID\t<cuid>\nCOOKIE\t<32 hex>\nDONE\n"
std::string server_handshake(const std::vector<std::pair<std::string, std::vector<std::string>>>& mechanisms,
                             uint64_t spid, uint64_t cuid, std::string_view cookie_hex);

// Each formatted reply is one complete line, LF included.
std::string format_cont(uint32_t id, std::string_view base64);
// fields like {"user=alice@example.com"}; each value is tab-escaped.
// format_fail omits user= and reason= when they are empty.
std::string format_ok(uint32_t id, std::string_view user);
std::string format_fail(uint32_t id, std::string_view user, std::string_view reason);

}  // namespace postern::authd
