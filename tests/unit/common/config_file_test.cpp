// config_file_test.cpp - tests for common/config_file.hpp: the Postfix .cf dialect, the
// getters and load(). The Dovecot dialect's tests are in config_file_dovecot_test.cpp.
#include "common/config_file.hpp"

#include "tests/unit/common/config_file_test_support.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>

using namespace postern;
using namespace config_test;
using namespace std::chrono_literals;
using namespace std::string_literals;

TEST_CASE("a typical mysql_table(5) file", "[config]") {
  ConfigFile cf = parse_ok(
      "# mysql-virtual-mailbox-maps.cf\n"
      "user = mailuser\n"
      "password=s3cret = with equals \n"
      "hosts = db1.example.com\n"
      "        db2.example.com\n"
      "dbname = mailserver\n"
      "query = SELECT maildir FROM virtual_users\n"
      "\tWHERE email = '%s'\n");
  CHECK(cf.origin() == "test.cf");
  CHECK(cf.get("user") == "mailuser");
  // Only the first '=' separates; the value is trimmed.
  CHECK(cf.get("password") == "s3cret = with equals");
  // Continuation lines are joined with one space.
  CHECK(cf.get("hosts") == "db1.example.com db2.example.com");
  CHECK(cf.get("query") == "SELECT maildir FROM virtual_users WHERE email = '%s'");
  CHECK(cf.keys() == std::vector<std::string>{"user", "password", "hosts", "dbname", "query"});
  CHECK(cf.line_of("user") == 2);
  CHECK(cf.line_of("hosts") == 4);
  CHECK(cf.line_of("query") == 7);
  CHECK(cf.line_of("absent") == 0);
}

TEST_CASE("comments and blank lines", "[config]") {
  ConfigFile cf = parse_ok(
      "\n"
      "   \n"
      "# a comment = not a key\n"
      "   # an indented comment\n"
      "a = 1 # not a comment: Postfix has no trailing comments\n"
      "b = x\n"
      "# a comment inside a continued line\n"
      "\n"
      "  y\n");
  CHECK(cf.keys() == std::vector<std::string>{"a", "b"});
  CHECK(cf.get("a") == "1 # not a comment: Postfix has no trailing comments");
  // Comment and blank lines do not end the logical line.
  CHECK(cf.get("b") == "x y");
  CHECK_FALSE(cf.has("#"));
}

TEST_CASE("CR line ends and files without a final newline", "[config]") {
  ConfigFile cf = parse_ok("a = 1\r\nb = two words\r\n  more\r\nc = last");
  CHECK(cf.get("a") == "1");
  CHECK(cf.get("b") == "two words more");
  CHECK(cf.get("c") == "last");
  CHECK(parse_ok("").keys().empty());
  CHECK(parse_ok("# only a comment").keys().empty());
}

TEST_CASE("empty values, case-sensitive keys, find/get/has", "[config]") {
  ConfigFile cf = parse_ok("empty =\nKey = upper\nkey = lower\n");
  CHECK(cf.has("empty"));
  REQUIRE(cf.find("empty") != nullptr);
  CHECK(cf.find("empty")->empty());
  CHECK(cf.get("empty", "fallback") == "");
  CHECK(cf.get("Key") == "upper");
  CHECK(cf.get("key") == "lower");
  CHECK(cf.get("KEY", "fb") == "fb");
  CHECK(cf.find("KEY") == nullptr);
  CHECK_FALSE(cf.has("KEY"));
  CHECK(cf.get("missing") == "");
}

TEST_CASE("a later duplicate key wins but keeps its first position", "[config]") {
  ConfigFile cf = parse_ok("a = 1\nb = 2\na = 3\n");
  CHECK(cf.get("a") == "3");
  CHECK(cf.line_of("a") == 3);
  CHECK(cf.keys() == std::vector<std::string>{"a", "b"});
}

