// lmtp_session.hpp - one LMTP client connection (Postfix's lmtp client, or any other).
//
// Commands are handled strictly in order; a pipelining client's commands wait in the
// read buffer while a command that needs a worker (RCPT: a userdb lookup that needs I/O,
// quota; the final dot: delivery) is in progress, so replies always come back in order. The
// message is received once into a spool and delivered to every accepted recipient on a
// worker; each recipient's reply is written only after its file is fsynced into new/.
// Several transactions may follow each other on one connection (RSET, as Postfix reuses
// connections). On shutdown an idle session says 421 and closes; a busy one finishes.
#pragma once

#include "common/net.hpp"
#include "common/worker_pool.hpp"
#include "lmtpd/lmtp_command.hpp"
#include "lmtpd/lmtp_replies.hpp"
#include "lmtpd/lmtpd_config.hpp"
#include "lmtpd/message_spool.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace postern::lmtpd {

struct LmtpContext {
  uv_loop_t* loop = nullptr;
  std::shared_ptr<const LmtpdConfig> config;
  WorkerPool* pool = nullptr;
};

class LmtpSession : public std::enable_shared_from_this<LmtpSession> {
 public:
  static constexpr size_t kMaxRecipients = 1000;

  LmtpSession(std::shared_ptr<Connection> connection, LmtpContext& context);
  void start(std::function<void()> on_closed);
  void drain();
  void abort() { connection_->close(); }

 private:
  enum class State { command, data, busy };
  struct Recipient {
    std::string address;  // as given
    MailUser user;
    std::string folder;
    int same_as = -1;     // index of an earlier identical recipient
  };
  struct Transaction {
    std::shared_ptr<const LmtpdConfig> config;
    bool has_sender = false;
    std::string sender;
    uint64_t declared_size = 0;
    std::vector<Recipient> recipients;
    std::shared_ptr<MessageSpool> spool;
    bool in_headers = true;
    std::string message_id;
  };

  void on_line(std::string_view line);
  void on_command(const LmtpCommand& command);
  void on_mail(const LmtpCommand& command);
  struct RcptCheck;
  void on_rcpt(const LmtpCommand& command);
  void answer_rcpt(const std::string& address, const RecipientAddress& split, RcptCheck* check);
  void on_data();
  void on_data_line(std::string_view line);
  void deliver();
  void send(std::string reply);
  void begin_work();
  void end_work();
  void reset_transaction();

  std::shared_ptr<Connection> connection_;
  LmtpContext& context_;
  State state_ = State::command;
  bool greeted_ = false;  // LHLO seen
  std::string lhlo_name_;
  std::string session_id_;
  Transaction transaction_;
  bool draining_ = false;
};

}  // namespace postern::lmtpd
