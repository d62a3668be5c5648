// penalty.hpp - failure delays that grow per remote IP, anvil-style.
//
// The first failure from an IP waits auth_failure_delay; each further consecutive one
// adds a penalty that doubles from 2 s up to auth_penalty_max. A success clears the IP.
// The total always stays under Postfix's 10 s auth timeout, so a FAIL is still a 535.
// Idle entries are forgotten after 15 minutes. Loop thread only.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

namespace postern::authd {

class Penalty {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kCeiling{9000};

  Penalty(std::chrono::milliseconds failure_delay, bool enabled, std::chrono::milliseconds max)
      : failure_delay_(failure_delay), enabled_(enabled), max_(max) {}
  void configure(std::chrono::milliseconds failure_delay, bool enabled, std::chrono::milliseconds max) {
    failure_delay_ = failure_delay;
    enabled_ = enabled;
    max_ = max;
  }

  // Records a failure from rip (may be empty: unknown) and returns how long to hold the FAIL.
  std::chrono::milliseconds failure(const std::string& rip, Clock::time_point now);
  void success(const std::string& rip);
  size_t tracked() const { return failures_.size(); }

 private:
  struct Entry {
    unsigned count = 0;
    Clock::time_point last;
  };
  void forget_idle(Clock::time_point now);

  std::chrono::milliseconds failure_delay_;
  bool enabled_;
  std::chrono::milliseconds max_;
  std::unordered_map<std::string, Entry> failures_;
  Clock::time_point next_sweep_{};
};

}  // namespace postern::authd
