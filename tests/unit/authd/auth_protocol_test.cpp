// auth_protocol_test.cpp - tests for authd/auth_protocol.hpp: the Dovecot auth protocol
// lines Postfix sends (protocols.md §1.7) and the replies it must understand.
#include "authd/auth_protocol.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace postern::authd;
using namespace std::string_literals;
using Kind = ClientLine::Kind;

namespace {

ClientLine parse_ok(std::string_view line) {
  std::string error;
  auto parsed = parse_client_line(line, &error);
  INFO("line: " << std::string(line) << " error: " << error);
  REQUIRE(parsed.has_value());
  return *parsed;
}

std::string parse_error(std::string_view line) {
  std::string error;
  auto parsed = parse_client_line(line, &error);
  INFO("line: " << std::string(line));
  REQUIRE_FALSE(parsed.has_value());
  CHECK_FALSE(error.empty());
  return error;
}

}  // namespace

TEST_CASE("tab escaping covers every special byte and round-trips", "[auth_protocol]") {
  CHECK(tab_escape("plain text") == "plain text");
  CHECK(tab_escape("a\tb") == "a\001tb");
  CHECK(tab_escape("\r\n") == "\001r\001n");
  CHECK(tab_escape("x\001y") == "x\0011y");
  CHECK(tab_escape("nul\0here"s) == "nul\0010here");

  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string escaped = tab_escape(all);
  CHECK(escaped.find('\t') == std::string::npos);
  CHECK(escaped.find('\n') == std::string::npos);
  CHECK(escaped.find('\r') == std::string::npos);
  CHECK(escaped.find('\0') == std::string::npos);
  CHECK(tab_unescape(escaped) == all);
}

TEST_CASE("tab_unescape tolerates odd escapes", "[auth_protocol]") {
  CHECK(tab_unescape("a\001tb\001n") == "a\tb\n");
  CHECK(tab_unescape("\0010"s) == "\0"s);
  CHECK(tab_unescape("x\001z") == "xz");     // unknown escape: the character itself
  CHECK(tab_unescape("end\001") == "end\001");  // lone trailing escape kept
}

TEST_CASE("VERSION needs exactly two numbers", "[auth_protocol]") {
  ClientLine v = parse_ok("VERSION\t1\t0");
  CHECK(v.kind == Kind::version);
  CHECK(v.command == "VERSION");
  CHECK(v.major == 1);
  CHECK(v.minor == 0);
  CHECK(parse_ok("VERSION\t2\t7").major == 2);  // major is the session's check

  parse_error("VERSION");
  parse_error("VERSION\t1");
  parse_error("VERSION\t1\t");
  parse_error("VERSION\t1\t2\t3");
  parse_error("VERSION\tone\ttwo");
  parse_error("VERSION\t-1\t2");
  parse_error("VERSION\t1\t99999999999999999999");
}

TEST_CASE("CPID needs a non-zero pid", "[auth_protocol]") {
  ClientLine c = parse_ok("CPID\t24817");
  CHECK(c.kind == Kind::cpid);
  CHECK(c.pid == 24817);
  parse_error("CPID\t0");
  parse_error("CPID");
  parse_error("CPID\tabc");
  parse_error("CPID\t");
}

TEST_CASE("Postfix's PLAIN AUTH line with initial response under TLS", "[auth_protocol]") {
  ClientLine a = parse_ok(
      "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.10\trip=198.51.100.7\tsecured\t"
      "resp=AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0");
  CHECK(a.kind == Kind::auth);
  CHECK(a.id == 1);
  CHECK(a.mechanism == "PLAIN");
  CHECK(a.service == "smtp");
  CHECK(a.lip == "192.0.2.10");
  CHECK(a.rip == "198.51.100.7");
  CHECK(a.secured);
  REQUIRE(a.resp.has_value());
  CHECK(*a.resp == "AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0");
}

TEST_CASE("Postfix's AUTH lines without initial response", "[auth_protocol]") {
  ClientLine p = parse_ok("AUTH\t2\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.10\trip=198.51.100.7\tsecured");
  CHECK(p.id == 2);
  CHECK(p.secured);
  CHECK_FALSE(p.resp.has_value());

  ClientLine l = parse_ok("AUTH\t3\tLOGIN\tservice=smtp\tnologin\tlip=192.0.2.10\trip=198.51.100.7");
  CHECK(l.id == 3);
  CHECK(l.mechanism == "LOGIN");
  CHECK_FALSE(l.secured);
  CHECK_FALSE(l.resp.has_value());

  // Mechanism as the SMTP client typed it; matching is case-insensitive elsewhere.
  ClientLine lower =
      parse_ok("AUTH\t4\tlogin\tservice=smtp\tnologin\tlip=::1\trip=2001:db8::7\tresp=dXNlckBleGFtcGxlLmNvbQ==");
  CHECK(lower.mechanism == "login");
  CHECK(lower.rip == "2001:db8::7");
  REQUIRE(lower.resp.has_value());
  CHECK(*lower.resp == "dXNlckBleGFtcGxlLmNvbQ==");

  ClientLine scram = parse_ok(
      "AUTH\t5\tSCRAM-SHA-256\tservice=smtp\tnologin\tlip=192.0.2.10\trip=198.51.100.7\t"
      "resp=biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=");
  CHECK(scram.mechanism == "SCRAM-SHA-256");
  CHECK(*scram.resp == "biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=");
}

