// log.hpp - leveled logging to stderr and, when asked, to syslog.
//
// Thread-safe: workers log too. One line per call. Callers never pass secrets
// (passwords, SASL responses); types that hold secrets offer a describe() without them.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace postern {

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3 };

// Parses "debug", "info", "warning"/"warn", "error".
bool parse_log_level(std::string_view text, LogLevel* out);

// ident prefixes every line ("lookupd"). Call once at startup; may be called again on reload.
void log_init(std::string ident, LogLevel level, bool to_syslog);
void log_set_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_write(LogLevel level, std::string_view message);

template <class... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::debug)) log_write(LogLevel::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::info)) log_write(LogLevel::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void log_warning(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::warning)) log_write(LogLevel::warning, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void log_error(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::error)) log_write(LogLevel::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace postern
