// maildir_writer_test.cpp - Maildir names, delivery (directories, content, links, errors),
// and the Maildir++ maildirsize quota.
#include "lmtpd/maildir_name.hpp"
#include "lmtpd/maildir_quota.hpp"
#include "lmtpd/maildir_writer.hpp"
#include "tests/unit/lmtpd/maildir_test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

using namespace postern::lmtpd;
using namespace postern::lmtpd::testing;
namespace fs = std::filesystem;

TEST_CASE("maildir names are unique across threads and a fork", "[maildir]") {
  std::vector<std::vector<std::string>> per_thread(8);
  std::vector<std::thread> threads;
  for (auto& names : per_thread)
    threads.emplace_back([&names] {
      for (int i = 0; i < 2000; ++i) names.push_back(maildir::unique_base_name("h"));
    });
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& names : per_thread) {
    // (sec,usec) strictly increases within one thread's sequence.
    for (size_t i = 1; i < names.size(); ++i) {
      long long s0 = 0, u0 = 0, s1 = 0, u1 = 0;
      REQUIRE(std::sscanf(names[i - 1].c_str(), "%lld.M%lld", &s0, &u0) == 2);
      REQUIRE(std::sscanf(names[i].c_str(), "%lld.M%lld", &s1, &u1) == 2);
      REQUIRE((s1 > s0 || (s1 == s0 && u1 > u0)));
    }
    all.insert(names.begin(), names.end());
  }
  REQUIRE(all.size() == 16000);

  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::string name = maildir::unique_base_name("h");
    ssize_t n = write(fds[1], name.data(), name.size());
    _exit(n == static_cast<ssize_t>(name.size()) ? 0 : 1);
  }
  close(fds[1]);
  char buf[256] = {};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(n > 0);
  std::string child_name(buf, static_cast<size_t>(n));
  REQUIRE(child_name.find("P" + std::to_string(child) + "Q") != std::string::npos);
  REQUIRE(all.count(child_name) == 0);
  REQUIRE(maildir::unique_base_name("h").find("P" + std::to_string(getpid()) + "Q") != std::string::npos);
}

TEST_CASE("maildir names escape the host and carry only S=", "[maildir]") {
  REQUIRE(maildir::escape_hostname("a/b:c") == "a\\057b\\072c");
  std::string base = maildir::unique_base_name(maildir::escape_hostname("mx:1"));
  REQUIRE(base.size() > 8);
  REQUIRE(base.substr(base.size() - 8) == ".mx\\0721");
  REQUIRE(base.find(':') == std::string::npos);
  size_t r = base.find('R');
  REQUIRE(r != std::string::npos);
  REQUIRE(base.find('.', r) == r + 9);  // 8 hex digits of randomness
  REQUIRE(maildir::final_name("x.y", 123) == "x.y,S=123");
}

TEST_CASE("delivery creates the directory chain and writes headers + body exactly", "[maildir]") {
  TempDir tmp;
  size_t memory_limit = GENERATE(size_t(1) << 20, size_t(8));  // in memory, and spilled to a file
  auto spool = make_spool(kWire, memory_limit);
  std::string maildir = tmp.path + "/vhosts/example.com/alice/Maildir";
  MaildirOptions opt = options();
  opt.dir_mode = 0750;
  opt.file_mode = 0640;
  auto out = deliver_to_maildirs({target(maildir)}, kHeaders, *spool, opt);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].kind == DeliveryOutcome::Kind::saved);
  for (const char* d : {"/vhosts", "/vhosts/example.com", "/vhosts/example.com/alice"})
    REQUIRE(mode_of(tmp.path + d) == 0750);
  for (const char* d : {"", "/cur", "/new", "/tmp"}) REQUIRE(mode_of(maildir + d) == 0750);
  auto fresh = entries(maildir + "/new");
  REQUIRE(fresh == std::vector<std::string>{out[0].filename});
  std::string content = slurp(maildir + "/new/" + out[0].filename);
  REQUIRE(content == kHeaders + kBody);
  std::string suffix = ",S=" + std::to_string(content.size());
  REQUIRE(out[0].filename.substr(out[0].filename.size() - suffix.size()) == suffix);
  REQUIRE(out[0].filename.find(",W=") == std::string::npos);
  REQUIRE(mode_of(maildir + "/new/" + out[0].filename) == 0640);
  REQUIRE(entries(maildir + "/tmp").empty());
  REQUIRE(entries(maildir + "/cur").empty());
}

