// net_connection.cpp - Connection: framed reads, a write queue with backpressure, the idle
// timeout and the close sequence (contract in common/net.hpp).

#include "common/log.hpp"
#include "common/net.hpp"

#include <memory>
#include <utility>

namespace postern {

namespace {

struct WriteRequest {
  uv_write_t req;
  std::string bytes;  // must outlive the uv_write, so it lives with the request
};

// Every read is copied into the framer before the loop allocates again, so one buffer per
// loop thread serves all connections instead of an idle buffer in each.
thread_local char read_buffer[65536];

constexpr size_t kBatchFlushBytes = 64 * 1024;

std::variant<LineFramer, NetstringFramer> make_framer(Framing framing, size_t max_frame) {
  if (framing == Framing::netstring) return NetstringFramer(max_frame);
  return LineFramer(max_frame);
}

}  // namespace

Connection::Connection(uv_stream_t* stream, Framing framing, const ConnectionLimits& limits, std::string peer)
    : stream_(stream), framer_(make_framer(framing, limits.max_frame)), limits_(limits), peer_(std::move(peer)) {}

// Only reached after handle_closed() dropped self_, i.e. with every handle closed.
Connection::~Connection() = default;

std::shared_ptr<Connection> Connection::adopt(uv_stream_t* stream, Framing framing, const ConnectionLimits& limits,
                                              std::string peer) {
  std::shared_ptr<Connection> c(new Connection(stream, framing, limits, std::move(peer)));
  c->start();
  return c;
}

void Connection::start() {
  self_ = shared_from_this();
  uv_loop_t* loop = stream_->loop;
  stream_->data = this;
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  kick_ = new uv_idle_t;
  uv_idle_init(loop, kick_);
  kick_->data = this;
  open_handles_ = 3;
  touch();
  update_reading();
}

// Neither closing nor held back by the framer or by backpressure; a pause aside.
bool Connection::open_for_frames() const {
  return !closing_ && !close_when_drained_ && !framing_failed_ && queued_bytes_ <= limits_.write_high_water;
}

bool Connection::may_deliver() const { return open_for_frames() && !paused_by_user_; }

bool Connection::wants_bytes() const {
  return open_for_frames() && !eof_ && (!paused_by_user_ || buffered() < kPausedReadLimit);
}

size_t Connection::buffered() const {
  return std::visit([](auto& f) { return f.buffered(); }, framer_);
}

void Connection::update_reading() {
  if (closing_) return;
  bool want = wants_bytes();
  if (want && !reading_) {
    int rc = uv_read_start(stream_, on_alloc, on_read);
    if (rc < 0) {
      log_debug("{}: cannot read: {}", peer_, uv_strerror(rc));
      close();
      return;
    }
    reading_ = true;
  } else if (!want && reading_) {
    uv_read_stop(stream_);
    reading_ = false;
  }
}

void Connection::schedule_frames() {
  if (closing_ || !may_deliver()) return;
  if (buffered() > 0 || (eof_ && !eof_signalled_)) uv_idle_start(kick_, on_kick);
}

void Connection::on_kick(uv_idle_t* idle) {
  auto* c = static_cast<Connection*>(idle->data);
  uv_idle_stop(idle);
  c->process_frames();
}

void Connection::process_frames() {
  // A nested call (a handler resuming from inside on_frame) leaves the work to the loop
  // already running below us, which re-checks the state after every frame.
  if (in_frame_loop_) return;
  in_frame_loop_ = true;
  while (may_deliver()) {
    std::string_view frame;
    FrameStatus status = std::visit([&frame](auto& f) { return f.next(&frame); }, framer_);
    if (status == FrameStatus::need_more) {
      if (eof_ && !eof_signalled_) {
        // Every complete frame is delivered; a partial one can never complete now.
        eof_signalled_ = true;
        if (on_eof) {
          auto handler = on_eof;
          handler();
        } else {
          close_after_write();
        }
      }
      break;
    }
    if (status == FrameStatus::frame) {
      if (on_frame) on_frame(frame);
      continue;
    }
    framing_failed_ = true;
    update_reading();
    log_debug("{}: {} frame, closing", peer_, status == FrameStatus::too_long ? "over-long" : "malformed");
    if (on_frame_error) on_frame_error(status);
    close_after_write();
    break;
  }
  in_frame_loop_ = false;
  flush_batch();
  update_reading();
}

void Connection::touch() {
  if (closing_ || (paused_by_user_ && !close_when_drained_) || limits_.idle_timeout_ms == 0) return;
  uv_timer_start(timer_, on_timer, limits_.idle_timeout_ms, 0);
}

void Connection::on_timer(uv_timer_t* timer) {
  auto* c = static_cast<Connection*>(timer->data);
  log_debug("{}: idle timeout", c->peer_);
  c->close();
}

void Connection::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  buf->base = read_buffer;
  buf->len = sizeof read_buffer;
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  if (nread > 0) {
    std::string_view bytes(buf->base, static_cast<size_t>(nread));
    std::visit([bytes](auto& f) { f.append(bytes); }, c->framer_);
    c->touch();
    c->process_frames();
  } else if (nread == UV_EOF) {
    c->eof_ = true;
    c->update_reading();
    c->process_frames();
  } else if (nread < 0) {
    log_debug("{}: read error: {}", c->peer_, uv_strerror(static_cast<int>(nread)));
    c->close();
  }
}

