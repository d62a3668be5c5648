// client_session.cpp - request parsing, ordered replies and flow control; see client_session.hpp.
#include "lookupd/client_session.hpp"

#include "common/log.hpp"
#include "lookupd/protocol_codecs.hpp"

namespace postern::lookupd {
namespace {
// A client that keeps sending garbage must not flood the log.
constexpr int kLoggedBadRequests = 3;
}  // namespace

ClientSession::ClientSession(std::shared_ptr<Connection> connection, TableProtocol protocol, std::string tcp_map,
                             Resolver& resolver)
    : connection_(std::move(connection)), protocol_(protocol), tcp_map_(std::move(tcp_map)), resolver_(resolver) {}

void ClientSession::start(std::function<void()> on_closed) {
  // Weak references: the connection must not keep its session alive in a cycle.
  std::weak_ptr<ClientSession> weak = shared_from_this();
  connection_->on_frame = [weak](std::string_view frame) {
    if (auto self = weak.lock()) self->on_frame(frame);
  };
  connection_->on_frame_error = [weak](FrameStatus why) {
    if (auto self = weak.lock()) self->on_frame_error(why);
  };
  connection_->on_eof = [weak] {
    if (auto self = weak.lock()) self->on_peer_done();
  };
  connection_->on_close = std::move(on_closed);
}

void ClientSession::on_peer_done() {
  // Every request has been delivered; answer them all, then close.
  draining_ = true;
  if (slots_.empty()) connection_->close_after_write();
}

void ClientSession::drain() {
  draining_ = true;
  connection_->pause_reading();
  if (slots_.empty()) connection_->close_after_write();
}

void ClientSession::on_frame(std::string_view frame) {
  auto slot = std::make_shared<Slot>();
  slots_.push_back(slot);
  // Checked for every slot: bad requests wait in line behind slow lookups too.
  if (slots_.size() >= kMaxInFlight && !paused_) {
    paused_ = true;
    connection_->pause_reading();
  }
  CodecError error;
  std::string map;
  std::string key;
  if (protocol_ == TableProtocol::socketmap) {
    auto request = parse_socketmap_request(frame, &error);
    if (!request) {
      if (++bad_requests_ <= kLoggedBadRequests)
        log_warning("socketmap client {}: bad request: {}", connection_->peer(), error.reason);
      complete(slot, LookupResult::perm(error.reason));
      return;
    }
    map = std::move(request->map);
    key = std::move(request->key);
  } else {
    auto request = parse_tcp_request(frame, &error);
    if (!request) {
      if (++bad_requests_ <= kLoggedBadRequests)
        log_warning("tcp_table client {}: bad request: {}", connection_->peer(), error.reason);
      complete(slot, LookupResult::perm(error.reason));
      return;
    }
    map = tcp_map_;
    key = std::move(*request);
  }
  std::weak_ptr<ClientSession> weak = shared_from_this();
  resolver_.resolve(map, key, [weak, slot](const LookupResult& result) {
    if (auto self = weak.lock()) self->complete(slot, result);
  });
}

void ClientSession::on_frame_error(FrameStatus why) {
  const char* reason = why == FrameStatus::too_long ? "request too long" : "malformed request";
  log_warning("{} client {}: {}; closing", protocol_ == TableProtocol::socketmap ? "socketmap" : "tcp_table",
              connection_->peer(), reason);
  // The stream cannot be resynchronised; Connection closes it after this callback's writes.
  auto slot = std::make_shared<Slot>();
  slots_.push_back(slot);
  draining_ = true;
  complete(slot, LookupResult::perm(reason));
}

void ClientSession::complete(const std::shared_ptr<Slot>& slot, const LookupResult& result) {
  slot->done = true;
  slot->reply = protocol_ == TableProtocol::socketmap ? format_socketmap_reply(result) : format_tcp_reply(result);
  flush();
}

void ClientSession::flush() {
  while (!slots_.empty() && slots_.front()->done) {
    connection_->write(std::move(slots_.front()->reply));
    slots_.pop_front();
  }
  if (draining_) {
    if (slots_.empty()) connection_->close_after_write();
    return;
  }
  if (paused_ && slots_.size() < kMaxInFlight / 2) {
    paused_ = false;
    connection_->resume_reading();
  }
}

}  // namespace postern::lookupd
