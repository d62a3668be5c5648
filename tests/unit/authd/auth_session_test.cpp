// auth_session_test.cpp - AuthSession over a socketpair with a fake passdb: the
// handshake, fragmented and pipelined input, LOGIN round trips, limits, delays, timeouts,
// and closing the connection when the passdb fails.
#include "authd/auth_session.hpp"
#include "authd/password_scheme.hpp"
#include "common/encoding.hpp"

#include "tests/unit/authd/fake_passdb.hpp"
#include "tests/unit/common/socketpair_connection.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <regex>

using namespace postern;
using namespace postern::authd;
using Clock = std::chrono::steady_clock;

namespace {

struct Harness {
  uv_loop_t loop{};
  int client = -1;
  std::shared_ptr<auth_test::FakePassdb> passdb = std::make_shared<auth_test::FakePassdb>();
  std::shared_ptr<AuthdConfig> config = std::make_shared<AuthdConfig>();
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<Penalty> penalty;
  AuthContext context;
  std::shared_ptr<AuthSession> session;
  bool closed = false;
  std::string received;

  explicit Harness(std::function<void(AuthdConfig&)> tweak = nullptr) {
    uv_loop_init(&loop);
    passdb->users["alice@example.com"] = "{PLAIN}secret";
    config->passdb = passdb;
    config->mechanisms = {"PLAIN", "LOGIN"};
    config->failure_delay = std::chrono::milliseconds(0);
    config->penalty = false;
    config->username_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@";
    config->hostname = "test.example";
    if (tweak) tweak(*config);
    pool = std::make_unique<WorkerPool>(&loop, 1, 100);
    penalty = std::make_unique<Penalty>(config->failure_delay, config->penalty, config->penalty_max);
    context.loop = &loop;
    context.config = config;
    context.pool = pool.get();
    context.authenticator = std::make_shared<Authenticator>(config->cache);
    context.penalty = penalty.get();
    context.spid = 4242;
    context.cookie = std::string(32, 'a');

    session = std::make_shared<AuthSession>(net_test::socketpair_connection(&loop, kMaxAuthLine, &client), context);
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

  void send(const std::string& bytes) { REQUIRE(write(client, bytes.data(), bytes.size()) == ssize_t(bytes.size())); }

  // Runs the loop and collects what the server wrote until done() or the timeout.
  bool pump_until(const std::function<bool()>& done, int timeout_ms = 3000) {
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
  bool wait_for(const std::string& text, int timeout_ms = 3000) {
    return pump_until([&] { return received.find(text) != std::string::npos; }, timeout_ms);
  }
  // True once the server closed its end (read returns 0).
  bool wait_closed(int timeout_ms = 3000) {
    return pump_until([&] { return closed; }, timeout_ms);
  }
  void handshake() {
    REQUIRE(wait_for("DONE\n"));
    send("VERSION\t1\t0\nCPID\t99\n");
  }
};

std::string plain(const std::string& user, const std::string& password) {
  return base64_encode(std::string(1, '\0') + user + '\0' + password);
}

}  // namespace

TEST_CASE("session: the server handshake comes first, Dovecot 2.3 style", "[session]") {
  Harness h;
  REQUIRE(h.wait_for("DONE\n"));
  CHECK(std::regex_search(h.received, std::regex("^VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
                                                 "SPID\t4242\nCUID\t\\d+\nCOOKIE\t[0-9a-f]{32}\nDONE\n$")));
}

TEST_CASE("session: fragmented input is reassembled", "[session]") {
  Harness h;
  REQUIRE(h.wait_for("DONE\n"));
  std::string all = "VERSION\t1\t0\nCPID\t99\nAUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tresp=" +
                    plain("alice@example.com", "secret") + "\n";
  for (char c : all) {
    h.send(std::string(1, c));
    uv_run(&h.loop, UV_RUN_NOWAIT);
  }
  REQUIRE(h.wait_for("OK\t1\tuser=alice@example.com\n"));
}

TEST_CASE("session: pipelined requests on one connection each get their answer", "[session]") {
  Harness h;
  h.handshake();
  h.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "secret") + "\n" +
         "AUTH\t2\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "wrong") + "\n" +
         "AUTH\t3\tplain\tservice=smtp\tresp=" + plain("nobody@example.com", "x") + "\n");
  REQUIRE(h.pump_until([&] {
    return h.received.find("OK\t1\tuser=alice@example.com\n") != std::string::npos &&
           h.received.find("FAIL\t2\tuser=alice@example.com\treason=") != std::string::npos &&
           h.received.find("FAIL\t3\tuser=nobody@example.com\treason=") != std::string::npos;
  }));
}

