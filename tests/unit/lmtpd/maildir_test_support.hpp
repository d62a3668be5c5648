// maildir_test_support.hpp - shared by the Maildir writer tests: a spooled message, a
// target and the options, and reading back what landed.
#pragma once

#include "lmtpd/maildir_writer.hpp"
#include "lmtpd/message_spool.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace postern::lmtpd::testing {

namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;

using ::postern::testing::TempDir;

inline std::unique_ptr<MessageSpool> make_spool(const std::string& text, size_t memory_limit = 1 << 20) {
  auto spool = std::make_unique<MessageSpool>("/tmp", memory_limit, 1 << 30);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) spool->add_line(line);
  REQUIRE(spool->add_line(".") == MessageSpool::Status::done);
  return spool;
}

inline std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

inline MaildirTarget target(const std::string& maildir, uid_t uid = 0, gid_t gid = 0) {
  MaildirTarget t;
  t.maildir = maildir;
  t.uid = uid == 0 ? geteuid() : uid;
  t.gid = gid == 0 ? getegid() : gid;
  return t;
}

inline MaildirOptions options() {
  MaildirOptions o;
  o.hostname = "mx.example.com";
  return o;
}

inline const std::string kHeaders = "Return-Path: <a@example.org>\nDelivered-To: alice@example.com\n";
inline const std::string kBody = "Subject: hi\n\nline one\n.dot line\nlast\n";
// The spool stores the body as received minus dot-stuffing: "..dot" arrives for ".dot".
inline const std::string kWire = "Subject: hi\n\nline one\n..dot line\nlast\n";

}  // namespace postern::lmtpd::testing
