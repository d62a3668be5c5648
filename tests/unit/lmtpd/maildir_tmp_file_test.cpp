// maildir_tmp_file_test.cpp - the message file before new/: unnamed (O_TMPFILE) and
// tmp/<name>, linked, moved and discarded.
#include "lmtpd/maildir_tmp_file.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

using namespace postern::lmtpd;
namespace fs = std::filesystem;

namespace {

struct Mailbox {
  std::string path;
  int tmp = -1;
  int fresh = -1;
  Mailbox() {
    char tmpl[] = "/tmp/maildir_tmp_file_test.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
    fs::create_directories(path + "/tmp");
    fs::create_directories(path + "/new");
    tmp = open((path + "/tmp").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fresh = open((path + "/new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(tmp >= 0);
    REQUIRE(fresh >= 0);
  }
  ~Mailbox() {
    close(tmp);
    close(fresh);
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  size_t count(const char* sub) const {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(path + sub)) n += e.is_regular_file() ? 1 : 0;
    return n;
  }
};

void write_text(int fd, const std::string& text) {
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  REQUIRE(fsync(fd) == 0);
}

// Whether this filesystem and kernel take O_TMPFILE, asked without MaildirTmpFile.
bool tmpfile_supported(int dir_fd) {
  int fd = openat(dir_fd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st;
}

}  // namespace

TEST_CASE("an unnamed file has no entry until it is linked into new/", "[maildir]") {
  Mailbox box;
  MaildirTmpFile file;
  if (!tmpfile_supported(box.tmp)) {
    WARN("no O_TMPFILE on " << box.path << ": unnamed-file case skipped");
    return;
  }
  REQUIRE(file.create(box.tmp, 0640, true, "host") == 0);
  REQUIRE(file.unnamed());
  REQUIRE(file.describe() == "unnamed file in tmp/");
  write_text(file.fd(), "hello\n");
  REQUIRE(file.finish_writing() == 0);
  REQUIRE(file.fd() >= 0);  // still open: the descriptor is what links it
  REQUIRE(box.count("/tmp") == 0);
  REQUIRE(box.count("/new") == 0);

  REQUIRE(file.link_into(box.fresh, "one") == 0);
  REQUIRE(file.link_into(box.fresh, "one") == EEXIST);  // never replaces
  REQUIRE(file.move_into(box.fresh, "two") == 0);
  file.discard();
  REQUIRE(box.count("/tmp") == 0);
  struct stat one = stat_of(box.path + "/new/one");
  REQUIRE(one.st_nlink == 2);
  REQUIRE(one.st_ino == stat_of(box.path + "/new/two").st_ino);
  REQUIRE((one.st_mode & 07777) == 0640);  // exactly the mode, whatever the umask
  REQUIRE(one.st_size == 6);
}

TEST_CASE("an unnamed file discarded, or its writer killed, leaves nothing", "[maildir]") {
  Mailbox box;
  {
    MaildirTmpFile file;
    REQUIRE(file.create(box.tmp, 0600, true, "host") == 0);
    write_text(file.fd(), "dropped\n");
  }  // destroyed without a link
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    MaildirTmpFile file;
    if (file.create(box.tmp, 0600, true, "host") != 0) _exit(1);
    if (write(file.fd(), "cut short\n", 10) != 10) _exit(1);
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  // A named file would stay in tmp/ after the kill: only the unnamed one leaves nothing.
  REQUIRE(box.count("/new") == 0);
  if (tmpfile_supported(box.tmp)) REQUIRE(box.count("/tmp") == 0);
}

TEST_CASE("a named file is tmp/<name> until it is renamed into new/", "[maildir]") {
  Mailbox box;
  MaildirTmpFile file;
  REQUIRE(file.create(box.tmp, 0600, false, "host") == 0);
  REQUIRE_FALSE(file.unnamed());
  REQUIRE(file.describe().rfind("tmp/", 0) == 0);
  REQUIRE(box.count("/tmp") == 1);
  write_text(file.fd(), "hello\n");
  REQUIRE(file.finish_writing() == 0);
  REQUIRE(file.link_into(box.fresh, "one") == 0);
  REQUIRE(file.move_into(box.fresh, "one") == EEXIST);  // RENAME_NOREPLACE
  REQUIRE(file.move_into(box.fresh, "two") == 0);
  REQUIRE(box.count("/tmp") == 0);
  file.discard();  // after the move there is nothing left to remove
  REQUIRE(box.count("/new") == 2);
  REQUIRE(stat_of(box.path + "/new/two").st_nlink == 2);
}

TEST_CASE("a named file discarded before the move leaves nothing in tmp/", "[maildir]") {
  Mailbox box;
  MaildirTmpFile file;
  REQUIRE(file.create(box.tmp, 0600, false, "host") == 0);
  write_text(file.fd(), "dropped\n");
  REQUIRE(box.count("/tmp") == 1);
  file.discard();
  REQUIRE(box.count("/tmp") == 0);
  REQUIRE(box.count("/new") == 0);
}
