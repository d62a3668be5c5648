// penalty.cpp - see penalty.hpp.
#include "authd/penalty.hpp"

#include <algorithm>

namespace postern::authd {
namespace {
constexpr std::chrono::minutes kIdle{15};
}

std::chrono::milliseconds Penalty::failure(const std::string& rip, Clock::time_point now) {
  std::chrono::milliseconds extra{0};
  if (enabled_ && !rip.empty()) {
    forget_idle(now);
    Entry& e = failures_[rip];
    if (now - e.last > kIdle) e.count = 0;
    e.count = std::min(e.count + 1, 16u);
    e.last = now;
    if (e.count >= 2) extra = std::min(std::chrono::milliseconds(1000LL << std::min(e.count - 1, 10u)), max_);
  }
  return std::min(failure_delay_ + extra, kCeiling);
}

void Penalty::success(const std::string& rip) {
  if (!rip.empty()) failures_.erase(rip);
}

void Penalty::forget_idle(Clock::time_point now) {
  if (now < next_sweep_) return;
  next_sweep_ = now + std::chrono::minutes(1);
  std::erase_if(failures_, [now](const auto& item) { return now - item.second.last > kIdle; });
}

}  // namespace postern::authd
