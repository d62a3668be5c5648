// passdb_passwd_file_test.cpp - tests for authd/passdb.hpp's passwd-file passdb: args,
// line format, username_format, and re-reading the file when it changes.
#include "authd/passdb.hpp"

#include "tests/unit/authd/passdb_test_support.hpp"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace postern;
using namespace postern::authd;
using namespace passdb_test;
using LS = PassdbLookup::Status;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Passdb> make_pf(const std::string& args) {
  auto p = make_passwd_file_passdb(args);
  INFO((p.ok() ? std::string() : p.error().message));
  REQUIRE(p.ok());
  return std::move(p).value();
}

PassdbLookup pf_lookup(Passdb& p, const std::string& user) {
  WorkerContext worker(0);
  PassdbRequest r;
  r.user = user;
  return p.lookup(r, worker);
}

// Rewrites a file in place and moves its mtime, as an editor saving twice in a second might not.
void rewrite(const std::string& path, const std::string& text, int mtime_bump_s) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  timespec times[2] = {st.st_atim, st.st_mtim};
  times[1].tv_sec += mtime_bump_s;
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

void wait_past_check_interval() { std::this_thread::sleep_for(std::chrono::milliseconds(1100)); }

}  // namespace

TEST_CASE("passwd-file: args as Dovecot reads them", "[passdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users.db", "MAILUSER@MAILDOMAIN:123456\n");
  CHECK(pf_lookup(*make_pf("scheme=PLAIN " + users), "MAILUSER@MAILDOMAIN").default_scheme == "PLAIN");
  CHECK(pf_lookup(*make_pf(users), "MAILUSER@MAILDOMAIN").default_scheme == "CRYPT");  // Dovecot's default
  CHECK(make_pf("scheme=SHA512-CRYPT " + users)->describe() == "passwd-file(" + users + ")");

  for (const std::string& bad : std::vector<std::string>{"scheme=PLAIN", "", "users.db", "scheme=PLAIN relative/users.db", "colour=blue " + users,
                          "username_format=%x " + users, "scheme= " + users, "scheme=PLAIN /etc/dovecot/%d/passwd"}) {
    INFO(bad);
    CHECK_FALSE(make_passwd_file_passdb(bad).ok());
  }
}

TEST_CASE("passwd-file: seed 004's users.db, corrected and as printed", "[passdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users.db", "MAILUSER@MAILDOMAIN:" + kSeed004Hash + "\n");
  auto p = make_pf("scheme=SHA512-CRYPT " + users);
  PassdbLookup r = pf_lookup(*p, "MAILUSER@MAILDOMAIN");
  CHECK(r.status == LS::found);
  CHECK(r.user == "MAILUSER@MAILDOMAIN");
  REQUIRE(r.password);
  CHECK(*r.password == kSeed004Hash);
  CHECK(r.default_scheme == "SHA512-CRYPT");
  // Case-sensitive, as Dovecot's passwd-file is unless the format lowercases.
  CHECK(pf_lookup(*p, "mailuser@maildomain").status == LS::not_found);

  // The markdown backtick after the hash: the line is refused, not half-used.
  std::string printed = dir.write("printed.db", "MAILUSER@MAILDOMAIN:" + kSeed004Hash + "`\nother@x:{PLAIN}ok\n");
  auto q = make_pf("scheme=SHA512-CRYPT " + printed);
  CHECK(pf_lookup(*q, "MAILUSER@MAILDOMAIN").status == LS::not_found);
  CHECK(pf_lookup(*q, "other@x").status == LS::found);
}

TEST_CASE("passwd-file: line format", "[passdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users",
                                "# comment:line\n"
                                "\n"
                                "plain@x:{PLAIN}secret:5000:5000::/var/mail/x/plain::\r\n"
                                "bare@x:" + kFrankHash + "\n"
                                "nameonly@x\n"
                                ":nobody:\n"
                                "open@x::::::: nopassword\n"
                                "notopen@x::::::: nopassword=no\n"
                                "alias@x:{PLAIN}a:::::: user=Real@x userdb_home=/h\n"
                                "joined@x:{PLAIN}j::::::username=other\n"
                                "legacy@x:0123456789abcdef0123456789abcdef[34]\n"
                                "dollar@x:{PLAIN}$ with `odd` chars\n"
                                "prefixed@x:{SHA512-CRYPT}$6$salt$hash`\n"
                                "emptied@x:{PLAIN}e:::::: user=\n"
                                "dup@x:first\n"
                                "dup@x:second\n");
  auto p = make_pf("scheme=SHA512-CRYPT " + users);
  PassdbLookup plain = pf_lookup(*p, "plain@x");
  REQUIRE(plain.password);
  CHECK(*plain.password == "{PLAIN}secret");
  CHECK(*pf_lookup(*p, "bare@x").password == kFrankHash);

  PassdbLookup nameonly = pf_lookup(*p, "nameonly@x");
  CHECK(nameonly.status == LS::found);
  CHECK_FALSE(nameonly.password);
  CHECK_FALSE(nameonly.nopassword);

  PassdbLookup open = pf_lookup(*p, "open@x");
  CHECK(open.status == LS::found);
  CHECK(open.nopassword);
  CHECK_FALSE(pf_lookup(*p, "notopen@x").nopassword);

  CHECK(pf_lookup(*p, "alias@x").user == "Real@x");
  CHECK(pf_lookup(*p, "joined@x").user == "other@x");
  CHECK(*pf_lookup(*p, "legacy@x").password == "{PLAIN-MD5}0123456789abcdef0123456789abcdef");
  CHECK(*pf_lookup(*p, "dup@x").password == "first");
  CHECK(*pf_lookup(*p, "dollar@x").password == "{PLAIN}$ with `odd` chars");  // only crypt values are checked
  CHECK(pf_lookup(*p, "prefixed@x").status == LS::not_found);
  PassdbLookup emptied = pf_lookup(*p, "emptied@x");
  CHECK(emptied.status == LS::found);
  CHECK_FALSE(emptied.password);  // an empty user= fails the login, as in Dovecot
  CHECK(emptied.user == "emptied@x");
  CHECK(pf_lookup(*p, "# comment").status == LS::not_found);
  CHECK(pf_lookup(*p, "").status == LS::not_found);
}

