// lmtp_session.cpp - the LMTP state machine; see lmtp_session.hpp.
#include "lmtpd/lmtp_session.hpp"

#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <ctime>

namespace postern::lmtpd {
namespace {

std::string error_reply(const CommandError& e) { return fmt::format("{} {} {}\r\n", e.code, e.enhanced, e.text); }

bool is_digits(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; }

// Message-ID of the stored message, for the log only.
void sniff_message_id(std::string_view line, std::string* out) {
  constexpr std::string_view kName = "message-id:";
  if (line.size() > kName.size() && iequals(line.substr(0, kName.size()), kName))
    *out = std::string(trim(line.substr(kName.size())).substr(0, 200));
}

}  // namespace

// What a worker (or the loop, when the userdb needs no I/O) finds out about one RCPT.
struct LmtpSession::RcptCheck {
  UserLookup lookup;
  bool over_quota = false;
  std::string folder;
};

LmtpSession::LmtpSession(std::shared_ptr<Connection> connection, LmtpContext& context)
    : connection_(std::move(connection)), context_(context) {}

void LmtpSession::start(std::function<void()> on_closed) {
  std::weak_ptr<LmtpSession> weak = shared_from_this();
  connection_->on_frame = [weak](std::string_view line) {
    if (auto self = weak.lock()) self->on_line(line);
  };
  connection_->on_frame_error = [weak](FrameStatus) {
    if (auto self = weak.lock()) self->send("500 5.5.2 Line too long\r\n");
  };
  connection_->on_eof = [weak] {
    if (auto self = weak.lock()) self->drain();
  };
  connection_->on_close = std::move(on_closed);
  transaction_.config = context_.config;
  send(fmt::format("220 {} postern lmtpd ready\r\n", context_.config->hostname));
}

void LmtpSession::drain() {
  draining_ = true;
  if (state_ == State::busy) return;  // end_work() closes
  if (!connection_->closing()) send("421 4.3.2 Shutting down\r\n");
  connection_->close_after_write();
}

void LmtpSession::send(std::string reply) { connection_->write(std::move(reply)); }

void LmtpSession::begin_work() {
  state_ = State::busy;
  connection_->pause_reading();
}

void LmtpSession::end_work() {
  state_ = State::command;
  if (draining_) {
    connection_->close_after_write();
    return;
  }
  connection_->resume_reading();
}

void LmtpSession::reset_transaction() {
  transaction_ = Transaction{};
  transaction_.config = context_.config;
}

void LmtpSession::on_line(std::string_view line) {
  if (state_ == State::data) return on_data_line(line);
  auto parsed = parse_lmtp_command(line);
  if (auto* error = std::get_if<CommandError>(&parsed)) return send(error_reply(*error));
  on_command(std::get<LmtpCommand>(parsed));
}

void LmtpSession::on_command(const LmtpCommand& command) {
  using Verb = LmtpCommand::Verb;
  const LmtpdConfig& config = *transaction_.config;
  switch (command.verb) {
    case Verb::lhlo: {
      greeted_ = true;
      lhlo_name_ = command.argument;
      reset_transaction();
      std::string size = config.max_size ? fmt::format("SIZE {}", config.max_size) : "SIZE";
      return send(fmt::format("250-{}\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-{}\r\n"
                              "250 SMTPUTF8\r\n",
                              config.hostname, size));
    }
    case Verb::mail:
      return on_mail(command);
    case Verb::rcpt:
      return on_rcpt(command);
    case Verb::data:
      return on_data();
    case Verb::rset:
      reset_transaction();
      return send("250 2.0.0 OK\r\n");
    case Verb::noop:
      return send("250 2.0.0 OK\r\n");
    case Verb::quit:
      send("221 2.0.0 Bye\r\n");
      return connection_->close_after_write();
    case Verb::vrfy:
      return send("252 2.3.3 Try RCPT instead\r\n");
    case Verb::helo:
    case Verb::ehlo:
    case Verb::bdat:
    case Verb::unknown:
      return send("500 5.5.1 Unknown command\r\n");
  }
}

void LmtpSession::on_mail(const LmtpCommand& command) {
  const LmtpdConfig& config = *transaction_.config;
  if (!greeted_) return send("503 5.5.1 Bad sequence of commands: LHLO first\r\n");
  if (transaction_.has_sender) return send("503 5.5.0 MAIL already given\r\n");
  uint64_t size = 0;
  for (const auto& [key, value] : command.params) {
    if (key == "SIZE") {
      if (!is_digits(value) || value.size() > 18) return send("501 5.5.4 Invalid SIZE parameter\r\n");
      size = std::stoull(value);
    } else if (key == "BODY") {
      std::string body = to_lower_ascii(value);
      if (body != "7bit" && body != "8bitmime") return send("555 5.5.4 Unsupported BODY parameter\r\n");
    } else if (key != "SMTPUTF8") {
      return send(fmt::format("555 5.5.4 Unsupported parameter {}\r\n", key));
    }
  }
  if (config.max_size && size > config.max_size)
    return send("552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  transaction_.has_sender = true;
  transaction_.sender = command.address;
  transaction_.declared_size = size;
  send("250 2.1.0 OK\r\n");
}

void LmtpSession::on_rcpt(const LmtpCommand& command) {
  if (!transaction_.has_sender) return send("503 5.5.1 MAIL needed first\r\n");
  for (const auto& [key, value] : command.params)
    if (key != "ORCPT") return send(fmt::format("555 5.5.4 Unsupported parameter {}\r\n", key));
  if (command.address.empty()) return send("550 5.1.1 <> Unacceptable TO: Empty path not allowed\r\n");
  if (transaction_.recipients.size() >= kMaxRecipients)
    return send(fmt::format("452 4.5.3 <{}> Too many recipients\r\n", command.address));
  // The same address twice is delivered once, and answered twice alike (as Dovecot does).
  std::string folded = to_lower_ascii(command.address);
  for (size_t i = 0; i < transaction_.recipients.size(); ++i) {
    if (to_lower_ascii(transaction_.recipients[i].address) == folded) {
      Recipient again = transaction_.recipients[i];
      again.address = command.address;
      again.same_as = static_cast<int>(i);
      transaction_.recipients.push_back(std::move(again));
      return send("250 2.1.5 OK\r\n");
    }
  }

  auto config = transaction_.config;
  RecipientAddress split = split_recipient(command.address, config->recipient_delimiter);
  // A '/' is legal in a local part, but in %n it would reach into another user's maildir.
  if (split.user.find('/') != std::string::npos)
    return send(fmt::format("550 5.1.1 <{}> User doesn't exist: {}\r\n", command.address, split.user));
  uint64_t size = transaction_.declared_size;
  // The detail folder and the quota are on disk: only a worker may look.
  const bool check_folder = config->save_to_detail_mailbox && !split.detail.empty();
  auto check_quota = [size](const MailUser& user) { return size > 0 && user.quota_bytes; };
  auto needs_disk = [&](const UserLookup& lookup) {
    return lookup.status == UserLookup::Status::found && (check_folder || check_quota(lookup.user));
  };
  if (std::optional<UserLookup> now = config->userdb->lookup_now(split.user); now && !needs_disk(*now)) {
    RcptCheck check;
    check.lookup = std::move(*now);
    return answer_rcpt(command.address, split, &check);
  }
  std::string address = command.address;
  begin_work();
  std::weak_ptr<LmtpSession> weak = shared_from_this();
  bool queued = context_.pool->submit_for<RcptCheck>(
      [config, split, size, check_folder, check_quota](WorkerContext& worker) {
        RcptCheck check;
        check.lookup = config->userdb->lookup(split.user, worker);
        if (check.lookup.status != UserLookup::Status::found) return check;
        const MailUser& user = check.lookup.user;
        if (check_folder && maildir_folder_exists(user.maildir, split.detail)) check.folder = split.detail;
        if (check_quota(user))
          check.over_quota = !maildir_quota_allows(
              MaildirTarget{user.maildir, check.folder, user.uid, user.gid, user.quota_bytes}, size);
        return check;
      },
      [weak, address, split](std::optional<RcptCheck> check) {
        auto self = weak.lock();
        if (!self) return;
        self->answer_rcpt(address, split, check ? &*check : nullptr);
        self->end_work();
      });
  if (!queued) {
    answer_rcpt(address, split, nullptr);
    end_work();
  }
}

// check is null when no worker could run it.
void LmtpSession::answer_rcpt(const std::string& address, const RecipientAddress& split, RcptCheck* check) {
  const LmtpdConfig& cfg = *transaction_.config;
  if (!check || check->lookup.status == UserLookup::Status::temp_error) {
    log_warning("lmtp: {}: user lookup failed: {}", address, check ? check->lookup.error : "internal error");
    send(fmt::format("451 4.3.0 <{}> Temporary internal error\r\n", address));
  } else if (check->lookup.status == UserLookup::Status::not_found) {
    log_info("lmtp: {}: unknown user {}", address, split.user);
    send(fmt::format("550 5.1.1 <{}> User doesn't exist: {}\r\n", address, split.user));
  } else if (check->over_quota) {
    send(fmt::format("{} <{}> Quota exceeded (mailbox for user is full)\r\n",
                     cfg.maildir.quota_full_tempfail ? "452 4.2.2" : "552 5.2.2", address));
  } else {
    transaction_.recipients.push_back(Recipient{address, std::move(check->lookup.user), check->folder, -1});
    send("250 2.1.5 OK\r\n");
  }
}

void LmtpSession::on_data() {
  if (!transaction_.has_sender) return send("503 5.5.0 MAIL needed first\r\n");
  if (transaction_.recipients.empty()) return send("503 5.5.0 No valid recipients\r\n");
  const LmtpdConfig& config = *transaction_.config;
  transaction_.spool = std::make_shared<MessageSpool>(config.temp_dir, config.spool_memory, config.max_size);
  session_id_ = new_session_id();
  state_ = State::data;
  send("354 OK\r\n");
}

void LmtpSession::on_data_line(std::string_view line) {
  Transaction& t = transaction_;
  if (t.in_headers) {
    if (line.empty()) t.in_headers = false;
    else if (t.message_id.empty()) sniff_message_id(line, &t.message_id);
  }
  if (t.spool->add_line(line) == MessageSpool::Status::more) return;
  deliver();
}

void LmtpSession::deliver() {
  Transaction& t = transaction_;
  auto status = t.spool->status();
  if (status != MessageSpool::Status::done) {
    bool too_large = status == MessageSpool::Status::too_large;
    if (!too_large) log_error("lmtp: {}: spooling failed: {}", session_id_, t.spool->error());
    for (const Recipient& r : t.recipients)
      send(too_large ? fmt::format("552 5.2.3 <{}> Message size exceeds administrative limit\r\n", r.address)
                     : fmt::format("451 4.3.0 <{}> Temporary internal error\r\n", r.address));
    reset_transaction();
    state_ = State::command;
    return;
  }
  TraceInfo trace;
  trace.sender = t.sender;
  trace.lhlo_name = lhlo_name_;
  trace.hostname = t.config->hostname;
  trace.session_id = session_id_;
  trace.now = std::time(nullptr);
  std::vector<MaildirTarget> targets;
  std::vector<size_t> target_of(t.recipients.size());
  for (size_t i = 0; i < t.recipients.size(); ++i) {
    const Recipient& r = t.recipients[i];
    if (r.same_as >= 0) {
      target_of[i] = target_of[static_cast<size_t>(r.same_as)];
      continue;
    }
    trace.recipients.push_back(r.address);
    target_of[i] = targets.size();
    targets.push_back(MaildirTarget{r.user.maildir, r.folder, r.user.uid, r.user.gid, r.user.quota_bytes});
  }
  std::string headers = trace_headers(trace);

  begin_work();
  auto config = t.config;
  auto spool = t.spool;
  std::weak_ptr<LmtpSession> weak = shared_from_this();
  bool queued = context_.pool->submit_for<std::vector<DeliveryOutcome>>(
      [config, targets, headers, spool](WorkerContext&) {
        return deliver_to_maildirs(targets, headers, *spool, config->maildir);
      },
      [weak, target_of](std::optional<std::vector<DeliveryOutcome>> outcomes) {
        auto self = weak.lock();
        if (!self) return;
        Transaction& tx = self->transaction_;
        for (size_t i = 0; i < tx.recipients.size(); ++i) {
          DeliveryOutcome outcome;  // failed, unless the worker said otherwise
          if (outcomes && target_of[i] < outcomes->size()) outcome = (*outcomes)[target_of[i]];
          const Recipient& r = tx.recipients[i];
          if (outcome.kind == DeliveryOutcome::Kind::saved)
            log_info("lmtp: {}: <{}>: msgid={}: saved mail to {} ({})", self->session_id_, r.address,
                     tx.message_id.empty() ? "unspecified" : tx.message_id, r.folder.empty() ? "INBOX" : r.folder,
                     outcome.filename);
          else
            log_warning("lmtp: {}: <{}>: delivery failed: {}", self->session_id_, r.address, outcome.error);
          self->send(delivery_reply(outcome, r.address, self->session_id_, tx.config->maildir.quota_full_tempfail));
        }
        self->reset_transaction();
        self->end_work();
      });
  if (!queued) {
    for (const Recipient& r : t.recipients) send(fmt::format("451 4.3.0 <{}> Temporary internal error\r\n", r.address));
    reset_transaction();
    end_work();
  }
}

}  // namespace postern::lmtpd