TEST_CASE("syntax errors name origin and line", "[config]") {
  CHECK(parse_error("a = 1\n\njust some words\n") == "test.cf line 3: missing '=' (expected \"name = value\")");
  CHECK_THAT(parse_error("= value\n"), Catch::StartsWith("test.cf line 1: missing name"));
  CHECK_THAT(parse_error("a = 1\nmy key = 2\n"), Catch::StartsWith("test.cf line 2: whitespace inside the name"));
  CHECK_THAT(parse_error("# comment\n  indented = 1\n"), Catch::StartsWith("test.cf line 2: continuation line"));
  CHECK_THAT(parse_error("a = 1\nb = x\0y\n"s), Catch::StartsWith("test.cf line 2: NUL byte"));
  // A logical line without '=' is reported at its first physical line.
  CHECK_THAT(parse_error("a = 1\nno equals\n  here = either\n"), Catch::StartsWith("test.cf line 2:"));
}

TEST_CASE("the missing-'=' error does not echo the line", "[config]") {
  std::string msg = parse_error("password hunter2\n");
  CHECK(msg.find("hunter2") == std::string::npos);
}

TEST_CASE("get_int", "[config]") {
  ConfigFile cf = parse_ok("n = 42\nneg = -7\nplus = +3\nplusneg = +-3\nplusonly = +\n"
                           "big = 99999999999999999999\nword = ten\ntrail = 10x\nempty =\nspace = 1 2\n");
  CHECK(cf.get_int("absent", 5, 0, 10).value() == 5);
  CHECK(cf.get_int("n", 0, 0, 100).value() == 42);
  CHECK(cf.get_int("n", 0, 42, 42).value() == 42);
  CHECK(cf.get_int("neg", 0, -10, 10).value() == -7);
  CHECK(cf.get_int("plus", 0, 0, 10).value() == 3);
  auto r = cf.get_int("n", 0, 0, 41);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "test.cf line 1: n: expected an integer in [0, 41], got \"42\"");
  CHECK_FALSE(cf.get_int("neg", 0, 0, 10).ok());
  CHECK_FALSE(cf.get_int("plusneg", 0, -10, 10).ok());
  CHECK_FALSE(cf.get_int("plusonly", 0, -10, 10).ok());
  CHECK_FALSE(cf.get_int("big", 0, 0, 1000).ok());
  CHECK_FALSE(cf.get_int("word", 0, 0, 1000).ok());
  CHECK_FALSE(cf.get_int("trail", 0, 0, 1000).ok());
  CHECK_FALSE(cf.get_int("empty", 0, 0, 1000).ok());
  CHECK_FALSE(cf.get_int("space", 0, 0, 1000).ok());
}

TEST_CASE("get_bool", "[config]") {
  ConfigFile cf = parse_ok("a = yes\nb = NO\nc = True\nd = false\ne = 1\nf = 0\ng = maybe\nh = on\ni =\n");
  CHECK(cf.get_bool("a", false).value());
  CHECK_FALSE(cf.get_bool("b", true).value());
  CHECK(cf.get_bool("c", false).value());
  CHECK_FALSE(cf.get_bool("d", true).value());
  CHECK(cf.get_bool("e", false).value());
  CHECK_FALSE(cf.get_bool("f", true).value());
  CHECK(cf.get_bool("absent", true).value());
  CHECK_FALSE(cf.get_bool("absent", false).value());
  auto g = cf.get_bool("g", false);
  REQUIRE_FALSE(g.ok());
  CHECK_THAT(g.error().message, Catch::StartsWith("test.cf line 7: g:"));
  CHECK_FALSE(cf.get_bool("h", false).ok());
  CHECK_FALSE(cf.get_bool("i", false).ok());
}

