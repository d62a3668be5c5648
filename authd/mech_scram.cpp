// mech_scram.cpp - SASL SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) without
// channel binding. The server-final "v=" goes out as one more challenge, because Postfix
// never sends final-resp-ok; the client's empty answer to it completes the exchange.
#include "authd/mechanisms.hpp"

#include "common/encoding.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <vector>

namespace postern::authd {

namespace {

constexpr size_t kServerNonceLen = 64;

const EVP_MD* digest_of(ScramHash hash) { return hash == ScramHash::sha1 ? EVP_sha1() : EVP_sha256(); }

std::string hash_bytes(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string hmac_bytes(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out, &len) == nullptr)
    return {};
  return std::string(reinterpret_cast<const char*>(out), len);
}

// RFC 5802 "printable": 0x21..0x7E except ','. Rejection sampling keeps it uniform.
bool random_nonce(size_t count, std::string* out) {
  static constexpr char kFirst = 0x21, kLast = 0x7e;
  constexpr unsigned kChoices = kLast - kFirst;  // 94 characters minus ','
  while (out->size() < count) {
    unsigned char buf[64];
    if (RAND_bytes(buf, sizeof buf) != 1) return false;
    for (unsigned char b : buf) {
      if (b >= 2 * kChoices || out->size() >= count) continue;
      char c = static_cast<char>(kFirst + b % kChoices);
      if (c >= ',') ++c;  // skip ','
      *out += c;
    }
  }
  return true;
}

bool valid_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

// saslname: ',' and '=' arrive as "=2C" and "=3D"; any other '=' is malformed.
std::optional<std::string> unescape_saslname(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '=') {
      out += in[i];
      continue;
    }
    std::string_view code = in.substr(i + 1, 2);
    if (code == "2C")
      out += ',';
    else if (code == "3D")
      out += '=';
    else
      return std::nullopt;
    i += 2;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

bool has_attr(std::string_view field, char name) { return field.size() >= 2 && field[0] == name && field[1] == '='; }

class ScramMechanism final : public SaslMechanism {
 public:
  ScramMechanism(ScramHash hash, std::string server_nonce)
      : hash_(hash), md_(digest_of(hash)), server_nonce_(std::move(server_nonce)) {}

  MechStep start(const std::optional<std::string>& initial_response) override {
    // The client speaks first; without an initial response, invite it with "".
    if (!initial_response) return MechStep::send("");
    return step(*initial_response);
  }

  MechStep step(std::string_view response) override {
    switch (state_) {
      case State::want_client_first: return client_first(response);
      case State::want_client_final: return client_final(response);
      case State::want_final_ack:
        // The client has verified v=; it answers with nothing.
        if (!response.empty()) return fail("unexpected data after the server-final message");
        return finish_with(MechStep::Kind::success);
      case State::want_credentials:
      case State::done: break;
    }
    return fail("unexpected data");
  }

  MechStep credentials(const StoredPassword& stored) override {
    if (state_ != State::want_credentials) return fail("credentials out of order");
    Result<ScramCredentials> creds = scram_credentials(stored, hash_);
    if (!creds.ok()) return fail(creds.error().message);
    const size_t digest_len = static_cast<size_t>(EVP_MD_get_size(md_));
    if (creds->stored_key.size() != digest_len || creds->server_key.size() != digest_len || creds->iterations < 1)
      return fail("stored credentials have the wrong shape");
    stored_key_ = std::move(creds->stored_key);
    server_key_ = std::move(creds->server_key);
    if (server_nonce_.empty() && !random_nonce(kServerNonceLen, &server_nonce_))
      return fail("no randomness for the nonce");
    nonce_ = client_nonce_ + server_nonce_;
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(creds->salt) + ",i=" + std::to_string(creds->iterations);
    state_ = State::want_client_final;
    return MechStep::send(server_first_);
  }

 private:
  enum class State { want_client_first, want_credentials, want_client_final, want_final_ack, done };

