// lmtp_session_test.cpp - LmtpSession over a socketpair with a fake userdb and the real
// spool and Maildir writer in a temp dir: pipelining, per-recipient replies after the
// dot, connection reuse, errors, limits.
#include "lmtpd/lmtp_session.hpp"

#include "tests/unit/common/socketpair_connection.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

using namespace postern;
using namespace postern::lmtpd;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

class FakeUserdb : public Userdb {
 public:
  std::string root;
  std::atomic<bool> down{false};
  bool answers_now = false;  // like a static or passwd-file userdb
  std::optional<uint64_t> quota;
  std::optional<UserLookup> lookup_now(const std::string& user) override {
    if (!answers_now) return std::nullopt;
    WorkerContext none(-1);
    return lookup(user, none);
  }
  UserLookup lookup(const std::string& user, WorkerContext&) override {
    UserLookup out;
    if (down) {
      out.status = UserLookup::Status::temp_error;
      out.error = "database down";
      return out;
    }
    if (user != "alice@example.com" && user != "bob@example.com" && user != "carol@example.com") return out;
    out.status = UserLookup::Status::found;
    out.user.user = user;
    out.user.uid = geteuid();
    out.user.gid = getegid();
    out.user.maildir = root + "/" + user.substr(0, user.find('@')) + "/Maildir";
    out.user.quota_bytes = quota;
    return out;
  }
  std::string describe() const override { return "fake"; }
};

struct Harness {
  uv_loop_t loop{};
  int client = -1;
  postern::testing::TempDir scratch{"postern-lmtp"};  // destroyed after everything below
  std::string root = scratch.path;
  std::shared_ptr<FakeUserdb> userdb = std::make_shared<FakeUserdb>();
  std::unique_ptr<WorkerPool> pool;
  LmtpContext context;
  std::shared_ptr<LmtpSession> session;
  bool closed = false;
  std::string received;

