// scheme_pbkdf2.cpp - Dovecot's PBKDF2 scheme: "$1$<salt>$<rounds>$<hex key>", the key
// being 20 bytes of PBKDF2-HMAC-SHA1 with the salt used as its ASCII text (not decoded).
#include "authd/scheme_table.hpp"

#include "common/encoding.hpp"

#include <climits>
#include <vector>

namespace postern::authd::schemes {

namespace {

constexpr int kKeyLength = 20;
constexpr int kRoundsDefault = 5000;
constexpr size_t kSaltLength = 16;

Result<std::string> pbkdf2_sha1(std::string_view plaintext, std::string_view salt, int rounds) {
  std::string key(kKeyLength, '\0');
  if (PKCS5_PBKDF2_HMAC(plaintext.data(), static_cast<int>(plaintext.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), rounds,
                        EVP_sha1(), kKeyLength, reinterpret_cast<unsigned char*>(key.data())) != 1)
    return Error{"PBKDF2 computation failed"};
  return key;
}

// Digits only, 1..INT_MAX (OpenSSL takes an int).
bool parse_rounds(std::string_view text, int& rounds) {
  if (text.empty() || text.size() > 10) return false;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > INT_MAX) return false;
  rounds = static_cast<int>(value);
  return true;
}

Result<bool> verify_pbkdf2(std::string_view plaintext, std::string_view data, std::string_view) {
  if (!data.starts_with("$1$")) return Error{"PBKDF2: data does not start with $1$"};
  std::string_view rest = data.substr(3);
  size_t a = rest.find('$');
  size_t b = a == std::string_view::npos ? a : rest.find('$', a + 1);
  if (b == std::string_view::npos || rest.find('$', b + 1) != std::string_view::npos)
    return Error{"PBKDF2: expected $1$<salt>$<rounds>$<hash>"};
  std::string_view salt = rest.substr(0, a), rounds_text = rest.substr(a + 1, b - a - 1), hash = rest.substr(b + 1);
  int rounds = 0;
  if (!parse_rounds(rounds_text, rounds)) return Error{"PBKDF2: invalid rounds"};
  auto expected = hex_decode(hash);
  if (!expected || expected->size() != kKeyLength) return Error{"PBKDF2: hash is not 40 hex digits"};
  auto computed = pbkdf2_sha1(plaintext, salt, rounds);
  if (!computed) return computed.error();
  return constant_time_equals(*computed, *expected);
}

Result<std::string> generate_pbkdf2(std::string_view plaintext, std::string_view, int rounds) {
  if (rounds == 0) rounds = kRoundsDefault;
  auto salt = random_salt_text(kSaltLength);
  if (!salt) return salt.error();
  auto key = pbkdf2_sha1(plaintext, *salt, rounds);
  if (!key) return key.error();
  return "$1$" + *salt + "$" + std::to_string(rounds) + "$" + hex_encode(*key);
}

}  // namespace

std::span<const Scheme> pbkdf2_schemes() {
  static const std::vector<Scheme> table = {
      {"PBKDF2", Encoding::none, 0, false, verify_pbkdf2, generate_pbkdf2},
  };
  return table;
}

}  // namespace postern::authd::schemes
