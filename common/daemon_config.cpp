// daemon_config.cpp - reads the settings every daemon shares; see daemon_config.hpp.
#include "common/daemon_config.hpp"

#include "common/strings.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <climits>

namespace postern {

bool is_daemon_setting(std::string_view key) {
  for (std::string_view known : {"socket_mode", "socket_user", "socket_group", "user", "group", "log_level", "syslog"})
    if (key == known) return true;
  return false;
}

Status read_daemon_settings(const ConfigFile& file, unsigned default_socket_mode, DaemonSettings* out) {
  auto mode = file.get_mode("socket_mode", default_socket_mode);
  auto syslog = file.get_bool("syslog", false);
  if (auto bad = first_error(mode, syslog)) return *bad;
  out->path = file.origin();
  out->socket_options = UnixSocketOptions{*mode, file.get("socket_user"), file.get("socket_group")};
  out->user = file.get("user");
  out->group = file.get("group");
  out->syslog = *syslog;
  if (!parse_log_level(file.get("log_level", "info"), &out->log_level))
    return file.error("log_level", "must be debug, info, warning or error");
  return Status::Ok();
}

Result<std::vector<ListenAddress>> read_listeners(const ConfigFile& file, std::string_view key) {
  std::vector<ListenAddress> listen;
  for (const std::string& item : split_list(file.get(key))) {
    auto address = ListenAddress::parse(item);
    if (!address) return file.error(key, address.error().message);
    listen.push_back(*address);
  }
  return listen;
}

std::string socket_signature(const UnixSocketOptions& options) {
  return fmt::format("mode {:o} {} {}", options.mode, options.owner, options.group);
}

std::vector<std::string> listener_signature(const std::vector<ListenAddress>& listen,
                                            const UnixSocketOptions& options) {
  std::vector<std::string> out;
  for (const ListenAddress& a : listen) out.push_back(a.str());
  out.push_back(socket_signature(options));
  return out;
}

std::string default_hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace postern
