// scheme_digest.cpp - plaintext and plain-digest schemes: PLAIN, CLEAR, CLEARTEXT,
// PLAIN-TRUNC, SHA/SHA1, SHA256, SHA512, SSHA, SSHA256, SSHA512, SMD5, PLAIN-MD5, LDAP-MD5,
// PLAIN-MD4, CRAM-MD5 / HMAC-MD5 and DIGEST-MD5.

// CRAM-MD5 stores MD5's internal state after one block, without finalisation. EVP does
// not expose that state, so this file uses the low-level MD5_Init/MD5_Update/MD5_CTX that
// OpenSSL 3 marks deprecated; the define silences exactly those warnings, here only.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "authd/scheme_table.hpp"

#include <openssl/md5.h>
#include <openssl/provider.h>

#include <algorithm>
#include <vector>

namespace postern::authd::schemes {

namespace {

constexpr size_t kSaltedSaltLength = 4;  // what Dovecot generates for SSHA*/SMD5

// MD4 lives in OpenSSL 3's legacy provider. It is loaded into a private library context
// so the rest of the process keeps the default provider set.
class LegacyMd4 {
 public:
  LegacyMd4() {
    ctx_ = OSSL_LIB_CTX_new();
    if (ctx_ == nullptr) return;
    legacy_ = OSSL_PROVIDER_load(ctx_, "legacy");
    if (legacy_ != nullptr) md_ = EVP_MD_fetch(ctx_, "MD4", nullptr);
  }
  ~LegacyMd4() {
    EVP_MD_free(md_);
    if (legacy_ != nullptr) OSSL_PROVIDER_unload(legacy_);
    OSSL_LIB_CTX_free(ctx_);
  }
  LegacyMd4(const LegacyMd4&) = delete;
  LegacyMd4& operator=(const LegacyMd4&) = delete;
  const EVP_MD* md() const { return md_; }