  explicit Harness(uint64_t max_size = 1 << 20) {
    userdb->root = root;
    auto config = std::make_shared<LmtpdConfig>();
    config->userdb = userdb;
    config->hostname = "mail.test";
    config->maildir.hostname = "mail.test";
    config->max_size = max_size;
    config->spool_memory = 4096;
    config->temp_dir = root;
    uv_loop_init(&loop);
    pool = std::make_unique<WorkerPool>(&loop, 2, 100);
    context.loop = &loop;
    context.config = config;
    context.pool = pool.get();
    session = std::make_shared<LmtpSession>(net_test::socketpair_connection(&loop, 64 * 1024, &client), context);
    session->start([this] { closed = true; });
  }
  ~Harness() {
    if (client >= 0) close(client);
    if (!closed) session->abort();
    pump_until([&] { return closed; }, 2000);
    session.reset();
    pool->stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  void send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = write(client, bytes.data() + done, bytes.size() - done);
      if (n > 0) done += size_t(n);
      else pump_until([] { return false; }, 1);  // the socket buffer is full: let the server read
    }
  }
  bool pump_until(const std::function<bool()>& done, int timeout_ms = 5000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      uv_run(&loop, UV_RUN_NOWAIT);
      char buf[65536];
      ssize_t n;
      while (client >= 0 && (n = read(client, buf, sizeof buf)) > 0) received.append(buf, size_t(n));
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
  }
  bool wait_for(const std::string& text) {
    return pump_until([&] { return received.find(text) != std::string::npos; });
  }
  std::vector<fs::path> delivered(const std::string& user) {
    std::vector<fs::path> out;
    fs::path dir = fs::path(root) / user / "Maildir" / "new";
    if (fs::exists(dir))
      for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
    return out;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("lmtp session: greeting and LHLO capabilities", "[lmtp_session]") {
  Harness h;
  REQUIRE(h.wait_for("220 mail.test postern lmtpd ready\r\n"));
  h.send("LHLO mx.test\r\n");
  REQUIRE(h.wait_for("250 SMTPUTF8\r\n"));
  CHECK(h.received.find("250-mail.test\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n"
                        "250-SIZE 1048576\r\n250 SMTPUTF8\r\n") != std::string::npos);
}

TEST_CASE("lmtp session: a pipelined transaction, one reply per accepted recipient, in order", "[lmtp_session]") {
  Harness h;
  h.send("LHLO mx.test\r\nMAIL FROM:<sender@example.org> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<alice+news@example.com>\r\n"
         "RCPT TO:<ghost@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n");
  REQUIRE(h.wait_for("354 OK\r\n"));
  std::string replies = h.received.substr(h.received.find("250 SMTPUTF8\r\n") + 14);
  CHECK(replies ==
        "250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
        "550 5.1.1 <ghost@example.com> User doesn't exist: ghost@example.com\r\n250 2.1.5 OK\r\n354 OK\r\n");
  h.send("Subject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\n..leading dot\r\n8-bit: \xc3\xa9t\xc3\xa9\r\n.\r\nQUIT\r\n");
  REQUIRE(h.wait_for("221 2.0.0 Bye\r\n"));
  std::smatch m;
  REQUIRE(std::regex_search(h.received, m,
                            std::regex("250 2\\.0\\.0 <alice\\+news@example\\.com> (\\S+) Saved\r\n"
                                       "250 2\\.0\\.0 <bob@example\\.com> \\1 Saved\r\n221 2\\.0\\.0 Bye\r\n$")));
  auto alice = h.delivered("alice");
  auto bob = h.delivered("bob");
  REQUIRE(alice.size() == 1);
  REQUIRE(bob.size() == 1);
  std::string content = slurp(alice[0]);
  // Two recipients: no Delivered-To, and the body is un-dot-stuffed with LF endings.
  CHECK(content.rfind("Return-Path: <sender@example.org>\nReceived: from mx.test\n\tby mail.test with LMTP\n", 0) == 0);
  CHECK(content.find("Delivered-To") == std::string::npos);
  CHECK(content.size() > 40);
  CHECK(content.substr(content.find("Subject: hi")) ==
        "Subject: hi\nMessage-ID: <m1@example.org>\n\n.leading dot\n8-bit: \xc3\xa9t\xc3\xa9\n");
  CHECK(slurp(bob[0]) == content);
  CHECK(alice[0].filename().string().find(",S=" + std::to_string(content.size())) != std::string::npos);
  // The same file, twice linked.
  struct stat a {}, b {};
  REQUIRE(stat(alice[0].c_str(), &a) == 0);
  REQUIRE(stat(bob[0].c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
}

TEST_CASE("lmtp session: one recipient gets Delivered-To; RSET and a second transaction", "[lmtp_session]") {
  Harness h;
  h.send("LHLO mx.test\r\nMAIL FROM:<>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n");
  REQUIRE(h.wait_for("354 OK\r\n"));
  h.send("x\n.\n");  // bare LF line endings
  REQUIRE(h.wait_for("Saved\r\n"));
  h.send("RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n");
  REQUIRE(h.pump_until([&] { return h.received.find("354 OK") != h.received.rfind("354 OK"); }));
  h.send("second\r\n.\r\n");
  REQUIRE(h.pump_until([&] { return h.received.find("Saved") != h.received.rfind("Saved"); }));
  auto files = h.delivered("carol");
  REQUIRE(files.size() == 2);
  for (const auto& f : files) {
    std::string content = slurp(f);
    CHECK(content.find("Delivered-To: carol@example.com\n") != std::string::npos);
    CHECK(content.find("\tfor <carol@example.com>; ") != std::string::npos);
  }
}

TEST_CASE("lmtp session: sequence errors, unknown commands, VRFY", "[lmtp_session]") {
  Harness h;
  h.send("MAIL FROM:<a@b>\r\n");
  REQUIRE(h.wait_for("503 5.5.1 "));
  h.send("LHLO x\r\nDATA\r\nMAIL FROM:<a@b>\r\nDATA\r\nFROB\r\nHELO x\r\nVRFY alice\r\nNOOP\r\nMAIL FROM:<c@d>\r\n");
  REQUIRE(h.wait_for("503 5.5.0 MAIL already given\r\n"));
  CHECK(h.received.find("503 5.5.0 MAIL needed first\r\n") != std::string::npos);
  CHECK(h.received.find("503 5.5.0 No valid recipients\r\n") != std::string::npos);
  CHECK(h.received.find("500 5.5.1 Unknown command\r\n500 5.5.1 Unknown command\r\n") != std::string::npos);
  CHECK(h.received.find("252 2.3.3 Try RCPT instead\r\n250 2.0.0 OK\r\n") != std::string::npos);
}

TEST_CASE("lmtp session: a userdb failure is 451 at RCPT", "[lmtp_session]") {
  Harness h;
  h.userdb->down = true;
  h.send("LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.com>\r\n");
  REQUIRE(h.wait_for("451 4.3.0 <alice@example.com> Temporary internal error\r\n"));
}

TEST_CASE("lmtp session: RCPT is answered on the loop when the userdb needs no I/O", "[lmtp_session]") {
  // With the pool stopped, only an answer given on the loop can be a 250 or a 550.
  Harness h;
  h.pool->stop();
  h.userdb->answers_now = true;
  h.send("LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\n");
  REQUIRE(h.wait_for("550 5.1.1 <nobody@example.com> User doesn't exist: nobody@example.com\r\n"));
  CHECK(h.received.find("250 2.1.5 OK\r\n") != std::string::npos);

  // A quota needs maildirsize read from disk: that goes to a worker (here: none).
  h.userdb->quota = 1 << 20;
  h.send("RSET\r\nMAIL FROM:<a@b> SIZE=100\r\nRCPT TO:<bob@example.com>\r\n");
  REQUIRE(h.wait_for("451 4.3.0 <bob@example.com> Temporary internal error\r\n"));

  // So does a detail folder, which may exist on disk.
  h.userdb->quota.reset();
  h.context.config = [&] {
    auto c = std::make_shared<LmtpdConfig>(*h.context.config);
    c->save_to_detail_mailbox = true;
    return c;
  }();
  h.send("RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice+box@example.com>\r\n");
  REQUIRE(h.wait_for("451 4.3.0 <alice+box@example.com> Temporary internal error\r\n"));

  h.userdb->answers_now = false;
  h.send("RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<carol@example.com>\r\n");
  REQUIRE(h.wait_for("451 4.3.0 <carol@example.com> Temporary internal error\r\n"));
}

TEST_CASE("lmtp session: size limits at MAIL and after the dot", "[lmtp_session]") {
  Harness h(1000);
  h.send("LHLO x\r\nMAIL FROM:<a@b> SIZE=5000\r\n");
  REQUIRE(h.wait_for("552 5.3.4 "));
  h.send("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  REQUIRE(h.wait_for("354 OK\r\n"));
  h.send(std::string(100, 'x') + "\r\n");
  for (int i = 0; i < 20; ++i) h.send(std::string(100, 'y') + "\r\n");
  h.send(".\r\n");
  REQUIRE(h.wait_for("552 5.2.3 <alice@example.com> Message size exceeds administrative limit\r\n"));
  CHECK(h.delivered("alice").empty());
}

TEST_CASE("lmtp session: a message larger than the memory spool is stored intact", "[lmtp_session]") {
  Harness h;
  h.send("LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  REQUIRE(h.wait_for("354 OK\r\n"));
  std::string body;
  for (int i = 0; i < 2000; ++i) body += "line " + std::to_string(i) + " " + std::string(40, 'z') + "\r\n";
  h.send(body + ".\r\n");
  REQUIRE(h.wait_for(" Saved\r\n"));
  auto files = h.delivered("alice");
  REQUIRE(files.size() == 1);
  std::string expected = std::regex_replace(body, std::regex("\r\n"), "\n");
  std::string content = slurp(files[0]);
  CHECK(content.substr(content.size() - expected.size()) == expected);
}

TEST_CASE("lmtp session: a '/' in the local part never reaches a maildir path", "[lmtp_session]") {
  Harness h;
  h.send("LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice/.Junk@example.com>\r\nRCPT TO:<\"bob/cur\"@example.com>\r\n");
  REQUIRE(h.wait_for("550 5.1.1 <alice/.Junk@example.com> User doesn't exist: alice/.junk@example.com\r\n"));
  REQUIRE(h.pump_until([&] { return h.received.find("bob/cur") != std::string::npos; }));
  CHECK(h.received.find("550 5.1.1 <bob/cur@example.com>") != std::string::npos);
}
