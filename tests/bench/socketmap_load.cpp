// socketmap_load.cpp - pipelined load generator for Postfix socketmap servers (lookupd, or
// bench_ceiling_server), for tests/bench/lookup_bench.py's capacity rows. A benchmark tool,
// not part of postern.
//
// N connections, one thread each. Every connection keeps D requests in flight: it sends D
// netstring requests "<len>:<map> <key>," in one write, then for every reply it reads it
// queues one more request, sending the queued requests in one write per read. Keys come
// from a file (one per line), cycled; connection i starts at key i * keys / N. Stops issuing
// after -t seconds or -n requests in total, whichever comes first, then reads the replies
// still in flight. Replies are checked to be well-formed netstrings ("<digits>:<bytes>,")
// and counted as OK / NOTFOUND / TEMP / PERM / other (TIMEOUT or anything else). A framing
// error, a closed connection or a timeout counts as an error; that connection's in-flight
// requests are dropped and it reconnects.
//
//   bench_socketmap_load -a SOCKET|HOST:PORT -m MAP -k KEYS [-c 1] [-d 64] [-t 5] [-n COUNT]
//
// Prints a human-readable summary, then a last line of JSON: requests (replies received),
// ok, notfound, temp, perm, other, errors, seconds, requests_per_s, connections, depth.
// Exit 0 if any reply arrived and there were no errors, 1 otherwise, 2 on bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
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
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxReply = 100000;  // Postfix's socketmap client refuses replies > 100000 bytes

struct Options {
  std::string address;  // unix path, or host:port
  std::string map;
  std::string keys_file;
  unsigned connections = 1;
  unsigned depth = 64;
  double seconds = 5;
  uint64_t count = UINT64_MAX;
};

struct Stats {
  uint64_t ok = 0, notfound = 0, temp = 0, perm = 0, other = 0, errors = 0;
  uint64_t replies() const { return ok + notfound + temp + perm + other; }
};

struct Shared {
  const Options* opt;
  const std::vector<std::string>* requests;  // pre-built netstrings, one per key
  std::atomic<uint64_t> issued{0};
  Clock::time_point deadline;
};

int connect_to(const std::string& address) {
  int fd = -1;
  auto colon = address.rfind(':');
  if (address.find('/') == std::string::npos && colon != std::string::npos) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
    if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) return -1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      if (fd >= 0) close(fd);
      return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  } else {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (address.size() >= sizeof sa.sun_path) return -1;
    std::memcpy(sa.sun_path, address.c_str(), address.size());
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      if (fd >= 0) close(fd);
      return -1;
    }
  }
  timeval tv{30, 0};  // a reply this late is an error anyway (Postfix waits 100 s at most)
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void classify(std::string_view v, Stats& st) {
  auto is = [&](std::string_view word) {
    return v.substr(0, word.size()) == word && (v.size() == word.size() || v[word.size()] == ' ');
  };
  if (is("OK")) ++st.ok;
  else if (is("NOTFOUND")) ++st.notfound;
  else if (is("TEMP")) ++st.temp;
  else if (is("PERM")) ++st.perm;
  else ++st.other;
}

// Parses complete netstrings at the front of buf[0, have). Returns the number of bytes
// consumed and adds the replies to st and *replies; -1 on a framing error.
long parse_replies(const char* buf, size_t have, Stats& st, unsigned* replies) {
  size_t pos = 0;
  for (;;) {
    size_t i = pos;
    size_t len = 0;
    while (i < have && buf[i] >= '0' && buf[i] <= '9') {
      len = len * 10 + static_cast<size_t>(buf[i] - '0');
      if (len > kMaxReply) return -1;
      ++i;
    }
    if (i == have) return static_cast<long>(pos);  // length not complete yet
    if (i == pos || buf[i] != ':') return -1;       // no digits, or not followed by ':'
    size_t end = i + 1 + len;                       // index of the ','
    if (end >= have) return static_cast<long>(pos);
    if (buf[end] != ',') return -1;
    classify(std::string_view(buf + i + 1, len), st);
    ++*replies;
    pos = end + 1;
  }
}

// Claims up to `want` requests from the global budget; returns how many it got.
unsigned claim(Shared& sh, unsigned want) {
  if (want == 0) return 0;
  if (Clock::now() >= sh.deadline) return 0;
  if (sh.opt->count == UINT64_MAX) return want;
  uint64_t first = sh.issued.fetch_add(want);
  if (first >= sh.opt->count) return 0;
  return static_cast<unsigned>(std::min<uint64_t>(want, sh.opt->count - first));
}

