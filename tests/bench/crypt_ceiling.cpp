// crypt_ceiling.cpp - the "ceiling" row of tests/bench/auth_bench.py: how many SHA512-CRYPT
// verifications per second this machine does with crypt_r(3) on every core, with no
// protocol, socket or database around them. An auth server verifying one such hash per
// PLAIN login (cache off) cannot beat this. A benchmark tool, not part of postern.
//
//   bench_crypt_ceiling [-j THREADS] [-t SECONDS] [-p PASSWORD] [-H HASH]
//
// THREADS defaults to the number of cores; HASH to a fixed $6$ hash (default rounds, 5000)
// of PASSWORD. Every result is compared with HASH, so a wrong hash is an error (exit 1).
// Prints one line: verifications, threads, seconds, verifications_per_s, per_thread_per_s,
// p50_ms (the median time of one crypt_r call). With -j 1 on an otherwise idle machine,
// p50_ms is "one hash time": the least a login that verifies this hash can take.
#include <crypt.h>
#include <unistd.h>

#include <algorithm>
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
  std::vector<std::vector<double>> times_ms(threads);  // each call's duration, per thread
  std::vector<std::thread> pool;
  auto start = Clock::now();
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto data = std::make_unique<crypt_data>();  // ~32 KB, zeroed: not on the stack
      auto& times = times_ms[t];
      times.reserve(4096);
      while (!stop.load(std::memory_order_relaxed)) {
        auto begun = Clock::now();  // two clock reads cost ~50 ns against a ~1 ms hash
        const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
        if (out == nullptr || hash != out) {
          mismatch = true;
          break;
        }
        times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - begun).count());
      }
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
  std::vector<double> all;
  for (auto& times : times_ms) all.insert(all.end(), times.begin(), times.end());
  if (all.empty()) {
    std::fprintf(stderr, "bench_crypt_ceiling: no verification finished in %.3f s\n", elapsed);
    return 1;
  }
  auto mid = all.begin() + static_cast<long>(all.size() / 2);
  std::nth_element(all.begin(), mid, all.end());
  double rate = static_cast<double>(all.size()) / elapsed;
  std::printf("verifications=%zu threads=%u seconds=%.3f verifications_per_s=%.1f per_thread_per_s=%.1f p50_ms=%.3f\n",
              all.size(), threads, elapsed, rate, rate / threads, *mid);
  return 0;
}
