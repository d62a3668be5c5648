// auth_session.cpp - the per-connection auth state machine; see auth_session.hpp.
#include "authd/auth_session.hpp"

#include "common/dovecot_template.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"

namespace postern::authd {
namespace {

constexpr const char* kFailReason = "Authentication failed";

bool is_plaintext(std::string_view mechanism) {
  for (const MechanismInfo& info : known_mechanisms())
    if (info.name == mechanism) return info.plaintext;
  return false;
}

// Client-supplied names reach the log; control bytes must not forge or split lines.
std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

AuthSession::AuthSession(std::shared_ptr<Connection> connection, AuthContext& context)
    : connection_(std::move(connection)), context_(context) {}

void AuthSession::start(std::function<void()> on_closed) {
  std::weak_ptr<AuthSession> weak = shared_from_this();
  connection_->on_frame = [weak](std::string_view line) {
    if (auto self = weak.lock()) self->on_line(line);
  };
  connection_->on_frame_error = [weak](FrameStatus) {
    if (auto self = weak.lock()) self->protocol_error("line too long or malformed");
  };
  connection_->on_eof = [weak] {
    if (auto self = weak.lock()) self->drain();
  };
  connection_->on_close = std::move(on_closed);

  std::vector<std::pair<std::string, std::vector<std::string>>> mechs;
  for (const std::string& name : context_.config->mechanisms)
    for (const MechanismInfo& info : known_mechanisms())
      if (info.name == name) mechs.emplace_back(info.name, info.flags);
  connection_->write(server_handshake(mechs, context_.spid, context_.next_cuid++, context_.cookie));
}

void AuthSession::drain() {
  draining_ = true;
  maybe_close_drained();
}

void AuthSession::maybe_close_drained() {
  if (!draining_) return;
  for (const auto& [id, request] : requests_)
    if (request.busy) return;
  connection_->close_after_write();
}

void AuthSession::protocol_error(const std::string& what) {
  log_warning("auth client {}: {}; disconnecting", connection_->peer(), what);
  connection_->close_after_write();
}

void AuthSession::on_line(std::string_view line) {
  std::string error;
  auto parsed = parse_client_line(line, &error);
  if (!parsed) return protocol_error("malformed " + std::string(line.substr(0, line.find('\t'))) + ": " + error);
  switch (parsed->kind) {
    case ClientLine::Kind::version:
      if (parsed->major != 1) return protocol_error("unsupported protocol version " + std::to_string(parsed->major));
      got_version_ = true;
      return;
    case ClientLine::Kind::cpid:
      if (!got_version_) return protocol_error("CPID before VERSION");
      got_cpid_ = true;
      return;
    case ClientLine::Kind::auth:
      if (!got_version_ || !got_cpid_) return protocol_error("AUTH before the VERSION/CPID handshake");
      return on_auth(*parsed);
    case ClientLine::Kind::cont:
      if (!got_version_ || !got_cpid_) return protocol_error("CONT before the VERSION/CPID handshake");
      return on_cont(*parsed);
    case ClientLine::Kind::cancel:
      if (auto it = requests_.find(parsed->id); it != requests_.end() && !it->second.busy) requests_.erase(it);
      return;
    case ClientLine::Kind::unknown:
      // Newer clients may send commands we do not know; ignoring them is harmless.
      log_debug("auth client {}: ignoring unknown command {}", connection_->peer(), parsed->command);
      return;
  }
}

void AuthSession::on_auth(const ClientLine& line) {
  if (draining_) return;
  if (requests_.count(line.id)) return protocol_error("duplicate request id " + std::to_string(line.id));
  Request& request = requests_[line.id];
  request.config = context_.config;
  request.mechanism_name = upper(line.mechanism);
  request.passdb_request.service = line.service;
  request.passdb_request.rip = line.rip;
  request.passdb_request.lip = line.lip;

  const AuthdConfig& config = *request.config;
  bool offered = false;
  for (const std::string& name : config.mechanisms) offered = offered || name == request.mechanism_name;
  if (!offered) return fail(line.id, "Unsupported authentication mechanism", false);
  // Dovecot counts a connection from the server's own address as secure (loopback).
  bool secured = line.secured || (!line.rip.empty() && line.rip == line.lip);
  if (config.disable_plaintext_auth && !secured && is_plaintext(request.mechanism_name))
    return fail(line.id, "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.", false);

  std::optional<std::string> initial;
  if (line.resp) {
    auto decoded = base64_decode(*line.resp == "=" ? "" : *line.resp);
    if (!decoded) return fail(line.id, "Invalid base64 data in initial response", false);
    initial = std::move(*decoded);
  }
  request.mechanism = make_mechanism(request.mechanism_name, config.hostname);
  if (!request.mechanism) return fail(line.id, "Unsupported authentication mechanism", false);
  advance(line.id, request.mechanism->start(initial));
}

void AuthSession::on_cont(const ClientLine& line) {
  auto it = requests_.find(line.id);
  if (it == requests_.end()) {
    connection_->write(format_fail(line.id, "", "Authentication request timed out"));
    return;
  }
  if (it->second.busy) return protocol_error("CONT for request " + std::to_string(line.id) + " while it is in progress");
  it->second.timer.reset();
  auto decoded = base64_decode(line.data);
  if (!decoded) return fail(line.id, "Invalid base64 data in continued response", false);
  advance(line.id, it->second.mechanism->step(*decoded));
}

void AuthSession::advance(uint32_t id, MechStep step) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request& request = it->second;
  switch (step.kind) {
    case MechStep::Kind::challenge: {
      connection_->write(format_cont(id, base64_encode(step.data)));
      request.timer = std::make_unique<Timer>(context_.loop);
      std::weak_ptr<AuthSession> weak = shared_from_this();
      request.timer->start(static_cast<uint64_t>(request.config->request_timeout.count()), [weak, id] {
        auto self = weak.lock();
        if (!self) return;
        auto found = self->requests_.find(id);
        if (found == self->requests_.end() || found->second.busy) return;
        log_info("auth client {}: request {} ({}) timed out waiting for the client", self->connection_->peer(), id,
                 found->second.mechanism_name);
        self->requests_.erase(found);
      });
      return;
    }
    case MechStep::Kind::verify_plain:
    case MechStep::Kind::lookup_credentials:
      // Logging in as someone else needs master users, which authd does not have.
      if (!step.authzid.empty()) {
        request.passdb_request.user = step.user;
        return fail(id, "authorization identity differs from the login name (no master users)");
      }
      return run_passdb(id, std::move(step));
    case MechStep::Kind::success:
      return succeed(id);
    case MechStep::Kind::failure:
      if (request.passdb_request.user.empty()) request.passdb_request.user = step.user;
      return fail(id, step.reason);
  }
}

std::string AuthSession::format_username(const Request& request, const std::string& raw, std::string* why) {
  const std::string& allowed = request.config->username_chars;
  for (char c : raw) {
    // Postfix never unescapes, so these could never be answered correctly anyway.
    if (c == '\t' || c == '\n' || c == '\r' || c == '\0' || c == '\001' ||
        (!allowed.empty() && allowed.find(c) == std::string::npos)) {
      *why = "username contains disallowed characters";
      return {};
    }
  }
  if (raw.empty()) {
    *why = "empty username";
    return {};
  }
  DovecotVars vars;
  vars.user = raw;
  vars.service = request.passdb_request.service;
  vars.rip = request.passdb_request.rip;
  vars.lip = request.passdb_request.lip;
  auto formatted = expand_dovecot_template(request.config->username_format, vars);
  if (!formatted || formatted->empty()) {
    *why = "auth_username_format gave no name";
    return {};
  }
  return *formatted;
}

void AuthSession::run_passdb(uint32_t id, MechStep step) {
  Request& request = requests_.at(id);
  std::string why;
  request.passdb_request.user = step.user;
  std::string user = format_username(request, step.user, &why);
  if (user.empty()) return fail(id, why);
  request.passdb_request.user = user;
  request.busy = true;
  // PLAIN/LOGIN hand over a password to check; CRAM-MD5/SCRAM ask for the stored one.
  bool verify = step.kind == MechStep::Kind::verify_plain;
  auto passdb = request.config->passdb;
  auto authenticator = context_.authenticator;
  PassdbRequest query = request.passdb_request;
  // A repeated login is answered here, without a worker round trip.
  if (verify) {
    if (auto cached = authenticator->verify_plain_cached(*passdb, query, step.password))
      return passdb_done(id, verify, std::move(cached));
  }
  std::weak_ptr<AuthSession> weak = shared_from_this();
  bool queued = context_.pool->submit_for<AuthOutcome>(
      [verify, passdb, authenticator, query, password = std::move(step.password)](WorkerContext& worker) {
        return verify ? authenticator->verify_plain(*passdb, query, password, worker)
                      : authenticator->lookup_credentials(*passdb, query, worker);
      },
      [weak, id, verify](std::optional<AuthOutcome> done) {
        auto self = weak.lock();
        if (!self || !self->requests_.count(id)) return;
        self->passdb_done(id, verify, std::move(done));
      });
  if (!queued) {
    request.busy = false;
    temporary_failure(id, "server busy");
  }
}

void AuthSession::passdb_done(uint32_t id, bool verify, std::optional<AuthOutcome> done) {
  Request& request = requests_.at(id);
  request.busy = false;
  if (!done) return temporary_failure(id, "request not completed (internal error or stopping)");
  AuthOutcome& outcome = *done;
  switch (outcome.kind) {
    case AuthOutcome::Kind::ok:
      request.canonical_user = outcome.user;
      if (verify) return succeed(id);
      return advance(id, request.mechanism->credentials(outcome.stored));
    case AuthOutcome::Kind::fail:
      return fail(id, outcome.reason);
    case AuthOutcome::Kind::temp:
      return temporary_failure(id, outcome.reason);
  }
}

void AuthSession::succeed(uint32_t id) {
  Request& request = requests_.at(id);
  if (request.canonical_user.empty()) request.canonical_user = request.passdb_request.user;
  context_.penalty->success(request.passdb_request.rip);
  log_result(request, "ok", "");
  connection_->write(format_ok(id, request.canonical_user));
  finish(id);
}

void AuthSession::fail(uint32_t id, const std::string& reason, bool delayed) {
  Request& request = requests_.at(id);
  log_result(request, "fail", reason);
  auto delay = context_.penalty->failure(request.passdb_request.rip, std::chrono::steady_clock::now());
  std::string reply = format_fail(id, request.passdb_request.user, kFailReason);
  if (!delayed || delay.count() == 0) {
    connection_->write(reply);
    return finish(id);
  }
  request.busy = true;
  request.timer = std::make_unique<Timer>(context_.loop);
  std::weak_ptr<AuthSession> weak = shared_from_this();
  request.timer->start(static_cast<uint64_t>(delay.count()), [weak, id, reply] {
    auto self = weak.lock();
    if (!self) return;
    self->connection_->write(reply);
    self->finish(id);
  });
}

void AuthSession::temporary_failure(uint32_t id, const std::string& reason) {
  Request& request = requests_.at(id);
  log_result(request, "tempfail", reason);
  // Postfix turns every FAIL into 535; only a closed connection gives 454.
  finish(id);
  connection_->close();
}

void AuthSession::log_result(const Request& request, const char* result, const std::string& reason) {
  // As Dovecot: nothing per login by default (Postfix logs every SASL login itself);
  // auth_verbose logs failures, log_level = debug everything.
  bool success = result[0] == 'o';
  LogLevel level = !success && request.config->auth_verbose ? LogLevel::info : LogLevel::debug;
  if (!log_enabled(level)) return;
  const std::string& user =
      request.canonical_user.empty() ? request.passdb_request.user : request.canonical_user;
  log_write(level, fmt::format("auth: user=<{}>, method={}, rip={}, result={}{}{}", printable(user), request.mechanism_name,
           request.passdb_request.rip.empty() ? "unknown" : request.passdb_request.rip, result,
           reason.empty() ? "" : ", reason=", reason));
}

void AuthSession::finish(uint32_t id) {
  requests_.erase(id);
  maybe_close_drained();
}

}  // namespace postern::authd