TEST_CASE("get_duration", "[config]") {
  ConfigFile cf = parse_ok(
      "plain = 10\ns = 10s\nms = 500ms\nm = 2m\nh = 1h\nd = 1d\nzero = 0\n"
      "neg = -1s\nunit = 10w\nupper = 10S\nspace = 10 s\nempty =\nfrac = 1.5s\nhuge = 999999999999999999d\n"
      "nodigits = s\n");
  CHECK(cf.get_duration("plain", 0ms).value() == 10s);
  CHECK(cf.get_duration("s", 0ms).value() == 10s);
  CHECK(cf.get_duration("ms", 0ms).value() == 500ms);
  CHECK(cf.get_duration("m", 0ms).value() == 2min);
  CHECK(cf.get_duration("h", 0ms).value() == 1h);
  CHECK(cf.get_duration("d", 0ms).value() == 24h);
  CHECK(cf.get_duration("zero", 5s).value() == 0ms);
  CHECK(cf.get_duration("absent", 1500ms).value() == 1500ms);
  for (const char* bad : {"neg", "unit", "upper", "space", "empty", "frac", "huge", "nodigits"}) {
    INFO(bad);
    auto r = cf.get_duration(bad, 0ms);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::StartsWith("test.cf line ") && Catch::Contains(std::string(bad) + ":"));
  }
}

TEST_CASE("get_mode", "[config]") {
  ConfigFile cf = parse_ok("a = 0660\nb = 660\nc = 07777\nd = 010000\ne = 0668\nf = rw\ng =\nh = 0\ni = -1\n"
                           "j = 00000000000000000000600\n");
  CHECK(cf.get_mode("a", 0).value() == 0660u);
  CHECK(cf.get_mode("b", 0).value() == 0660u);
  CHECK(cf.get_mode("c", 0).value() == 07777u);
  CHECK(cf.get_mode("h", 0600).value() == 0u);
  CHECK(cf.get_mode("j", 0).value() == 0600u);
  CHECK(cf.get_mode("absent", 0600).value() == 0600u);
  auto d = cf.get_mode("d", 0);
  REQUIRE_FALSE(d.ok());
  CHECK_THAT(d.error().message, Catch::StartsWith("test.cf line 4: d:"));
  CHECK_FALSE(cf.get_mode("e", 0).ok());
  CHECK_FALSE(cf.get_mode("f", 0).ok());
  CHECK_FALSE(cf.get_mode("g", 0).ok());
  CHECK_FALSE(cf.get_mode("i", 0).ok());
}

TEST_CASE("load reads a file and names it in errors", "[config]") {
  char path[] = "/tmp/postern_config_test_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream out(path, std::ios::binary);
    out << "# test\nhosts = a\n  b\nbroken line\n";
  }
  auto bad = ConfigFile::load(path);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.rfind(std::string(path) + " line 4: ", 0) == 0);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "# test\nhosts = a\n  b\n";
  }
  auto good = ConfigFile::load(path);
  REQUIRE(good.ok());
  CHECK(good->origin() == path);
  CHECK(good->get("hosts") == "a b");
  std::remove(path);

  auto missing = ConfigFile::load(std::string(path) + ".does-not-exist");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains(".does-not-exist") && Catch::Contains("cannot open"));

  auto dir = ConfigFile::load("/tmp");
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.error().message == "/tmp: is a directory");
}

TEST_CASE("get_size reads Dovecot sizes", "[config]") {
  auto cf = postern::ConfigFile::parse("a = 10M\nb = 512k\nc = 0\nd = 1G\ne = 7\nf = 3b\ng = ten\nh = 5x\n", "t.conf");
  REQUIRE(cf);
  CHECK(cf->get_size("a", 1).value() == 10u * 1024 * 1024);
  CHECK(cf->get_size("b", 1).value() == 512u * 1024);
  CHECK(cf->get_size("c", 1).value() == 0u);
  CHECK(cf->get_size("d", 1).value() == 1024ull * 1024 * 1024);
  CHECK(cf->get_size("e", 1).value() == 7u);
  CHECK(cf->get_size("f", 1).value() == 3u);
  CHECK(cf->get_size("missing", 42).value() == 42u);
  CHECK_FALSE(cf->get_size("g", 1).ok());
  CHECK_FALSE(cf->get_size("h", 1).ok());
  CHECK(cf->get_size("g", 1).error().message.find("t.conf line 7") != std::string::npos);
}
