// password_scheme.cpp - Dovecot's "{SCHEME.ENC}data" stored-password format: parsing,
// the scheme registry and dispatch, credentials for CRAM-MD5/SCRAM, and the primitives
// the scheme_*.cpp files share. The schemes themselves live in those files.
#include "authd/password_scheme.hpp"

#include "authd/scheme_table.hpp"
#include "common/encoding.hpp"
#include "common/strings.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <memory>

namespace postern::authd {

namespace schemes {

Result<std::string> digest(const EVP_MD* md, std::initializer_list<std::string_view> parts) {
  if (md == nullptr) return Error{"digest not available in this OpenSSL"};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) return Error{"digest init failed"};
  for (std::string_view part : parts)
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return Error{"digest update failed"};
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out, &length) != 1) return Error{"digest final failed"};
  return std::string(reinterpret_cast<const char*>(out), length);
}

Result<std::string> random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    return Error{"RAND_bytes failed"};
  return out;
}

Result<std::string> random_salt_text(size_t n) {
  static constexpr char alphabet[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  static_assert(sizeof(alphabet) - 1 == 64, "masking with 63 must stay uniform");
  auto bytes = random_bytes(n);
  if (!bytes) return bytes.error();
  for (char& c : *bytes) c = alphabet[static_cast<unsigned char>(c) & 63];
  return std::move(bytes).value();
}

Result<std::string> decode_guessed(std::string_view text, size_t raw_length) {
  // Dovecot can only tell the two apart by length: a hex string of the right length
  // that fails to decode may still be base64 of some other length (then rejected later).
  if (text.size() == 2 * raw_length)
    if (auto raw = hex_decode(text)) return std::move(*raw);
  if (auto raw = base64_decode(text)) return std::move(*raw);
  return Error{"data is neither valid hex nor valid base64"};
}

}  // namespace schemes

namespace {

using schemes::Encoding;
using schemes::Scheme;

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

const std::vector<const Scheme*>& registry() {
  static const std::vector<const Scheme*> all = [] {
    std::vector<const Scheme*> v;
    for (auto table : {schemes::crypt_schemes(), schemes::digest_schemes(), schemes::pbkdf2_schemes(),
                       schemes::scram_schemes(), schemes::argon2_schemes()})
      for (const Scheme& s : table) v.push_back(&s);
    return v;
  }();
  return all;
}

const Scheme* find_scheme(std::string_view name) {
  for (const Scheme* s : registry())
    if (iequals(s->name, name)) return s;
  return nullptr;
}

struct SchemeSpec {
  const Scheme* scheme = nullptr;
  Encoding encoding = Encoding::none;
  bool explicit_encoding = false;
};

// "NAME" or "NAME.ENC"; an unknown ENC makes the whole scheme unknown, as in Dovecot.
Result<SchemeSpec> lookup(std::string_view text) {
  std::string_view name = text, enc;
  if (size_t dot = text.find('.'); dot != std::string_view::npos) {
    name = text.substr(0, dot);
    enc = text.substr(dot + 1);
  }
  SchemeSpec spec;
  spec.scheme = find_scheme(name);
  if (spec.scheme == nullptr) return Error{"unknown password scheme '" + std::string(name) + "'"};
  if (name.size() == text.size()) {
    spec.encoding = spec.scheme->encoding;
  } else if (iequals(enc, "b64") || iequals(enc, "base64")) {
    spec.encoding = Encoding::base64;
    spec.explicit_encoding = true;
  } else if (iequals(enc, "hex")) {
    spec.encoding = Encoding::hex;
    spec.explicit_encoding = true;
  } else {
    return Error{"unknown password encoding '" + std::string(enc) + "'"};
  }
  return spec;
}

Result<std::string> decode(const SchemeSpec& spec, std::string_view text) {
  const Scheme& s = *spec.scheme;
  std::string raw;
  if (!spec.explicit_encoding && s.raw_length != 0 && spec.encoding != Encoding::none) {
    auto guessed = schemes::decode_guessed(text, s.raw_length);
    if (!guessed) return Error{std::string(s.name) + ": " + guessed.error().message};
    raw = std::move(guessed).value();
  } else if (spec.encoding == Encoding::base64) {
    auto d = base64_decode(text);
    if (!d) return Error{std::string(s.name) + ": data is not valid base64"};
    raw = std::move(*d);
  } else if (spec.encoding == Encoding::hex) {
    auto d = hex_decode(text);
    if (!d) return Error{std::string(s.name) + ": data is not valid hex"};
    raw = std::move(*d);
  } else {
    raw = std::string(text);
  }
  if (s.raw_length != 0 && raw.size() != s.raw_length)
    return Error{std::string(s.name) + ": data is " + std::to_string(raw.size()) + " bytes, expected " +
                 std::to_string(s.raw_length)};
  return raw;
}

std::string encode(Encoding encoding, std::string_view raw) {
  switch (encoding) {
    case Encoding::base64: return base64_encode(raw);
    case Encoding::hex: return hex_encode(raw);
    case Encoding::none: break;
  }
  return std::string(raw);
}

bool is_plaintext_scheme(std::string_view name) {
  return name == "PLAIN" || name == "CLEAR" || name == "CLEARTEXT";
}

}  // namespace

