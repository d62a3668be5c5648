// net.hpp - listeners and connections on the libuv loop.
//
// Listener binds a unix socket (with mode, owner, group) or a TCP address and hands each
// accepted client to a callback as a Connection. A stale unix socket file (nothing
// accepts on it) is replaced; a live one is never stolen, and neither is a file that is
// not a socket.
//
// Connection owns one accepted stream: buffered reads cut into frames by a LineFramer or
// NetstringFramer, a write queue with backpressure (reading pauses while more than
// write_high_water bytes wait to be written), and an idle timeout. All calls happen on the
// loop thread. A Connection is kept alive by shared_ptr; it releases its own reference
// once the stream has closed and on_close has run.
#pragma once

#include "common/framing.hpp"
#include "common/result.hpp"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace postern {

struct ListenAddress {
  enum class Kind { unix_path, tcp };
  Kind kind = Kind::unix_path;
  std::string path;  // unix
  std::string host;  // tcp: IPv4 or IPv6 literal
  unsigned port = 0; // tcp

  // Accepts "unix:/path", "/path", "unix:relative/path", "inet:host:port", "host:port",
  // "[::1]:port", "inet:[::1]:port". A bare ":port" or "port" means 127.0.0.1.
  static Result<ListenAddress> parse(std::string_view text);
  std::string str() const;  // "unix:/path" or "inet:127.0.0.1:10042"
};

struct UnixSocketOptions {
  unsigned mode = 0666;
  std::string owner;  // user name or number; empty keeps the current one
  std::string group;  // group name or number; empty keeps the current one
};

struct ConnectionLimits {
  size_t max_frame = 16384;
  uint64_t idle_timeout_ms = 60000;  // 0 = none
  size_t write_high_water = 1 << 20;
};

enum class Framing { line, netstring };

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Frame handler. Returning normally continues reading.
  std::function<void(std::string_view frame)> on_frame;
  // The framer failed (too_long or malformed). The handler may write() a last reply;
  // the connection is then closed after the write.
  std::function<void(FrameStatus why)> on_frame_error;
  // Runs once, after the stream has closed (EOF, error, timeout, or close()).
  std::function<void()> on_close;

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void write(std::string bytes);
  // Stops/starts delivering frames (e.g. while too many requests are in flight).
  void pause_reading();
  void resume_reading();
  // Closes once everything queued has been written.
  void close_after_write();
  void close();
  bool closing() const { return closing_; }
  size_t write_queue_bytes() const { return queued_bytes_; }
  // "unix" or "127.0.0.1:54321", for log lines.
  const std::string& peer() const { return peer_; }

  // Used by Listener.
  static std::shared_ptr<Connection> adopt(uv_stream_t* stream, Framing framing, const ConnectionLimits& limits,
                                           std::string peer);

 private:
  Connection(uv_stream_t* stream, Framing framing, const ConnectionLimits& limits, std::string peer);
  void start();
  void update_reading();
  void process_frames();
  void touch();
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_write(uv_write_t*, int);
  static void on_timer(uv_timer_t*);

  uv_stream_t* stream_;
  uv_timer_t* timer_ = nullptr;
  std::variant<LineFramer, NetstringFramer> framer_;
  ConnectionLimits limits_;
  std::string peer_;
  std::shared_ptr<Connection> self_;  // kept until the handles have closed
  size_t queued_bytes_ = 0;
  bool paused_by_user_ = false;
  bool reading_ = false;
  bool closing_ = false;
  bool close_when_drained_ = false;
  bool framing_failed_ = false;
  bool in_frame_loop_ = false;
  int open_handles_ = 0;
};

class Listener {
 public:
  using OnConnection = std::function<void(std::shared_ptr<Connection>)>;

  // Binds and listens. For unix sockets: stale-file replacement, then chmod/chown.
  static Result<std::unique_ptr<Listener>> open(uv_loop_t* loop, const ListenAddress& address,
                                                const UnixSocketOptions& unix_options, Framing framing,
                                                ConnectionLimits limits, OnConnection on_connection);
  ~Listener();  // close()s
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Stops accepting; removes the unix socket file. Idempotent.
  void close();
  const ListenAddress& address() const { return address_; }
  // Limits for connections accepted from now on (reload).
  void set_limits(const ConnectionLimits& limits) { limits_ = limits; }

 private:
  Listener() = default;
  static void on_new_connection(uv_stream_t* server, int status);

  uv_loop_t* loop_ = nullptr;
  uv_stream_t* server_ = nullptr;
  ListenAddress address_;
  Framing framing_ = Framing::line;
  ConnectionLimits limits_;
  OnConnection on_connection_;
};

}  // namespace postern
