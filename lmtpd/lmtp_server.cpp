// lmtp_server.cpp - see lmtp_server.hpp.
#include "lmtpd/lmtp_server.hpp"

#include "common/log.hpp"

#include <thread>

namespace postern::lmtpd {
namespace {

ConnectionLimits lmtp_limits(const LmtpdConfig& config) {
  ConnectionLimits limits;
  // Postfix folds lines at 998 bytes; anything near this limit is not mail.
  limits.max_frame = 64 * 1024;
  limits.idle_timeout_ms = config.idle_timeout_ms;
  return limits;
}

}  // namespace

LmtpServer::LmtpServer(uv_loop_t* loop, std::shared_ptr<const LmtpdConfig> config)
    : loop_(loop), sessions_(loop) {
  context_.loop = loop;
  context_.config = std::move(config);
}

LmtpServer::~LmtpServer() = default;

Status LmtpServer::listen() {
  std::vector<std::unique_ptr<Listener>> opened;
  for (const ListenAddress& address : context_.config->listen) {
    auto listener = Listener::open(loop_, address, context_.config->socket_options, Framing::line,
                                   lmtp_limits(*context_.config),
                                   [this](std::shared_ptr<Connection> c) { accept(std::move(c)); });
    if (!listener) return listener.error();
    log_info("listening on {} (lmtp)", address.str());
    opened.push_back(std::move(*listener));
  }
  listeners_ = std::move(opened);
  return Status::Ok();
}

void LmtpServer::start_workers() {
  int threads = context_.config->workers;
  // fsync waits on the disk, not the CPU: more threads than cores keep it busy (measured
  // with tests/bench/run lmtp --agents lmtpd@4,lmtpd@8: 4 per core delivered ~8% more).
  if (threads <= 0) threads = 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  pool_ = std::make_unique<WorkerPool>(loop_, threads, 100000);
  context_.pool = pool_.get();
}

void LmtpServer::accept(std::shared_ptr<Connection> connection) {
  if (sessions_.stopping() || !pool_) {
    connection->close();
    return;
  }
  sessions_.add(std::make_shared<LmtpSession>(connection, context_));
}

void LmtpServer::reload(std::shared_ptr<const LmtpdConfig> config) {
  if (listener_signature(config->listen, config->socket_options) !=
      listener_signature(context_.config->listen, context_.config->socket_options))
    log_warning("reload: listener settings changed; they take effect at the next restart");
  if (config->workers != context_.config->workers)
    log_warning("reload: lmtp_workers changed; it takes effect at the next restart");
  context_.config = std::move(config);
  if (pool_) {
    auto keys = context_.config->userdb->endpoint_keys();
    pool_->broadcast([keys](WorkerContext& worker) { worker.forget_connections_except(keys); });
  }
  log_info("reloaded {}: userdb {}", context_.config->path, context_.config->userdb->describe());
}

void LmtpServer::stop(uint64_t grace_ms, std::function<void()> on_stopped) {
  listeners_.clear();
  sessions_.stop(grace_ms, [this, on_stopped = std::move(on_stopped)] {
    if (pool_) pool_->stop();
    on_stopped();
  });
}

}  // namespace postern::lmtpd
