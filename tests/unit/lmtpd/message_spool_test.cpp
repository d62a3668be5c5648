// message_spool_test.cpp - MessageSpool: dot handling, sizes, spilling to a temp file,
// the size limit, and write_to() into files and pipes, also from several threads.
#include "lmtpd/message_spool.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using postern::lmtpd::MessageSpool;
using Status = MessageSpool::Status;

namespace {

using postern::testing::TempDir;

// How many names a directory holds: the spool must leave none behind.
size_t entries(const TempDir& dir) {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path)) ++n;
  return n;
}

// Feeds lines and the final dot; checks that only the dot ends the message.
Status feed(MessageSpool& s, const std::vector<std::string>& lines) {
  for (const auto& l : lines) REQUIRE(s.add_line(l) == Status::more);
  return s.add_line(".");
}

std::string read_fd(int fd) {
  std::string out;
  REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    REQUIRE(n >= 0);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string contents(const MessageSpool& s, const std::string& dir) {
  std::string path = dir + "/out.XXXXXX";
  int fd = ::mkstemp(path.data());
  REQUIRE(fd >= 0);
  ::unlink(path.c_str());
  REQUIRE(s.write_to(fd) == 0);
  std::string out = read_fd(fd);
  ::close(fd);
  return out;
}

// A body with 8-bit bytes, NULs and leading dots; returns lines and the stored form.
std::pair<std::vector<std::string>, std::string> varied_body(size_t count) {
  using namespace std::string_literals;
  std::vector<std::string> lines;
  std::string expected;
  for (size_t i = 0; i < count; ++i) {
    std::string line = "line " + std::to_string(i) + " \xc3\xa9\xff\0x"s + std::string(i % 97, 'a');
    std::string stored = line;
    if (i % 13 == 0) {
      line = ".." + line;
      stored = "." + stored;
    }
    lines.push_back(line);
    expected += stored + "\n";
  }
  return {lines, expected};
}

}  // namespace

TEST_CASE("dot-unstuffing and the final dot") {
  TempDir dir;
  MessageSpool s(dir.path, 1 << 20, 0);
  REQUIRE(feed(s, {"Subject: x", "", "..", "...leading", ".x", "a.b", ". "}) == Status::done);
  CHECK(s.status() == Status::done);
  CHECK(contents(s, dir.path) == "Subject: x\n\n.\n..leading\nx\na.b\n \n");
}

TEST_CASE("'.' alone ends the message; later lines are ignored") {
  TempDir dir;
  MessageSpool s(dir.path, 1 << 20, 0);
  CHECK(s.add_line("hello") == Status::more);
  CHECK(s.add_line(".") == Status::done);
  CHECK(s.add_line("after") == Status::done);
  CHECK(s.size() == 6);
  CHECK(contents(s, dir.path) == "hello\n");
}

TEST_CASE("empty body") {
  TempDir dir;
  MessageSpool s(dir.path, 1 << 20, 0);
  CHECK(s.add_line(".") == Status::done);
  CHECK(s.size() == 0);
  CHECK(s.size_crlf() == 0);
  CHECK(contents(s, dir.path).empty());
}

TEST_CASE("sizes: LF storage and CRLF accounting") {
  TempDir dir;
  MessageSpool s(dir.path, 1 << 20, 0);
  REQUIRE(feed(s, {"abc", "", "..d"}) == Status::done);
  // "abc\n" + "\n" + ".d\n"
  CHECK(s.size() == 8);
  CHECK(s.size_crlf() == 11);
}

TEST_CASE("lines arrive without endings whatever the client sent; stored with LF") {
  // The framer strips "\r\n" and bare "\n" alike; a CR left inside a line is content.
  TempDir dir;
  MessageSpool s(dir.path, 1 << 20, 0);
  REQUIRE(feed(s, {"from crlf", "from lf", "inner\rcr"}) == Status::done);
  CHECK(contents(s, dir.path) == "from crlf\nfrom lf\ninner\rcr\n");
}

TEST_CASE("8-bit and NUL bytes are preserved byte for byte") {
  TempDir dir;
  auto [lines, expected] = varied_body(200);
  MessageSpool s(dir.path, 1 << 20, 0);
  REQUIRE(feed(s, lines) == Status::done);
  CHECK(s.size() == expected.size());
  CHECK(contents(s, dir.path) == expected);
}

TEST_CASE("content spills to an unlinked temp file at the threshold, unchanged") {
  TempDir dir;
  auto [lines, expected] = varied_body(5000);
  MessageSpool s(dir.path, 4096, 0);
  for (const auto& l : lines) REQUIRE(s.add_line(l) == Status::more);
  CHECK(s.spilled());
  // The temp file has no name: nothing is visible in temp_dir even mid-message.
  CHECK(entries(dir) == 0);
  REQUIRE(s.add_line(".") == Status::done);
  CHECK(s.size() == expected.size());
  CHECK(s.size_crlf() == expected.size() + lines.size());
  CHECK(contents(s, dir.path) == expected);
  CHECK(entries(dir) == 0);
}

