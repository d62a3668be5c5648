// timer.cpp - see timer.hpp. The callback lives in the heap handle, so it survives the
// Timer while it runs.
#include "common/timer.hpp"

#include <utility>

namespace postern {

struct Timer::Handle {
  uv_timer_t timer;
  std::function<void()> callback;
};

Timer::Timer(uv_loop_t* loop) : handle_(new Handle) {
  uv_timer_init(loop, &handle_->timer);
  handle_->timer.data = handle_;
}

Timer::~Timer() {
  uv_timer_stop(&handle_->timer);
  // The callback may be the one running now; it is destroyed with the handle, after it returns.
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_->timer),
           [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
}

void Timer::start(uint64_t delay_ms, std::function<void()> callback) {
  handle_->callback = std::move(callback);
  uv_timer_start(
      &handle_->timer,
      [](uv_timer_t* t) {
        auto* h = static_cast<Handle*>(t->data);
        // A copy: the callback may restart this timer with a new callback.
        auto run = h->callback;
        if (run) run();
      },
      delay_ms, 0);
}

void Timer::stop() { uv_timer_stop(&handle_->timer); }

bool Timer::active() const { return uv_is_active(reinterpret_cast<const uv_handle_t*>(&handle_->timer)) != 0; }

}  // namespace postern
