// auth_session.hpp - one auth-client connection (Postfix smtpd, or any Dovecot client).
//
// The server sends the handshake at once; the client must send VERSION (major 1) and
// CPID before any AUTH. Requests are independent and may interleave: each AUTH id has
// its own mechanism state, replies go out as they are ready. Password work runs on the
// worker pool; FAILs are held for the failure delay on a timer, not on a worker. When the
// passdb fails, the connection is closed so that Postfix answers 454 (a FAIL would be a
// 535). A request waiting for the client longer than auth_request_timeout is dropped; a
// later CONT for it gets "timed out". Protocol violations (duplicate id, AUTH before the
// handshake, malformed known commands) close the connection, as Dovecot does.
#pragma once

#include "authd/auth_protocol.hpp"
#include "authd/authd_config.hpp"
#include "authd/authenticator.hpp"
#include "authd/penalty.hpp"
#include "authd/sasl_mechanism.hpp"
#include "common/net.hpp"
#include "common/timer.hpp"
#include "common/worker_pool.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace postern::authd {

// What all sessions share; owned by the server.
struct AuthContext {
  uv_loop_t* loop = nullptr;
  std::shared_ptr<const AuthdConfig> config;
  WorkerPool* pool = nullptr;
  std::shared_ptr<Authenticator> authenticator;
  Penalty* penalty = nullptr;
  uint64_t spid = 0;
  std::string cookie;  // 32 hex characters
  uint64_t next_cuid = 1;
};

class AuthSession : public std::enable_shared_from_this<AuthSession> {
 public:
  AuthSession(std::shared_ptr<Connection> connection, AuthContext& context);
  void start(std::function<void()> on_closed);
  // Graceful stop: finish what is in flight (FAIL delays included), then close.
  void drain();
  void abort() { connection_->close(); }

 private:
  struct Request {
    std::unique_ptr<SaslMechanism> mechanism;
    std::string mechanism_name;
    std::shared_ptr<const AuthdConfig> config;  // as when the request began
    PassdbRequest passdb_request;               // user filled in when known
    std::string canonical_user;
    bool busy = false;  // waiting for a worker or a delayed reply
    std::unique_ptr<Timer> timer;
  };

  void on_line(std::string_view line);
  void on_auth(const ClientLine& line);
  void on_cont(const ClientLine& line);
  void advance(uint32_t id, MechStep step);
  // Runs the passdb part of a step (verify_plain or lookup_credentials): from the auth
  // cache when it can answer, else on a worker.
  void run_passdb(uint32_t id, MechStep step);
  // The passdb step's outcome (nullopt: the job never ran), from the cache or a worker.
  void passdb_done(uint32_t id, bool verify, std::optional<AuthOutcome> done);
  // Checks auth_username_chars and applies auth_username_format; empty on refusal.
  std::string format_username(const Request& request, const std::string& raw, std::string* why);
  void succeed(uint32_t id);
  void fail(uint32_t id, const std::string& reason, bool delayed = true);
  void temporary_failure(uint32_t id, const std::string& reason);
  void protocol_error(const std::string& what);
  void log_result(const Request& request, const char* result, const std::string& reason);
  void finish(uint32_t id);
  void maybe_close_drained();

  std::shared_ptr<Connection> connection_;
  AuthContext& context_;
  bool got_version_ = false;
  bool got_cpid_ = false;
  bool draining_ = false;
  std::map<uint32_t, Request> requests_;
};

}  // namespace postern::authd
