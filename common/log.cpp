// log.cpp - see log.hpp. One mutex keeps lines whole when workers log.
#include "common/log.hpp"

#include "common/strings.hpp"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace postern {
namespace {

std::mutex g_mutex;
std::string g_ident = "postern";
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
bool g_syslog = false;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "?";
}

int syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return LOG_DEBUG;
    case LogLevel::info: return LOG_INFO;
    case LogLevel::warning: return LOG_WARNING;
    case LogLevel::error: return LOG_ERR;
  }
  return LOG_INFO;
}

}  // namespace

bool parse_log_level(std::string_view text, LogLevel* out) {
  std::string t = to_lower_ascii(trim(text));
  if (t == "debug") *out = LogLevel::debug;
  else if (t == "info") *out = LogLevel::info;
  else if (t == "warning" || t == "warn") *out = LogLevel::warning;
  else if (t == "error") *out = LogLevel::error;
  else return false;
  return true;
}

void log_init(std::string ident, LogLevel level, bool to_syslog) {
  std::lock_guard lock(g_mutex);
  if (g_syslog) closelog();
  g_ident = std::move(ident);
  g_level = static_cast<int>(level);
  g_syslog = to_syslog;
  // openlog keeps the pointer, and g_ident lives until the next log_init.
  if (g_syslog) openlog(g_ident.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_level(LogLevel level) { g_level = static_cast<int>(level); }

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void log_write(LogLevel level, std::string_view message) {
  std::lock_guard lock(g_mutex);
  // Same shape as Postfix/Dovecot lines, so admins can grep them alike.
  std::string line = fmt::format("{}[{}]: {}: {}\n", g_ident, getpid(), level_name(level), message);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  if (g_syslog) syslog(syslog_priority(level), "%.*s", static_cast<int>(message.size()), message.data());
}

}  // namespace postern
