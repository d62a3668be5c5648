// lmtp_command_test.cpp - parse_lmtp_command(): verbs, Postfix's exact lines, paths,
// parameters and Dovecot's error replies.
#include "lmtpd/lmtp_command.hpp"

#include <catch2/catch.hpp>

#include <string>

using postern::lmtpd::CommandError;
using postern::lmtpd::LmtpCommand;
using postern::lmtpd::parse_lmtp_command;
using Verb = LmtpCommand::Verb;

namespace {

LmtpCommand ok(std::string_view line) {
  auto r = parse_lmtp_command(line);
  INFO("line: " << std::string(line));
  if (auto* e = std::get_if<CommandError>(&r))
    FAIL("unexpected error " << e->code << " " << e->enhanced << " " << e->text);
  return std::get<LmtpCommand>(r);
}

CommandError err(std::string_view line) {
  auto r = parse_lmtp_command(line);
  INFO("line: " << std::string(line));
  REQUIRE(std::holds_alternative<CommandError>(r));
  return std::get<CommandError>(r);
}

void check_error(std::string_view line, int code, const std::string& enhanced,
                 const std::string& text) {
  CommandError e = err(line);
  INFO("line: " << std::string(line));
  CHECK(e.code == code);
  CHECK(e.enhanced == enhanced);
  CHECK(e.text == text);
}

}  // namespace

TEST_CASE("every verb is recognised, case-insensitively") {
  CHECK(ok("LHLO mx.example.com").verb == Verb::lhlo);
  CHECK(ok("lhlo mx").verb == Verb::lhlo);
  CHECK(ok("HELO mx").verb == Verb::helo);
  CHECK(ok("ehlo mx").verb == Verb::ehlo);
  CHECK(ok("MAIL FROM:<a@b>").verb == Verb::mail);
  CHECK(ok("Rcpt To:<a@b>").verb == Verb::rcpt);
  CHECK(ok("DATA").verb == Verb::data);
  CHECK(ok("data").verb == Verb::data);
  CHECK(ok("RSET").verb == Verb::rset);
  CHECK(ok("NOOP").verb == Verb::noop);
  CHECK(ok("QUIT").verb == Verb::quit);
  CHECK(ok("VRFY alice").verb == Verb::vrfy);
  CHECK(ok("BDAT 10").verb == Verb::bdat);
}

TEST_CASE("LHLO/HELO/EHLO keep the name; a missing name is refused") {
  CHECK(ok("LHLO mx.example.com").argument == "mx.example.com");
  CHECK(ok("EHLO [192.0.2.1]").argument == "[192.0.2.1]");
  check_error("LHLO", 501, "5.5.4", "Missing hostname");
  check_error("LHLO   ", 501, "5.5.4", "Missing hostname");
}

TEST_CASE("unknown commands get 500 5.5.1") {
  for (const char* line : {"XCLIENT ADDR=1.2.3.4", "STARTTLS", "", " DATA", "MAILFROM:<a@b>",
                           "DATAX", "AUTH PLAIN"}) {
    check_error(line, 500, "5.5.1", "Unknown command");
  }
}

TEST_CASE("Postfix's MAIL line with SIZE and BODY") {
  LmtpCommand c = ok("MAIL FROM:<sender@example.org> SIZE=2048 BODY=8BITMIME");
  CHECK(c.verb == Verb::mail);
  CHECK(c.address == "sender@example.org");
  REQUIRE(c.params.size() == 2);
  CHECK(c.params[0] == std::pair<std::string, std::string>{"SIZE", "2048"});
  CHECK(c.params[1] == std::pair<std::string, std::string>{"BODY", "8BITMIME"});
}

TEST_CASE("Postfix's RCPT lines, with and without ORCPT") {
  LmtpCommand c = ok("RCPT TO:<alice@example.com>");
  CHECK(c.address == "alice@example.com");
  CHECK(c.params.empty());
  LmtpCommand o = ok("RCPT TO:<a@b> ORCPT=rfc822;a@b");
  CHECK(o.address == "a@b");
  REQUIRE(o.params.size() == 1);
  CHECK(o.params[0].first == "ORCPT");
  CHECK(o.params[0].second == "rfc822;a@b");
}

TEST_CASE("parameter keywords are upper-cased, values kept, bare keywords allowed") {
  LmtpCommand c = ok("mail from:<a@b> body=8bitmime smtputf8 x-Foo=Bar+2B");
  REQUIRE(c.params.size() == 3);
  CHECK(c.params[0] == std::pair<std::string, std::string>{"BODY", "8bitmime"});
  CHECK(c.params[1] == std::pair<std::string, std::string>{"SMTPUTF8", ""});
  CHECK(c.params[2] == std::pair<std::string, std::string>{"X-FOO", "Bar+2B"});
  // Unknown parameters are parsed; accepting them is the session's decision.
  CHECK(ok("MAIL FROM:<a@b> RET=HDRS ENVID=x").params.size() == 2);
}

