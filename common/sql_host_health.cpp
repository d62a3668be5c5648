// sql_host_health.cpp - the process-wide registry of database host health (down, retry
// time, last error) behind sql_host_health.hpp, guarded by one mutex.
#include "common/sql_host_health.hpp"

#include <map>
#include <mutex>

namespace postern::sql {
namespace {

std::mutex& health_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

std::shared_ptr<HostHealth> HostHealth::shared(const std::string& key) {
  static std::map<std::string, std::weak_ptr<HostHealth>> registry;
  std::lock_guard lock(health_mutex());
  for (auto it = registry.begin(); it != registry.end();) {
    if (it->second.expired()) it = registry.erase(it);
    else ++it;
  }
  std::weak_ptr<HostHealth>& slot = registry[key];
  std::shared_ptr<HostHealth> health = slot.lock();
  if (!health) {
    health = std::make_shared<HostHealth>();
    slot = health;
  }
  return health;
}

bool HostHealth::claim(Clock::time_point now, std::chrono::seconds probe_window, Clock::time_point* retry_at) {
  std::lock_guard lock(health_mutex());
  if (!down_) return true;
  if (now < retry_at_) {
    *retry_at = retry_at_;
    return false;
  }
  retry_at_ = now + probe_window;
  return true;
}

bool HostHealth::mark_down(std::chrono::milliseconds retry_interval, const std::string& error) {
  std::lock_guard lock(health_mutex());
  bool was_down = down_;
  down_ = true;
  retry_at_ = Clock::now() + retry_interval;
  last_error_ = error;
  return was_down;
}

HostHealth::UpChange HostHealth::mark_up() {
  std::lock_guard lock(health_mutex());
  UpChange change;
  change.was_down = down_;
  change.first = !announced_;
  down_ = false;
  announced_ = true;
  last_error_.clear();
  return change;
}

std::string HostHealth::last_error() const {
  std::lock_guard lock(health_mutex());
  return last_error_;
}

}  // namespace postern::sql
