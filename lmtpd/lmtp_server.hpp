// lmtp_server.hpp - lmtpd's listeners, sessions, workers, reload and graceful stop.
#pragma once

#include "common/net.hpp"
#include "common/session_set.hpp"
#include "common/worker_pool.hpp"
#include "lmtpd/lmtp_session.hpp"
#include "lmtpd/lmtpd_config.hpp"

#include <uv.h>

#include <functional>
#include <memory>
#include <vector>

namespace postern::lmtpd {

class LmtpServer {
 public:
  LmtpServer(uv_loop_t* loop, std::shared_ptr<const LmtpdConfig> config);
  ~LmtpServer();

  Status listen();
  void start_workers();
  void reload(std::shared_ptr<const LmtpdConfig> config);
  // Stops accepting; idle sessions get 421, deliveries in progress finish; then on_stopped.
  void stop(uint64_t grace_ms, std::function<void()> on_stopped);

 private:
  void accept(std::shared_ptr<Connection> connection);

  uv_loop_t* loop_;
  LmtpContext context_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<WorkerPool> pool_;
  SessionSet<LmtpSession> sessions_;
};

}  // namespace postern::lmtpd
