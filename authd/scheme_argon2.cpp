// scheme_argon2.cpp - ARGON2I, ARGON2ID and its alias ARGON2: the encoded "$argon2id$v=19$
// m=..,t=..,p=..$salt$hash" strings Dovecot stores through libsodium, made and checked
// here with libargon2 (the same reference format).
#include "authd/scheme_table.hpp"

#include <argon2.h>

#include <vector>

namespace postern::authd::schemes {

namespace {

// libsodium's crypto_pwhash fixed parameters: 16-byte salt, 32-byte hash, one lane.
constexpr size_t kSaltLength = 16, kHashLength = 32;
constexpr uint32_t kParallelism = 1;
constexpr uint32_t kMiB = 1024;  // argon2 counts memory in KiB

// Dovecot picks libsodium's memlimit from the ops limit: the INTERACTIVE ops limit by
// default, then MODERATE/SENSITIVE memory once the rounds reach those ops limits. These
// are libsodium's crypto_pwhash_argon2{i,id}_{OPS,MEM}LIMIT_* values.
struct Limits {
  uint32_t ops_interactive, ops_moderate, ops_sensitive;
  uint32_t mem_interactive, mem_moderate, mem_sensitive;  // KiB
};
constexpr Limits kArgon2i = {4, 6, 8, 32 * kMiB, 128 * kMiB, 512 * kMiB};
constexpr Limits kArgon2id = {2, 3, 4, 64 * kMiB, 256 * kMiB, 1024 * kMiB};
constexpr uint32_t kOpsMin = 3;  // libsodium's argon2i minimum; Dovecot also raises argon2id to 3

Result<std::string> generate(std::string_view plaintext, int rounds, argon2_type type, const Limits& limits) {
  uint32_t t = rounds == 0 ? limits.ops_interactive : static_cast<uint32_t>(rounds);
  uint32_t m = t >= limits.ops_sensitive   ? limits.mem_sensitive
               : t >= limits.ops_moderate ? limits.mem_moderate
                                          : limits.mem_interactive;
  if (t < kOpsMin) t = kOpsMin;  // after choosing memory, as Dovecot does

  auto salt = random_bytes(kSaltLength);
  if (!salt) return salt.error();
  std::string encoded(argon2_encodedlen(t, m, kParallelism, kSaltLength, kHashLength, type), '\0');
  int rc = argon2_hash(t, m, kParallelism, plaintext.data(), plaintext.size(), salt->data(), salt->size(), nullptr,
                       kHashLength, encoded.data(), encoded.size(), type, ARGON2_VERSION_13);
  if (rc != ARGON2_OK) return Error{std::string("argon2 hashing failed: ") + argon2_error_message(rc)};
  encoded.resize(encoded.find('\0'));  // argon2_encodedlen counts the terminator
  return encoded;
}

// The type comes from the string itself, as libsodium's verifier does, so {ARGON2I} with
// an argon2id string still verifies.
Result<bool> verify_argon2(std::string_view plaintext, std::string_view data, std::string_view) {
  argon2_type type;
  if (data.starts_with("$argon2id$"))
    type = Argon2_id;
  else if (data.starts_with("$argon2i$"))
    type = Argon2_i;
  else
    return Error{"ARGON2: data is not an $argon2i$ or $argon2id$ string"};
  const std::string encoded(data);  // argon2_verify wants a C string
  int rc = argon2_verify(encoded.c_str(), plaintext.data(), plaintext.size(), type);
  if (rc == ARGON2_OK) return true;
  if (rc == ARGON2_VERIFY_MISMATCH) return false;
  return Error{std::string("ARGON2: ") + argon2_error_message(rc)};
}

Result<std::string> generate_argon2i(std::string_view plaintext, std::string_view, int rounds) {
  return generate(plaintext, rounds, Argon2_i, kArgon2i);
}

Result<std::string> generate_argon2id(std::string_view plaintext, std::string_view, int rounds) {
  return generate(plaintext, rounds, Argon2_id, kArgon2id);
}

}  // namespace

std::span<const Scheme> argon2_schemes() {
  static const std::vector<Scheme> table = {
      {"ARGON2I", Encoding::none, 0, false, verify_argon2, generate_argon2i},
      {"ARGON2ID", Encoding::none, 0, false, verify_argon2, generate_argon2id},
      {"ARGON2", Encoding::none, 0, false, verify_argon2, generate_argon2id},
  };
  return table;
}

}  // namespace postern::authd::schemes
