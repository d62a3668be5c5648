// sql_host_health.hpp - private to common/sql_*.cpp: the process-wide record of which
// database hosts are down and when to try them again, shared by every Connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace postern::sql {

// One host's health, shared by every Connection in the process that reaches the host
// with the same user, database and password (a refused login or a missing database says
// nothing about other credentials). Every member function takes one process-wide lock, so
// a dead host costs one connect timeout per retry interval, not one per worker.
class HostHealth {
 public:
  using Clock = std::chrono::steady_clock;

  // The entry for key (the host with our credentials), made on first use. Entries live as
  // long as some Connection uses them; a reload that drops a host lets its entry go.
  static std::shared_ptr<HostHealth> shared(const std::string& key);

  // Whether to try the host now. A host marked down is skipped until its retry time; then
  // the first caller to ask probes it, and the host's retry time moves probe_window ahead
  // so that the others keep skipping it while that probe may still be waiting for its
  // timeouts. Otherwise *retry_at tells when to ask again.
  bool claim(Clock::time_point now, std::chrono::seconds probe_window, Clock::time_point* retry_at);

  // Marks the host down until retry_interval from now, remembering error. Returns whether
  // it was down already, so the caller logs only a change of state.
  bool mark_down(std::chrono::milliseconds retry_interval, const std::string& error);

  // Marks the host up. was_down: it was down before; first: the first connection to it in
  // the whole process (neither was logged yet).
  struct UpChange {
    bool was_down = false;
    bool first = false;
  };
  UpChange mark_up();

  // The error the host was last marked down with; empty while it is up.
  std::string last_error() const;

 private:
  bool down_ = false;
  bool announced_ = false;  // the first connection was logged
  Clock::time_point retry_at_{};
  std::string last_error_;
};

}  // namespace postern::sql