TEST_CASE("session: LOGIN round trips through CONT", "[session]") {
  Harness h;
  h.handshake();
  h.send("AUTH\t7\tLOGIN\tservice=smtp\tlip=\trip=\n");
  REQUIRE(h.wait_for("CONT\t7\tVXNlcm5hbWU6\n"));
  h.send("CONT\t7\t" + base64_encode("ALICE@example.com") + "\n");
  REQUIRE(h.wait_for("CONT\t7\tUGFzc3dvcmQ6\n"));
  h.send("CONT\t7\t" + base64_encode("secret") + "\n");
  REQUIRE(h.wait_for("OK\t7\tuser=alice@example.com\n"));  // %Lu lower-cased the lookup
  std::lock_guard lock(h.passdb->mutex);
  CHECK(h.passdb->asked == std::vector<std::string>{"alice@example.com"});
}

TEST_CASE("session: AUTH before the handshake, an over-long line, a duplicate id close the connection",
          "[session]") {
  SECTION("no handshake") {
    Harness h;
    REQUIRE(h.wait_for("DONE\n"));
    h.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "secret") + "\n");
    CHECK(h.wait_closed());
    CHECK(h.received.find("OK\t") == std::string::npos);
  }
  SECTION("over-long line") {
    Harness h;
    h.handshake();
    h.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + std::string(kMaxAuthLine + 10, 'A') + "\n");
    CHECK(h.wait_closed());
  }
  SECTION("duplicate id") {
    Harness h;
    h.handshake();
    h.send("AUTH\t5\tLOGIN\tservice=smtp\nAUTH\t5\tLOGIN\tservice=smtp\n");
    CHECK(h.wait_closed());
  }
}

TEST_CASE("session: unknown commands are ignored, malformed known ones close", "[session]") {
  Harness h;
  h.handshake();
  h.send("FROBNICATE\tx\n");
  h.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "secret") + "\n");
  REQUIRE(h.wait_for("OK\t1\t"));
  h.send("AUTH\tnotanumber\tPLAIN\tservice=smtp\n");
  CHECK(h.wait_closed());
}

TEST_CASE("session: a failing passdb closes the connection instead of answering FAIL", "[session]") {
  Harness h;
  h.passdb->down = true;
  h.handshake();
  h.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "secret") + "\n");
  CHECK(h.wait_closed());
  CHECK(h.received.find("FAIL") == std::string::npos);
  CHECK(h.received.find("OK\t") == std::string::npos);
}

TEST_CASE("session: disallowed username characters fail without a passdb lookup", "[session]") {
  Harness h;
  h.handshake();
  h.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + plain("alice'--@example.com", "secret") + "\n");
  REQUIRE(h.wait_for("FAIL\t1\t"));
  CHECK(h.passdb->lookups == 0);
}

TEST_CASE("session: plaintext mechanisms need 'secured' when disable_plaintext_auth is on", "[session]") {
  Harness h([](AuthdConfig& c) { c.disable_plaintext_auth = true; });
  h.handshake();
  h.send("AUTH\t1\tPLAIN\tservice=smtp\tlip=192.0.2.1\trip=198.51.100.7\tresp=" + plain("alice@example.com", "secret") +
         "\n");
  REQUIRE(h.wait_for("FAIL\t1\t"));
  CHECK(h.passdb->lookups == 0);
  h.send("AUTH\t2\tPLAIN\tservice=smtp\tlip=192.0.2.1\trip=198.51.100.7\tsecured\tresp=" +
         plain("alice@example.com", "secret") + "\n");
  REQUIRE(h.wait_for("OK\t2\tuser=alice@example.com\n"));
}

TEST_CASE("session: FAIL waits the failure delay; CONT after a timeout is answered 'timed out'", "[session]") {
  SECTION("failure delay") {
    Harness h([](AuthdConfig& c) { c.failure_delay = std::chrono::milliseconds(300); });
    h.handshake();
    auto start = Clock::now();
    h.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "wrong") + "\n");
    REQUIRE(h.wait_for("FAIL\t1\t"));
    CHECK(Clock::now() - start >= std::chrono::milliseconds(280));
    // The success path is not delayed.
    start = Clock::now();
    h.send("AUTH\t2\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "secret") + "\n");
    REQUIRE(h.wait_for("OK\t2\t"));
    CHECK(Clock::now() - start < std::chrono::milliseconds(250));
  }
  SECTION("request timeout") {
    Harness h([](AuthdConfig& c) { c.request_timeout = std::chrono::milliseconds(100); });
    h.handshake();
    h.send("AUTH\t3\tPLAIN\tservice=smtp\n");
    REQUIRE(h.wait_for("CONT\t3\t\n"));
    h.pump_until([] { return false; }, 250);
    h.send("CONT\t3\t" + plain("alice@example.com", "secret") + "\n");
    REQUIRE(h.wait_for("FAIL\t3\treason=Authentication request timed out\n"));
  }
}