TEST_CASE("exactly at the memory limit stays in memory; one byte more spills") {
  TempDir dir;
  MessageSpool at(dir.path, 4, 0);
  REQUIRE(feed(at, {"abc"}) == Status::done);
  CHECK_FALSE(at.spilled());
  CHECK(contents(at, dir.path) == "abc\n");
  MessageSpool over(dir.path, 4, 0);
  REQUIRE(feed(over, {"abc", "d"}) == Status::done);
  CHECK(over.spilled());
  CHECK(contents(over, dir.path) == "abc\nd\n");
}

TEST_CASE("an unusable temp_dir gives io_error after the final dot") {
  MessageSpool s("/nonexistent/postern-spool-dir", 8, 0);
  CHECK(s.add_line("0123456789") == Status::more);
  CHECK(s.failed());
  CHECK_FALSE(s.error().empty());
  CHECK(s.add_line("more") == Status::more);
  CHECK(s.add_line(".") == Status::io_error);
  CHECK(s.status() == Status::io_error);
}

TEST_CASE("past max_size: keep consuming to the final dot, then too_large") {
  TempDir dir;
  MessageSpool s(dir.path, 16, 10);
  CHECK(s.add_line("12345") == Status::more);  // 6 bytes
  CHECK_FALSE(s.overflowed());
  CHECK(s.add_line("12345") == Status::more);  // would be 12 > 10
  CHECK(s.overflowed());
  CHECK(s.status() == Status::more);
  for (int i = 0; i < 100; ++i) CHECK(s.add_line(std::string(1000, 'x')) == Status::more);
  CHECK(s.add_line("..") == Status::more);  // a stuffed dot is not the end
  CHECK(s.add_line(".") == Status::too_large);
  CHECK(s.status() == Status::too_large);
  CHECK(s.size() <= 10);
  CHECK(entries(dir) == 0);
}

TEST_CASE("a message exactly at max_size is accepted") {
  TempDir dir;
  MessageSpool s(dir.path, 1 << 20, 10);
  REQUIRE(feed(s, {"1234", "abcd"}) == Status::done);
  CHECK(s.size() == 10);
  CHECK_FALSE(s.overflowed());
}

TEST_CASE("write_to a pipe matches, from memory and from the temp file") {
  TempDir dir;
  auto [lines, expected] = varied_body(3000);
  for (size_t limit : {size_t{1} << 24, size_t{1000}}) {
    MessageSpool s(dir.path, limit, 0);
    REQUIRE(feed(s, lines) == Status::done);
    int p[2];
    REQUIRE(::pipe(p) == 0);
    std::string got;
    std::thread reader([&] {
      char buf[8192];
      ssize_t n;
      while ((n = ::read(p[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    });
    int rc = s.write_to(p[1]);
    ::close(p[1]);
    reader.join();
    ::close(p[0]);
    CHECK(rc == 0);
    CHECK(got == expected);
  }
}

TEST_CASE("write_to appends at the file's current offset") {
  TempDir dir;
  MessageSpool s(dir.path, 8, 0);
  REQUIRE(feed(s, {"hello world", "second"}) == Status::done);
  std::string path = dir.path + "/f";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "HDR\n", 4) == 4);
  REQUIRE(s.write_to(fd) == 0);
  REQUIRE(s.write_to(fd) == 0);
  CHECK(read_fd(fd) == "HDR\nhello world\nsecond\nhello world\nsecond\n");
  ::close(fd);
}

TEST_CASE("write_to reports errno from the destination") {
  TempDir dir;
  MessageSpool mem(dir.path, 1 << 20, 0);
  REQUIRE(feed(mem, {"x"}) == Status::done);
  int p[2];
  REQUIRE(::pipe(p) == 0);
  ::close(p[1]);
  CHECK(mem.write_to(p[0]) == EBADF);  // read end of a pipe is not writable
  ::close(p[0]);
  MessageSpool file(dir.path, 0, 0);
  REQUIRE(feed(file, {"x"}) == Status::done);
  int ro = ::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(ro >= 0);
  CHECK(file.write_to(ro) != 0);
  ::close(ro);
}

TEST_CASE("write_to before the final dot is refused") {
  TempDir dir;
  MessageSpool s(dir.path, 1 << 20, 0);
  REQUIRE(s.add_line("x") == Status::more);
  CHECK(s.write_to(STDERR_FILENO) == EINVAL);
}

TEST_CASE("concurrent write_to from 8 threads into 8 files are identical") {
  TempDir dir;
  auto [lines, expected] = varied_body(20000);  // ~1.2 MB, spilled
  MessageSpool s(dir.path, 64 * 1024, 0);
  REQUIRE(feed(s, lines) == Status::done);
  std::vector<int> fds(8), rcs(8, -1);
  for (int i = 0; i < 8; ++i) {
    std::string path = dir.path + "/t" + std::to_string(i);
    fds[i] = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    REQUIRE(fds[i] >= 0);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] { rcs[i] = s.write_to(fds[i]); });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    CHECK(rcs[i] == 0);
    CHECK(read_fd(fds[i]) == expected);
    ::close(fds[i]);
  }
}
