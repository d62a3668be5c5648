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
//
// Closing contract:
//  - close(): closes at once. Queued writes are discarded, no frame is delivered after it
//    returns (not even from inside the on_frame that called it), closing() is true.
//  - close_after_write(): stops reading and delivering frames; the stream closes once the
//    write queue is empty. write() is still accepted until then (and extends the wait).
//  - EOF from the peer, unless on_eof is set (see there), behaves like close_after_write()
//    once every complete frame received before it has been delivered (after a resume, if
//    paused): replies queued so far are flushed, then the connection closes; a partial
//    last frame is discarded. A reply produced after the close (e.g. by a worker for a
//    request still in flight) is dropped: a server that must answer every request of a
//    half-closing peer keeps reading paused until it has written the reply.
//  - A read or write error, or the idle timeout, calls close().
//  - write() after closing() is true is dropped silently.
//  - on_close runs exactly once, on the loop, after every handle has closed; then on_frame,
//    on_frame_error and on_close are released (so lambdas that capture the shared_ptr do
//    not leak) and the Connection drops its own reference.
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
  // "[::1]:port", "inet:[::1]:port". A bare ":port" or "port" means 127.0.0.1. host must
  // be an IP literal (no DNS). Port 0 asks the kernel for a free port (see bound_port()).
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
  // Frame handler. Returning normally continues reading. May call write(), close(),
  // close_after_write(), pause_reading(); the frame view is valid only during the call.
  std::function<void(std::string_view frame)> on_frame;
  // The framer failed (too_long or malformed). The handler may write() a last reply;
  // the connection is then closed after the write.
  std::function<void(FrameStatus why)> on_frame_error;
  // Runs once, after the stream has closed (EOF, error, timeout, or close()).
  std::function<void()> on_close;
  // Optional. When set, EOF from the peer does not close the connection: reading stops,
  // every complete frame already received is still delivered (as reading is resumed),
  // and then on_eof runs once. The handler closes (usually close_after_write()) when its
  // last reply is queued. Lets a server answer a client that half-closes after sending.
  std::function<void()> on_eof;

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Inside on_frame, writes are gathered and sent together once the frames of this read
  // have been handled (or before a close_after_write()); elsewhere they go out at once.
  void write(std::string bytes);
  // Stops/starts delivering frames (e.g. while a worker answers the last one). The idle
  // timeout does not run while paused: the wait is the server's, not the client's (unless
  // close_after_write() was called: then it waits for the client to read). While paused the
  // socket is still read into the buffer until it holds kPausedReadLimit bytes (so at most
  // that plus one 64 KiB read; frame limits are checked on resume), so a pause per request
  // costs no epoll_ctl calls. resume_reading() never calls on_frame itself: frames already
  // buffered are delivered from the loop, on its next iteration.
  void pause_reading();
  void resume_reading();
  static constexpr size_t kPausedReadLimit = 64 * 1024;
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
  bool open_for_frames() const;
  bool may_deliver() const;
  bool wants_bytes() const;
  size_t buffered() const;
  void update_reading();
  void schedule_frames();
  void process_frames();
  void send_now(std::string bytes);
  void flush_batch();
  void touch();
  void handle_closed();
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_write(uv_write_t*, int);
  static void on_timer(uv_timer_t*);
  static void on_kick(uv_idle_t*);

  uv_stream_t* stream_;  // a uv_any_handle allocated by Listener; owned from adopt() on
  uv_timer_t* timer_ = nullptr;
  uv_idle_t* kick_ = nullptr;  // delivers buffered frames after resume, outside the caller
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
  bool eof_ = false;
  bool eof_signalled_ = false;
  bool in_frame_loop_ = false;
  // Replies written while one read's frames are handled, sent as one write afterwards:
  // a client pipelining 64 requests costs one syscall, not 64.
  std::string batch_;
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

  // Stops accepting; removes the unix socket file if it is still the one this Listener
  // created (same device and inode). Idempotent. Accepted connections stay open.
  void close();
  const ListenAddress& address() const { return address_; }
  // The TCP port actually bound (useful with port 0); 0 for unix sockets or after close().
  unsigned bound_port() const;
  // Limits for connections accepted from now on (reload).
  void set_limits(const ConnectionLimits& limits) { limits_ = limits; }

 private:
  Listener() = default;
  static void on_new_connection(uv_stream_t* server, int status);
  Status open_tcp();
  Status open_unix(const UnixSocketOptions& options);

  uv_loop_t* loop_ = nullptr;
  uv_stream_t* server_ = nullptr;
  ListenAddress address_;
  Framing framing_ = Framing::line;
  ConnectionLimits limits_;
  OnConnection on_connection_;
  // Identity of the socket file we created, so close() never removes someone else's.
  bool created_file_ = false;
  uint64_t file_dev_ = 0;
  uint64_t file_ino_ = 0;
};

}  // namespace postern