TEST_CASE("AUTH resp= semantics: absent, empty, '=' and last", "[auth_protocol]") {
  const std::string base = "AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=\trip=";
  // resp== is RFC 4954's empty initial response: present but empty.
  ClientLine eq = parse_ok(base + "\tresp==");
  REQUIRE(eq.resp.has_value());
  CHECK(eq.resp->empty());
  // An empty resp= counts as no initial response (Dovecot; Exim sends it).
  CHECK_FALSE(parse_ok(base + "\tresp=").resp.has_value());
  // Bare "resp" too.
  CHECK_FALSE(parse_ok(base + "\tresp").resp.has_value());
  // Padding inside the value is kept as sent.
  CHECK(*parse_ok(base + "\tresp=AA==").resp == "AA==");

  std::string err = parse_error(base + "\tresp=AHVzZXIAcGFzcw==\tsecured");
  CHECK(err.find("resp") != std::string::npos);
  parse_error(base + "\tresp=\tsecured");
  parse_error(base + "\tresp=AA==\t");  // even an empty field after resp=
}

TEST_CASE("AUTH accepts empty lip/rip and ignores unknown parameters", "[auth_protocol]") {
  ClientLine a = parse_ok("AUTH\t9\tPLAIN\tservice=smtp\tnologin\tlip=\trip=\tlport=25\tsession=abc\tfoo\tbar=baz=qux");
  CHECK(a.lip.empty());
  CHECK(a.rip.empty());
  CHECK_FALSE(a.secured);
  CHECK(a.service == "smtp");

  CHECK(parse_ok("AUTH\t9\tPLAIN\tservice=imap\tsecured=tls").secured);
  CHECK(parse_ok("AUTH\t9\tPLAIN\tprotocol=submission").service == "submission");
  CHECK(parse_ok("AUTH\t9\tPLAIN\tservice=smtp").lip.empty());
  // Escaped values are unescaped.
  CHECK(parse_ok("AUTH\t9\tPLAIN\tservice=sm\001ttp").service == "sm\ttp");
}

TEST_CASE("AUTH rejects bad ids, missing fields and missing service", "[auth_protocol]") {
  parse_error("AUTH\t0\tPLAIN\tservice=smtp");
  parse_error("AUTH\t-1\tPLAIN\tservice=smtp");
  parse_error("AUTH\t+1\tPLAIN\tservice=smtp");
  parse_error("AUTH\t0x10\tPLAIN\tservice=smtp");
  parse_error("AUTH\t1a\tPLAIN\tservice=smtp");
  parse_error("AUTH\t\tPLAIN\tservice=smtp");
  parse_error("AUTH\t4294967296\tPLAIN\tservice=smtp");
  parse_error("AUTH\t99999999999999999999999\tPLAIN\tservice=smtp");
  CHECK(parse_ok("AUTH\t4294967295\tPLAIN\tservice=smtp").id == 4294967295u);

  parse_error("AUTH");
  parse_error("AUTH\t1");
  parse_error("AUTH\t1\t\tservice=smtp");
  std::string err = parse_error("AUTH\t1\tPLAIN\tnologin\tlip=1.2.3.4\trip=5.6.7.8");
  CHECK(err.find("service") != std::string::npos);
  parse_error("AUTH\t1\tPLAIN\tresp=AA==");
}

TEST_CASE("CONT carries the id and the verbatim rest", "[auth_protocol]") {
  ClientLine c = parse_ok("CONT\t3\tdXNlckBleGFtcGxlLmNvbQ==");
  CHECK(c.kind == Kind::cont);
  CHECK(c.id == 3);
  CHECK(c.data == "dXNlckBleGFtcGxlLmNvbQ==");

  ClientLine empty = parse_ok("CONT\t5\t");  // Postfix's empty answer to SCRAM's v=
  CHECK(empty.id == 5);
  CHECK(empty.data.empty());
  ClientLine bare = parse_ok("CONT\t5");
  CHECK(bare.id == 5);
  CHECK(bare.data.empty());
  // Further TABs stay in the payload (base64 decoding will reject it later).
  CHECK(parse_ok("CONT\t6\tab\tcd").data == "ab\tcd");

  parse_error("CONT");
  parse_error("CONT\t");
  parse_error("CONT\t0\tAA==");
  parse_error("CONT\tx\tAA==");
  parse_error("CONT\t4294967296\tAA==");
}

