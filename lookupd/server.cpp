// server.cpp - listeners, sessions, reload and drain; see server.hpp.
#include "lookupd/server.hpp"

#include "common/log.hpp"
#include "lookupd/protocol_codecs.hpp"

namespace postern::lookupd {
namespace {

ConnectionLimits limits_for(const LookupdConfig& config, TableProtocol protocol) {
  ConnectionLimits limits;
  // Room for "<map name> <10000-byte key>", or a fully %XX-encoded key.
  limits.max_frame = protocol == TableProtocol::socketmap ? kMaxKeyBytes + 256 : 3 * kMaxKeyBytes + 16;
  limits.idle_timeout_ms = config.idle_timeout_ms;
  return limits;
}

}  // namespace

Server::Server(uv_loop_t* loop, std::shared_ptr<const LookupdConfig> config)
    : loop_(loop), config_(std::move(config)), sessions_(loop) {}

Server::~Server() = default;

Status Server::listen() {
  std::vector<std::unique_ptr<Listener>> opened;
  auto open = [&](const ListenAddress& address, TableProtocol protocol, std::string tcp_map) -> Status {
    Framing framing = protocol == TableProtocol::socketmap ? Framing::netstring : Framing::line;
    auto listener = Listener::open(loop_, address, config_->socket_options, framing, limits_for(*config_, protocol),
                                   [this, protocol, tcp_map](std::shared_ptr<Connection> c) {
                                     accept(std::move(c), protocol, tcp_map);
                                   });
    if (!listener) return listener.error();
    log_info("listening on {} ({})", address.str(),
             protocol == TableProtocol::socketmap ? "socketmap" : "tcp_table map " + tcp_map);
    opened.push_back(std::move(*listener));
    return Status::Ok();
  };
  for (const ListenAddress& address : config_->socketmap_listen) {
    Status s = open(address, TableProtocol::socketmap, "");
    if (!s) return s;  // `opened` closes what was bound so far
  }
  for (const MapConfig& map : config_->maps) {
    if (!map.tcp_listen) continue;
    Status s = open(*map.tcp_listen, TableProtocol::tcp, map.definition.name);
    if (!s) return s;
  }
  listeners_ = std::move(opened);
  return Status::Ok();
}

void Server::start_workers() { resolver_ = std::make_unique<Resolver>(loop_, config_); }

void Server::accept(std::shared_ptr<Connection> connection, TableProtocol protocol, std::string tcp_map) {
  if (sessions_.stopping() || !resolver_) {
    connection->close();
    return;
  }
  sessions_.add(std::make_shared<ClientSession>(connection, protocol, std::move(tcp_map), *resolver_));
}

void Server::reload(std::shared_ptr<const LookupdConfig> config) {
  if (config->listener_signature() != config_->listener_signature())
    log_warning("reload: listener settings changed; they take effect at the next restart");
  auto restart_needed = [](const char* setting) {
    log_warning("reload: {} changed; it takes effect at the next restart", setting);
  };
  if (config->sql_workers != config_->sql_workers) restart_needed("sql_workers");
  if (config->max_queue != config_->max_queue) restart_needed("max_queue");
  if (config->user != config_->user || config->group != config_->group) restart_needed("user/group");
  if (config->syslog != config_->syslog) restart_needed("syslog");
  for (auto& listener : listeners_) {
    bool socketmap = false;
    for (const ListenAddress& a : config_->socketmap_listen) socketmap = socketmap || a.str() == listener->address().str();
    listener->set_limits(limits_for(*config, socketmap ? TableProtocol::socketmap : TableProtocol::tcp));
  }
  config_ = std::move(config);
  if (resolver_) resolver_->set_config(config_);
  log_info("reloaded {}: {} maps", config_->path, config_->maps.size());
}

void Server::stop(uint64_t grace_ms, std::function<void()> on_stopped) {
  listeners_.clear();  // stop accepting; unix socket files are removed
  sessions_.stop(grace_ms, [this, on_stopped = std::move(on_stopped)] {
    if (resolver_) resolver_->stop();
    on_stopped();
  });
}

}  // namespace postern::lookupd
