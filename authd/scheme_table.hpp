// scheme_table.hpp - private to the password-scheme files: the table each scheme_*.cpp
// contributes to, and the small primitives they share (digests, randomness, decoding).
//
// Not part of authd's public contract; include password_scheme.hpp outside these files.
#pragma once

#include "authd/password_scheme.hpp"

#include <openssl/evp.h>

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace postern::authd::schemes {

// How the stored text maps to the bytes a scheme verifies against.
enum class Encoding { none, base64, hex };

struct Scheme {
  std::string_view name;  // upper case, as `doveadm pw -l` lists it
  Encoding encoding;      // default encoding of the stored text
  size_t raw_length;      // fixed decoded length; 0 = variable
  bool weak;              // refused by Dovecot 2.4 unless weak schemes are allowed
  // data is already decoded per `encoding`. Error: malformed data (not a mismatch).
  Result<bool> (*verify)(std::string_view plaintext, std::string_view data, std::string_view user);
  // The raw data (before encoding); rounds 0 = the scheme's Dovecot default.
  Result<std::string> (*generate)(std::string_view plaintext, std::string_view user, int rounds);
};

// One table per file; password_scheme.cpp joins them.
std::span<const Scheme> crypt_schemes();
std::span<const Scheme> digest_schemes();
std::span<const Scheme> pbkdf2_schemes();
std::span<const Scheme> scram_schemes();
std::span<const Scheme> argon2_schemes();

// --- shared primitives (password_scheme.cpp) ---

// Digest of the concatenated parts. md: an EVP digest (EVP_sha1(), a fetched MD4, ...).
Result<std::string> digest(const EVP_MD* md, std::initializer_list<std::string_view> parts);
// n bytes from RAND_bytes.
Result<std::string> random_bytes(size_t n);
// n characters from crypt's salt alphabet "./0-9A-Za-z", as Dovecot's generated salts.
Result<std::string> random_salt_text(size_t n);
// Dovecot's guess for fixed-length data without ".ENC": hex when the text is exactly
// twice raw_length and decodes as hex, base64 otherwise. Error if neither fits.
Result<std::string> decode_guessed(std::string_view text, size_t raw_length);

// --- helpers one scheme file provides to the dispatch in password_scheme.cpp ---

// CRAM-MD5 / HMAC-MD5 context of a plaintext (scheme_digest.cpp).
Result<std::string> cram_md5_context_of(std::string_view plaintext);
// SCRAM storage text "<iter>,<salt b64>,<StoredKey b64>,<ServerKey b64>" (scheme_scram.cpp).
Result<ScramCredentials> parse_scram(std::string_view data, ScramHash hash);
// Credentials for a plaintext with a fresh 16-byte salt (scheme_scram.cpp).
Result<ScramCredentials> derive_scram(std::string_view plaintext, ScramHash hash, int iterations);

}  // namespace postern::authd::schemes
