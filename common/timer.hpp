// timer.hpp - a one-shot uv timer owned by an object, RAII.
//
// start() (re)arms it; the callback runs on the loop thread unless stop() or the
// destructor came first. The uv handle outlives the Timer until libuv has closed it,
// so destroying a Timer from inside its own callback is safe. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>

namespace postern {

class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(uint64_t delay_ms, std::function<void()> callback);
  void stop();
  bool active() const;

 private:
  struct Handle;
  Handle* handle_;
};

}  // namespace postern