TEST_CASE("CANCEL and unknown commands", "[auth_protocol]") {
  ClientLine c = parse_ok("CANCEL\t12");
  CHECK(c.kind == Kind::cancel);
  CHECK(c.id == 12);
  parse_error("CANCEL");
  parse_error("CANCEL\t0");

  ClientLine u = parse_ok("FOO\tbar");
  CHECK(u.kind == Kind::unknown);
  CHECK(u.command == "FOO");
  CHECK(parse_ok("").kind == Kind::unknown);
  CHECK(parse_ok("auth\t1\tPLAIN\tservice=smtp").kind == Kind::unknown);  // commands are case-sensitive
  CHECK(parse_ok("AUTHX\t1").kind == Kind::unknown);
}

TEST_CASE("the parser copes with oversized and binary input", "[auth_protocol]") {
  std::string huge = "AUTH\t1\tPLAIN\tservice=smtp\tresp=" + std::string(3 * kMaxAuthLine, 'A');
  ClientLine a = parse_ok(huge);
  CHECK(a.resp->size() == 3 * kMaxAuthLine);

  std::string many_tabs = "AUTH\t1\tPLAIN" + std::string(kMaxAuthLine, '\t');
  parse_error(many_tabs);  // no service=
  std::string long_id = "CONT\t" + std::string(kMaxAuthLine, '9');
  parse_error(long_id);
  std::string binary = "VERSION\t1\0\t2"s;
  parse_error(binary);
  std::string nul_unknown(100, '\0');
  CHECK(parse_ok(nul_unknown).kind == Kind::unknown);
}

TEST_CASE("server handshake is the Dovecot 2.3 block", "[auth_protocol]") {
  std::string h = server_handshake({{"PLAIN", {"plaintext"}},
                                    {"LOGIN", {"plaintext"}},
                                    {"CRAM-MD5", {"dictionary", "active"}},
                                    {"SCRAM-SHA-256", {"mutual-auth"}}},
                                   901, 3, "0123456789abcdef0123456789abcdef");
  CHECK(h ==
        "VERSION\t1\t2\n"
        "MECH\tPLAIN\tplaintext\n"
        "MECH\tLOGIN\tplaintext\n"
        "MECH\tCRAM-MD5\tdictionary\tactive\n"
        "MECH\tSCRAM-SHA-256\tmutual-auth\n"
        "SPID\t901\n"
        "CUID\t3\n"
        "COOKIE\t0123456789abcdef0123456789abcdef\n"
        "DONE\n");
  CHECK(server_handshake({{"EXTERNAL", {}}}, 1, 2, "ab") ==
        "VERSION\t1\t2\nMECH\tEXTERNAL\nSPID\t1\nCUID\t2\nCOOKIE\tab\nDONE\n");
}

TEST_CASE("replies are single LF-terminated lines", "[auth_protocol]") {
  CHECK(format_cont(2, "") == "CONT\t2\t\n");
  CHECK(format_cont(3, "VXNlcm5hbWU6") == "CONT\t3\tVXNlcm5hbWU6\n");
  CHECK(format_cont(4294967295u, "UGFzc3dvcmQ6") == "CONT\t4294967295\tUGFzc3dvcmQ6\n");
  CHECK(format_ok(1, "user@example.com") == "OK\t1\tuser=user@example.com\n");
  CHECK(format_fail(2, "user", "Invalid credentials") == "FAIL\t2\tuser=user\treason=Invalid credentials\n");
  CHECK(format_fail(2, "user", "") == "FAIL\t2\tuser=user\n");
  CHECK(format_fail(9, "", "Authentication request timed out") == "FAIL\t9\treason=Authentication request timed out\n");
  CHECK(format_fail(9, "", "") == "FAIL\t9\n");
}

TEST_CASE("replies never carry raw TAB, CR, LF or NUL inside values", "[auth_protocol]") {
  std::string evil = "bob\tuser=admin\r\nOK\t1\0x"s;
  for (const std::string& line : {format_ok(1, evil), format_fail(1, evil, evil), format_cont(1, evil)}) {
    INFO(line);
    REQUIRE(line.back() == '\n');
    std::string body = line.substr(0, line.size() - 1);
    CHECK(body.find('\n') == std::string::npos);
    CHECK(body.find('\r') == std::string::npos);
    CHECK(body.find('\0') == std::string::npos);
  }
  CHECK(format_ok(1, evil) == "OK\t1\tuser=bob\001tuser=admin\001r\001nOK\001t1\0010x\n");
  // Field count: OK, id, user= only.
  std::string ok = format_ok(1, evil);
  CHECK(std::count(ok.begin(), ok.end(), '\t') == 2);
}
