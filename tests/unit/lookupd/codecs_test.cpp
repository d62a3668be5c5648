// codecs_test.cpp - tests for lookupd/protocol_codecs.hpp (socketmap_table(5), tcp_table(5)).
#include "lookupd/protocol_codecs.hpp"

#include "common/framing.hpp"

#include <catch2/catch.hpp>

using namespace postern;
using namespace postern::lookupd;
using namespace std::string_literals;

TEST_CASE("socketmap request splits at the first space", "[codecs]") {
  CodecError err;
  auto r = parse_socketmap_request("virtual user@example.com", &err);
  REQUIRE(r);
  CHECK(r->map == "virtual");
  CHECK(r->key == "user@example.com");

  // Keys are raw: spaces, UTF-8 and '%' are kept as sent.
  r = parse_socketmap_request("aliases j\xc3\xb6hn doe%20@example.com ", &err);
  REQUIRE(r);
  CHECK(r->map == "aliases");
  CHECK(r->key == "j\xc3\xb6hn doe%20@example.com ");

  r = parse_socketmap_request("domains ", &err);
  REQUIRE(r);
  CHECK(r->key.empty());
}

TEST_CASE("socketmap request errors", "[codecs]") {
  CodecError err;
  CHECK_FALSE(parse_socketmap_request("novalue", &err));
  CHECK_THAT(err.reason, Catch::Contains("no space"));
  CHECK_FALSE(parse_socketmap_request("", &err));
  CHECK_FALSE(parse_socketmap_request(" key", &err));
  CHECK(err.reason == "empty map name");
  CHECK_FALSE(parse_socketmap_request("virtual user\0@example.com"s, &err));
  CHECK(err.reason == "key contains a NUL byte");
  CHECK_FALSE(parse_socketmap_request("vir\0tual key"s, &err));
  CHECK_THAT(err.reason, Catch::Contains("NUL"));
  // A null error pointer is allowed.
  CHECK_FALSE(parse_socketmap_request("x", nullptr));
}

TEST_CASE("socketmap key length limit is 10000 bytes", "[codecs]") {
  CodecError err;
  auto r = parse_socketmap_request("m " + std::string(kMaxKeyBytes, 'k'), &err);
  REQUIRE(r);
  CHECK(r->key.size() == kMaxKeyBytes);
  CHECK_FALSE(parse_socketmap_request("m " + std::string(kMaxKeyBytes + 1, 'k'), &err));
  CHECK_THAT(err.reason, Catch::Contains("10000"));
}

TEST_CASE("socketmap replies", "[codecs]") {
  CHECK(format_socketmap_reply(LookupResult::found("example.com/user/Maildir/")) == "28:OK example.com/user/Maildir/,");
  CHECK(format_socketmap_reply(LookupResult::found("1")) == "4:OK 1,");
  CHECK(format_socketmap_reply(LookupResult::not_found()) == "9:NOTFOUND ,");
  CHECK(format_socketmap_reply(LookupResult::temp("database unavailable")) == "25:TEMP database unavailable,");
  CHECK(format_socketmap_reply(LookupResult::perm("unknown map")) == "16:PERM unknown map,");
  // Values are sent raw, spaces included.
  CHECK(format_socketmap_reply(LookupResult::found("a@x, b@y")) == "11:OK a@x, b@y,");
}

TEST_CASE("socketmap never sends an empty or oversized value", "[codecs]") {
  CHECK(format_socketmap_reply(LookupResult::found("")) == encode_netstring("TEMP empty result"));
  CHECK_THAT(format_socketmap_reply(LookupResult::found("a\0b"s)), Catch::Contains(":TEMP "));
  // "OK " plus the value must fit in 100000 bytes.
  std::string fits(kMaxSocketmapReply - 3, 'v');
  CHECK(format_socketmap_reply(LookupResult::found(fits)) == encode_netstring("OK " + fits));
  CHECK(format_socketmap_reply(LookupResult::found(fits + "v")) == encode_netstring("TEMP result too long"));
}