TEST_CASE("targets on one filesystem with one owner share one inode", "[maildir]") {
  TempDir tmp;
  auto spool = make_spool(kWire);
  std::vector<MaildirTarget> targets;
  for (const char* user : {"a", "b", "c"}) targets.push_back(target(tmp.path + "/" + user + "/Maildir"));
  auto out = deliver_to_maildirs(targets, kHeaders, *spool, options());
  std::set<std::string> names;
  std::set<ino_t> inodes;
  for (size_t i = 0; i < targets.size(); ++i) {
    REQUIRE(out[i].kind == DeliveryOutcome::Kind::saved);
    names.insert(out[i].filename);
    struct stat st {};
    REQUIRE(stat((targets[i].maildir + "/new/" + out[i].filename).c_str(), &st) == 0);
    inodes.insert(st.st_ino);
    REQUIRE(st.st_nlink == 3);
    REQUIRE(entries(targets[i].maildir + "/tmp").empty());
  }
  REQUIRE(names.size() == 3);
  REQUIRE(inodes.size() == 1);
}

TEST_CASE("as root, files and directories belong to the target's owner", "[maildir]") {
  if (geteuid() != 0) {
    WARN("not root: ownership not testable");
    return;
  }
  TempDir tmp;
  auto spool = make_spool(kWire);
  std::string mine = tmp.path + "/root/Maildir";
  std::string theirs = tmp.path + "/nobody/Maildir";
  auto out = deliver_to_maildirs({target(mine), target(theirs, kNobody, kNobody)}, kHeaders, *spool, options());
  REQUIRE(out[0].kind == DeliveryOutcome::Kind::saved);
  REQUIRE(out[1].kind == DeliveryOutcome::Kind::saved);
  struct stat a {}, b {}, d {};
  REQUIRE(stat((mine + "/new/" + out[0].filename).c_str(), &a) == 0);
  REQUIRE(stat((theirs + "/new/" + out[1].filename).c_str(), &b) == 0);
  REQUIRE(stat((tmp.path + "/nobody").c_str(), &d) == 0);
  REQUIRE(a.st_uid == 0);
  REQUIRE(b.st_uid == kNobody);
  REQUIRE(b.st_gid == kNobody);
  REQUIRE(d.st_uid == kNobody);
  REQUIRE(a.st_ino != b.st_ino);  // different owners never share a file
  REQUIRE(b.st_nlink == 1);
}

TEST_CASE("a target that cannot be created fails alone and leaves nothing", "[maildir]") {
  TempDir tmp;
  auto spool = make_spool(kWire);
  std::ofstream(tmp.path + "/blocker") << "x";
  std::string good = tmp.path + "/good/Maildir";
  std::string broken = tmp.path + "/bad/Maildir";
  std::filesystem::create_directories(broken + "/tmp");
  std::filesystem::create_directories(broken + "/cur");
  std::ofstream(broken + "/new") << "not a dir";
  auto out = deliver_to_maildirs({target(tmp.path + "/blocker/Maildir"), target(broken), target(good)}, kHeaders,
                                 *spool, options());
  REQUIRE(out[0].kind == DeliveryOutcome::Kind::failed);
  REQUIRE(out[0].error.find("Not a directory") != std::string::npos);
  REQUIRE(out[1].kind == DeliveryOutcome::Kind::failed);
  REQUIRE(entries(broken + "/tmp").empty());
  REQUIRE(out[2].kind == DeliveryOutcome::Kind::saved);
  REQUIRE(entries(good + "/new").size() == 1);
}

