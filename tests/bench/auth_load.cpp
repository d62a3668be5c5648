// auth_load.cpp - load generator for Dovecot-protocol auth servers (authd or Dovecot's
// auth-client socket), for tests/bench/auth_bench.py. A benchmark tool, not part of postern.
//
// N connections, one thread each. Every connection does the client handshake Postfix
// does (VERSION 1 0, CPID; reads the server handshake up to DONE), then sends
// "AUTH <id> PLAIN service=smtp nologin lip=127.0.0.1 rip=127.0.0.1 resp=<base64>" and
// waits for its OK/FAIL before sending the next: one request at a time, like smtpd.
// Users come from a file of "user<TAB>password" lines, taken round-robin across all
// connections. Stops after -n requests or -t seconds, whichever comes first.
//
//   bench_auth_load -a /path/auth-client [-c 8] [-n 100000] [-t 5] -u users.tsv
//
// Prints one line of key=value pairs (auths, ok, fail, error, seconds, auths_per_s,
// p50_ms, p99_ms, max_ms). "error" counts anything but OK/FAIL: a closed connection (the
// thread reconnects), a CONT, a malformed or foreign reply. Exit 0 unless nothing ran.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string address;  // unix path, or host:port
  std::string users_file;
  unsigned connections = 1;
  uint64_t count = 100000;
  double seconds = 5;
};

struct User {
  std::string name, password, resp;  // resp: base64("\0name\0password")
};

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// A blocking connection with a line reader (LF-terminated lines, CR kept).
class Conn {
 public:
  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { close_fd(); }

  void reset() { close_fd(); }

  bool open(const std::string& address) {
    close_fd();
    auto colon = address.rfind(':');
    if (address.find('/') == std::string::npos && colon != std::string::npos) {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
      if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) return false;
      fd_ = socket(AF_INET, SOCK_STREAM, 0);
      if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return fail();
    } else {
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      if (address.size() >= sizeof sa.sun_path) return false;
      std::memcpy(sa.sun_path, address.c_str(), address.size());
      fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
      if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return fail();
    }
    timeval tv{30, 0};  // Postfix waits 10 s; a reply this late is an error anyway
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    have_ = 0;
    return true;
  }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  std::optional<std::string> read_line() {
    for (;;) {
      if (auto* nl = static_cast<char*>(std::memchr(buf_, '\n', have_))) {
        std::string line(buf_, static_cast<size_t>(nl - buf_));
        size_t used = static_cast<size_t>(nl - buf_) + 1;
        std::memmove(buf_, buf_ + used, have_ - used);
        have_ -= used;
        return line;
      }
      if (have_ == sizeof buf_) return std::nullopt;  // line too long
      ssize_t n = ::recv(fd_, buf_ + have_, sizeof buf_ - have_, 0);
      if (n <= 0) return std::nullopt;
      have_ += static_cast<size_t>(n);
    }
  }

 private:
  bool fail() {
    close_fd();
    return false;
  }
  void close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
  char buf_[20000];
  size_t have_ = 0;
};

// Connects and completes the handshake; false on any failure.
bool handshake(Conn& c, const std::string& address) {
  if (!c.open(address)) return false;
  if (!c.send_all("VERSION\t1\t0\nCPID\t" + std::to_string(getpid()) + "\n")) return false;
  for (;;) {
    auto line = c.read_line();
    if (!line) return false;
    if (*line == "DONE") return true;
  }
}

struct Stats {
  uint64_t ok = 0, fail = 0, error = 0;
  std::vector<double> latencies_ms;  // of OK and FAIL replies
};

struct Shared {
  const Options* opt;
  const std::vector<User>* users;
  std::atomic<uint64_t> issued{0};
  Clock::time_point deadline;
};