 private:
  OSSL_LIB_CTX* ctx_ = nullptr;
  OSSL_PROVIDER* legacy_ = nullptr;
  EVP_MD* md_ = nullptr;
};

const EVP_MD* md4() {
  static const LegacyMd4 instance;
  return instance.md();
}

// --- plaintext ---

Result<bool> verify_plain(std::string_view plaintext, std::string_view data, std::string_view) {
  return constant_time_equals(plaintext, data);
}

Result<std::string> generate_plain(std::string_view plaintext, std::string_view, int) {
  return std::string(plaintext);
}

// "<length>-<password>": the stored password was cut to <length> characters, so a longer
// typed password matches when its first <length> characters do.
Result<bool> verify_plain_trunc(std::string_view plaintext, std::string_view data, std::string_view) {
  size_t i = 0, length = 0;
  for (; i < data.size() && data[i] >= '0' && data[i] <= '9'; ++i) {
    if (length > data.size()) return Error{"PLAIN-TRUNC: length prefix too large"};
    length = length * 10 + static_cast<size_t>(data[i] - '0');
  }
  if (i == 0 || i == data.size() || data[i] != '-') return Error{"PLAIN-TRUNC: missing <length>- prefix"};
  std::string_view stored = data.substr(i + 1);
  if (stored.size() == length && plaintext.size() >= length)
    return constant_time_equals(plaintext.substr(0, length), stored);
  return constant_time_equals(plaintext, stored);
}

// doveadm writes the bare plaintext, which its own verifier then rejects; this writes the
// documented "<length>-<password>" form instead, which verifies.
Result<std::string> generate_plain_trunc(std::string_view plaintext, std::string_view, int) {
  return std::to_string(plaintext.size()) + "-" + std::string(plaintext);
}

// --- unsalted digests: generate and compare ---

template <const EVP_MD* (*Md)()>
Result<std::string> generate_digest(std::string_view plaintext, std::string_view, int) {
  return digest(Md(), {plaintext});
}

template <const EVP_MD* (*Md)()>
Result<bool> verify_digest(std::string_view plaintext, std::string_view data, std::string_view) {
  auto computed = digest(Md(), {plaintext});
  if (!computed) return computed.error();
  return constant_time_equals(*computed, data);
}

// --- salted digests: digest || salt, verified as H(password || salt) ---

template <const EVP_MD* (*Md)()>
Result<std::string> generate_salted(std::string_view plaintext, std::string_view, int) {
  auto salt = random_bytes(kSaltedSaltLength);
  if (!salt) return salt.error();
  auto hash = digest(Md(), {plaintext, *salt});
  if (!hash) return hash.error();
  return *hash + *salt;
}

template <const EVP_MD* (*Md)()>
Result<bool> verify_salted(std::string_view plaintext, std::string_view data, std::string_view) {
  const size_t length = static_cast<size_t>(EVP_MD_get_size(Md()));
  if (data.size() <= length) return Error{"salted digest is too short to hold a salt"};
  auto computed = digest(Md(), {plaintext, data.substr(length)});
  if (!computed) return computed.error();
  return constant_time_equals(*computed, data.substr(0, length));
}

// --- CRAM-MD5 / HMAC-MD5 ---

Result<std::string> generate_cram(std::string_view plaintext, std::string_view, int) {
  return cram_md5_context_of(plaintext);
}

Result<bool> verify_cram(std::string_view plaintext, std::string_view data, std::string_view) {
  auto computed = cram_md5_context_of(plaintext);
  if (!computed) return computed.error();
  return constant_time_equals(*computed, data);
}

// --- DIGEST-MD5: MD5("user:realm:password"), user@realm split at the last '@' ---

Result<std::string> generate_digest_md5(std::string_view plaintext, std::string_view user, int) {
  if (user.empty()) return Error{"DIGEST-MD5 needs the user name"};
  std::string_view name = user, realm;
  if (size_t at = user.rfind('@'); at != std::string_view::npos) {
    name = user.substr(0, at);
    realm = user.substr(at + 1);
  }
  return digest(EVP_md5(), {name, ":", realm, ":", plaintext});
}

Result<bool> verify_digest_md5(std::string_view plaintext, std::string_view data, std::string_view user) {
  auto computed = generate_digest_md5(plaintext, user, 0);
  if (!computed) return computed.error();
  return constant_time_equals(*computed, data);
}

}  // namespace

Result<std::string> cram_md5_context_of(std::string_view plaintext) {
  // HMAC-MD5 key block: the password (MD5-hashed first when longer than a block),
  // zero-padded to 64 bytes.
  unsigned char key[MD5_CBLOCK] = {};
  if (plaintext.size() > sizeof(key)) {
    auto hashed = digest(EVP_md5(), {plaintext});
    if (!hashed) return hashed.error();
    std::copy(hashed->begin(), hashed->end(), key);
  } else {
    std::copy(plaintext.begin(), plaintext.end(), key);
  }

  std::string context;
  for (unsigned char pad : {0x5c, 0x36}) {  // opad state first, then ipad state
    unsigned char block[MD5_CBLOCK];
    for (size_t i = 0; i < sizeof(block); ++i) block[i] = static_cast<unsigned char>(key[i] ^ pad);
    MD5_CTX ctx;
    MD5_Init(&ctx);
    MD5_Update(&ctx, block, sizeof(block));
    for (MD5_LONG word : {ctx.A, ctx.B, ctx.C, ctx.D})
      for (int shift = 0; shift < 32; shift += 8) context.push_back(static_cast<char>((word >> shift) & 0xff));
    OPENSSL_cleanse(&ctx, sizeof(ctx));
    OPENSSL_cleanse(block, sizeof(block));
  }
  OPENSSL_cleanse(key, sizeof(key));
  return context;
}

std::span<const Scheme> digest_schemes() {
  static const std::vector<Scheme> table = [] {
    std::vector<Scheme> t = {
        {"PLAIN", Encoding::none, 0, false, verify_plain, generate_plain},
        {"CLEAR", Encoding::none, 0, false, verify_plain, generate_plain},
        {"CLEARTEXT", Encoding::none, 0, false, verify_plain, generate_plain},
        {"PLAIN-TRUNC", Encoding::none, 0, false, verify_plain_trunc, generate_plain_trunc},
        {"SHA", Encoding::base64, 20, false, verify_digest<EVP_sha1>, generate_digest<EVP_sha1>},
        {"SHA1", Encoding::base64, 20, false, verify_digest<EVP_sha1>, generate_digest<EVP_sha1>},
        {"SHA256", Encoding::base64, 32, false, verify_digest<EVP_sha256>, generate_digest<EVP_sha256>},
        {"SHA512", Encoding::base64, 64, false, verify_digest<EVP_sha512>, generate_digest<EVP_sha512>},
        {"SSHA", Encoding::base64, 0, false, verify_salted<EVP_sha1>, generate_salted<EVP_sha1>},
        {"SSHA256", Encoding::base64, 0, false, verify_salted<EVP_sha256>, generate_salted<EVP_sha256>},
        {"SSHA512", Encoding::base64, 0, false, verify_salted<EVP_sha512>, generate_salted<EVP_sha512>},
        {"SMD5", Encoding::base64, 0, true, verify_salted<EVP_md5>, generate_salted<EVP_md5>},
        {"PLAIN-MD5", Encoding::hex, 16, true, verify_digest<EVP_md5>, generate_digest<EVP_md5>},
        {"LDAP-MD5", Encoding::base64, 16, true, verify_digest<EVP_md5>, generate_digest<EVP_md5>},
        {"CRAM-MD5", Encoding::hex, 32, false, verify_cram, generate_cram},
        {"HMAC-MD5", Encoding::hex, 32, true, verify_cram, generate_cram},
        {"DIGEST-MD5", Encoding::hex, 16, false, verify_digest_md5, generate_digest_md5},
    };
    if (md4() != nullptr)
      t.push_back({"PLAIN-MD4", Encoding::hex, 16, true, verify_digest<md4>, generate_digest<md4>});
    return t;
  }();
  return table;
}

}  // namespace postern::authd::schemes
