// session_set.hpp - a server's open client sessions, and its graceful stop.
//
// Session is any type with start(std::function<void()> on_closed), drain() (finish what
// is in flight, then close) and abort() (close now). The set keeps each session alive
// from add() until its on_closed runs.
//
// stop(): logs how many clients are left, drains every session, and after grace_ms
// aborts those still open; once the set is empty it calls on_empty, exactly once.
// Loop thread only.
#pragma once

#include "common/log.hpp"
#include "common/timer.hpp"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <utility>

namespace postern {

template <class Session>
class SessionSet {
 public:
  explicit SessionSet(uv_loop_t* loop) : loop_(loop) {}
  SessionSet(const SessionSet&) = delete;
  SessionSet& operator=(const SessionSet&) = delete;

  // Holds session and starts it; it leaves the set when it closes.
  void add(std::shared_ptr<Session> session) {
    sessions_.insert(session);
    std::weak_ptr<Session> weak = session;
    session->start([this, weak] {
      if (auto s = weak.lock()) sessions_.erase(s);
      maybe_finish_stop();
    });
  }

  // True from stop() on: a server accepts no more sessions.
  bool stopping() const { return stopping_; }

  // A second call does nothing.
  void stop(uint64_t grace_ms, std::function<void()> on_empty) {
    if (stopping_) return;
    stopping_ = true;
    on_empty_ = std::move(on_empty);
    log_info("stopping: {} clients to finish", sessions_.size());
    // A copy: drain() may close a session at once, which erases it from sessions_.
    auto sessions = sessions_;
    for (const auto& session : sessions) session->drain();
    grace_timer_ = std::make_unique<Timer>(loop_);
    grace_timer_->start(grace_ms, [this] {
      log_warning("stopping: {} clients still busy after the grace period; closing them", sessions_.size());
      auto remaining = sessions_;
      for (const auto& session : remaining) session->abort();
    });
    maybe_finish_stop();
  }

 private:
  void maybe_finish_stop() {
    if (!stopping_ || !sessions_.empty() || !on_empty_) return;
    grace_timer_.reset();
    auto done = std::move(on_empty_);
    on_empty_ = nullptr;
    done();
  }

  uv_loop_t* loop_;
  std::set<std::shared_ptr<Session>> sessions_;
  bool stopping_ = false;
  std::function<void()> on_empty_;
  std::unique_ptr<Timer> grace_timer_;
};

}  // namespace postern
