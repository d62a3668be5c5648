// mechanisms_test.cpp - tests for the SASL mechanisms (authd/sasl_mechanism.hpp,
// authd/mechanisms.hpp): RFC 2195, 5802 and 7677 vectors, Dovecot's PLAIN/LOGIN rules.
#include "authd/mechanisms.hpp"
#include "authd/sasl_mechanism.hpp"

#include "common/encoding.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <regex>
#include <string>

using namespace postern;
using namespace postern::authd;
using namespace std::string_literals;
using Kind = MechStep::Kind;

namespace {

StoredPassword stored(std::string_view text) {
  auto parsed = parse_stored_password(text, "PLAIN");
  INFO(std::string(text));
  REQUIRE(parsed.ok());
  return *parsed;
}

StoredPassword plain(std::string password) { return StoredPassword{"PLAIN", std::move(password)}; }

void require_challenge(const MechStep& s, std::string_view data) {
  INFO("reason: " << s.reason);
  REQUIRE(s.kind == Kind::challenge);
  CHECK(s.data == data);
}

void require_failure(const MechStep& s) {
  REQUIRE(s.kind == Kind::failure);
  CHECK_FALSE(s.reason.empty());
}

// A SCRAM client, independent of the server code, for exchanges with random nonces/salts.
struct ScramClient {
  const EVP_MD* md;
  std::string password;
  std::string client_first_bare;

