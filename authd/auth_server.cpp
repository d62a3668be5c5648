// auth_server.cpp - see auth_server.hpp.
#include "authd/auth_server.hpp"

#include "common/encoding.hpp"
#include "common/log.hpp"

#include <openssl/rand.h>
#include <unistd.h>

#include <thread>

namespace postern::authd {
namespace {

std::string random_cookie() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return std::string(32, '0');
  return hex_encode(std::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
}

ConnectionLimits auth_limits() {
  ConnectionLimits limits;
  limits.max_frame = kMaxAuthLine;
  // Postfix keeps one idle connection per smtpd process and never expects it closed.
  limits.idle_timeout_ms = 0;
  return limits;
}

}  // namespace

AuthServer::AuthServer(uv_loop_t* loop, std::shared_ptr<const AuthdConfig> config)
    : loop_(loop), penalty_(config->failure_delay, config->penalty, config->penalty_max), sessions_(loop) {
  context_.loop = loop;
  context_.config = std::move(config);
  context_.authenticator = std::make_shared<Authenticator>(context_.config->cache);
  context_.penalty = &penalty_;
  context_.spid = static_cast<uint64_t>(getpid());
  context_.cookie = random_cookie();
}

AuthServer::~AuthServer() = default;

Status AuthServer::listen() {
  std::vector<std::unique_ptr<Listener>> opened;
  for (const ListenAddress& address : context_.config->listen) {
    auto listener = Listener::open(loop_, address, context_.config->socket_options, Framing::line, auth_limits(),
                                   [this](std::shared_ptr<Connection> c) { accept(std::move(c)); });
    if (!listener) return listener.error();
    log_info("listening on {} (auth-client)", address.str());
    opened.push_back(std::move(*listener));
  }
  listeners_ = std::move(opened);
  return Status::Ok();
}

void AuthServer::start_workers() {
  int threads = context_.config->workers;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  pool_ = std::make_unique<WorkerPool>(loop_, threads, 100000);
  context_.pool = pool_.get();
}

void AuthServer::accept(std::shared_ptr<Connection> connection) {
  if (sessions_.stopping() || !pool_) {
    connection->close();
    return;
  }
  sessions_.add(std::make_shared<AuthSession>(connection, context_));
}

void AuthServer::reload(std::shared_ptr<const AuthdConfig> config) {
  if (listener_signature(config->listen, config->socket_options) !=
      listener_signature(context_.config->listen, context_.config->socket_options))
    log_warning("reload: listener settings changed; they take effect at the next restart");
  if (config->workers != context_.config->workers)
    log_warning("reload: auth_workers changed; it takes effect at the next restart");
  // A fresh cache, as Dovecot flushes its auth cache on SIGHUP: the passdb or its
  // settings may have changed.
  context_.authenticator = std::make_shared<Authenticator>(config->cache);
  penalty_.configure(config->failure_delay, config->penalty, config->penalty_max);
  context_.config = std::move(config);
  if (pool_) {
    auto keys = context_.config->passdb->endpoint_keys();
    pool_->broadcast([keys](WorkerContext& worker) { worker.forget_connections_except(keys); });
  }
  log_info("reloaded {}: passdb {}", context_.config->path, context_.config->passdb->describe());
}

void AuthServer::stop(uint64_t grace_ms, std::function<void()> on_stopped) {
  listeners_.clear();
  sessions_.stop(grace_ms, [this, on_stopped = std::move(on_stopped)] {
    if (pool_) pool_->stop();
    on_stopped();
  });
}

}  // namespace postern::authd
