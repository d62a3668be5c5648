// crypt_ceiling.cpp - the "ceiling" row of tests/bench/auth_bench.py: how many SHA512-CRYPT
// verifications per second this machine does with crypt_r(3) on every core, with no
// protocol, socket or database around them. An auth server verifying one such hash per
// PLAIN login (cache off) cannot beat this. A benchmark tool, not part of postern.
//
//   bench_crypt_ceiling [-j THREADS] [-t SECONDS] [-p PASSWORD] [-H HASH]
//
// THREADS defaults to the number of cores; HASH to a fixed $6$ hash (default rounds, 5000)
// of PASSWORD. Every result is compared with HASH, so a wrong hash is an error (exit 1).
// Prints one line: verifications, threads, seconds, verifications_per_s, per_thread_per_s.
#include <crypt.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// openssl passwd -6 -salt 5a9f3c1e7b2d4f60 firstpassword (schema_a.sql's email1).
constexpr const char* kHash =
    "$6$5a9f3c1e7b2d4f60$jFrdMErRFO8WXO5Rrqc8mY7uyI2yZQ9VN8EQuWKSPFmE6qExXztim7JBc534IjygRps/aP9qOSIYu8XbYCpxH1";

}  // namespace

int main(int argc, char** argv) {
  unsigned threads = std::thread::hardware_concurrency();
  double seconds = 3;
  std::string password = "firstpassword";
  std::string hash = kHash;
  int ch;
  while ((ch = getopt(argc, argv, "j:t:p:H:")) != -1) {
    switch (ch) {
      case 'j': threads = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
      case 't': seconds = std::strtod(optarg, nullptr); break;
      case 'p': password = optarg; break;
      case 'H': hash = optarg; break;
      default:
        std::fprintf(stderr, "usage: bench_crypt_ceiling [-j THREADS] [-t SECONDS] [-p PASSWORD] [-H HASH]\n");
        return 2;
    }
  }
  if (threads == 0) threads = 1;
  std::atomic<bool> stop{false}, mismatch{false};
  std::vector<unsigned long long> counts(threads, 0);
  std::vector<std::thread> pool;
  auto start = Clock::now();
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto data = std::make_unique<crypt_data>();  // ~32 KB, zeroed: not on the stack
      unsigned long long n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
        if (out == nullptr || hash != out) {
          mismatch = true;
          break;
        }
        ++n;
      }
      counts[t] = n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (mismatch) {
    std::fprintf(stderr, "bench_crypt_ceiling: crypt_r did not reproduce the hash (wrong password or hash)\n");
    return 1;
  }
  unsigned long long total = 0;
  for (auto c : counts) total += c;
  double rate = static_cast<double>(total) / elapsed;
  std::printf("verifications=%llu threads=%u seconds=%.3f verifications_per_s=%.1f per_thread_per_s=%.1f\n", total,
              threads, elapsed, rate, rate / threads);
  return 0;
}
