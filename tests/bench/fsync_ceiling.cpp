// fsync_ceiling.cpp - the "ceiling" row of tests/bench/lmtp_bench.py: how many durable
// Maildir deliveries per second this disk takes, with no protocol, parsing or lookup
// around them. Each delivery is what a careful LMTP server does per message: create
// tmp/<unique> (O_CREAT|O_EXCL), write SIZE bytes, fsync, close, rename into new/, fsync
// new/ (durable_file.hpp). All threads deliver into the same maildir (one user), as a load
// to one mailbox does. A delivery agent that fsyncs like this cannot beat it. A benchmark
// tool, not part of postern.
//
//   bench_fsync_ceiling -d DIR [-j THREADS] [-n COUNT] [-t SECONDS] [-s SIZE]
//
// Stops after COUNT deliveries in all (default 2000) or SECONDS (default 10), whichever
// comes first. DIR must exist; DIR/tmp and DIR/new are created. The delivered files stay,
// as the agents' do: on ext4 without a journal, inodes freed in the last minutes make every
// later file creation on the disk slower, so deleting here would slow the next point.
// Prints one line: deliveries, threads, seconds, deliveries_per_s.
#include "durable_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string dir;
  unsigned threads = 1;
  long count = 2000;
  double seconds = 10;
  size_t size = 4096;
  int ch;
  while ((ch = getopt(argc, argv, "d:j:n:t:s:")) != -1) {
    switch (ch) {
      case 'd': dir = optarg; break;
      case 'j': threads = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
      case 'n': count = std::strtol(optarg, nullptr, 10); break;
      case 't': seconds = std::strtod(optarg, nullptr); break;
      case 's': size = static_cast<size_t>(std::strtoul(optarg, nullptr, 10)); break;
      default: dir.clear(); optind = argc; break;
    }
  }
  if (dir.empty() || threads == 0 || count <= 0) {
    std::fprintf(stderr, "usage: bench_fsync_ceiling -d DIR [-j THREADS] [-n COUNT] [-t SECONDS] [-s SIZE]\n");
    return 2;
  }
  for (const char* sub : {"/tmp", "/new"}) {
    if (::mkdir((dir + sub).c_str(), 0700) != 0 && errno != EEXIST) {
      std::fprintf(stderr, "bench_fsync_ceiling: mkdir %s%s: %s\n", dir.c_str(), sub, std::strerror(errno));
      return 1;
    }
  }
  int new_fd = ::open((dir + "/new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (new_fd < 0) {
    std::fprintf(stderr, "bench_fsync_ceiling: open %s/new: %s\n", dir.c_str(), std::strerror(errno));
    return 1;
  }
  std::string body(size, 'x');
  for (size_t i = 76; i < body.size(); i += 77) body[i] = '\n';
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> pool;
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (;;) {
        long i = next.fetch_add(1);
        if (i >= count || Clock::now() >= deadline || failed) {
          next.fetch_sub(1);
          break;
        }
        std::string name = std::to_string(::getpid()) + "." + std::to_string(t) + "." + std::to_string(i);
        std::string landed;
        if (!bench::land_durably(dir, new_fd, name, body, &landed)) {
          std::fprintf(stderr, "bench_fsync_ceiling: delivery %ld: %s\n", i, std::strerror(errno));
          failed = true;
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(new_fd);
  long done = next.load();
  if (failed) return 1;
  std::printf("deliveries=%ld threads=%u seconds=%.3f deliveries_per_s=%.1f\n", done, threads, elapsed,
              static_cast<double>(done) / elapsed);
  return 0;
}
