// mech_cram_md5.cpp - SASL CRAM-MD5 (RFC 2195) as Dovecot 2.3 runs it: challenge
// "<16 random digits.unix time@hostname>", response "user SP hex(HMAC-MD5)", split at the
// rightmost space, checked against the stored 32-byte HMAC-MD5 context.

// The stored CRAM-MD5 credential is not a key but the two MD5 chaining states left after
// hashing (key XOR opad) and (key XOR ipad). Resuming a hash from a saved state is only
// possible with OpenSSL's low-level MD5_CTX (EVP cannot import a midstate), which OpenSSL
// 3 marks deprecated; silence that here, in this one file, rather than project-wide.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "authd/mechanisms.hpp"

#include "common/encoding.hpp"

#include <openssl/md5.h>
#include <openssl/rand.h>

#include <ctime>

namespace postern::authd {

namespace {

constexpr size_t kContextLen = 32;
constexpr size_t kHexDigestLen = 2 * MD5_DIGEST_LENGTH;

// An MD5 state that has already absorbed exactly one 64-byte block (the padded key).
MD5_CTX resume_md5(std::string_view le_words) {
  MD5_CTX ctx;
  MD5_Init(&ctx);
  MD5_LONG* words[4] = {&ctx.A, &ctx.B, &ctx.C, &ctx.D};
  for (size_t w = 0; w < 4; ++w) {
    MD5_LONG v = 0;
    for (size_t b = 0; b < 4; ++b)  // Dovecot stores each word little-endian
      v |= static_cast<MD5_LONG>(static_cast<unsigned char>(le_words[4 * w + b])) << (8 * b);
    *words[w] = v;
  }
  ctx.Nl = 512;  // bits hashed so far: one block
  ctx.Nh = 0;
  ctx.num = 0;
  return ctx;
}

// HMAC-MD5(key, message) where the key is given as Dovecot's CRAM-MD5 context.
std::string hmac_md5_from_context(std::string_view context, std::string_view message) {
  unsigned char inner[MD5_DIGEST_LENGTH];
  unsigned char outer[MD5_DIGEST_LENGTH];
  MD5_CTX ipad = resume_md5(context.substr(16, 16));
  MD5_Update(&ipad, message.data(), message.size());
  MD5_Final(inner, &ipad);
  MD5_CTX opad = resume_md5(context.substr(0, 16));
  MD5_Update(&opad, inner, sizeof inner);
  MD5_Final(outer, &opad);
  return std::string(reinterpret_cast<const char*>(outer), sizeof outer);
}

bool random_digits(size_t count, std::string* out) {
  while (out->size() < count) {
    unsigned char buf[32];
    if (RAND_bytes(buf, sizeof buf) != 1) return false;
    for (unsigned char b : buf)
      if (b < 250 && out->size() < count) *out += static_cast<char>('0' + b % 10);  // 250 keeps it unbiased
  }
  return true;
}

class CramMd5Mechanism final : public SaslMechanism {
 public:
  CramMd5Mechanism(std::string_view hostname, std::string challenge)
      : hostname_(hostname), challenge_(std::move(challenge)) {}

  MechStep start(const std::optional<std::string>&) override {
    // The server speaks first; an initial response has nothing to answer and is ignored.
    if (challenge_.empty()) {
      std::string digits;
      if (!random_digits(16, &digits)) return finish(MechStep::fail("CRAM-MD5: no randomness for the challenge"));
      std::string now = std::to_string(static_cast<long long>(std::time(nullptr)));
      challenge_ = "<" + digits + "." + now + "@" + hostname_ + ">";
    }
    state_ = State::want_response;
    return MechStep::send(challenge_);
  }

  MechStep step(std::string_view response) override {
    if (state_ != State::want_response) return finish(MechStep::fail("CRAM-MD5: unexpected data"));
    if (response.find('\0') != std::string_view::npos) return finish(MechStep::fail("CRAM-MD5: NULs in response"));
    // Usernames may contain spaces; the digest never does.
    size_t space = response.rfind(' ');
    if (space == std::string_view::npos || space == 0)
      return finish(MechStep::fail("CRAM-MD5: missing username or digest"));
    user_ = std::string(response.substr(0, space));
    digest_hex_ = std::string(response.substr(space + 1));
    if (digest_hex_.size() != kHexDigestLen) {
      MechStep f = MechStep::fail("CRAM-MD5: digest is not 32 hex digits");
      f.user = user_;
      return finish(std::move(f));
    }
    state_ = State::want_credentials;
    MechStep s;
    s.kind = MechStep::Kind::lookup_credentials;
    s.user = user_;
    return s;
  }

  MechStep credentials(const StoredPassword& stored) override {
    if (state_ != State::want_credentials) return finish(MechStep::fail("CRAM-MD5: credentials out of order"));
    Result<std::string> context = cram_md5_context(stored);
    MechStep out;
    if (!context.ok()) {
      out = MechStep::fail("CRAM-MD5: " + context.error().message);
    } else if (context->size() != kContextLen) {
      out = MechStep::fail("CRAM-MD5: invalid credentials length");
    } else {
      // Lower-case hex, compared as text: Dovecot refuses an upper-case digest the same way.
      std::string expected = hex_encode(hmac_md5_from_context(*context, challenge_));
      if (constant_time_equals(expected, digest_hex_))
        out.kind = MechStep::Kind::success;
      else
        out = MechStep::fail("CRAM-MD5: password mismatch");
    }
    out.user = user_;
    return finish(std::move(out));
  }

 private:
  enum class State { want_start, want_response, want_credentials, done };

  MechStep finish(MechStep s) {
    state_ = State::done;
    return s;
  }

  std::string hostname_;
  std::string challenge_;
  State state_ = State::want_start;
  std::string user_;
  std::string digest_hex_;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_cram_md5_mechanism(std::string_view hostname, std::string challenge) {
  return std::make_unique<CramMd5Mechanism>(hostname, std::move(challenge));
}

}  // namespace postern::authd
