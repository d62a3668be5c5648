// socketpair_connection.hpp - for session tests: a Connection (line framing, no idle
// timeout) on one end of a socketpair, and the other end, non-blocking, for the test.
#pragma once

#include "common/net.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <memory>

namespace net_test {

inline std::shared_ptr<postern::Connection> socketpair_connection(uv_loop_t* loop, size_t max_frame, int* client) {
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  *client = fds[1];
  fcntl(*client, F_SETFL, O_NONBLOCK);
  auto* handle = new uv_any_handle;
  uv_pipe_init(loop, &handle->pipe, 0);
  REQUIRE(uv_pipe_open(&handle->pipe, fds[0]) == 0);
  postern::ConnectionLimits limits;
  limits.max_frame = max_frame;
  limits.idle_timeout_ms = 0;
  return postern::Connection::adopt(reinterpret_cast<uv_stream_t*>(handle), postern::Framing::line, limits, "test");
}

}  // namespace net_test