void Connection::write(std::string bytes) {
  if (closing_ || bytes.empty()) return;
  if (in_frame_loop_) {
    batch_ += bytes;
    // Past this the batch goes out now, so backpressure still stops delivery in time.
    if (batch_.size() >= kBatchFlushBytes) flush_batch();
    return;
  }
  send_now(std::move(bytes));
}

void Connection::flush_batch() {
  if (batch_.empty()) return;
  std::string out = std::move(batch_);
  batch_.clear();
  send_now(std::move(out));
}

void Connection::send_now(std::string bytes) {
  if (closing_ || bytes.empty()) return;
  // A reply usually fits the socket buffer. Written here it needs no uv_write request,
  // whose completion costs an epoll_ctl call even when the bytes went out at once.
  if (queued_bytes_ == 0 && !close_when_drained_) {
    uv_buf_t now = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    int n = uv_try_write(stream_, &now, 1);
    if (n < 0 && n != UV_EAGAIN) {
      log_debug("{}: write failed: {}", peer_, uv_strerror(n));
      close();
      return;
    }
    if (n > 0) {
      touch();
      bytes.erase(0, static_cast<size_t>(n));
      if (bytes.empty()) return;
    }
  }
  size_t size = bytes.size();
  auto* w = new WriteRequest{{}, std::move(bytes)};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(size));
  int rc = uv_write(&w->req, stream_, &buf, 1, on_write);
  if (rc < 0) {
    delete w;
    log_debug("{}: write failed: {}", peer_, uv_strerror(rc));
    close();
    return;
  }
  queued_bytes_ += size;
  update_reading();
}

void Connection::on_write(uv_write_t* req, int status) {
  std::unique_ptr<WriteRequest> w(static_cast<WriteRequest*>(req->data));
  // Cancelled writes are reported before the stream's close callback, so the Connection
  // (held by self_ until then) is still alive here.
  auto* c = static_cast<Connection*>(req->handle->data);
  c->queued_bytes_ -= w->bytes.size();
  if (c->closing_) return;
  if (status < 0) {
    log_debug("{}: write failed: {}", c->peer_, uv_strerror(status));
    c->close();
    return;
  }
  c->touch();
  if (c->close_when_drained_) {
    if (c->queued_bytes_ == 0) c->close();
    return;
  }
  c->update_reading();
  c->schedule_frames();
}

void Connection::pause_reading() {
  paused_by_user_ = true;
  if (closing_) return;
  uv_idle_stop(kick_);
  // The server is busy (a delivery, a lookup), not the client idle: no timeout meanwhile.
  uv_timer_stop(timer_);
  update_reading();
}

void Connection::resume_reading() {
  paused_by_user_ = false;
  if (closing_) return;
  touch();
  update_reading();
  schedule_frames();
}

void Connection::close_after_write() {
  if (closing_) return;
  // Set first: the last batch then goes through uv_write, and the close waits for it and
  // for any write() still made before it.
  close_when_drained_ = true;
  flush_batch();
  update_reading();
  if (queued_bytes_ == 0) return close();
  touch();  // from now on only the client keeps it open, by not reading
}

void Connection::close() {
  if (closing_) return;
  closing_ = true;
  batch_.clear();
  reading_ = false;  // uv_close stops reading
  uv_close(reinterpret_cast<uv_handle_t*>(stream_), [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    delete reinterpret_cast<uv_any_handle*>(h);
    c->stream_ = nullptr;
    c->handle_closed();
  });
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    delete reinterpret_cast<uv_timer_t*>(h);
    c->timer_ = nullptr;
    c->handle_closed();
  });
  uv_close(reinterpret_cast<uv_handle_t*>(kick_), [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    delete reinterpret_cast<uv_idle_t*>(h);
    c->kick_ = nullptr;
    c->handle_closed();
  });
}

void Connection::handle_closed() {
  if (--open_handles_ > 0) return;
  // Declared first so it is destroyed last: `this` may die with it, after the callback.
  std::shared_ptr<Connection> self = std::move(self_);
  std::function<void()> callback = std::move(on_close);
  on_close = nullptr;
  on_frame = nullptr;
  on_frame_error = nullptr;
  on_eof = nullptr;
  if (callback) callback();
}

}  // namespace postern
