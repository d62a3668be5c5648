// client_session.hpp - one Postfix client connection, socketmap or tcp_table.
//
// Requests may be pipelined; each gets a slot, and replies leave strictly in request
// order as their lookups finish. Past kMaxInFlight open slots (good or bad requests
// alike) the session stops reading until replies drain. A client that half-closes
// after sending still gets every reply. A request that cannot be parsed gets its error reply in order,
// and a framing error (malformed or over-long netstring/line) gets a last error reply
// if nothing is pending before it; then the connection closes (net.hpp).
#pragma once

#include "common/net.hpp"
#include "lookupd/resolver.hpp"

#include <deque>
#include <functional>
#include <memory>
#include <string>

namespace postern::lookupd {

enum class TableProtocol { socketmap, tcp };

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  static constexpr size_t kMaxInFlight = 256;

  // tcp_map names the map for tcp_table (one map per listener); unused for socketmap.
  ClientSession(std::shared_ptr<Connection> connection, TableProtocol protocol, std::string tcp_map,
                Resolver& resolver);
  // Wires the connection's callbacks; on_closed runs once when the connection is gone.
  void start(std::function<void()> on_closed);
  // Graceful stop: no new requests; close once every reply due has been written.
  void drain();
  // Closes the connection now, dropping replies not yet written.
  void abort() { connection_->close(); }

 private:
  struct Slot {
    bool done = false;
    std::string reply;
  };
  void on_frame(std::string_view frame);
  void on_frame_error(FrameStatus why);
  void on_peer_done();
  void complete(const std::shared_ptr<Slot>& slot, const LookupResult& result);
  void flush();

  std::shared_ptr<Connection> connection_;
  TableProtocol protocol_;
  std::string tcp_map_;
  Resolver& resolver_;
  std::deque<std::shared_ptr<Slot>> slots_;
  bool draining_ = false;
  bool paused_ = false;
  int bad_requests_ = 0;
};

}  // namespace postern::lookupd
