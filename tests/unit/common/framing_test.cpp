// framing_test.cpp - tests for common/framing.hpp.
#include "common/framing.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace postern;
using namespace std::string_literals;

namespace {

// Pulls every complete frame; returns the status that ended the loop.
template <class Framer>
FrameStatus drain(Framer& f, std::vector<std::string>* frames) {
  std::string_view out;
  FrameStatus s;
  while ((s = f.next(&out)) == FrameStatus::frame) frames->emplace_back(out);
  return s;
}

}  // namespace

TEST_CASE("LineFramer splits on LF and strips one CR", "[framing]") {
  LineFramer f(100);
  std::vector<std::string> lines;
  f.append("get a\nget b\r\n\n\r\nx\r\r\nlast");
  CHECK(drain(f, &lines) == FrameStatus::need_more);
  CHECK(lines == std::vector<std::string>{"get a", "get b", "", "", "x\r"});
  CHECK(f.buffered() == 4);
  f.append("\n");
  lines.clear();
  CHECK(drain(f, &lines) == FrameStatus::need_more);
  CHECK(lines == std::vector<std::string>{"last"});
  CHECK(f.buffered() == 0);
}

TEST_CASE("LineFramer reassembles lines fed byte by byte", "[framing]") {
  LineFramer f(100);
  std::string input = "hello world\r\nsecond\n";
  std::vector<std::string> lines;
  for (char c : input) {
    f.append(std::string_view(&c, 1));
    CHECK(drain(f, &lines) == FrameStatus::need_more);
  }
  CHECK(lines == std::vector<std::string>{"hello world", "second"});
}

TEST_CASE("LineFramer keeps NUL and non-ASCII bytes", "[framing]") {
  LineFramer f(100);
  std::vector<std::string> lines;
  f.append("a\0b\xff\n"s);
  CHECK(drain(f, &lines) == FrameStatus::need_more);
  CHECK(lines == std::vector<std::string>{"a\0b\xff"s});
}

TEST_CASE("LineFramer limit: exactly max_line is fine, one more is too_long", "[framing]") {
  std::vector<std::string> lines;
  SECTION("exact length with LF and with CRLF") {
    LineFramer f(5);
    f.append("12345\n12345\r\n");
    CHECK(drain(f, &lines) == FrameStatus::need_more);
    CHECK(lines == std::vector<std::string>{"12345", "12345"});
  }
  SECTION("too long, complete line") {
    LineFramer f(5);
    f.append("ok\n123456\nnext\n");
    CHECK(drain(f, &lines) == FrameStatus::too_long);
    CHECK(lines == std::vector<std::string>{"ok"});
  }
  SECTION("too long is found before the LF arrives") {
    LineFramer f(5);
    std::string_view out;
    f.append("12345");
    CHECK(f.next(&out) == FrameStatus::need_more);
    f.append("6");
    CHECK(f.next(&out) == FrameStatus::too_long);
  }
  SECTION("a CR after max_line bytes waits for its LF") {
    LineFramer f(5);
    std::string_view out;
    f.append("12345\r");
    CHECK(f.next(&out) == FrameStatus::need_more);
    f.append("\n");
    REQUIRE(f.next(&out) == FrameStatus::frame);
    CHECK(out == "12345");
  }
  SECTION("a CR followed by more bytes is counted") {
    LineFramer f(5);
    std::string_view out;
    f.append("12345\r");
    CHECK(f.next(&out) == FrameStatus::need_more);
    f.append("x");
    CHECK(f.next(&out) == FrameStatus::too_long);
  }
  SECTION("two CRs: only one is a line end") {
    LineFramer f(5);
    std::string_view out;
    f.append("12345\r\r\n");
    CHECK(f.next(&out) == FrameStatus::too_long);
  }
  SECTION("max_line 0 accepts only empty lines") {
    LineFramer f(0);
    std::string_view out;
    f.append("\n\r\n");
    CHECK(f.next(&out) == FrameStatus::frame);
    CHECK(f.next(&out) == FrameStatus::frame);
    CHECK(out.empty());
    f.append("a");
    CHECK(f.next(&out) == FrameStatus::too_long);
  }
}

TEST_CASE("LineFramer stays failed and stops buffering", "[framing]") {
  LineFramer f(4);
  std::string_view out;
  f.append("toolong");
  CHECK(f.next(&out) == FrameStatus::too_long);
  CHECK(f.buffered() == 0);
  f.append("\nok\n");
  CHECK(f.buffered() == 0);
  CHECK(f.next(&out) == FrameStatus::too_long);
  CHECK(f.next(&out) == FrameStatus::too_long);
}

TEST_CASE("LineFramer handles many lines with bounded memory", "[framing]") {
  LineFramer f(64);
  std::string_view out;
  size_t count = 0;
  std::string chunk;
  for (int i = 0; i < 100; ++i) chunk += "line number " + std::to_string(i) + "\n";
  for (int round = 0; round < 2000; ++round) {
    f.append(chunk);
    while (f.next(&out) == FrameStatus::frame) ++count;
    CHECK(f.buffered() == 0);
  }
  CHECK(count == 200000);
  // A partial line split across many appends is found once.
  f.append("partial");
  CHECK(f.next(&out) == FrameStatus::need_more);
  f.append(" line\n");
  REQUIRE(f.next(&out) == FrameStatus::frame);
  CHECK(out == "partial line");
}

