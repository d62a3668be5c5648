// password_scheme_test.cpp - Dovecot password schemes against the vectors of protocols.md
// §5.2 and the seed hashes, round trips for every scheme, credentials for CRAM-MD5/SCRAM,
// malformed input, and the base64/hex helpers they rest on.
#include "authd/password_scheme.hpp"
#include "common/encoding.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <string>

using namespace postern;
using namespace postern::authd;

namespace {

struct Vector {
  const char* stored;
  const char* password;
  const char* default_scheme;
  const char* user;
};

bool supported(std::string_view scheme) {
  auto all = supported_schemes();
  return std::find(all.begin(), all.end(), scheme) != all.end();
}

// parse + verify; a parse or verify Error fails the test.
bool check(std::string_view stored, std::string_view password, std::string_view default_scheme = "",
           std::string_view user = {}) {
  auto parsed = parse_stored_password(stored, default_scheme);
  INFO(std::string(stored) << (parsed ? "" : " -> " + parsed.error().message));
  REQUIRE(parsed.ok());
  auto ok = verify_password(password, *parsed, user);
  INFO((ok ? "" : ok.error().message));
  REQUIRE(ok.ok());
  return *ok;
}

std::string unhex(std::string_view h) { return hex_decode(h).value(); }

}  // namespace