TEST_CASE("socketmap reasons are sanitized", "[codecs]") {
  CHECK(format_socketmap_reply(LookupResult::temp("line one\r\nline two")) == encode_netstring("TEMP line one  line two"));
  CHECK(format_socketmap_reply(LookupResult::temp("")) == encode_netstring("TEMP temporary error"));
  CHECK(format_socketmap_reply(LookupResult::perm("\n")) == encode_netstring("PERM permanent error"));
  std::string reply = format_socketmap_reply(LookupResult::temp(std::string(50000, 'r')));
  CHECK(reply.size() < 1000);
}

TEST_CASE("socketmap reply survives a round trip through the framer", "[codecs]") {
  NetstringFramer f(kMaxSocketmapReply);
  f.append(format_socketmap_reply(LookupResult::found("x y")));
  f.append(format_socketmap_reply(LookupResult::not_found()));
  std::string_view out;
  REQUIRE(f.next(&out) == FrameStatus::frame);
  CHECK(out == "OK x y");
  REQUIRE(f.next(&out) == FrameStatus::frame);
  CHECK(out == "NOTFOUND ");
}

TEST_CASE("hex_quote encodes %, whitespace and non-printable bytes", "[codecs]") {
  CHECK(hex_quote("j\xc3\xb6hn doe@example.com") == "j%C3%B6hn%20doe@example.com");
  CHECK(hex_quote("100%") == "100%25");
  CHECK(hex_quote(" \t\n\v\f\r") == "%20%09%0A%0B%0C%0D");
  CHECK(hex_quote("\0\x01\x1f\x7f\x80\xff"s) == "%00%01%1F%7F%80%FF");
  CHECK(hex_quote("") == "");
  // Printable ASCII other than '%' and space passes through.
  std::string printable;
  for (int c = 0x21; c < 0x7f; ++c)
    if (c != '%') printable += static_cast<char>(c);
  CHECK(hex_quote(printable) == printable);
}

TEST_CASE("hex_unquote accepts either case and rejects bad %XX", "[codecs]") {
  CHECK(hex_unquote("j%C3%B6hn%20doe@example.com") == "j\xc3\xb6hn doe@example.com");
  CHECK(hex_unquote("%c3%b6%2a") == "\xc3\xb6*");
  CHECK(hex_unquote("plain text") == "plain text");
  CHECK(hex_unquote("") == "");
  CHECK(hex_unquote("%00") == "\0"s);
  CHECK_FALSE(hex_unquote("%"));
  CHECK_FALSE(hex_unquote("%4"));
  CHECK_FALSE(hex_unquote("abc%"));
  CHECK_FALSE(hex_unquote("%G0"));
  CHECK_FALSE(hex_unquote("%0g"));
  CHECK_FALSE(hex_unquote("%%41"));
  CHECK_FALSE(hex_unquote("%+1"));
  CHECK_FALSE(hex_unquote("% 1"));
}

TEST_CASE("hex_quote/hex_unquote round trip every byte", "[codecs]") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  CHECK(hex_unquote(hex_quote(all)) == all);
}

TEST_CASE("tcp_table requests", "[codecs]") {
  CodecError err;
  CHECK(parse_tcp_request("get user@example.com", &err) == "user@example.com");
  CHECK(parse_tcp_request("get j%C3%B6hn%20doe@example.com", &err) == "j\xc3\xb6hn doe@example.com");
  CHECK(parse_tcp_request("get ", &err) == "");

  CHECK_FALSE(parse_tcp_request("put key value", &err));
  CHECK_THAT(err.reason, Catch::Contains("get"));
  CHECK_FALSE(parse_tcp_request("GET key", &err));
  CHECK_FALSE(parse_tcp_request("get", &err));
  CHECK_FALSE(parse_tcp_request("getkey", &err));
  CHECK_FALSE(parse_tcp_request("", &err));

  CHECK_FALSE(parse_tcp_request("get bad%zzkey", &err));
  CHECK_THAT(err.reason, Catch::Contains("%XX"));
  CHECK_FALSE(parse_tcp_request("get trailing%2", &err));

  CHECK_FALSE(parse_tcp_request("get a%00b", &err));
  CHECK(err.reason == "key contains a NUL byte");
  CHECK_FALSE(parse_tcp_request("get a\0b"s, &err));
  CHECK(err.reason == "key contains a NUL byte");
  // A null error pointer is allowed.
  CHECK(parse_tcp_request("get x", nullptr) == "x");
  CHECK_FALSE(parse_tcp_request("put x", nullptr));
}