  // client-first-message = gs2-header client-first-message-bare
  // gs2-header = gs2-cbind-flag "," [ "a=" saslname ] ","
  MechStep client_first(std::string_view msg) {
    size_t c1 = msg.find(',');
    size_t c2 = c1 == std::string_view::npos ? c1 : msg.find(',', c1 + 1);
    if (c2 == std::string_view::npos) return fail("invalid GS2 header");
    std::string_view cbind = msg.substr(0, c1);
    std::string_view authz = msg.substr(c1 + 1, c2 - c1 - 1);
    // 'y' = client could do channel binding but thinks we can't: fine without -PLUS.
    if (!cbind.empty() && cbind[0] == 'p') return fail("channel binding not supported");
    if (cbind != "n" && cbind != "y") return fail("invalid GS2 header");
    std::string authzid;
    if (!authz.empty()) {
      if (!has_attr(authz, 'a')) return fail("invalid authzid field");
      auto name = unescape_saslname(authz.substr(2));
      if (!name) return fail("invalid authzid");
      authzid = std::move(*name);
    }
    gs2_header_ = std::string(msg.substr(0, c2 + 1));
    client_first_bare_ = std::string(msg.substr(c2 + 1));

    std::vector<std::string_view> attrs = split_commas(client_first_bare_);
    if (!attrs.empty() && has_attr(attrs[0], 'm')) return fail("mandatory extension not supported");
    if (attrs.size() < 2 || !has_attr(attrs[0], 'n') || !has_attr(attrs[1], 'r'))
      return fail("client-first needs n= and r=");
    auto user = unescape_saslname(attrs[0].substr(2));
    if (!user) return fail("invalid username");
    user_ = std::move(*user);
    std::string_view cnonce = attrs[1].substr(2);
    if (!valid_nonce(cnonce)) return fail("invalid client nonce");
    client_nonce_ = std::string(cnonce);
    // Further attributes are optional extensions, which we may ignore.

    state_ = State::want_credentials;
    MechStep s;
    s.kind = MechStep::Kind::lookup_credentials;
    s.user = user_;
    if (authzid != user_) s.authzid = std::move(authzid);  // naming oneself = naming none
    return s;
  }

  // client-final-message = "c=" b64(gs2-header) ",r=" nonce [,extensions] ",p=" proof
  MechStep client_final(std::string_view msg) {
    std::vector<std::string_view> attrs = split_commas(msg);
    if (attrs.size() < 3 || !has_attr(attrs[0], 'c') || !has_attr(attrs[1], 'r') || !has_attr(attrs.back(), 'p'))
      return fail("client-final needs c=, r= and a final p=");
    // Without channel binding the binding data is the GS2 header alone.
    if (attrs[0].substr(2) != base64_encode(gs2_header_))
      return fail("channel binding data does not match the GS2 header");
    if (attrs[1].substr(2) != nonce_) return fail("nonce mismatch");
    auto proof = base64_decode(attrs.back().substr(2));
    if (!proof || proof->size() != stored_key_.size()) return fail("invalid client proof");

    std::string_view without_proof = msg.substr(0, msg.size() - attrs.back().size() - 1);
    std::string auth_message = client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);

    // ClientKey = proof XOR HMAC(StoredKey, AuthMessage); accept iff H(ClientKey) == StoredKey.
    std::string client_key = hmac_bytes(md_, stored_key_, auth_message);
    if (client_key.size() != proof->size()) return fail("HMAC failed");
    for (size_t i = 0; i < client_key.size(); ++i) client_key[i] = static_cast<char>(client_key[i] ^ (*proof)[i]);
    if (!constant_time_equals(hash_bytes(md_, client_key), stored_key_)) return fail("password mismatch");

    std::string server_signature = hmac_bytes(md_, server_key_, auth_message);
    if (server_signature.empty()) return fail("HMAC failed");
    state_ = State::want_final_ack;
    return MechStep::send("v=" + base64_encode(server_signature));
  }

  MechStep fail(std::string why) {
    MechStep s = MechStep::fail((hash_ == ScramHash::sha1 ? "SCRAM-SHA-1: " : "SCRAM-SHA-256: ") + why);
    s.user = user_;
    state_ = State::done;
    return s;
  }

  MechStep finish_with(MechStep::Kind kind) {
    MechStep s;
    s.kind = kind;
    s.user = user_;
    state_ = State::done;
    return s;
  }

  ScramHash hash_;
  const EVP_MD* md_;
  std::string server_nonce_;
  State state_ = State::want_client_first;
  std::string user_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string client_nonce_;
  std::string nonce_;
  std::string server_first_;
  std::string stored_key_;
  std::string server_key_;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_scram_mechanism(ScramHash hash, std::string server_nonce) {
  return std::make_unique<ScramMechanism>(hash, std::move(server_nonce));
}

}  // namespace postern::authd