TEST_CASE("protocols.md 5.2 and seed vectors verify, and wrong passwords do not", "[password_scheme]") {
  const Vector vectors[] = {
      {"{PLAIN}test", "test", "", ""},
      {"{CRYPT}//EsnG9FLTKjo", "test", "", ""},
      {"{MD5}$1$wmyrgRuV$kImF6.9MAFQNHe23kq5vI/", "test", "", ""},
      {"{MD5-CRYPT}$1$GgvxyNz8$OjZhLh4P.gF1lxYEbLZ3e/", "test", "", ""},
      {"{SHA256-CRYPT}$5$0123456789abcdef$Wm4jf6bGxEoelzY0H/fTvcw8Qcshq0hyLaRfZWtN8q.", "test", "", ""},
      {"$5$rounds=1000$0123456789abcdef$K/DksR0DT01hGc8g/kt9McEgrbFMKi9qrb1jehe7hn4", "08/15!test~4711",
       "SHA256-CRYPT", ""},
      {"{SHA512-CRYPT}$6$0123456789abcdef$vNATSYYTivQfXwPTUT4q.sRFLs/sgxDXaPipzRlX3WOO4r1NcR.Og5OoU2Cd2agm1WA3pCJ30JU4EKMxpZaDy/",
       "test", "", ""},
      {"$6$rounds=1000$0123456789abcdef$ZIAd5WqfyLkpvsVCVUU1GrvqaZTqvhJoouxdSqJO71l9Ld3tVrfOatEjarhghvEYADkq//"
       "LpDnTeO90tcbtHR1",
       "08/15!test~4711", "SHA512-CRYPT", ""},
      {"{BLF-CRYPT}$2y$05$11ipvo5dR6CwkzwmhwM26OXgzXwhV2PyPuLV.Qi31ILcRcThQpEiW", "test", "", ""},
      {"{SHA1}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "test", "", ""},
      {"{SHA256}n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", "test", "", ""},
      {"{SHA512}7iaw3Ur350mqGo7jwQrpkj9hiYB3Lkc/iBml1JQODbJ6wYX4oOHV+E+IvIh/1nsUNzLDBMxfqa2Ob1f1ACio/w==", "test", "", ""},
      {"{SSHA}H/zrDv8FXUu1JmwvVYijfrYEF34jVZcO", "test", "", ""},
      {"{SSHA}V5vA8/OePf6KFdlcDlVNSaq+G90BAgME", "test", "", ""},
      {"{SSHA256}jwj+CQrCPydeErByDFo1Bc5JY/MsJv6Wm56ryf4vkVMBAgME", "test", "", ""},
      {"{SSHA512}0RQ6hGxoVcmcQWIUNjoVyzj9XW6gOyKKr9L9xq+BBuByeVJVtELXu14ZJnSKxZhfSqEbFyoDh4SNruH5LqT/EAECAwQ=", "test", "",
       ""},
      {"{SSHA256}SoR/78T5q0UPFng8UCXWQxOUKhzrJZlwfNtllAupAeUT+kQv", "pass", "", ""},
      {"{SSHA.b64}986H5cS9JcDYQeJd6wKaITMho4M9CrXM", "pass", "", ""},
      {"{SSHA.HEX}3f5ca6203f8cdaa44d9160575c1ee1d77abcf59ca5f852d1", "pass", "", ""},
      {"{SMD5}JTu1KRwptKZJg/RLd+6Vn5GUd0M=", "test", "", ""},
      {"{PLAIN-MD5}098f6bcd4621d373cade4e832627b4f6", "test", "", ""},
      {"{LDAP-MD5}CY9rzUYh03PK3k6DJie09g==", "test", "", ""},
      {"{CRAM-MD5}e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6", "test", "", ""},
      {"{DIGEST-MD5}77c1a8c437c9b08ba2f460fe5d58db5d", "test", "", "testuser1"},
      {"{PBKDF2}$1$bUnT4Pl7yFtYX0KU$5000$50a83cafdc517b9f46519415e53c6a858908680a", "test", "", ""},
      {"{SCRAM-SHA-1}4096,GetyLXdBuHzf1FWf8SLz2Q==,NA/OqmF4hhrsrB9KR7po+dliTGM=,QBiURvQaE6H6qYTmeghDHLANBFQ=", "test",
       "", ""},
      {"{SCRAM-SHA-256}4096,LfNGSFqiFykEZ1xDAYlnKQ==,HACNf9CII7cMz3XjRy/Oh3Ae2LHApoDyNw74d3YtFws=,"
       "AQH0j7Hf8J12g8eNBadvzlNB2am3PxgNwFCFd3RxEaw=",
       "test", "", ""},
      {"{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=", "pencil", "", ""},
      {"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
       "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
       "pencil", "", ""},
      {"{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$f2iuP4aUeNMrgu34fhOkkg$1XSZZMWlIs0zmE+snlUIcLADO3GXbA2O/hsQmmc317k",
       "test", "", ""},
      {"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$vBb99oJ12p3WAdYlaMHz1A$jtFOtbo/sYV9OSlTxDo/nVNq3uArHd5GJSEx0ty85Cc",
       "test", "", ""},
      {"{ARGON2}$argon2id$v=19$m=65536,t=3,p=1$vBb99oJ12p3WAdYlaMHz1A$jtFOtbo/sYV9OSlTxDo/nVNq3uArHd5GJSEx0ty85Cc",
       "test", "", ""},
      // seed-requirements.md 2.5, stored bare under default_pass_scheme = SHA512-CRYPT
      {"$6$dEqUVsCirHzV8kHw$hgC0x0ufah.N0PzUVvhLEMnoww5lo.JBmeLSsRNDkgWVylC55Gk6zA1KWsn.SiIAAIDEqHxtugGZWHl1qMex..",
       "onetestandone", "SHA512-CRYPT", ""},
      {"$6$TF7w672arYUk.fGC$enDafylYnih4q140B2Bu4QfEvLCQAiQBHXpqDpHQPHruil4j4QbLXMvctWHdZ/MpuwvhmBGHTlNufVwc9hG34/",
       "twotestandtwo", "SHA512-CRYPT", ""},
      {"$6$g6adDoglZXU5CJq1$AMojgOJQPtdEEGt1MW86YZUDMlf1Wi6QLz6RH.7BHJpNzjQmYpRmP./IN0eRP8.eLAmEcnoRtzrS1jonKQT9k/",
       "123456", "SHA512-CRYPT", ""},
      // beyond the tables: yescrypt through {CRYPT} (libxcrypt), a long CRAM-MD5 key (doveadm)
      {"{CRYPT}$y$j9T$F5Jx5fExrKuPp53xLKQ..1$xepEX7DgsiGhAJPJyekJSrQ8hX9NhEaSi66Ij4USOM2", "test", "", ""},
      {"{CRAM-MD5}8103bb3a2a4b96a9ca9cce4efecc8d22ebe7163dff7401afb5aa16d4edcf9f1f",
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "", ""},
  };
  for (const Vector& v : vectors) {
    CHECK(check(v.stored, v.password, v.default_scheme, v.user));
    CHECK_FALSE(check(v.stored, std::string(v.password) + "x", v.default_scheme, v.user));
    CHECK_FALSE(check(v.stored, "", v.default_scheme, v.user));
  }
  if (supported("PLAIN-MD4")) {
    CHECK(check("{PLAIN-MD4}db346d691d7acc4dc2625db19f9e3f52", "test"));
    CHECK_FALSE(check("{PLAIN-MD4}db346d691d7acc4dc2625db19f9e3f52", "tesT"));
  }
}

TEST_CASE("salted digests keep the salt after the digest", "[password_scheme]") {
  auto ssha = parse_stored_password("{SSHA}H/zrDv8FXUu1JmwvVYijfrYEF34jVZcO", "");
  REQUIRE(ssha.ok());
  CHECK(ssha->data.size() == 24);
  CHECK(ssha->data.substr(20) == unhex("2355970e"));
  auto smd5 = parse_stored_password("{SMD5}JTu1KRwptKZJg/RLd+6Vn5GUd0M=", "");
  REQUIRE(smd5.ok());
  CHECK(smd5->data.substr(16) == unhex("91947743"));
}

TEST_CASE("stored-format rules: $1$, case, defaults, encodings, padding", "[password_scheme]") {
  SECTION("a bare $1$ value is MD5-CRYPT cut after the hash field, whatever the default") {
    auto p = parse_stored_password("$1$wmyrgRuV$kImF6.9MAFQNHe23kq5vI/$ignored", "SHA512-CRYPT");
    REQUIRE(p.ok());
    CHECK(p->scheme == "MD5-CRYPT");
    CHECK(p->data == "$1$wmyrgRuV$kImF6.9MAFQNHe23kq5vI/");
    CHECK(check("$1$wmyrgRuV$kImF6.9MAFQNHe23kq5vI/$ignored", "test", "PLAIN"));
    auto no_salt_end = parse_stored_password("$1$abc", "PLAIN");  // not $1$salt$...: the default applies
    REQUIRE(no_salt_end.ok());
    CHECK(no_salt_end->scheme == "PLAIN");
  }
  SECTION("scheme and encoding names are case-insensitive; the result is canonical") {
    auto p = parse_stored_password("{sha512-Crypt}$6$0123456789abcdef$x", "");
    REQUIRE(p.ok());
    CHECK(p->scheme == "SHA512-CRYPT");
    CHECK(check("{ssha.B64}986H5cS9JcDYQeJd6wKaITMho4M9CrXM", "pass"));
    CHECK(check("{Ssha.hex}3f5ca6203f8cdaa44d9160575c1ee1d77abcf59ca5f852d1", "pass"));
    CHECK(check("{ssha.BASE64}986H5cS9JcDYQeJd6wKaITMho4M9CrXM", "pass"));
    CHECK(check("$6$dEqUVsCirHzV8kHw$hgC0x0ufah.N0PzUVvhLEMnoww5lo.JBmeLSsRNDkgWVylC55Gk6zA1KWsn.SiIAAIDEqHxtugGZWHl1qMex..",
                "onetestandone", "sha512-crypt"));
  }
  SECTION("bare values take the default scheme; without one they are an error") {
    auto p = parse_stored_password("test", "PLAIN");
    REQUIRE(p.ok());
    CHECK(p->scheme == "PLAIN");
    CHECK(p->data == "test");
    auto unclosed = parse_stored_password("{PLAIN", "PLAIN");  // no '}': the whole value is data
    REQUIRE(unclosed.ok());
    CHECK(unclosed->data == "{PLAIN");
    CHECK_FALSE(parse_stored_password("test", "").ok());
    CHECK(check("098f6bcd4621d373cade4e832627b4f6", "test", "MD5"));  // {MD5} also takes PLAIN-MD5
  }
  SECTION("fixed-length digests without .ENC take hex or base64") {
    CHECK(check("{SHA1}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", "test"));
    CHECK(check("{PLAIN-MD5}CY9rzUYh03PK3k6DJie09g==", "test"));
    CHECK(check("{LDAP-MD5}098f6bcd4621d373cade4e832627b4f6", "test"));
    CHECK(check("{PLAIN.b64}dGVzdA==", "test"));
    CHECK(check("{PLAIN.hex}74657374", "test"));
  }
  SECTION("trailing spaces from CHAR columns are trimmed") {
    auto p = parse_stored_password("{PLAIN}test   ", "");
    REQUIRE(p.ok());
    CHECK(p->data == "test");
    CHECK(check("$6$g6adDoglZXU5CJq1$AMojgOJQPtdEEGt1MW86YZUDMlf1Wi6QLz6RH.7BHJpNzjQmYpRmP./IN0eRP8.eLAmEcnoRtzrS1jonKQT9k/    ",
                "123456", "SHA512-CRYPT"));
    CHECK(check("{SHA1}qUqP5cyxm6YcTAhz05Hph5gvu9M=  ", "test"));
  }
  SECTION("PLAIN-TRUNC accepts a longer password whose prefix matches") {
    CHECK(check("{PLAIN-TRUNC}4-test", "test"));
    CHECK(check("{PLAIN-TRUNC}4-test", "testing"));
    CHECK_FALSE(check("{PLAIN-TRUNC}4-test", "tes"));
    CHECK_FALSE(check("{PLAIN-TRUNC}10-test", "testing"));
  }
  SECTION("CRYPT verifies any libcrypt hash, including SHA512-CRYPT and MD5-CRYPT ones") {
    CHECK(check("{CRYPT}$1$wmyrgRuV$kImF6.9MAFQNHe23kq5vI/", "test"));
    CHECK(check("{CRYPT}$6$0123456789abcdef$vNATSYYTivQfXwPTUT4q.sRFLs/sgxDXaPipzRlX3WOO4r1NcR.Og5OoU2Cd2agm1WA3pCJ30JU4EKMxpZaDy/",
                "test"));
    CHECK(check("{CRYPT}$2y$05$11ipvo5dR6CwkzwmhwM26OXgzXwhV2PyPuLV.Qi31ILcRcThQpEiW", "test"));
    CHECK_FALSE(check("{CRYPT}", "test"));  // an empty hash never matches
  }
}

TEST_CASE("every scheme round-trips generate -> parse -> verify", "[password_scheme]") {
  const auto schemes = supported_schemes();
  REQUIRE(schemes.size() >= 30);
  for (const std::string& scheme : schemes) {
    INFO(scheme);
    const std::string user = scheme == "DIGEST-MD5" ? "alice@example.com" : "";
    auto hash = generate_password("s3cret pä$$", scheme, user);
    INFO((hash ? *hash : hash.error().message));
    REQUIRE(hash.ok());
    CHECK(hash->starts_with("{" + scheme + "}"));
    CHECK(check(*hash, "s3cret pä$$", "", user));
    CHECK_FALSE(check(*hash, "S3cret pä$$", "", user));  // differs early: DES-CRYPT reads 8 chars only
  }
}

TEST_CASE("generation follows Dovecot's defaults and rounds", "[password_scheme]") {
  auto gen = [](std::string_view scheme, int rounds = 0) {
    auto h = generate_password("test", scheme, "", GenerateOptions{rounds});
    INFO(scheme << (h ? "" : ": " + h.error().message));
    REQUIRE(h.ok());
    return *h;
  };
  CHECK(gen("CRYPT").starts_with("{CRYPT}$2y$05$"));
  CHECK(gen("BLF-CRYPT", 4).starts_with("{BLF-CRYPT}$2y$04$"));
  CHECK(gen("BLF-CRYPT", 1).starts_with("{BLF-CRYPT}$2y$04$"));  // raised to the minimum
  const std::string sha512 = gen("SHA512-CRYPT");
  CHECK(sha512.find("rounds=") == std::string::npos);
  CHECK(sha512.size() == std::string("{SHA512-CRYPT}$6$").size() + 16 + 1 + 86);
  CHECK(gen("SHA256-CRYPT", 10).starts_with("{SHA256-CRYPT}$5$rounds=1000$"));
  CHECK(gen("SHA512-CRYPT", 6000).starts_with("{SHA512-CRYPT}$6$rounds=6000$"));
  CHECK(gen("MD5").starts_with("{MD5}$1$"));
  CHECK(gen("DES-CRYPT").size() == std::string("{DES-CRYPT}").size() + 13);
  CHECK(gen("PBKDF2").find("$5000$") == std::string("{PBKDF2}$1$").size() + 16);
  CHECK(gen("PBKDF2", 1200).find("$1200$") != std::string::npos);
  CHECK(gen("SCRAM-SHA-256").starts_with("{SCRAM-SHA-256}4096,"));
  CHECK(gen("SCRAM-SHA-1", 100).starts_with("{SCRAM-SHA-1}4096,"));  // raised to 4096
  CHECK(gen("SCRAM-SHA-1", 5000).starts_with("{SCRAM-SHA-1}5000,"));
  CHECK(gen("ARGON2ID").starts_with("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$"));
  CHECK(gen("ARGON2").starts_with("{ARGON2}$argon2id$v=19$m=65536,t=3,p=1$"));
  CHECK(gen("ARGON2I").starts_with("{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$"));
  CHECK(gen("ARGON2I", 1).starts_with("{ARGON2I}$argon2i$v=19$m=32768,t=3,p=1$"));
  CHECK(gen("PLAIN-TRUNC") == "{PLAIN-TRUNC}4-test");
  CHECK(gen("sha1") == "{SHA1}qUqP5cyxm6YcTAhz05Hph5gvu9M=");
  CHECK(gen("sha1.hex") == "{SHA1.HEX}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3");
  CHECK(gen("PLAIN-MD5") == "{PLAIN-MD5}098f6bcd4621d373cade4e832627b4f6");
  CHECK(gen("CRAM-MD5") == "{CRAM-MD5}e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6");
  auto ssha = parse_stored_password(gen("SSHA512"), "");
  REQUIRE(ssha.ok());
  CHECK(ssha->data.size() == 64 + 4);
  CHECK(gen("SSHA") != gen("SSHA"));  // fresh salt each time
}

TEST_CASE("CRAM-MD5 context from its own scheme or from PLAIN", "[password_scheme]") {
  const std::string expected = unhex("e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6");
  auto stored = parse_stored_password("{CRAM-MD5}e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6", "");
  REQUIRE(stored.ok());
  auto from_cram = cram_md5_context(*stored);
  REQUIRE(from_cram.ok());
  CHECK(*from_cram == expected);
  auto from_plain = cram_md5_context(StoredPassword{"PLAIN", "test"});
  REQUIRE(from_plain.ok());
  CHECK(*from_plain == expected);
  auto from_clear = cram_md5_context(StoredPassword{"CLEARTEXT", "test"});
  REQUIRE(from_clear.ok());
  CHECK(*from_clear == expected);
  auto hmac_md5 = parse_stored_password("{HMAC-MD5}e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6", "");
  REQUIRE(hmac_md5.ok());
  CHECK(cram_md5_context(*hmac_md5).ok());
  auto sha = parse_stored_password("{SHA1}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "");
  REQUIRE(sha.ok());
  auto refused = cram_md5_context(*sha);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("CRAM-MD5") != std::string::npos);
}

TEST_CASE("SCRAM credentials from storage strings and from PLAIN", "[password_scheme]") {
  SECTION("RFC 5802 storage") {
    auto stored = parse_stored_password(
        "{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=", "");
    REQUIRE(stored.ok());
    auto c = scram_credentials(*stored, ScramHash::sha1);
    REQUIRE(c.ok());
    CHECK(c->iterations == 4096);
    CHECK(c->salt == base64_decode("QSXCR+Q6sek8bf92").value());
    CHECK(c->stored_key == base64_decode("6dlGYMOdZcOPutkcNY8U2g7vK9Y=").value());
    CHECK(c->server_key == base64_decode("D+CSWLOshSulAsxiupA+qs2/fTE=").value());
    CHECK_FALSE(scram_credentials(*stored, ScramHash::sha256).ok());  // other hash: refused
  }
  SECTION("RFC 7677 storage") {
    auto stored = parse_stored_password(
        "{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "");
    REQUIRE(stored.ok());
    auto c = scram_credentials(*stored, ScramHash::sha256);
    REQUIRE(c.ok());
    CHECK(c->salt == base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").value());
    CHECK(c->server_key == base64_decode("wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=").value());
  }
  SECTION("derived from PLAIN with a fresh 16-byte salt and 4096 iterations") {
    for (ScramHash hash : {ScramHash::sha1, ScramHash::sha256}) {
      auto c = scram_credentials(StoredPassword{"PLAIN", "pencil"}, hash);
      REQUIRE(c.ok());
      CHECK(c->iterations == 4096);
      CHECK(c->salt.size() == 16);
      // The keys must be the ones RFC 5802 defines: recompute them here.
      const EVP_MD* md = hash == ScramHash::sha1 ? EVP_sha1() : EVP_sha256();
      const int len = EVP_MD_get_size(md);
      unsigned char salted[EVP_MAX_MD_SIZE], server[EVP_MAX_MD_SIZE];
      unsigned int server_len = 0;
      REQUIRE(PKCS5_PBKDF2_HMAC("pencil", 6, reinterpret_cast<const unsigned char*>(c->salt.data()), 16, 4096, md,
                                len, salted) == 1);
      HMAC(md, salted, len, reinterpret_cast<const unsigned char*>("Server Key"), 10, server, &server_len);
      CHECK(c->server_key == std::string(reinterpret_cast<char*>(server), server_len));
      const std::string storage = std::string(hash == ScramHash::sha1 ? "{SCRAM-SHA-1}" : "{SCRAM-SHA-256}") +
                                  "4096," + base64_encode(c->salt) + "," + base64_encode(c->stored_key) + "," +
                                  base64_encode(c->server_key);
      CHECK(check(storage, "pencil"));
      auto again = scram_credentials(StoredPassword{"PLAIN", "pencil"}, hash);
      REQUIRE(again.ok());
      CHECK(again->salt != c->salt);
    }
  }
  SECTION("other schemes are refused") {
    CHECK_FALSE(scram_credentials(StoredPassword{"SHA512-CRYPT", "$6$x$y"}, ScramHash::sha256).ok());
  }
}

TEST_CASE("malformed stored values are errors, not mismatches", "[password_scheme]") {
  for (const char* bad : {"{FOO}x", "{SHA1.XYZ}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "{SHA1}!!!!", "{SHA1}dGVzdA==",
                          "{SHA1.HEX}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "{PLAIN-MD5.hex}zz8f6bcd4621d373cade4e832627b4f6",
                          "{CRAM-MD5}e02d374f", "{SSHA}H/zrDv8FXUu1JmwvVYijfrYEF3", "{LDAP-MD5}CY9rzUYh03PK3k6DJie09g="}) {
    INFO(bad);
    CHECK_FALSE(parse_stored_password(bad, "PLAIN").ok());
  }
  for (const char* bad : {"{SSHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=",  // 20 bytes: no room for a salt
                          "{PBKDF2}$1$salt$5000", "{PBKDF2}$1$salt$5000$abc", "{PBKDF2}$1$s$x$" "50a83cafdc517b9f46519415e53c6a858908680a",
                          "{PBKDF2}$2$salt$5000$50a83cafdc517b9f46519415e53c6a858908680a",
                          "{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=",
                          "{SCRAM-SHA-1}1000,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=",
                          "{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkc,D+CSWLOshSulAsxiupA+qs2/fTE=",
                          "{SCRAM-SHA-256}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=",
                          "{ARGON2ID}$argon2id$v=19$m=65536", "{ARGON2I}plain-text", "{BLF-CRYPT}$2y$05$short",
                          "{MD5-CRYPT}notmd5", "{MD5}nonsense!", "{PLAIN-TRUNC}test", "{DIGEST-MD5}77c1a8c437c9b08ba2f460fe5d58db5d"}) {
    INFO(bad);
    auto parsed = parse_stored_password(bad, "");
    REQUIRE(parsed.ok());
    CHECK_FALSE(verify_password("test", *parsed).ok());  // DIGEST-MD5 without a user included
  }
  CHECK_FALSE(verify_password("test", StoredPassword{"NOPE", "x"}).ok());
  CHECK_FALSE(generate_password("test", "NOPE").ok());
  CHECK_FALSE(generate_password("test", "SHA1.xyz").ok());
  CHECK_FALSE(generate_password("test", "SHA1", "", GenerateOptions{-1}).ok());
  CHECK_FALSE(generate_password("test", "DIGEST-MD5").ok());  // needs the user
}

TEST_CASE("weak schemes are flagged as Dovecot 2.4 would refuse them", "[password_scheme]") {
  auto weak = [](std::string_view stored) { return is_weak_password(parse_stored_password(stored, "").value()); };
  CHECK(weak("{MD5-CRYPT}$1$GgvxyNz8$OjZhLh4P.gF1lxYEbLZ3e/"));
  CHECK(weak("$1$GgvxyNz8$OjZhLh4P.gF1lxYEbLZ3e/"));
  CHECK(weak("{PLAIN-MD5}098f6bcd4621d373cade4e832627b4f6"));
  CHECK(weak("{CRYPT}//EsnG9FLTKjo"));
  CHECK(weak("{CRYPT}$1$GgvxyNz8$OjZhLh4P.gF1lxYEbLZ3e/"));
  CHECK_FALSE(weak("{CRYPT}$2y$05$11ipvo5dR6CwkzwmhwM26OXgzXwhV2PyPuLV.Qi31ILcRcThQpEiW"));
  CHECK_FALSE(weak("{SHA512-CRYPT}$6$0123456789abcdef$x"));
  CHECK_FALSE(weak("{SSHA256}SoR/78T5q0UPFng8UCXWQxOUKhzrJZlwfNtllAupAeUT+kQv"));
}

TEST_CASE("constant_time_equals", "[password_scheme]") {
  CHECK(constant_time_equals("", ""));
  CHECK(constant_time_equals("abc", "abc"));
  CHECK(constant_time_equals(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(constant_time_equals("abc", "abd"));
  CHECK_FALSE(constant_time_equals("abc", "ab"));
  CHECK_FALSE(constant_time_equals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("base64 and hex codecs are strict", "[encoding]") {
  const std::pair<const char*, const char*> rfc4648[] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : rfc4648) {
    CHECK(base64_encode(plain) == encoded);
    CHECK(base64_decode(encoded) == std::optional<std::string>(plain));
  }
  const std::string binary("\x00\xff\x10\x80", 4);
  CHECK(base64_decode(base64_encode(binary)) == binary);
  for (const char* bad : {"Zg=", "Zg", "Z===", "====", "Zg==Zg==", "Zm9v!A==", " Zm9v", "Zm9v\n", "Zm=v"}) {
    INFO(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
  CHECK(hex_encode(binary) == "00ff1080");
  CHECK(hex_decode("00FF1080") == binary);
  CHECK(hex_decode("") == std::string());
  CHECK_FALSE(hex_decode("abc").has_value());
  CHECK_FALSE(hex_decode("zz").has_value());
}
