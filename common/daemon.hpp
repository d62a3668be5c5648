// daemon.hpp - the process-level pieces every daemon shares: signals and privileges.
//
// SIGTERM/SIGINT: the daemon stops accepting, finishes the requests in flight, exits.
// SIGHUP: the daemon reloads its config, keeping its listeners; an invalid new config
// leaves the old one in place and the log says why. SIGPIPE is ignored.
#pragma once

#include "common/result.hpp"

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

namespace postern {

class SignalHandlers {
 public:
  // Registers the handlers on loop; on_stop runs on SIGTERM and SIGINT, on_reload on SIGHUP.
  SignalHandlers(uv_loop_t* loop, std::function<void()> on_stop, std::function<void()> on_reload);
  ~SignalHandlers();  // close()s
  // Closes the signal handles so the loop can end.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// When running as root and user is not empty: setgroups/initgroups, setgid, setuid to
// user (and group, default the user's primary group). Fails if the switch does not take.
// A no-op when not root or when user is empty.
Status drop_privileges(const std::string& user, const std::string& group);

// Resolves a user or group given by name or number.
Result<unsigned> resolve_uid(const std::string& user);
Result<unsigned> resolve_gid(const std::string& group);

}  // namespace postern
