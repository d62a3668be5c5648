// daemon_test.cpp - SignalHandlers, resolve_uid/resolve_gid and drop_privileges
// (common/daemon.hpp). Privilege drops happen in forked children so this process stays root.
#include "common/daemon.hpp"

#include <catch2/catch.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

using namespace postern;

TEST_CASE("resolve_uid and resolve_gid take names and numbers", "[daemon]") {
  passwd* nobody = getpwnam("nobody");
  REQUIRE(nobody != nullptr);
  uid_t nobody_uid = nobody->pw_uid;
  auto uid = resolve_uid("nobody");
  REQUIRE(uid.ok());
  CHECK(*uid == nobody_uid);
  auto root = resolve_uid("root");
  REQUIRE(root.ok());
  CHECK(*root == 0);
  auto numeric = resolve_uid("4242");
  REQUIRE(numeric.ok());
  CHECK(*numeric == 4242);

  group* g = getgrnam("root");
  REQUIRE(g != nullptr);
  auto gid = resolve_gid("root");
  REQUIRE(gid.ok());
  CHECK(*gid == g->gr_gid);
  auto gnum = resolve_gid("65534");
  REQUIRE(gnum.ok());
  CHECK(*gnum == 65534);

  for (const char* bad : {"", "no-such-user-postern", "12ab", "4294967295", "99999999999"}) {
    INFO(bad);
    CHECK_FALSE(resolve_uid(bad).ok());
    CHECK_FALSE(resolve_gid(bad).ok());
  }
  CHECK_THAT(resolve_uid("no-such-user-postern").error().message, Catch::Contains("no-such-user-postern"));
  CHECK_THAT(resolve_gid("no-such-group-postern").error().message, Catch::Contains("no-such-group-postern"));
}

namespace {

struct SignalRun {
  uv_loop_t loop;
  int stops = 0;
  int reloads = 0;
  SignalHandlers* handlers = nullptr;
};

void raise_soon(uv_loop_t* loop, int* signum) {
  // Raised from inside the loop, so the handle is surely installed and the loop runs.
  auto* t = new uv_timer_t;
  uv_timer_init(loop, t);
  t->data = signum;
  uv_timer_start(
      t,
      [](uv_timer_t* timer) {
        raise(*static_cast<int*>(timer->data));
        uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      },
      10, 0);
}

}  // namespace

TEST_CASE("SignalHandlers: SIGHUP reloads, SIGTERM and SIGINT stop, SIGPIPE is ignored", "[daemon]") {
  for (int signum : {SIGHUP, SIGTERM, SIGINT}) {
    INFO(signum);
    SignalRun run;
    uv_loop_init(&run.loop);
    {
      SignalHandlers handlers(
          &run.loop,
          [&run] {
            ++run.stops;
            run.handlers->close();
          },
          [&run] {
            ++run.reloads;
            run.handlers->close();
          });
      run.handlers = &handlers;
      raise_soon(&run.loop, &signum);
      // Ends only once the callback has closed the handlers.
      uv_run(&run.loop, UV_RUN_DEFAULT);
      handlers.close();  // idempotent
    }
    uv_run(&run.loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&run.loop) == 0);
    CHECK(run.reloads == (signum == SIGHUP ? 1 : 0));
    CHECK(run.stops == (signum == SIGHUP ? 0 : 1));
  }
  struct sigaction current {};
  REQUIRE(sigaction(SIGPIPE, nullptr, &current) == 0);
  CHECK(current.sa_handler == SIG_IGN);
}

TEST_CASE("SignalHandlers destroyed without close() still let the loop end", "[daemon]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  { SignalHandlers handlers(&loop, [] {}, [] {}); }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

namespace {

// Runs body in a forked child and returns its exit status (0 = all checks passed).
template <class Body>
int in_child(Body body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

}  // namespace

TEST_CASE("drop_privileges is a no-op without a user or without root", "[daemon]") {
  uid_t before = geteuid();
  CHECK(drop_privileges("", "").ok());
  CHECK(geteuid() == before);
  if (before != 0) {
    CHECK(drop_privileges("nobody", "").ok());
    CHECK(geteuid() == before);
    return;
  }
  // As root: drop in a child, then a second drop (now unprivileged) must be a no-op.
  int status = in_child([] {
    if (!drop_privileges("nobody", "").ok()) return 1;
    return drop_privileges("root", "").ok() && getuid() != 0 ? 0 : 2;
  });
  CHECK(status == 0);
}

TEST_CASE("drop_privileges switches user and group for good", "[daemon]") {
  if (geteuid() != 0) {
    WARN("not root: skipping the privilege drop tests");
    return;
  }
  passwd* pw = getpwnam("nobody");
  group* ng = getgrnam("nogroup");
  REQUIRE(pw != nullptr);
  REQUIRE(ng != nullptr);
  uid_t uid = pw->pw_uid;
  gid_t primary = pw->pw_gid;
  gid_t nogroup = ng->gr_gid;

  SECTION("by name, default group is the user's primary group") {
    int status = in_child([uid, primary] {
      if (!drop_privileges("nobody", "").ok()) return 1;
      if (getuid() != uid || geteuid() != uid) return 2;
      if (getgid() != primary || getegid() != primary) return 3;
      if (setuid(0) == 0) return 4;
      gid_t groups[64];
      int n = getgroups(64, groups);
      for (int i = 0; i < n; ++i)
        if (groups[i] == 0) return 5;  // root's supplementary groups must be gone
      return 0;
    });
    CHECK(status == 0);
  }
  SECTION("by number, with an explicit group") {
    int status = in_child([uid, nogroup] {
      if (!drop_privileges(std::to_string(uid), "nogroup").ok()) return 1;
      if (getuid() != uid || getgid() != nogroup) return 2;
      return setgid(0) == 0 ? 3 : 0;
    });
    CHECK(status == 0);
  }
  SECTION("errors are clear and change nothing") {
    auto unknown = drop_privileges("no-such-user-postern", "");
    REQUIRE_FALSE(unknown.ok());
    CHECK_THAT(unknown.error().message, Catch::Contains("no-such-user-postern"));
    auto bad_group = drop_privileges("nobody", "no-such-group-postern");
    REQUIRE_FALSE(bad_group.ok());
    CHECK_THAT(bad_group.error().message, Catch::Contains("no-such-group-postern"));
    auto to_root = drop_privileges("root", "");
    REQUIRE_FALSE(to_root.ok());
    CHECK(geteuid() == 0);
    CHECK(getuid() == 0);
  }
}
