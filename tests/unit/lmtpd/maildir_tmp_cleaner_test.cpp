// maildir_tmp_cleaner_test.cpp - removing what crashed deliveries left in tmp/.
#include "lmtpd/maildir_tmp_cleaner.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <string>

TEST_CASE("stale tmp/ files are removed, fresh ones kept, at most hourly per mailbox", "[maildir]") {
  postern::testing::TempDir dir("postern-tmpclean");
  std::string root = dir.path;
  std::string tmp = root + "/tmp";
  REQUIRE(mkdir(tmp.c_str(), 0700) == 0);
  auto touch = [&](const std::string& name, std::time_t age) {
    std::string path = tmp + "/" + name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    timespec times[2] = {{std::time(nullptr) - age, 0}, {std::time(nullptr) - age, 0}};
    REQUIRE(utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
  };
  touch("old", 40 * 3600);
  touch("recent", 3600);
  int fd = open(tmp.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(fd >= 0);
  CHECK(postern::lmtpd::clean_stale_tmp(fd, root) == 1);
  CHECK(access((tmp + "/old").c_str(), F_OK) != 0);
  CHECK(access((tmp + "/recent").c_str(), F_OK) == 0);
  touch("old2", 40 * 3600);
  CHECK(postern::lmtpd::clean_stale_tmp(fd, root) == 0);  // within the hour: not again
  CHECK(access((tmp + "/old2").c_str(), F_OK) == 0);
  close(fd);
}
