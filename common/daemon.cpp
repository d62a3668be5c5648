// daemon.cpp - SignalHandlers, drop_privileges, resolve_uid and resolve_gid (contract in
// common/daemon.hpp).

#include "common/daemon.hpp"

#include "common/log.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

namespace postern {

// ---- signals ---------------------------------------------------------------------------

struct SignalHandlers::Impl {
  std::function<void()> on_stop;
  std::function<void()> on_reload;
  std::vector<uv_signal_t*> handles;
  static void on_signal(uv_signal_t* handle, int signum);
};

void SignalHandlers::Impl::on_signal(uv_signal_t* handle, int signum) {
  auto* impl = static_cast<Impl*>(handle->data);
  if (signum == SIGHUP) {
    log_info("SIGHUP: reloading");
    if (impl->on_reload) impl->on_reload();
  } else {
    log_info("{}: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (impl->on_stop) impl->on_stop();
  }
}

SignalHandlers::SignalHandlers(uv_loop_t* loop, std::function<void()> on_stop, std::function<void()> on_reload)
    : impl_(std::make_unique<Impl>()) {
  impl_->on_stop = std::move(on_stop);
  impl_->on_reload = std::move(on_reload);
  // A peer closing early must show up as EPIPE from write(), not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  for (int signum : {SIGTERM, SIGINT, SIGHUP}) {
    auto* h = new uv_signal_t;
    uv_signal_init(loop, h);
    h->data = impl_.get();
    impl_->handles.push_back(h);
    int rc = uv_signal_start(h, Impl::on_signal, signum);
    if (rc != 0) log_error("cannot handle signal {}: {}", signum, uv_strerror(rc));
  }
}

SignalHandlers::~SignalHandlers() { close(); }

void SignalHandlers::close() {
  if (!impl_) return;
  // The close callback only frees the handle, so Impl may be gone before it runs.
  for (uv_signal_t* h : impl_->handles)
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* p) { delete reinterpret_cast<uv_signal_t*>(p); });
  impl_->handles.clear();
}

// ---- users and groups ------------------------------------------------------------------

namespace {

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Numbers above this are (uid_t)-1 or not representable; neither is a real account.
constexpr unsigned long max_id = 0xfffffffeUL;

struct PasswdEntry {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

// getpw*_r with a buffer that grows on ERANGE. Returns false if not found; *error is set
// on a lookup failure (as opposed to a missing entry).
template <class Lookup>
bool lookup_passwd(Lookup lookup, PasswdEntry* out, std::string* error) {
  std::vector<char> buf(1024);
  for (;;) {
    passwd pw{};
    passwd* found = nullptr;
    int rc = lookup(&pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0) *error = std::strerror(rc);
    if (found == nullptr) return false;
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    out->name = pw.pw_name;
    return true;
  }
}

}  // namespace

Result<unsigned> resolve_uid(const std::string& user) {
  if (user.empty()) return Error{"empty user name"};
  if (all_digits(user)) {
    unsigned long n = std::stoul(user);
    if (n > max_id) return Error{"user id out of range: " + user};
    return static_cast<unsigned>(n);
  }
  PasswdEntry e;
  std::string error;
  auto by_name = [&user](passwd* pw, char* buf, size_t size, passwd** found) {
    return getpwnam_r(user.c_str(), pw, buf, size, found);
  };
  if (!lookup_passwd(by_name, &e, &error))
    return Error{"unknown user '" + user + "'" + (error.empty() ? "" : ": " + error)};
  return static_cast<unsigned>(e.uid);
}

Result<unsigned> resolve_gid(const std::string& group) {
  if (group.empty()) return Error{"empty group name"};
  if (all_digits(group)) {
    unsigned long n = std::stoul(group);
    if (n > max_id) return Error{"group id out of range: " + group};
    return static_cast<unsigned>(n);
  }
  std::vector<char> buf(1024);
  for (;;) {
    struct group gr {};
    struct group* found = nullptr;
    int rc = getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (found == nullptr)
      return Error{"unknown group '" + group + "'" + (rc != 0 ? std::string(": ") + std::strerror(rc) : "")};
    return static_cast<unsigned>(gr.gr_gid);
  }
}

// ---- privileges ------------------------------------------------------------------------

Status drop_privileges(const std::string& user, const std::string& group) {
  if (user.empty() || geteuid() != 0) return Status::Ok();

  PasswdEntry e;
  std::string error;
  bool known;
  if (all_digits(user)) {
    auto uid = resolve_uid(user);
    if (!uid) return uid.error();
    uid_t wanted = *uid;
    known = lookup_passwd([wanted](passwd* pw, char* buf, size_t size,
                                   passwd** found) { return getpwuid_r(wanted, pw, buf, size, found); },
                          &e, &error);
    if (!known) e.uid = wanted;
  } else {
    known = lookup_passwd([&user](passwd* pw, char* buf, size_t size,
                                  passwd** found) { return getpwnam_r(user.c_str(), pw, buf, size, found); },
                          &e, &error);
    if (!known) return Error{"cannot drop privileges: unknown user '" + user + "'" + (error.empty() ? "" : ": " + error)};
  }
  if (e.uid == 0) return Error{"cannot drop privileges to user '" + user + "': it is root"};

  gid_t gid;
  if (!group.empty()) {
    auto g = resolve_gid(group);
    if (!g) return Error{"cannot drop privileges: " + g.error().message};
    gid = *g;
  } else if (known) {
    gid = e.gid;
  } else {
    return Error{"cannot drop privileges: uid " + user + " has no passwd entry, so a group must be given"};
  }

  // Supplementary groups first: they can only be changed while still root.
  if (known) {
    if (initgroups(e.name.c_str(), gid) != 0)
      return Error{"cannot drop privileges: initgroups(" + e.name + "): " + std::strerror(errno)};
  } else if (setgroups(1, &gid) != 0) {
    return Error{"cannot drop privileges: setgroups: " + std::string(std::strerror(errno))};
  }
  if (setgid(gid) != 0)
    return Error{"cannot drop privileges: setgid(" + std::to_string(gid) + "): " + std::strerror(errno)};
  if (setuid(e.uid) != 0)
    return Error{"cannot drop privileges: setuid(" + std::to_string(e.uid) + "): " + std::strerror(errno)};

  // Trust nothing: a switch that did not fully take must not leave a way back to root.
  if (setuid(0) == 0 || geteuid() == 0 || getuid() != e.uid || getgid() != gid || getegid() != gid)
    return Error{"privileges were not dropped completely for user '" + user + "'"};
  log_info("running as uid {} gid {}", e.uid, gid);
  return Status::Ok();
}

}  // namespace postern
