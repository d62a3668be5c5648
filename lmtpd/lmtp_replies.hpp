// lmtp_replies.hpp - what lmtpd says and prepends, in Dovecot's words. No I/O.
#pragma once

#include "lmtpd/maildir_writer.hpp"

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace postern::lmtpd {

// "Alice+Tag@Example.COM" with delimiters "+" -> {"alice@example.com", "tag"}. The
// local part is cut at the first delimiter character; the detail keeps its case.
struct RecipientAddress {
  std::string user;
  std::string detail;
};
RecipientAddress split_recipient(std::string_view address, std::string_view delimiters);

struct TraceInfo {
  std::string sender;                   // envelope sender, "" for <>
  std::string lhlo_name;                // "" -> "unknown"
  std::string hostname;
  std::string session_id;
  std::vector<std::string> recipients;  // as given at RCPT
  std::time_t now = 0;
};
// Return-Path, Delivered-To (one recipient only) and Received, LF line endings, as
// Dovecot's LMTP prepends them.
std::string trace_headers(const TraceInfo& trace);

// The reply after the final dot for one recipient, e.g.
// "250 2.0.0 <alice@example.com> <id> Saved".
std::string delivery_reply(const DeliveryOutcome& outcome, std::string_view recipient, std::string_view session_id,
                           bool quota_full_tempfail);

// 22 characters of random base64 (16 bytes), like Dovecot's session GUIDs.
std::string new_session_id();

}  // namespace postern::lmtpd