TEST_CASE("malformed parameters get 501 5.5.4 Invalid parameters") {
  for (const char* line : {"MAIL FROM:<a@b> SIZE=", "MAIL FROM:<a@b> =1", "MAIL FROM:<a@b> -X",
                           "MAIL FROM:<a@b> A_B=1", "MAIL FROM:<a@b> A=b=c",
                           "RCPT TO:<a@b> ORCPT=a\xff"}) {
    check_error(line, 501, "5.5.4", "Invalid parameters");
  }
  CHECK(ok("RCPT TO:<a@b> NOTIFY=NEVER").params.size() == 1);
}

TEST_CASE("null sender and null recipient") {
  LmtpCommand c = ok("MAIL FROM:<>");
  CHECK(c.address.empty());
  CHECK(c.params.empty());
  CHECK(ok("MAIL FROM:<> BODY=7BIT").params.size() == 1);
  check_error("RCPT TO:<>", 501, "5.5.4", "Invalid TO: Null path not allowed");
}

TEST_CASE("whitespace after the colon is tolerated") {
  CHECK(ok("MAIL FROM: <a@b>").address == "a@b");
  CHECK(ok("RCPT TO:  <c@d> NOTIFY=NEVER").address == "c@d");
  CHECK(ok("MAIL FROM:<a@b>  SIZE=1 ").params.size() == 1);
}

TEST_CASE("quoted local parts: unquoted when possible, canonical quoting otherwise") {
  CHECK(ok("RCPT TO:<\"alice\"@example.com>").address == "alice@example.com");
  CHECK(ok("RCPT TO:<\"a b\"@example.com>").address == "\"a b\"@example.com");
  CHECK(ok("RCPT TO:<\"a\\\"b\"@x>").address == "\"a\\\"b\"@x");
  CHECK(ok("RCPT TO:<\"a\\c\"@x>").address == "ac@x");
  CHECK(ok("RCPT TO:<\"a@b\"@x>").address == "\"a@b\"@x");
  CHECK(ok("MAIL FROM:<\"\"@x>").address == "\"\"@x");
  check_error("RCPT TO:<\"abc@x>", 501, "5.5.4", "Invalid TO: Invalid character in localpart");
}

TEST_CASE("source routes are dropped") {
  CHECK(ok("RCPT TO:<@relay.example:alice@example.com>").address == "alice@example.com");
  CHECK(ok("MAIL FROM:<@a.example,@b.example:bob@x>").address == "bob@x");
  check_error("MAIL FROM:<@a.example>", 501, "5.5.4",
              "Invalid FROM: Missing ':' at end of source route");
  check_error("MAIL FROM:<@a.example:>", 501, "5.5.4",
              "Invalid FROM: Path only consists of source route");
  check_error("MAIL FROM:<@:a@b>", 501, "5.5.4",
              "Invalid FROM: Missing domain after '@' in source route");
  check_error("MAIL FROM:<@a,b:c@d>", 501, "5.5.4",
              "Invalid FROM: Missing '@' after ',' in source route");
}

