// strings_test.cpp - tests for common/strings.hpp.
#include "common/strings.hpp"

#include <catch2/catch.hpp>

using namespace postern;

TEST_CASE("trim removes ASCII whitespace at both ends only", "[strings]") {
  CHECK(trim("  a b  ") == "a b");
  CHECK(trim("\t\r\n\v\fx\f\v\n\r\t") == "x");
  CHECK(trim("") == "");
  CHECK(trim(" \t\r\n ") == "");
  CHECK(trim("abc") == "abc");
  CHECK(trim("a") == "a");
  // Non-ASCII and NUL bytes are not whitespace.
  CHECK(trim(std::string_view("\0a\0", 3)) == std::string_view("\0a\0", 3));
  CHECK(trim("\xc2\xa0x\xc2\xa0") == "\xc2\xa0x\xc2\xa0");
}

TEST_CASE("trim returns a view into its argument", "[strings]") {
  std::string s = "  key  ";
  std::string_view t = trim(s);
  CHECK(t.data() == s.data() + 2);
  CHECK(t.size() == 3);
}

TEST_CASE("to_lower_ascii folds only A-Z", "[strings]") {
  CHECK(to_lower_ascii("User@Example.COM") == "user@example.com");
  CHECK(to_lower_ascii("") == "");
  CHECK(to_lower_ascii("already lower 123 @[]") == "already lower 123 @[]");
  // UTF-8 bytes pass through unchanged ("Ö" is C3 96).
  CHECK(to_lower_ascii("J\xc3\x96HN") == "j\xc3\x96hn");
  CHECK(to_lower_ascii(std::string_view("A\0B", 3)) == std::string("a\0b", 3));
}

TEST_CASE("iequals compares ASCII case-insensitively", "[strings]") {
  CHECK(iequals("Yes", "yES"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("yes", "ye"));
  CHECK_FALSE(iequals("yes", "yes "));
  CHECK_FALSE(iequals("a", "b"));
  // '@' (0x40) and '`' (0x60) differ by 0x20 but are not letters.
  CHECK_FALSE(iequals("@", "`"));
  CHECK_FALSE(iequals("[", "{"));
  CHECK(iequals("\xc3\x96", "\xc3\x96"));
  CHECK_FALSE(iequals("\xc3\x96", "\xc3\xb6"));  // no Unicode folding
}

TEST_CASE("split_list drops empty pieces", "[strings]") {
  using V = std::vector<std::string>;
  CHECK(split_list("a, b  c") == V{"a", "b", "c"});
  CHECK(split_list(" ,a,,b, ") == V{"a", "b"});
  CHECK(split_list("") == V{});
  CHECK(split_list(" , \t\r\n") == V{});
  CHECK(split_list("one") == V{"one"});
  CHECK(split_list("h1\th2\nh3\r\nh4") == V{"h1", "h2", "h3", "h4"});
}

TEST_CASE("split_list with custom separators", "[strings]") {
  using V = std::vector<std::string>;
  CHECK(split_list("a:b::c", ":") == V{"a", "b", "c"});
  // Spaces are kept when not a separator.
  CHECK(split_list("a b;c d", ";") == V{"a b", "c d"});
  CHECK(split_list("abc", "") == V{"abc"});
}

TEST_CASE("split_lines: one element per line, file line N at N-1", "[strings]") {
  using V = std::vector<std::string_view>;
  CHECK(split_lines("") == V{});
  CHECK(split_lines("a") == V{"a"});
  CHECK(split_lines("a\n") == V{"a"});
  CHECK(split_lines("a\n\nb") == V{"a", "", "b"});
  CHECK(split_lines("a\r\nb\n\n") == V{"a\r", "b", ""});
}
