// lmtp_replies.cpp - see lmtp_replies.hpp.
#include "lmtpd/lmtp_replies.hpp"

#include "common/encoding.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>

namespace postern::lmtpd {

RecipientAddress split_recipient(std::string_view address, std::string_view delimiters) {
  size_t at = address.rfind('@');
  std::string_view local = at == std::string_view::npos ? address : address.substr(0, at);
  std::string_view domain = at == std::string_view::npos ? std::string_view() : address.substr(at);
  RecipientAddress out;
  size_t cut = delimiters.empty() ? std::string_view::npos : local.find_first_of(delimiters);
  // A local part that starts with the delimiter has no user part to strip to.
  if (cut != std::string_view::npos && cut > 0) {
    out.detail = std::string(local.substr(cut + 1));
    local = local.substr(0, cut);
  }
  out.user = to_lower_ascii(std::string(local) + std::string(domain));
  return out;
}

std::string trace_headers(const TraceInfo& trace) {
  std::string out = fmt::format("Return-Path: <{}>\n", trace.sender);
  bool single = trace.recipients.size() == 1;
  if (single) out += fmt::format("Delivered-To: {}\n", trace.recipients.front());
  char date[64];
  std::tm tm{};
  localtime_r(&trace.now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
  out += fmt::format("Received: from {}\n\tby {} with LMTP\n\tid {}\n\t(envelope-from <{}>)",
                     trace.lhlo_name.empty() ? "unknown" : trace.lhlo_name, trace.hostname, trace.session_id,
                     trace.sender);
  if (single) out += fmt::format("\n\tfor <{}>", trace.recipients.front());
  out += fmt::format("; {}\n", date);
  return out;
}

std::string delivery_reply(const DeliveryOutcome& outcome, std::string_view recipient, std::string_view session_id,
                           bool quota_full_tempfail) {
  switch (outcome.kind) {
    case DeliveryOutcome::Kind::saved:
      return fmt::format("250 2.0.0 <{}> {} Saved\r\n", recipient, session_id);
    case DeliveryOutcome::Kind::over_quota:
      return fmt::format("{} <{}> Quota exceeded (mailbox for user is full)\r\n",
                         quota_full_tempfail ? "452 4.2.2" : "552 5.2.2", recipient);
    case DeliveryOutcome::Kind::disk_full:
      return fmt::format("452 4.3.1 <{}> Insufficient system storage\r\n", recipient);
    case DeliveryOutcome::Kind::failed:
      break;
  }
  return fmt::format("451 4.3.0 <{}> Temporary internal error\r\n", recipient);
}

std::string new_session_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return "AAAAAAAAAAAAAAAAAAAAAA";
  std::string id = base64_encode(std::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
  while (!id.empty() && id.back() == '=') id.pop_back();
  // Used in reply texts and headers: keep it to letters, digits, '+' and '/'.
  return id;
}

}  // namespace postern::lmtpd