namespace {

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string sha256(std::string_view data) {
  unsigned char out[32];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

// The value after "CONT\t<id>\t" in the last CONT line for id.
std::string last_challenge(const std::string& received, uint32_t id) {
  std::string tag = "CONT\t" + std::to_string(id) + "\t";
  size_t at = received.rfind(tag);
  REQUIRE(at != std::string::npos);
  size_t end = received.find('\n', at);
  auto decoded = base64_decode(received.substr(at + tag.size(), end - at - tag.size()));
  REQUIRE(decoded);
  return *decoded;
}

}  // namespace

TEST_CASE("session: CRAM-MD5 fetches credentials and checks the digest", "[session]") {
  Harness h([](AuthdConfig& c) { c.mechanisms = {"CRAM-MD5"}; });
  h.handshake();
  h.send("AUTH\t1\tCRAM-MD5\tservice=smtp\n");
  REQUIRE(h.wait_for("CONT\t1\t"));
  std::string challenge = last_challenge(h.received, 1);
  CHECK(std::regex_match(challenge, std::regex("<[0-9]+\\.[0-9]+@test\\.example>")));
  h.send("CONT\t1\t" + base64_encode("alice@example.com " + hex_encode(hmac(EVP_md5(), "secret", challenge))) + "\n");
  REQUIRE(h.wait_for("OK\t1\tuser=alice@example.com\n"));

  h.send("AUTH\t2\tCRAM-MD5\tservice=smtp\n");
  REQUIRE(h.wait_for("CONT\t2\t"));
  challenge = last_challenge(h.received, 2);
  h.send("CONT\t2\t" + base64_encode("alice@example.com " + hex_encode(hmac(EVP_md5(), "wrong", challenge))) + "\n");
  REQUIRE(h.wait_for("FAIL\t2\t"));
}

TEST_CASE("session: SCRAM-SHA-256 runs to the end, server signature sent as CONT", "[session]") {
  Harness h([](AuthdConfig& c) { c.mechanisms = {"SCRAM-SHA-256"}; });
  h.handshake();
  const std::string cnonce = "rOprNGfwEbeRWgbNEkqO";
  const std::string client_first_bare = "n=alice@example.com,r=" + cnonce;
  h.send("AUTH\t1\tSCRAM-SHA-256\tservice=smtp\tresp=" + base64_encode("n,," + client_first_bare) + "\n");
  REQUIRE(h.wait_for("CONT\t1\t"));
  std::string server_first = last_challenge(h.received, 1);
  std::smatch m;
  REQUIRE(std::regex_match(server_first, m, std::regex("r=([^,]+),s=([^,]+),i=([0-9]+)")));
  std::string nonce = m[1], salt_b64 = m[2];
  int iterations = std::stoi(m[3]);
  CHECK(nonce.rfind(cnonce, 0) == 0);
  auto salt = base64_decode(salt_b64);
  REQUIRE(salt);

  std::string salted(32, '\0');
  PKCS5_PBKDF2_HMAC("secret", 6, reinterpret_cast<const unsigned char*>(salt->data()), static_cast<int>(salt->size()),
                    iterations, EVP_sha256(), 32, reinterpret_cast<unsigned char*>(salted.data()));
  std::string client_key = hmac(EVP_sha256(), salted, "Client Key");
  std::string stored_key = sha256(client_key);
  std::string without_proof = "c=biws,r=" + nonce;
  std::string auth_message = client_first_bare + "," + server_first + "," + without_proof;
  std::string signature = hmac(EVP_sha256(), stored_key, auth_message);
  std::string proof(client_key.size(), '\0');
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(client_key[i] ^ signature[i]);
  h.send("CONT\t1\t" + base64_encode(without_proof + ",p=" + base64_encode(proof)) + "\n");

  std::string server_key = hmac(EVP_sha256(), salted, "Server Key");
  std::string expected_final = "v=" + base64_encode(hmac(EVP_sha256(), server_key, auth_message));
  REQUIRE(h.pump_until([&] { return h.received.find("CONT\t1\t" + base64_encode(expected_final) + "\n") != std::string::npos; }));
  CHECK(h.received.find("OK\t1\t") == std::string::npos);  // not before the client's empty answer
  h.send("CONT\t1\t\n");
  REQUIRE(h.wait_for("OK\t1\tuser=alice@example.com\n"));
}

TEST_CASE("session: with auth_cache_size a repeated login is answered without the passdb", "[session]") {
  Harness h([](AuthdConfig& c) { c.cache.entries = 100; });
  h.handshake();
  h.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "secret") + "\n");
  REQUIRE(h.wait_for("OK\t1\tuser=alice@example.com\n"));
  h.passdb->down = true;  // the cache answers; the passdb is not asked
  h.send("AUTH\t2\tPLAIN\tservice=smtp\tresp=" + plain("alice@example.com", "secret") + "\n");
  REQUIRE(h.wait_for("OK\t2\tuser=alice@example.com\n"));
  h.send("AUTH\t3\tPLAIN\tservice=smtp\tresp=" + plain("nobody@example.com", "x") + "\n");
  CHECK(h.wait_closed());  // an uncached user while the passdb is down: 454, not 535
  CHECK(h.passdb->lookups == 2);
}