void run_connection(Shared& sh, Stats& st) {
  Conn c;
  bool connected = false;
  uint32_t id = 0;
  for (;;) {
    if (Clock::now() >= sh.deadline) return;
    uint64_t n = sh.issued.fetch_add(1);
    if (n >= sh.opt->count) return;
    const User& u = (*sh.users)[n % sh.users->size()];
    auto start = Clock::now();
    if (!connected) {
      connected = handshake(c, sh.opt->address);
      if (!connected) {
        ++st.error;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
    }
    ++id;
    std::string ids = std::to_string(id);
    std::string req = "AUTH\t" + ids + "\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tresp=" +
                      u.resp + "\n";
    if (!c.send_all(req)) {
      connected = false;
      c.reset();
      ++st.error;
      continue;
    }
    std::optional<std::string> line;
    // Skip lines for other ids (none expected: one request at a time).
    while ((line = c.read_line())) {
      auto tab1 = line->find('\t');
      auto tab2 = line->find('\t', tab1 + 1);
      if (tab1 == std::string::npos) break;
      if (line->substr(tab1 + 1, tab2 == std::string::npos ? std::string::npos : tab2 - tab1 - 1) == ids) break;
    }
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!line) {
      connected = false;
      c.reset();
      ++st.error;
    } else if (line->rfind("OK\t", 0) == 0) {
      ++st.ok;
      st.latencies_ms.push_back(ms);
    } else if (line->rfind("FAIL\t", 0) == 0) {
      ++st.fail;
      st.latencies_ms.push_back(ms);
    } else {
      ++st.error;  // CONT or garbage: this connection's state is unknown now
      connected = false;
      c.reset();
    }
  }
}

std::optional<std::vector<User>> load_users(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::vector<User> users;
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (line.empty() || line[0] == '#' || tab == std::string::npos) continue;
    User u{line.substr(0, tab), line.substr(tab + 1), ""};
    u.resp = base64(std::string(1, '\0') + u.name + std::string(1, '\0') + u.password);
    users.push_back(std::move(u));
  }
  return users;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

int usage() {
  std::fprintf(stderr, "usage: bench_auth_load -a SOCKET|HOST:PORT -u USERS.tsv [-c CONNECTIONS] "
                       "[-n COUNT] [-t SECONDS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  int ch;
  while ((ch = getopt(argc, argv, "a:u:c:n:t:")) != -1) {
    switch (ch) {
      case 'a': opt.address = optarg; break;
      case 'u': opt.users_file = optarg; break;
      case 'c': opt.connections = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
      case 'n': opt.count = std::strtoull(optarg, nullptr, 10); break;
      case 't': opt.seconds = std::strtod(optarg, nullptr); break;
      default: return usage();
    }
  }
  if (opt.address.empty() || opt.users_file.empty() || opt.connections == 0 || opt.connections > 1024 ||
      opt.seconds <= 0)
    return usage();
  auto users = load_users(opt.users_file);
  if (!users || users->empty()) {
    std::fprintf(stderr, "bench_auth_load: no users in %s\n", opt.users_file.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  Shared sh;
  sh.opt = &opt;
  sh.users = &*users;
  std::vector<Stats> stats(opt.connections);
  auto start = Clock::now();
  sh.deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds));
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < opt.connections; ++i) threads.emplace_back(run_connection, std::ref(sh), std::ref(stats[i]));
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  Stats total;
  for (auto& s : stats) {
    total.ok += s.ok;
    total.fail += s.fail;
    total.error += s.error;
    total.latencies_ms.insert(total.latencies_ms.end(), s.latencies_ms.begin(), s.latencies_ms.end());
  }
  uint64_t answered = total.ok + total.fail;
  double max_ms = total.latencies_ms.empty() ? 0 : *std::max_element(total.latencies_ms.begin(), total.latencies_ms.end());
  double p50 = percentile(total.latencies_ms, 0.50);
  double p99 = percentile(total.latencies_ms, 0.99);
  std::printf("auths=%llu ok=%llu fail=%llu error=%llu seconds=%.3f auths_per_s=%.1f p50_ms=%.3f p99_ms=%.3f "
              "max_ms=%.3f connections=%u\n",
              static_cast<unsigned long long>(answered), static_cast<unsigned long long>(total.ok),
              static_cast<unsigned long long>(total.fail), static_cast<unsigned long long>(total.error), elapsed,
              elapsed > 0 ? static_cast<double>(answered) / elapsed : 0.0, p50, p99, max_ms, opt.connections);
  return answered > 0 ? 0 : 1;
}
