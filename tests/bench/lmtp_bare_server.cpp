// lmtp_bare_server.cpp - a limit row of tests/bench/lmtp_bench.py: the least an LMTP server
// can do for smtp-source's load and still land every message durably. One thread per
// connection with blocking reads and writes (no event loop, no hand-off between threads),
// no user lookup, no log. Each message is written once, the way bench_fsync_ceiling writes
// a file (durable_file.hpp), into the maildir of its first recipient, ROOT/DOMAIN/LOCAL
// (maildir:ROOT/%d/%n), and hard-linked into the other recipients' new/ (each new/ fsynced),
// as lmtpd and Dovecot do. The replies, one per recipient, go out after the file is on disk.
// Against the fsync ceiling it shows what smtp-source's own round trips cost each delivery;
// against lmtpd, what lmtpd's design and features cost. Also less than lmtpd: the files
// keep the owner of the process (lmtpd, as root, chowns each one to the mail user), and a
// session keeps each new/ open (lmtpd opens the maildir and checks it at every delivery).
// A benchmark tool, not part of postern.
//
//   bench_lmtp_bare_server SOCKET ROOT
//
// ROOT must exist. Stops on SIGTERM. Failed deliveries are answered 451 and reported on stderr.
#include "bare_server.hpp"
#include "durable_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr size_t kMaxLine = 64 * 1024;  // a longer line ends the session
constexpr std::string_view kHost = "bench-bare";

std::string g_root;
std::atomic<unsigned long> g_sequence{0};

// What is between '<' and '>' in a MAIL or RCPT command ("" if nothing).
std::string_view path_of(std::string_view command) {
  size_t lt = command.find('<');
  size_t gt = lt == std::string_view::npos ? lt : command.find('>', lt);
  return gt == std::string_view::npos ? std::string_view() : command.substr(lt + 1, gt - lt - 1);
}

// ROOT/DOMAIN/LOCAL for local@domain; "" for an address that would leave ROOT.
std::string maildir_of(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return {};
  std::string_view local = address.substr(0, at), domain = address.substr(at + 1);
  for (std::string_view part : {local, domain})
    if (part.front() == '.' || part.find('/') != std::string_view::npos) return {};
  return g_root + "/" + std::string(domain) + "/" + std::string(local);
}

// The new/ directory of each maildir a session delivers to, created and opened on first use.
class NewDirs {
 public:
  ~NewDirs() {
    for (const auto& [maildir, fd] : fds_) ::close(fd);
  }

