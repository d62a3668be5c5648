// maildir_existing_test.cpp - delivery into a maildir that already exists: the short
// way in when cur/, new/ and tmp/ are there, the long way when one is missing or odd.
#include "lmtpd/maildir_writer.hpp"
#include "tests/unit/lmtpd/maildir_test_support.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace postern::lmtpd;
using namespace postern::lmtpd::testing;
namespace fs = std::filesystem;

namespace {

DeliveryOutcome deliver_one(const std::string& maildir) {
  auto spool = make_spool(kWire);
  auto out = deliver_to_maildirs({target(maildir)}, kHeaders, *spool, options());
  REQUIRE(out.size() == 1);
  return out[0];
}

}  // namespace

TEST_CASE("a second delivery lands beside the first", "[maildir]") {
  TempDir tmp;
  std::string maildir = tmp.path + "/Maildir";
  DeliveryOutcome first = deliver_one(maildir);
  DeliveryOutcome second = deliver_one(maildir);
  REQUIRE(first.kind == DeliveryOutcome::Kind::saved);
  REQUIRE(second.kind == DeliveryOutcome::Kind::saved);
  REQUIRE(entries(maildir + "/new") == std::vector<std::string>{first.filename, second.filename});
  REQUIRE(slurp(maildir + "/new/" + second.filename) == kHeaders + kBody);
  REQUIRE(entries(maildir + "/tmp").empty());
}

TEST_CASE("a maildir missing one of cur/, new/, tmp/ gets it back", "[maildir]") {
  TempDir tmp;
  std::string maildir = tmp.path + "/Maildir";
  REQUIRE(deliver_one(maildir).kind == DeliveryOutcome::Kind::saved);
  const char* sub = GENERATE("/cur", "/new", "/tmp");
  INFO(sub);
  fs::remove_all(maildir + sub);
  DeliveryOutcome out = deliver_one(maildir);
  REQUIRE(out.kind == DeliveryOutcome::Kind::saved);
  for (const char* d : {"/cur", "/new", "/tmp"}) REQUIRE(mode_of(maildir + d) == 0700);
  REQUIRE(fs::exists(maildir + "/new/" + out.filename));
}

TEST_CASE("a tmp/ or new/ replaced by a symlink is refused, the target untouched", "[maildir]") {
  TempDir tmp;
  std::string maildir = tmp.path + "/Maildir";
  std::string elsewhere = tmp.path + "/elsewhere";
  REQUIRE(deliver_one(maildir).kind == DeliveryOutcome::Kind::saved);
  fs::create_directories(elsewhere);
  const char* sub = GENERATE("/new", "/tmp");
  INFO(sub);
  fs::remove_all(maildir + sub);
  fs::create_directory_symlink(elsewhere, maildir + sub);
  DeliveryOutcome out = deliver_one(maildir);
  REQUIRE(out.kind == DeliveryOutcome::Kind::failed);
  REQUIRE(out.error.find(sub) != std::string::npos);
  REQUIRE(entries(elsewhere).empty());
}

TEST_CASE("a maildir that is a file, or a cur/ that is a file, fails with the path", "[maildir]") {
  TempDir tmp;
  std::string maildir = tmp.path + "/Maildir";
  std::ofstream(tmp.path + "/file") << "x";
  DeliveryOutcome as_file = deliver_one(tmp.path + "/file");
  REQUIRE(as_file.kind == DeliveryOutcome::Kind::failed);
  REQUIRE(as_file.error.find(tmp.path + "/file") != std::string::npos);
  REQUIRE(deliver_one(maildir).kind == DeliveryOutcome::Kind::saved);
  fs::remove_all(maildir + "/cur");
  std::ofstream(maildir + "/cur") << "x";
  DeliveryOutcome cur_file = deliver_one(maildir);
  REQUIRE(cur_file.kind == DeliveryOutcome::Kind::failed);
  REQUIRE(cur_file.error.find(maildir + "/cur") != std::string::npos);
  REQUIRE(entries(maildir + "/new").size() == 1);  // only the first delivery
}