TEST_CASE("passwd-file: username_format", "[passdb][passwd-file]") {
  TempDir dir;
  std::string users = dir.write("users", "email1:{PLAIN}one\nmailuser@maildomain:{PLAIN}two\n");
  auto by_name = make_pf("scheme=PLAIN username_format=%n " + users);
  PassdbLookup r = pf_lookup(*by_name, "email1@example.com");
  CHECK(r.status == LS::found);
  CHECK(r.user == "email1@example.com");  // the login name, not the file's key
  auto lowered = make_pf("username_format=%Lu scheme=PLAIN " + users);
  CHECK(pf_lookup(*lowered, "MailUser@MailDomain").status == LS::found);
  CHECK(pf_lookup(*make_pf(users), "MailUser@MailDomain").status == LS::not_found);
}

TEST_CASE("passwd-file: a missing file is temp_error until it appears", "[passdb][passwd-file]") {
  TempDir dir;
  std::string path = (dir / "users.db").string();
  auto p = make_pf("scheme=PLAIN " + path);
  PassdbLookup r = pf_lookup(*p, "a@x");
  CHECK(r.status == LS::temp_error);
  CHECK_THAT(r.error, Catch::Contains(path));
  dir.write("users.db", "a@x:{PLAIN}pw\n");
  wait_past_check_interval();
  CHECK(pf_lookup(*p, "a@x").status == LS::found);
}

TEST_CASE("passwd-file: re-read on change, at most once a second, no stale copy", "[passdb][passwd-file]") {
  TempDir dir;
  std::string path = dir.write("users.db", "a@x:{PLAIN}old1\n");
  auto start = std::chrono::steady_clock::now();
  auto p = make_pf("scheme=PLAIN " + path);
  CHECK(*pf_lookup(*p, "a@x").password == "{PLAIN}old1");

  rewrite(path, "a@x:{PLAIN}new1\n", 5);  // same size: only the stamp tells
  PassdbLookup early = pf_lookup(*p, "a@x");
  if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(900)) {
    CHECK(*early.password == "{PLAIN}old1");  // checked less than a second ago
  }
  wait_past_check_interval();
  CHECK(*pf_lookup(*p, "a@x").password == "{PLAIN}new1");

  // Replaced by rename (new inode), with a user added and one removed.
  std::string next = dir.write("users.db.new", "b@x:{PLAIN}bpw\n");
  fs::rename(next, path);
  wait_past_check_interval();
  CHECK(pf_lookup(*p, "a@x").status == LS::not_found);
  CHECK(pf_lookup(*p, "b@x").status == LS::found);

  // Removed: temporary failure, not the last good content.
  fs::remove(path);
  wait_past_check_interval();
  CHECK(pf_lookup(*p, "b@x").status == LS::temp_error);
}

TEST_CASE("passwd-file: concurrent lookups while the file changes", "[passdb][passwd-file]") {
  TempDir dir;
  std::string path = dir.write("users.db", "a@x:{PLAIN}1\nb@x:{PLAIN}2\n");
  auto p = make_pf("scheme=PLAIN " + path);
  std::atomic<int> found{0};
  std::atomic<int> other{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      WorkerContext worker(t);
      PassdbRequest r;
      r.user = "a@x";
      while (!stop) (p->lookup(r, worker).status == LS::found ? found : other)++;
    });
  // Long enough for the once-a-second check to re-read while lookups run.
  for (int i = 0; i < 12; ++i) {
    rewrite(path, "a@x:{PLAIN}" + std::to_string(i % 10) + "\nb@x:{PLAIN}2\n", i + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (auto& th : threads) th.join();
  CHECK(found > 0);
  CHECK(other == 0);  // every version of the file has a@x
  wait_past_check_interval();
  CHECK(*pf_lookup(*p, "a@x").password == "{PLAIN}1");  // the last write (i = 11)
}