TEST_CASE("domains: names, address literals, UTF-8") {
  CHECK(ok("RCPT TO:<a@Sub.Example-1.COM>").address == "a@Sub.Example-1.COM");
  CHECK(ok("RCPT TO:<a@[192.0.2.1]>").address == "a@[192.0.2.1]");
  CHECK(ok("RCPT TO:<a@[IPv6:2001:db8::1]>").address == "a@[IPv6:2001:db8::1]");
  CHECK(ok("RCPT TO:<j\xc3\xb6rg@b\xc3\xbc" "cher.example>").address ==
        "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
  check_error("RCPT TO:<a@-x.com>", 501, "5.5.4", "Invalid TO: Invalid domain");
  check_error("RCPT TO:<a@x-.com>", 501, "5.5.4", "Invalid TO: Invalid domain");
  check_error("RCPT TO:<a@x..com>", 501, "5.5.4", "Invalid TO: Invalid domain");
  check_error("RCPT TO:<a@x.com.>", 501, "5.5.4", "Invalid TO: Invalid domain");
  check_error("RCPT TO:<a@[]>", 501, "5.5.4", "Invalid TO: Invalid domain");
  check_error("RCPT TO:<a@>", 501, "5.5.4", "Invalid TO: Missing domain after '@'");
  check_error("RCPT TO:<a@x_y.com>", 501, "5.5.4", "Invalid TO: Invalid domain");
}

TEST_CASE("malformed paths and missing brackets") {
  check_error("MAIL FROM:a@b", 501, "5.5.4", "Invalid FROM: Missing '<' at beginning of path");
  check_error("RCPT TO:a@b", 501, "5.5.4", "Invalid TO: Missing '<' at beginning of path");
  check_error("RCPT TO:<a@b", 501, "5.5.4", "Invalid TO: Missing '>' at end of path");
  check_error("RCPT TO:", 501, "5.5.4", "Invalid TO: Path is empty string");
  check_error("MAIL FROM:", 501, "5.5.4", "Invalid FROM: Path is empty string");
  check_error("RCPT TO:<alice>", 501, "5.5.4", "Invalid TO: Missing domain");
  check_error("MAIL FROM:<postmaster>", 501, "5.5.4", "Invalid FROM: Missing domain");
  check_error("RCPT TO:<a b@c>", 501, "5.5.4", "Invalid TO: Invalid character in localpart");
  check_error("RCPT TO:<@>", 501, "5.5.4",
              "Invalid TO: Missing domain after '@' in source route");
  check_error("RCPT TO:< a@b>", 501, "5.5.4", "Invalid TO: Invalid character in localpart");
  check_error("RCPT TO:<a\xff@b>", 501, "5.5.4", "Invalid TO: Invalid character in localpart");
  check_error("RCPT TO:<a\xc3@b>", 501, "5.5.4", "Invalid TO: Invalid character in localpart");
  check_error("MAIL <a@b>", 501, "5.5.4", "Invalid parameters");
  check_error("MAIL", 501, "5.5.4", "Invalid parameters");
  check_error("RCPT FROM:<a@b>", 501, "5.5.4", "Invalid parameters");
  check_error("MAIL TO:<a@b>", 501, "5.5.4", "Invalid parameters");
}

TEST_CASE("<Postmaster> without a domain is a valid recipient") {
  CHECK(ok("RCPT TO:<Postmaster>").address == "Postmaster");
  CHECK(ok("RCPT TO:<postmaster@example.com>").address == "postmaster@example.com");
}

TEST_CASE("trailing garbage after the path") {
  check_error("RCPT TO:<a@b>x", 501, "5.5.4", "Invalid TO: Invalid character in path");
  check_error("MAIL FROM:<>>", 501, "5.5.4", "Invalid FROM: Invalid character in path");
  check_error("MAIL FROM:<a@b><c@d>", 501, "5.5.4", "Invalid FROM: Invalid character in path");
}

TEST_CASE("control characters and NUL are refused, 8-bit is allowed") {
  using namespace std::string_literals;
  check_error("RCPT TO:<a\0b@c>"s, 501, "5.5.2", "Invalid characters in command parameters");
  check_error("MAIL FROM:<a@b>\r"s, 501, "5.5.2", "Invalid characters in command parameters");
  check_error("LHLO mx\x1b[0m"s, 501, "5.5.2", "Invalid characters in command parameters");
  check_error("RCPT TO:<\"a\\\x01\"@b>"s, 501, "5.5.2",
              "Invalid characters in command parameters");
  CHECK(ok("RCPT TO:<\xe2\x98\x83@example.com>").address == "\xe2\x98\x83@example.com");
}

TEST_CASE("DATA, RSET and QUIT take no parameters; NOOP and VRFY take text") {
  check_error("DATA now", 501, "5.5.4", "Invalid parameters");
  check_error("RSET x", 501, "5.5.4", "Invalid parameters");
  check_error("QUIT bye", 501, "5.5.4", "Invalid parameters");
  CHECK(ok("QUIT ").verb == Verb::quit);
  CHECK(ok("NOOP hello there").argument == "hello there");
  CHECK(ok("VRFY <alice@example.com>").argument == "<alice@example.com>");
  check_error("VRFY", 501, "5.5.4", "Invalid parameters");
}

TEST_CASE("BDAT size and LAST") {
  LmtpCommand c = ok("BDAT 1024 LAST");
  CHECK(c.argument == "1024");
  REQUIRE(c.params.size() == 1);
  CHECK(c.params[0].first == "LAST");
  LmtpCommand d = ok("bdat 0");
  CHECK(d.argument == "0");
  CHECK(d.params.empty());
  CHECK(ok("BDAT 5 last").params.size() == 1);
  check_error("BDAT", 501, "5.5.4", "Invalid chunk size parameter");
  check_error("BDAT -1", 501, "5.5.4", "Invalid chunk size parameter");
  check_error("BDAT 99999999999999999999", 501, "5.5.4", "Invalid chunk size parameter");
  check_error("BDAT 10 FIRST", 501, "5.5.4", "Invalid end marker parameter");
}

TEST_CASE("very long lines do not crash and parse consistently") {
  std::string local(100000, 'x');
  CHECK(ok("RCPT TO:<" + local + "@example.com>").address.size() == local.size() + 12);
  std::string junk(200000, '<');
  check_error("MAIL FROM:" + junk, 501, "5.5.4", "Invalid FROM: Invalid character in localpart");
  std::string params = "MAIL FROM:<a@b>";
  for (int i = 0; i < 5000; ++i) params += " K" + std::to_string(i) + "=v";
  CHECK(ok(params).params.size() == 5000);
  check_error(std::string(300000, 'A'), 500, "5.5.1", "Unknown command");
  std::string quoted = "RCPT TO:<\"" + std::string(100000, '\\');
  CHECK(err(quoted).code == 501);
}