  std::string hmac(std::string_view key, std::string_view data) const {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
  }
  // Returns {client-final, expected server-final}.
  std::pair<std::string, std::string> answer(const std::string& server_first, std::string gs2_b64 = "biws") const {
    std::smatch m;
    REQUIRE(std::regex_match(server_first, m, std::regex("r=([^,]+),s=([^,]+),i=([0-9]+)")));
    std::string salt = *base64_decode(m[2].str());
    std::string salted(static_cast<size_t>(EVP_MD_get_size(md)), '\0');
    REQUIRE(PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                              reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                              std::stoi(m[3].str()), md, static_cast<int>(salted.size()),
                              reinterpret_cast<unsigned char*>(salted.data())) == 1);
    std::string client_key = hmac(salted, "Client Key");
    unsigned char stored_key[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(client_key.data(), client_key.size(), stored_key, &len, md, nullptr);
    std::string without_proof = "c=" + gs2_b64 + ",r=" + m[1].str();
    std::string auth_message = client_first_bare + "," + server_first + "," + without_proof;
    std::string signature = hmac(std::string(reinterpret_cast<char*>(stored_key), len), auth_message);
    std::string proof = client_key;
    for (size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    std::string server_final = "v=" + base64_encode(hmac(hmac(salted, "Server Key"), auth_message));
    return {without_proof + ",p=" + base64_encode(proof), server_final};
  }
};

}  // namespace

TEST_CASE("mechanism table: order, flags, case-insensitive factory", "[mechanisms]") {
  const auto& table = known_mechanisms();
  REQUIRE(table.size() == 5);
  CHECK(table[0].name == "PLAIN");
  CHECK(table[0].flags == std::vector<std::string>{"plaintext"});
  CHECK(table[0].plaintext);
  CHECK(table[1].name == "LOGIN");
  CHECK(table[1].plaintext);
  CHECK(table[2].name == "CRAM-MD5");
  CHECK(table[2].flags == std::vector<std::string>{"dictionary", "active"});
  CHECK_FALSE(table[2].plaintext);
  CHECK(table[3].name == "SCRAM-SHA-1");
  CHECK(table[4].name == "SCRAM-SHA-256");
  CHECK(table[4].flags == std::vector<std::string>{"mutual-auth"});

  for (const auto& info : table) CHECK(make_mechanism(info.name, "h") != nullptr);
  CHECK(make_mechanism("plain", "h") != nullptr);
  CHECK(make_mechanism("Scram-Sha-256", "h") != nullptr);
  CHECK(make_mechanism("DIGEST-MD5", "h") == nullptr);
  CHECK(make_mechanism("SCRAM-SHA-256-PLUS", "h") == nullptr);
  CHECK(make_mechanism("", "h") == nullptr);
}

TEST_CASE("PLAIN with and without initial response", "[mechanisms][plain]") {
  auto m = make_mechanism("PLAIN", "h");
  MechStep s = m->start("\0user@example.com\0secret"s);
  REQUIRE(s.kind == Kind::verify_plain);
  CHECK(s.user == "user@example.com");
  CHECK(s.password == "secret");
  CHECK(s.authzid.empty());

  auto later = make_mechanism("PLAIN", "h");
  require_challenge(later->start(std::nullopt), "");  // CONT\t<id>\t
  MechStep t = later->step("\0user\0pass"s);
  REQUIRE(t.kind == Kind::verify_plain);
  CHECK(t.user == "user");
  CHECK(t.password == "pass");
  require_failure(later->step("\0user\0pass"s));  // nothing after the response
}

TEST_CASE("PLAIN authzid rules", "[mechanisms][plain]") {
  MechStep same = make_mechanism("PLAIN", "h")->start("bob\0bob\0pw"s);
  REQUIRE(same.kind == Kind::verify_plain);
  CHECK(same.authzid.empty());  // authzid == authcid is no authzid
  MechStep other = make_mechanism("PLAIN", "h")->start("alice\0bob\0pw"s);
  REQUIRE(other.kind == Kind::verify_plain);
  CHECK(other.authzid == "alice");
  CHECK(other.user == "bob");
  MechStep empty_pw = make_mechanism("PLAIN", "h")->start("\0bob\0"s);
  REQUIRE(empty_pw.kind == Kind::verify_plain);  // the passdb decides about empty passwords
  CHECK(empty_pw.password.empty());
}

TEST_CASE("PLAIN rejects malformed messages", "[mechanisms][plain]") {
  for (const std::string& bad : {"userpass"s, "\0userpass"s, "\0user\0pa\0ss"s, "\0\0pass"s, "a\0\0"s, ""s, "\0\0\0"s}) {
    INFO("message size " << bad.size());
    require_failure(make_mechanism("PLAIN", "h")->start(bad));
  }
  // Present-but-empty initial response (resp==) is parsed like any other: it fails.
  require_failure(make_mechanism("PLAIN", "h")->start(std::string()));
}

TEST_CASE("LOGIN prompts for username then password", "[mechanisms][login]") {
  auto m = make_mechanism("LOGIN", "h");
  require_challenge(m->start(std::nullopt), "Username:");
  require_challenge(m->step("user@example.com"), "Password:");
  MechStep s = m->step("secret");
  REQUIRE(s.kind == Kind::verify_plain);
  CHECK(s.user == "user@example.com");
  CHECK(s.password == "secret");
  CHECK(s.authzid.empty());
  require_failure(m->step("more"));
}

TEST_CASE("LOGIN initial response is the username", "[mechanisms][login]") {
  auto m = make_mechanism("LOGIN", "h");
  require_challenge(m->start("user@example.com"s), "Password:");
  MechStep s = m->step("pw with spaces");
  REQUIRE(s.kind == Kind::verify_plain);
  CHECK(s.user == "user@example.com");
  CHECK(s.password == "pw with spaces");

  // resp== (present but empty) counts as no initial response, as in Dovecot.
  require_challenge(make_mechanism("LOGIN", "h")->start(std::string()), "Username:");
}

TEST_CASE("LOGIN rejects empty or NUL-bearing input", "[mechanisms][login]") {
  auto empty_user = make_mechanism("LOGIN", "h");
  require_challenge(empty_user->start(std::nullopt), "Username:");
  require_failure(empty_user->step(""));

  require_failure(make_mechanism("LOGIN", "h")->start("us\0er"s));
  auto nul_pw = make_mechanism("LOGIN", "h");
  require_challenge(nul_pw->start("user"s), "Password:");
  MechStep f = nul_pw->step("pa\0ss"s);
  require_failure(f);
  CHECK(f.user == "user");
}

TEST_CASE("CRAM-MD5 RFC 2195 vector", "[mechanisms][cram-md5]") {
  const std::string challenge = "<1896.697170952@postoffice.reston.mci.net>";
  auto m = make_cram_md5_mechanism("ignored", challenge);
  require_challenge(m->start(std::nullopt), challenge);
  MechStep s = m->step("tim b913a602c7eda7a495b4e6e7334d3890");
  REQUIRE(s.kind == Kind::lookup_credentials);
  CHECK(s.user == "tim");
  MechStep done = m->credentials(plain("tanstaaftanstaaf"));
  INFO(done.reason);
  CHECK(done.kind == Kind::success);
  CHECK(done.user == "tim");
}

TEST_CASE("CRAM-MD5 against a stored {CRAM-MD5} context", "[mechanisms][cram-md5]") {
  auto generated = generate_password("tanstaaftanstaaf", "CRAM-MD5");
  REQUIRE(generated.ok());
  const std::string challenge = "<1896.697170952@postoffice.reston.mci.net>";
  auto m = make_cram_md5_mechanism("h", challenge);
  require_challenge(m->start(std::nullopt), challenge);
  REQUIRE(m->step("tim b913a602c7eda7a495b4e6e7334d3890").kind == Kind::lookup_credentials);
  CHECK(m->credentials(stored(*generated)).kind == Kind::success);
}

TEST_CASE("CRAM-MD5 splits at the rightmost space and rejects bad digests", "[mechanisms][cram-md5]") {
  const std::string challenge = "<1896.697170952@postoffice.reston.mci.net>";
  auto spaced = make_cram_md5_mechanism("h", challenge);
  spaced->start(std::nullopt);
  MechStep s = spaced->step("tim the enchanter b913a602c7eda7a495b4e6e7334d3890");
  REQUIRE(s.kind == Kind::lookup_credentials);
  CHECK(s.user == "tim the enchanter");
  CHECK(spaced->credentials(plain("tanstaaftanstaaf")).kind == Kind::success);  // digest covers no username

  auto wrong = make_cram_md5_mechanism("h", challenge);
  wrong->start(std::nullopt);
  REQUIRE(wrong->step("tim b913a602c7eda7a495b4e6e7334d3891").kind == Kind::lookup_credentials);
  MechStep f = wrong->credentials(plain("tanstaaftanstaaf"));
  require_failure(f);
  CHECK(f.user == "tim");

  auto badpw = make_cram_md5_mechanism("h", challenge);
  badpw->start(std::nullopt);
  REQUIRE(badpw->step("tim b913a602c7eda7a495b4e6e7334d3890").kind == Kind::lookup_credentials);
  require_failure(badpw->credentials(plain("tanstaaf")));

  auto upper = make_cram_md5_mechanism("h", challenge);
  upper->start(std::nullopt);
  REQUIRE(upper->step("tim B913A602C7EDA7A495B4E6E7334D3890").kind == Kind::lookup_credentials);
  require_failure(upper->credentials(plain("tanstaaftanstaaf")));  // Dovecot compares lower-case hex

  for (const std::string& bad : {"timb913a602c7eda7a495b4e6e7334d3890"s, " b913a602c7eda7a495b4e6e7334d3890"s,
                                 "tim b913"s, "tim "s, ""s, "t\0m b913a602c7eda7a495b4e6e7334d3890"s}) {
    auto m = make_cram_md5_mechanism("h", challenge);
    m->start(std::nullopt);
    require_failure(m->step(bad));
  }
}

TEST_CASE("CRAM-MD5 challenge has Dovecot's shape and is fresh", "[mechanisms][cram-md5]") {
  auto a = make_mechanism("cram-md5", "mail.example.org");
  auto b = make_mechanism("CRAM-MD5", "mail.example.org");
  MechStep ca = a->start("ignored initial response"s);
  MechStep cb = b->start(std::nullopt);
  REQUIRE(ca.kind == Kind::challenge);
  CHECK(std::regex_match(ca.data, std::regex(R"(<[0-9]{16}\.[0-9]+@mail\.example\.org>)")));
  CHECK(ca.data != cb.data);
  // A credentials() call before any response is a caller bug, answered by failure.
  require_failure(make_mechanism("CRAM-MD5", "h")->credentials(plain("x")));
}

TEST_CASE("SCRAM-SHA-1 RFC 5802 exchange", "[mechanisms][scram]") {
  auto m = make_scram_mechanism(ScramHash::sha1, "3rfcNHYJY1ZVvWVs7j");
  require_challenge(m->start(std::nullopt), "");
  MechStep look = m->step("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
  REQUIRE(look.kind == Kind::lookup_credentials);
  CHECK(look.user == "user");
  CHECK(look.authzid.empty());
  require_challenge(m->credentials(stored("{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,"
                                          "D+CSWLOshSulAsxiupA+qs2/fTE=")),
                    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
  require_challenge(m->step("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="),
                    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
  MechStep ok = m->step("");  // Postfix's empty CONT after the server-final
  CHECK(ok.kind == Kind::success);
  CHECK(ok.user == "user");
}

TEST_CASE("SCRAM-SHA-256 RFC 7677 exchange with initial response", "[mechanisms][scram]") {
  auto m = make_scram_mechanism(ScramHash::sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  MechStep look = m->start("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"s);
  REQUIRE(look.kind == Kind::lookup_credentials);
  CHECK(look.user == "user");
  require_challenge(m->credentials(stored("{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,"
                                          "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
                                          "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=")),
                    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  require_challenge(m->step("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
                    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  CHECK(m->step("").kind == Kind::success);
}

TEST_CASE("SCRAM with random nonce against a PLAIN stored password", "[mechanisms][scram]") {
  for (auto [name, md] : {std::pair{"SCRAM-SHA-1", EVP_sha1()}, std::pair{"SCRAM-SHA-256", EVP_sha256()}}) {
    INFO(name);
    ScramClient client{md, "pencil", "n=us=2Cer=3D,r=clientnonce"};
    auto m = make_mechanism(name, "h");
    MechStep look = m->start("y,a=admin,n=us=2Cer=3D,r=clientnonce"s);
    REQUIRE(look.kind == Kind::lookup_credentials);
    CHECK(look.user == "us,er=");
    CHECK(look.authzid == "admin");
    MechStep first = m->credentials(plain("pencil"));
    REQUIRE(first.kind == Kind::challenge);
    std::smatch nonce;
    REQUIRE(std::regex_search(first.data, nonce, std::regex("^r=clientnonce([^,]{64}),s=")));
    for (char c : nonce[1].str()) CHECK((c >= 0x21 && c <= 0x7e && c != ','));  // RFC 5802 printable
    auto [final_msg, server_final] = client.answer(first.data, base64_encode("y,a=admin,"));
    require_challenge(m->step(final_msg), server_final);
    CHECK(m->step("").kind == Kind::success);
  }
}

TEST_CASE("SCRAM refuses protocol violations", "[mechanisms][scram]") {
  const std::string creds = "{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=";
  const std::string nonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
  auto after_first = [&](const std::string& client_first = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL") {
    auto m = make_scram_mechanism(ScramHash::sha1, "3rfcNHYJY1ZVvWVs7j");
    REQUIRE(m->start(client_first).kind == Kind::lookup_credentials);
    REQUIRE(m->credentials(stored(creds)).kind == Kind::challenge);
    return m;
  };

  SECTION("bad client-first messages") {
    for (const std::string& bad : {"p=tls-unique,,n=user,r=abc"s, "x,,n=user,r=abc"s, "n,n=user,r=abc"s, "n,,r=abc"s,
                                   "n,,n=user"s, "n,,m=ext,n=user,r=abc"s, "n,,n=us=2Xer,r=abc"s, "n,,n=,r=abc"s,
                                   "n,b=x,n=user,r=abc"s, "n,,n=user,r=a\x01"s, "n,,n=user,r="s, ""s}) {
      INFO(bad);
      require_failure(make_scram_mechanism(ScramHash::sha256)->start(bad));
    }
  }
  SECTION("wrong proof") {
    MechStep f = after_first()->step("c=biws,r=" + nonce + ",p=w0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    require_failure(f);
    CHECK(f.user == "user");
  }
  SECTION("wrong password in PLAIN storage") {
    auto m = make_scram_mechanism(ScramHash::sha1, "3rfcNHYJY1ZVvWVs7j");
    REQUIRE(m->start("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"s).kind == Kind::lookup_credentials);
    MechStep first = m->credentials(plain("pencil2"));
    REQUIRE(first.kind == Kind::challenge);
    ScramClient client{EVP_sha1(), "pencil", "n=user,r=fyko+d2lbbFgONRv9qkxdawL"};
    require_failure(m->step(client.answer(first.data).first));
  }
  SECTION("nonce mismatch") {
    require_failure(after_first()->step("c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="));
  }
  SECTION("channel binding data must match the GS2 header") {
    require_failure(after_first()->step("c=eSws,r=" + nonce + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="));
  }
  SECTION("p= must be last, and present") {
    require_failure(after_first()->step("c=biws,r=" + nonce + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=,x=1"));
    require_failure(after_first()->step("c=biws,r=" + nonce));
    require_failure(after_first()->step("c=biws,r=" + nonce + ",p=!!!!"));
    require_failure(after_first()->step("c=biws,r=" + nonce + ",p=AAAA"));
  }
  SECTION("data after the server-final") {
    auto m = after_first();
    REQUIRE(m->step("c=biws,r=" + nonce + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=").kind == Kind::challenge);
    require_failure(m->step("again"));
  }
  SECTION("credentials of another scheme") {
    auto m = make_scram_mechanism(ScramHash::sha256, "x");
    REQUIRE(m->start("n,,n=user,r=abc"s).kind == Kind::lookup_credentials);
    require_failure(m->credentials(stored(creds)));  // SHA-1 data for SCRAM-SHA-256
  }
}
