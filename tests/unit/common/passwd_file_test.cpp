// passwd_file_test.cpp - tests for common/passwd_file.hpp: the fields a userdb reads
// (uid, gid, home, extra) and the args string. Re-reading is tested through authd's passdb.
#include "common/passwd_file.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace postern;

TEST_CASE("passwd-file: fields and args", "[passwd_file]") {
  testing::TempDir dir("postern-pwfile");
  std::string path = (dir / "users").string();
  std::ofstream(path) << "a@x:{PLAIN}p:5000:5001:Gecos:/home/a:/bin/false:userdb_mail=maildir:~/m quota=x\n"
                         "b@x\n";
  PasswdFile file(path);
  PasswdFile::Snapshot snap = file.snapshot();
  REQUIRE(snap.users);
  const PasswdFileEntry& a = snap.users->at("a@x");
  CHECK(a.uid == "5000");
  CHECK(a.gid == "5001");
  CHECK(a.home == "/home/a");
  CHECK(a.extra == std::vector<std::string>{"userdb_mail=maildir:~/m", "quota=x"});
  const PasswdFileEntry& b = snap.users->at("b@x");
  CHECK_FALSE(b.password);
  CHECK(b.home.empty());

  auto args = parse_passwd_file_args("username_format=%Ln /etc/dovecot/my users", "PLAIN");
  REQUIRE(args.ok());
  CHECK(args->scheme == "PLAIN");
  CHECK(args->username_format == "%Ln");
  CHECK(args->path == "/etc/dovecot/my users");
  CHECK_FALSE(parse_passwd_file_args("nope=1 /x").ok());

  std::filesystem::remove_all(dir.path);
  PasswdFile missing(path);
  PasswdFile::Snapshot none = missing.snapshot();
  CHECK_FALSE(none.users);
  CHECK_THAT(none.error, Catch::Contains(path));
}