Result<StoredPassword> parse_stored_password(std::string_view stored, std::string_view default_scheme) {
  while (!stored.empty() && stored.back() == ' ') stored.remove_suffix(1);  // CHAR(n) padding

  std::string_view scheme_text, data;
  size_t salt_end = stored.starts_with("$1$") ? stored.find('$', 3) : std::string_view::npos;
  if (salt_end != std::string_view::npos) {
    // Bare "$1$salt$hash[$ignored]" is MD5-CRYPT, cut after the hash field.
    scheme_text = "MD5-CRYPT";
    data = stored.substr(0, stored.find('$', salt_end + 1));
  } else if (size_t close = stored.find('}'); stored.starts_with('{') && close != std::string_view::npos) {
    scheme_text = stored.substr(1, close - 1);
    data = stored.substr(close + 1);
  } else {
    if (default_scheme.empty()) return Error{"stored password has no {SCHEME} prefix and no default scheme"};
    scheme_text = default_scheme;
    data = stored;
  }

  auto spec = lookup(scheme_text);
  if (!spec) return spec.error();
  auto raw = decode(*spec, data);
  if (!raw) return raw.error();
  return StoredPassword{std::string(spec->scheme->name), std::move(raw).value()};
}

Result<bool> verify_password(std::string_view plaintext, const StoredPassword& stored, std::string_view user) {
  const Scheme* s = find_scheme(stored.scheme);
  if (s == nullptr) return Error{"unknown password scheme '" + stored.scheme + "'"};
  return s->verify(plaintext, stored.data, user);
}

Result<std::string> generate_password(std::string_view plaintext, std::string_view scheme, std::string_view user,
                                      GenerateOptions options) {
  if (options.rounds < 0) return Error{"rounds must not be negative"};
  auto spec = lookup(scheme);
  if (!spec) return spec.error();
  auto raw = spec->scheme->generate(plaintext, user, options.rounds);
  if (!raw) return raw.error();
  // Like doveadm: the prefix repeats the requested name (upper-cased, with its .ENC).
  return "{" + upper(scheme) + "}" + encode(spec->encoding, *raw);
}

std::vector<std::string> supported_schemes() {
  std::vector<std::string> names;
  for (const Scheme* s : registry()) names.emplace_back(s->name);
  return names;
}

Result<std::string> cram_md5_context(const StoredPassword& stored) {
  if (stored.scheme == "CRAM-MD5" || stored.scheme == "HMAC-MD5") {
    if (stored.data.size() != 32) return Error{"CRAM-MD5 context is not 32 bytes"};
    return stored.data;
  }
  if (is_plaintext_scheme(stored.scheme)) return schemes::cram_md5_context_of(stored.data);
  return Error{"password scheme " + stored.scheme + " cannot be used for CRAM-MD5"};
}

Result<ScramCredentials> scram_credentials(const StoredPassword& stored, ScramHash hash) {
  std::string mech = hash == ScramHash::sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
  if (stored.scheme == mech) return schemes::parse_scram(stored.data, hash);
  if (is_plaintext_scheme(stored.scheme)) return schemes::derive_scram(stored.data, hash, 4096);
  return Error{"password scheme " + stored.scheme + " cannot be used for " + mech};
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool is_weak_password(const StoredPassword& stored) {
  const Scheme* s = find_scheme(stored.scheme);
  if (s == nullptr) return false;
  if (s->weak) return true;
  if (s->name == "CRYPT" && stored.data.size() > 1)
    return stored.data[0] != '$' || stored.data.starts_with("$1$");
  return false;
}

}  // namespace postern::authd
