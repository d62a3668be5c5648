// quota_rule.cpp - parse_quota_rule (contract: lmtpd/userdb.hpp): Dovecot's
// "*:storage=<size>" rules, the only kind a Maildir++ limit can express.
#include "lmtpd/userdb.hpp"

#include "common/log.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>

#include <limits>

namespace postern::lmtpd {

Result<std::optional<uint64_t>> parse_quota_rule(std::string_view rule) {
  rule = trim(rule);
  if (rule.empty()) return std::optional<uint64_t>();
  size_t colon = rule.find(':');
  if (colon == std::string_view::npos) return Error{fmt::format("quota rule \"{}\": expected MAILBOX:storage=SIZE", rule)};
  std::string_view mailbox = rule.substr(0, colon);
  std::string_view limit = rule.substr(colon + 1);
  // Per-folder rules, relative (+/-, %) limits, message counts and ignore: not a
  // whole-maildir byte limit, which is all lmtpd enforces.
  auto ignored = [&]() {
    log_warning("quota rule \"{}\" is not supported by lmtpd (only *:storage=SIZE); ignored", rule);
    return std::optional<uint64_t>();
  };
  if (mailbox != "*" || limit.rfind("storage=", 0) != 0) return ignored();
  std::string_view value = limit.substr(8);
  if (!value.empty() && (value.front() == '+' || value.front() == '-' || value.back() == '%')) return ignored();
  size_t digits = 0;
  uint64_t n = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (; digits < value.size() && value[digits] >= '0' && value[digits] <= '9'; ++digits) {
    if (n > (kMax - 9) / 10) return Error{fmt::format("quota rule \"{}\": size too large", rule)};
    n = n * 10 + static_cast<uint64_t>(value[digits] - '0');
  }
  std::string unit = to_lower_ascii(value.substr(digits));
  if (unit.size() == 2 && unit[1] == 'b' && unit[0] != 'b') unit.pop_back();  // "1GB" as "1G"
  uint64_t mult = unit.empty() || unit == "k" ? 1024 : unit == "b" ? 1 : unit == "m" ? 1ull << 20
                : unit == "g" ? 1ull << 30 : unit == "t" ? 1ull << 40 : 0;
  if (digits == 0 || mult == 0) return Error{fmt::format("quota rule \"{}\": bad size \"{}\"", rule, value)};
  if (n > kMax / mult) return Error{fmt::format("quota rule \"{}\": size too large", rule)};
  if (n == 0) return std::optional<uint64_t>();  // storage=0: no limit, as in Dovecot
  return std::optional<uint64_t>(n * mult);
}

}  // namespace postern::lmtpd