TEST_CASE("tcp_table key limit applies to the decoded key", "[codecs]") {
  CodecError err;
  std::string quoted;
  for (size_t i = 0; i < kMaxKeyBytes; ++i) quoted += "%41";
  auto k = parse_tcp_request("get " + quoted, &err);
  REQUIRE(k);
  CHECK(*k == std::string(kMaxKeyBytes, 'A'));
  CHECK_FALSE(parse_tcp_request("get " + quoted + "%41", &err));
  CHECK_THAT(err.reason, Catch::Contains("10000"));
  CHECK_FALSE(parse_tcp_request("get " + std::string(kMaxKeyBytes + 1, 'a'), &err));
}

TEST_CASE("tcp_table replies", "[codecs]") {
  CHECK(format_tcp_reply(LookupResult::found("example.com/user/Maildir/")) == "200 example.com/user/Maildir/\n");
  CHECK(format_tcp_reply(LookupResult::found("alice@example.com, bob@example.com")) ==
        "200 alice@example.com,%20bob@example.com\n");
  CHECK(format_tcp_reply(LookupResult::found("100%\r\n")) == "200 100%25%0D%0A\n");
  CHECK(format_tcp_reply(LookupResult::not_found()) == "500 not found\n");
  CHECK(format_tcp_reply(LookupResult::temp("database unavailable")) == "400 database%20unavailable\n");
  // tcp_table has no permanent error: it becomes 400 too.
  CHECK(format_tcp_reply(LookupResult::perm("unknown map")) == "400 unknown%20map\n");
  CHECK(format_tcp_reply(LookupResult::found("")) == "400 empty%20result\n");
}

TEST_CASE("tcp_table reply lines fit in 4096 bytes including LF", "[codecs]") {
  // 4 bytes of "200 " and 1 of LF leave 4091 for the quoted value.
  std::string fits(kMaxTcpReplyLine - 5, 'v');
  std::string line = format_tcp_reply(LookupResult::found(fits));
  CHECK(line.size() == kMaxTcpReplyLine);
  CHECK(line == "200 " + fits + "\n");
  CHECK(format_tcp_reply(LookupResult::found(fits + "v")) == "400 result%20too%20long\n");
  // Quoting expands bytes threefold; the limit applies after quoting.
  CHECK(format_tcp_reply(LookupResult::found(std::string(1400, ' '))) == "400 result%20too%20long\n");
  // Huge reasons are cut, never producing an over-long line.
  for (char c : {'r', ' ', '\xff'}) {
    std::string reply = format_tcp_reply(LookupResult::temp(std::string(100000, c)));
    CHECK(reply.size() <= kMaxTcpReplyLine);
    CHECK(reply.rfind("400 ", 0) == 0);
  }
}

TEST_CASE("tcp_table reasons never carry a raw CR or LF", "[codecs]") {
  std::string reply = format_tcp_reply(LookupResult::temp("db said:\r\nERROR 2002"));
  CHECK(reply == "400 db%20said:%20%20ERROR%202002\n");
  CHECK(reply.find('\r') == std::string::npos);
  CHECK(reply.find('\n') == reply.size() - 1);
  CHECK(format_tcp_reply(LookupResult::temp("")) == "400 temporary%20error\n");
}

TEST_CASE("tcp_table reply text unquotes back to the value", "[codecs]") {
  std::string value = "j\xc3\xb6hn doe@example.com\t100%";
  std::string line = format_tcp_reply(LookupResult::found(value));
  REQUIRE(line.size() > 5);
  CHECK(hex_unquote(std::string_view(line).substr(4, line.size() - 5)) == value);
}