  // -1 with errno set if the maildir cannot be made.
  int fd(const std::string& maildir) {
    if (auto it = fds_.find(maildir); it != fds_.end()) return it->second;
    std::string domain = maildir.substr(0, maildir.rfind('/'));
    for (const std::string& dir : {domain, maildir, maildir + "/tmp", maildir + "/new", maildir + "/cur"})
      if (!make_dir(dir)) return -1;
    int fd = ::open((maildir + "/new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) fds_.emplace(maildir, fd);
    return fd;
  }

 private:
  // A directory that survives a crash: its parent is fsynced once it is made.
  static bool make_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0) return errno == EEXIST;
    int parent = ::open(dir.substr(0, dir.rfind('/')).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = parent >= 0 && ::fsync(parent) == 0;
    if (parent >= 0) ::close(parent);
    return ok;
  }

  std::map<std::string, int> fds_;
};

// Return-Path, Delivered-To (one recipient only, as lmtpd and Dovecot write it) and Received.
std::string trace_headers(std::string_view sender, const std::vector<std::string>& rcpts, std::string_view lhlo,
                          unsigned long id) {
  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", ::localtime_r(&now, &tm));
  std::string out = "Return-Path: <" + std::string(sender) + ">\n";
  if (rcpts.size() == 1) out += "Delivered-To: " + rcpts.front() + "\n";
  out += "Received: from " + std::string(lhlo) + "\n\tby " + std::string(kHost) + " with LMTP id " +
         std::to_string(id) + (rcpts.size() == 1 ? "\n\tfor <" + rcpts.front() + ">" : "") + "; " + date + "\n";
  return out;
}

// Lands content in the first maildir and links it into the others: whether each got it.
std::vector<bool> deliver(NewDirs& new_dirs, const std::vector<std::string>& maildirs, std::string_view content,
                          unsigned long id) {
  std::vector<bool> saved(maildirs.size(), false);
  std::string name = std::to_string(std::time(nullptr)) + ".P" + std::to_string(::getpid()) + "Q" +
                     std::to_string(id) + "." + std::string(kHost);
  std::string first;
  int fd = new_dirs.fd(maildirs.front());
  if (fd < 0 || !bench::land_durably(maildirs.front(), fd, name, content, &first)) return saved;
  saved[0] = true;
  for (size_t i = 1; i < maildirs.size(); ++i) {
    fd = new_dirs.fd(maildirs[i]);
    std::string path = maildirs[i] + "/new/" + first.substr(first.rfind('/') + 1);
    saved[i] = fd >= 0 && (::link(first.c_str(), path.c_str()) == 0 || errno == EEXIST) && ::fsync(fd) == 0;
  }
  return saved;
}

void serve(int fd, unsigned long) {
  bench::LineReader in(fd, kMaxLine);
  NewDirs new_dirs;
  std::string line, lhlo, sender, content;
  std::vector<std::string> rcpts, maildirs;
  bool alive = bench::send_all(fd, "220 bench-bare LMTP ready\r\n");
  while (alive && in.next(&line)) {
    std::string verb = line.substr(0, 4);
    for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (verb == "LHLO") {
      lhlo = line.size() > 5 ? line.substr(5) : "unknown";
      alive = bench::send_all(fd, "250-bench-bare\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n");
    } else if (verb == "MAIL") {
      sender = path_of(line);
      rcpts.clear();
      maildirs.clear();
      alive = bench::send_all(fd, "250 2.1.0 OK\r\n");
    } else if (verb == "RCPT") {
      std::string address(path_of(line));
      std::string maildir = maildir_of(address);
      if (maildir.empty()) {
        alive = bench::send_all(fd, "550 5.1.3 Bad recipient address\r\n");
        continue;
      }
      rcpts.push_back(address);
      maildirs.push_back(maildir);
      alive = bench::send_all(fd, "250 2.1.5 OK\r\n");
    } else if (verb == "DATA") {
      if (rcpts.empty()) {
        alive = bench::send_all(fd, "503 5.5.1 No valid recipients\r\n");
        continue;
      }
      if (!bench::send_all(fd, "354 OK\r\n")) break;
      unsigned long id = ++g_sequence;
      content = trace_headers(sender, rcpts, lhlo, id);
      bool complete = false;
      while (in.next(&line)) {
        if (line == ".") {
          complete = true;
          break;
        }
        content.append(line, !line.empty() && line.front() == '.' ? 1 : 0);  // RFC 5321 4.5.2
        content += '\n';
      }
      if (!complete) break;
      std::vector<bool> saved = deliver(new_dirs, maildirs, content, id);
      for (size_t i = 0; i < rcpts.size() && alive; ++i) {
        if (!saved[i]) std::fprintf(stderr, "bench_lmtp_bare_server: %s: not saved\n", maildirs[i].c_str());
        alive = bench::send_all(fd, saved[i] ? "250 2.0.0 Saved\r\n" : "451 4.3.0 Not saved\r\n");
      }
      rcpts.clear();
      maildirs.clear();
    } else if (verb == "RSET") {
      rcpts.clear();
      maildirs.clear();
      alive = bench::send_all(fd, "250 2.0.0 OK\r\n");
    } else if (verb == "NOOP") {
      alive = bench::send_all(fd, "250 2.0.0 OK\r\n");
    } else if (verb == "QUIT") {
      bench::send_all(fd, "221 2.0.0 Bye\r\n");
      break;
    } else {
      alive = bench::send_all(fd, "500 5.5.1 Unknown command\r\n");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bench_lmtp_bare_server SOCKET ROOT\n");
    return 2;
  }
  g_root = argv[2];
  return bench::serve_unix_socket("bench_lmtp_bare_server", argv[1], serve);
}
