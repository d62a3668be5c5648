// server.hpp - lookupd's listeners, client sessions, reload and graceful stop.
#pragma once

#include "common/net.hpp"
#include "common/session_set.hpp"
#include "lookupd/client_session.hpp"
#include "lookupd/lookupd_config.hpp"
#include "lookupd/resolver.hpp"

#include <uv.h>

#include <functional>
#include <memory>
#include <vector>

namespace postern::lookupd {

class Server {
 public:
  Server(uv_loop_t* loop, std::shared_ptr<const LookupdConfig> config);
  ~Server();

  // Binds every listener. Nothing is left bound on failure.
  Status listen();
  // Starts the workers; call after privileges are dropped, so SQL runs unprivileged.
  void start_workers();
  // Swaps in a valid new config. Listeners stay as they are; a changed listener set is
  // logged as needing a restart.
  void reload(std::shared_ptr<const LookupdConfig> config);
  // Stops accepting, answers what is in flight, closes clients, stops workers, then
  // calls on_stopped. Clients still busy after `grace` are cut off.
  void stop(uint64_t grace_ms, std::function<void()> on_stopped);

 private:
  void accept(std::shared_ptr<Connection> connection, TableProtocol protocol, std::string tcp_map);

  uv_loop_t* loop_;
  std::shared_ptr<const LookupdConfig> config_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<Resolver> resolver_;
  SessionSet<ClientSession> sessions_;
};

}  // namespace postern::lookupd