TEST_CASE("without permission (as nobody) the delivery fails and leaves nothing", "[maildir]") {
  if (geteuid() != 0) {
    WARN("not root: cannot switch to nobody");
    return;
  }
  TempDir tmp;
  auto spool = make_spool(kWire);
  std::string maildir = tmp.path + "/m/Maildir";
  fs::create_directories(maildir + "/new");
  fs::create_directories(maildir + "/tmp");
  REQUIRE(chmod(tmp.path.c_str(), 0755) == 0);
  for (const char* d : {"/m", "/m/Maildir", "/m/Maildir/new", "/m/Maildir/tmp"})
    REQUIRE(chmod((tmp.path + d).c_str(), 0755) == 0);  // readable, not writable, by nobody
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(2);
    auto out = deliver_to_maildirs({target(maildir, kNobody, kNobody)}, kHeaders, *spool, options());
    _exit(out[0].kind == DeliveryOutcome::Kind::failed && out[0].error.find("denied") != std::string::npos ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(entries(maildir + "/new").empty());
  REQUIRE(entries(maildir + "/tmp").empty());
}

TEST_CASE("disk full reports disk_full and leaves no partial file", "[maildir]") {
  TempDir tmp;
  std::string mnt = tmp.path + "/small";
  fs::create_directory(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    WARN("cannot mount a tmpfs (" << std::strerror(errno) << "): disk-full test skipped");
    return;
  }
  std::string big(200 * 1024, 'x');
  auto spool = make_spool("Subject: big\n\n" + big + "\n", 1 << 10);
  std::string maildir = mnt + "/Maildir";
  auto out = deliver_to_maildirs({target(maildir), target(mnt + "/other")}, kHeaders, *spool, options());
  bool new_empty = entries(maildir + "/new").empty();
  bool tmp_empty = entries(maildir + "/tmp").empty() && entries(mnt + "/other/tmp").empty();
  umount(mnt.c_str());
  REQUIRE(out[0].kind == DeliveryOutcome::Kind::disk_full);
  REQUIRE(out[1].kind == DeliveryOutcome::Kind::disk_full);
  REQUIRE(new_empty);
  REQUIRE(tmp_empty);
}

TEST_CASE("maildirsize quota: created, appended, enforced", "[maildir][quota]") {
  TempDir tmp;
  auto spool = make_spool(kWire);
  const uint64_t size = kHeaders.size() + kBody.size();
  std::string maildir = tmp.path + "/q/Maildir";
  fs::create_directories(maildir + "/cur");
  fs::create_directories(maildir + "/.Sent/cur");
  std::ofstream(maildir + "/cur/1.M1P1.h,S=100:2,S") << "short";  // S= wins over the real size
  std::ofstream(maildir + "/.Sent/cur/2.M2P2.h") << std::string(50, 'y');
  MaildirTarget t = target(maildir);
  t.quota_bytes = 150 + 2 * size;

  REQUIRE(maildir::scan_usage(maildir).bytes == 150);
  REQUIRE(maildir_quota_allows(t, 2 * size));
  REQUIRE(slurp(maildir + "/maildirsize") == std::to_string(*t.quota_bytes) + "S\n150 2\n");
  REQUIRE_FALSE(maildir_quota_allows(t, 2 * size + 1));

  auto out = deliver_to_maildirs({t}, kHeaders, *spool, options());
  REQUIRE(out[0].kind == DeliveryOutcome::Kind::saved);
  REQUIRE(slurp(maildir + "/maildirsize") ==
          std::to_string(*t.quota_bytes) + "S\n150 2\n" + std::to_string(size) + " 1\n");
  MaildirTarget folder_target = t;
  folder_target.folder = "Sent";
  out = deliver_to_maildirs({folder_target}, kHeaders, *spool, options());
  REQUIRE(out[0].kind == DeliveryOutcome::Kind::saved);  // exactly at the limit
  REQUIRE(maildir::load_quota(maildir, *t.quota_bytes, t.uid, t.gid).usage.bytes == *t.quota_bytes);

  out = deliver_to_maildirs({t}, kHeaders, *spool, options());
  REQUIRE(out[0].kind == DeliveryOutcome::Kind::over_quota);
  REQUIRE(entries(maildir + "/new").size() == 1);
  REQUIRE(entries(maildir + "/tmp").empty());

  // A changed limit rewrites the file from a scan.
  t.quota_bytes = 1 << 20;
  REQUIRE(maildir_quota_allows(t, size));
  REQUIRE(slurp(maildir + "/maildirsize") ==
          "1048576S\n" + std::to_string(150 + 2 * size) + " 4\n");
  // A torn last line is treated as corrupt and recomputed.
  std::ofstream(maildir + "/maildirsize", std::ios::app) << "999999";
  REQUIRE(maildir::load_quota(maildir, 1 << 20, t.uid, t.gid).usage.bytes == 150 + 2 * size);
  REQUIRE(mode_of(maildir + "/maildirsize") == 0600);
  REQUIRE(entries(maildir + "/tmp").empty());
}

TEST_CASE("no quota means no maildirsize", "[maildir][quota]") {
  TempDir tmp;
  auto spool = make_spool(kWire);
  MaildirTarget t = target(tmp.path + "/Maildir");
  REQUIRE(maildir_quota_allows(t, 1ull << 40));
  REQUIRE(deliver_to_maildirs({t}, kHeaders, *spool, options())[0].kind == DeliveryOutcome::Kind::saved);
  REQUIRE_FALSE(fs::exists(t.maildir + "/maildirsize"));
}

TEST_CASE("folder delivery goes to the Maildir++ folder", "[maildir]") {
  TempDir tmp;
  auto spool = make_spool(kWire);
  MaildirTarget t = target(tmp.path + "/Maildir");
  t.folder = "tag";
  REQUIRE_FALSE(maildir_folder_exists(t.maildir, "tag"));
  auto out = deliver_to_maildirs({t}, kHeaders, *spool, options());
  REQUIRE(out[0].kind == DeliveryOutcome::Kind::saved);
  REQUIRE(maildir_folder_exists(t.maildir, "tag"));
  REQUIRE(entries(t.maildir + "/.tag/new") == std::vector<std::string>{out[0].filename});
  REQUIRE(fs::is_regular_file(t.maildir + "/.tag/maildirfolder"));
  REQUIRE(fs::file_size(t.maildir + "/.tag/maildirfolder") == 0);
  REQUIRE(entries(t.maildir + "/new").empty());
  for (const char* d : {"/cur", "/tmp", "/.tag/cur", "/.tag/tmp"}) REQUIRE(fs::is_directory(t.maildir + d));
  REQUIRE_FALSE(maildir_folder_exists(t.maildir, "../Maildir"));
}

TEST_CASE("create_exclusive_at never follows or reuses an existing name", "[maildir]") {
  TempDir tmp;
  std::string victim = tmp.path + "/victim";
  REQUIRE(symlink(victim.c_str(), (tmp.path + "/link").c_str()) == 0);
  int dir = open(tmp.path.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(dir >= 0);
  REQUIRE(maildir::create_exclusive_at(dir, "link", 0600) == -EEXIST);
  REQUIRE_FALSE(fs::exists(victim));
  mode_t old = umask(0077);
  int fd = maildir::create_exclusive_at(dir, "plain", 0640);
  umask(old);
  REQUIRE(fd >= 0);
  close(fd);
  REQUIRE(mode_of(tmp.path + "/plain") == 0640);  // the umask did not strip g+r
  REQUIRE(maildir::create_exclusive_at(dir, "plain", 0600) == -EEXIST);
  close(dir);
}

TEST_CASE("unsafe paths and folder names are refused", "[maildir]") {
  TempDir tmp;
  auto spool = make_spool(kWire);
  for (std::string p : {std::string("relative/Maildir"), tmp.path + "/a/../b", tmp.path + "/./b", tmp.path + "/b/..",
                        std::string()}) {
    INFO(p);
    REQUIRE_FALSE(maildir_path_is_safe(p));
    auto out = deliver_to_maildirs({target(p)}, kHeaders, *spool, options());
    REQUIRE(out[0].kind == DeliveryOutcome::Kind::failed);
    REQUIRE(out[0].error.find("unsafe path") != std::string::npos);
  }
  REQUIRE(entries(tmp.path).empty());
  REQUIRE(maildir_path_is_safe(tmp.path + "/a..b/.c/Maildir"));
  MaildirTarget t = target(tmp.path + "/Maildir");
  t.folder = "../escape";
  REQUIRE(deliver_to_maildirs({t}, kHeaders, *spool, options())[0].kind == DeliveryOutcome::Kind::failed);
}
