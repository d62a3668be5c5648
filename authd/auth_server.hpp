// auth_server.hpp - authd's listeners, sessions, workers, reload and graceful stop.
#pragma once

#include "authd/auth_session.hpp"
#include "authd/authd_config.hpp"
#include "authd/penalty.hpp"
#include "common/net.hpp"
#include "common/session_set.hpp"
#include "common/worker_pool.hpp"

#include <uv.h>

#include <functional>
#include <memory>
#include <vector>

namespace postern::authd {

class AuthServer {
 public:
  AuthServer(uv_loop_t* loop, std::shared_ptr<const AuthdConfig> config);
  ~AuthServer();

  // Binds every listener; nothing stays bound on failure.
  Status listen();
  // Starts the workers; call after privileges are dropped.
  void start_workers();
  // New requests use the new config; requests in flight finish with the old one.
  void reload(std::shared_ptr<const AuthdConfig> config);
  // Stops accepting, lets requests in flight finish, stops workers, then on_stopped.
  void stop(uint64_t grace_ms, std::function<void()> on_stopped);

 private:
  void accept(std::shared_ptr<Connection> connection);

  uv_loop_t* loop_;
  Penalty penalty_;
  AuthContext context_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<WorkerPool> pool_;
  SessionSet<AuthSession> sessions_;
};

}  // namespace postern::authd