void run_connection(Shared& sh, unsigned index, Stats& st) {
  const auto& reqs = *sh.requests;
  size_t next = reqs.size() * index / sh.opt->connections;  // spread connections over the keys
  std::vector<char> buf(kMaxReply + 64 + 65536);
  std::string batch;
  auto fill = [&](unsigned n) {
    batch.clear();
    for (unsigned i = 0; i < n; ++i) {
      batch += reqs[next];
      if (++next == reqs.size()) next = 0;
    }
  };
  for (;;) {
    unsigned n = claim(sh, sh.opt->depth);
    if (n == 0) return;
    int fd = connect_to(sh.opt->address);
    if (fd < 0) {
      ++st.errors;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    unsigned in_flight = n;
    fill(n);
    bool ok = send_all(fd, batch);
    size_t have = 0;
    while (ok && in_flight > 0) {
      ssize_t got = ::recv(fd, buf.data() + have, buf.size() - have, 0);
      if (got <= 0) {
        ok = false;
        break;
      }
      have += static_cast<size_t>(got);
      unsigned replies = 0;
      long used = parse_replies(buf.data(), have, st, &replies);
      if (used < 0) {
        ok = false;
        break;
      }
      std::memmove(buf.data(), buf.data() + used, have - static_cast<size_t>(used));
      have -= static_cast<size_t>(used);
      in_flight -= replies;
      unsigned more = claim(sh, replies);
      if (more > 0) {
        fill(more);
        in_flight += more;
        ok = send_all(fd, batch);
      }
    }
    close(fd);
    if (ok) return;  // drained: the budget is spent
    ++st.errors;     // the in-flight requests of this connection are lost; reconnect
  }
}

int usage() {
  std::fprintf(stderr, "usage: bench_socketmap_load -a SOCKET|HOST:PORT -m MAP -k KEYS [-c CONNECTIONS] "
                       "[-d DEPTH] [-t SECONDS] [-n COUNT]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  int ch;
  while ((ch = getopt(argc, argv, "a:m:k:c:d:t:n:")) != -1) {
    switch (ch) {
      case 'a': opt.address = optarg; break;
      case 'm': opt.map = optarg; break;
      case 'k': opt.keys_file = optarg; break;
      case 'c': opt.connections = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
      case 'd': opt.depth = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
      case 't': opt.seconds = std::strtod(optarg, nullptr); break;
      case 'n': opt.count = std::strtoull(optarg, nullptr, 10); break;
      default: return usage();
    }
  }
  if (opt.address.empty() || opt.map.empty() || opt.keys_file.empty() || opt.connections == 0 ||
      opt.connections > 1024 || opt.depth == 0 || opt.depth > 65536 || opt.seconds <= 0 || opt.count == 0)
    return usage();
  std::vector<std::string> requests;
  {
    std::ifstream in(opt.keys_file);
    std::string key;
    while (std::getline(in, key)) {
      if (key.empty()) continue;
      std::string body = opt.map + " " + key;
      requests.push_back(std::to_string(body.size()) + ":" + body + ",");
    }
  }
  if (requests.empty()) {
    std::fprintf(stderr, "bench_socketmap_load: no keys in %s\n", opt.keys_file.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  Shared sh;
  sh.opt = &opt;
  sh.requests = &requests;
  std::vector<Stats> stats(opt.connections);
  auto start = Clock::now();
  sh.deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds));
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < opt.connections; ++i)
    threads.emplace_back(run_connection, std::ref(sh), i, std::ref(stats[i]));
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  Stats t;
  for (const auto& s : stats) {
    t.ok += s.ok;
    t.notfound += s.notfound;
    t.temp += s.temp;
    t.perm += s.perm;
    t.other += s.other;
    t.errors += s.errors;
  }
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  double rate = elapsed > 0 ? static_cast<double>(t.replies()) / elapsed : 0.0;
  std::printf("%llu requests in %.3f s over %u connection(s), depth %u: %.0f requests/s\n", u(t.replies()), elapsed,
              opt.connections, opt.depth, rate);
  std::printf("OK %llu, NOTFOUND %llu, TEMP %llu, PERM %llu, other %llu, errors %llu\n", u(t.ok), u(t.notfound),
              u(t.temp), u(t.perm), u(t.other), u(t.errors));
  std::printf("{\"requests\": %llu, \"ok\": %llu, \"notfound\": %llu, \"temp\": %llu, \"perm\": %llu, "
              "\"other\": %llu, \"errors\": %llu, \"seconds\": %.3f, \"requests_per_s\": %.1f, "
              "\"connections\": %u, \"depth\": %u}\n",
              u(t.replies()), u(t.ok), u(t.notfound), u(t.temp), u(t.perm), u(t.other), u(t.errors), elapsed, rate,
              opt.connections, opt.depth);
  return t.replies() > 0 && t.errors == 0 ? 0 : 1;
}
