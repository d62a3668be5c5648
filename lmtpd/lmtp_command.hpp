// lmtp_command.hpp - one LMTP command line (RFC 2033 / RFC 5321 syntax), without I/O.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace postern::lmtpd {

struct LmtpCommand {
  enum class Verb { lhlo, mail, rcpt, data, rset, noop, quit, vrfy, helo, ehlo, bdat, unknown };
  Verb verb = Verb::unknown;
  std::string argument;  // LHLO/HELO/EHLO name, VRFY text, NOOP text, BDAT chunk size
  // MAIL/RCPT path without <> and without any source route; "" for the null sender <>.
  // Canonical form: the local part is unquoted unless it needs quotes ("a b"@x); the
  // domain follows the last '@' and keeps its case. RCPT allows only <Postmaster>
  // without a domain.
  std::string address;
  // ESMTP parameters as sent (keyword upper-cased, value as is), e.g. {"SIZE","2048"},
  // {"BODY","8BITMIME"}, {"SMTPUTF8",""}, {"ORCPT","rfc822;a@b"}. BDAT ... LAST gives
  // {"LAST",""}. Whether a parameter is acceptable is the session's decision.
  std::vector<std::pair<std::string, std::string>> params;
};

// A reply to send instead: e.g. {501, "5.5.4", "Invalid parameters"}.
struct CommandError {
  int code = 500;
  std::string enhanced = "5.5.1";
  std::string text = "Unknown command";
};

// Verbs are case-insensitive. MAIL FROM:<...> / RCPT TO:<...> paths: angle brackets
// required, quoted local parts allowed ("a b"@x), source routes (@a,@b:) dropped,
// control characters refused. Errors use Dovecot's texts (protocols.md §3.3).
std::variant<LmtpCommand, CommandError> parse_lmtp_command(std::string_view line);

}  // namespace postern::lmtpd