TEST_CASE("encode_netstring", "[framing]") {
  CHECK(encode_netstring("") == "0:,");
  CHECK(encode_netstring("OK 1") == "4:OK 1,");
  CHECK(encode_netstring("a\0b,:"s) == "5:a\0b,:,"s);
  CHECK(encode_netstring(std::string(12345, 'x')).substr(0, 6) == "12345:");
}

TEST_CASE("NetstringFramer decodes the socketmap transcript", "[framing]") {
  NetstringFramer f(100000);
  std::vector<std::string> frames;
  f.append("24:virtual user@example.com,19:domains example.com,0:,");
  CHECK(drain(f, &frames) == FrameStatus::need_more);
  CHECK(frames == std::vector<std::string>{"virtual user@example.com", "domains example.com", ""});
  CHECK(f.buffered() == 0);
}

TEST_CASE("NetstringFramer byte by byte and binary payloads", "[framing]") {
  NetstringFramer f(100);
  std::string wire = encode_netstring("a,b:c\0\n"s) + encode_netstring("12:,") + encode_netstring("");
  std::vector<std::string> frames;
  for (char c : wire) {
    f.append(std::string_view(&c, 1));
    CHECK(drain(f, &frames) == FrameStatus::need_more);
  }
  CHECK(frames == std::vector<std::string>{"a,b:c\0\n"s, "12:,", ""});
}

TEST_CASE("NetstringFramer rejects malformed input", "[framing]") {
  auto status_of = [](std::string wire, size_t max = 1000) {
    NetstringFramer f(max);
    f.append(wire);
    std::string_view out;
    FrameStatus s;
    while ((s = f.next(&out)) == FrameStatus::frame) {
    }
    return s;
  };
  CHECK(status_of(":,") == FrameStatus::malformed);             // no digits
  CHECK(status_of("3x:abc,") == FrameStatus::malformed);        // non-digit
  CHECK(status_of(" 3:abc,") == FrameStatus::malformed);        // leading space
  CHECK(status_of("-1:,") == FrameStatus::malformed);
  CHECK(status_of("03:abc,") == FrameStatus::malformed);        // leading zero
  CHECK(status_of("00:,") == FrameStatus::malformed);
  CHECK(status_of("0") == FrameStatus::need_more);              // "0" may still become "0:,"
  CHECK(status_of("0:,") == FrameStatus::need_more);            // fine, one empty frame
  CHECK(status_of("3:abc;") == FrameStatus::malformed);         // missing ','
  CHECK(status_of("3:abcd,") == FrameStatus::malformed);        // payload longer than declared
  CHECK(status_of("3:abc,\n3:def,") == FrameStatus::malformed); // no LF between netstrings
  CHECK(status_of("3:ab") == FrameStatus::need_more);
  CHECK(status_of("3:abc") == FrameStatus::need_more);
  // More than 10 digits is not a length, even under a huge limit.
  CHECK(status_of("12345678901:", 100000000000ULL) == FrameStatus::malformed);
  CHECK(status_of("12345678901", 100000000000ULL) == FrameStatus::malformed);
  CHECK(status_of("1234567890", 100000000000ULL) == FrameStatus::need_more);
}

TEST_CASE("NetstringFramer length limit", "[framing]") {
  std::string_view out;
  SECTION("exactly max_payload is accepted") {
    NetstringFramer f(5);
    f.append("5:12345,");
    REQUIRE(f.next(&out) == FrameStatus::frame);
    CHECK(out == "12345");
  }
  SECTION("too_long as soon as the length digits exceed the limit, before ':'") {
    NetstringFramer f(59);
    f.append("6");
    CHECK(f.next(&out) == FrameStatus::need_more);
    f.append("0");
    CHECK(f.next(&out) == FrameStatus::too_long);
  }
  SECTION("too_long before any payload arrives") {
    NetstringFramer f(5);
    f.append("6:");
    CHECK(f.next(&out) == FrameStatus::too_long);
  }
  SECTION("too_long from the digits alone") {
    NetstringFramer f(100);
    f.append("1000");
    CHECK(f.next(&out) == FrameStatus::too_long);
  }
  SECTION("a huge declared length is not buffered for") {
    NetstringFramer f(100000);
    f.append("99999999999999999999:");
    CHECK(f.next(&out) == FrameStatus::too_long);
  }
}

TEST_CASE("NetstringFramer stays failed", "[framing]") {
  NetstringFramer f(100);
  std::string_view out;
  f.append("2:ok,x:");
  REQUIRE(f.next(&out) == FrameStatus::frame);
  CHECK(out == "ok");
  CHECK(f.next(&out) == FrameStatus::malformed);
  f.append("2:ok,");
  CHECK(f.next(&out) == FrameStatus::malformed);
  CHECK(f.buffered() == 0);
}

TEST_CASE("NetstringFramer many frames keep the buffer small", "[framing]") {
  NetstringFramer f(1000);
  std::string chunk;
  for (int i = 0; i < 100; ++i) chunk += encode_netstring("aliases user" + std::to_string(i) + "@example.com");
  std::string_view out;
  size_t count = 0;
  for (int round = 0; round < 1000; ++round) {
    // Split each chunk unevenly so frames straddle appends.
    f.append(std::string_view(chunk).substr(0, 777));
    while (f.next(&out) == FrameStatus::frame) ++count;
    f.append(std::string_view(chunk).substr(777));
    while (f.next(&out) == FrameStatus::frame) ++count;
    CHECK(f.buffered() == 0);
  }
  CHECK(count == 100000);
}
