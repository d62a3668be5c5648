// scheme_crypt.cpp - the crypt(3) family: CRYPT, DES-CRYPT, MD5-CRYPT, MD5, SHA256-CRYPT,
// SHA512-CRYPT, BLF-CRYPT. Hashing is libxcrypt's crypt_r / crypt_gensalt_rn, so CRYPT
// also verifies whatever else libxcrypt knows (yescrypt "$y$", scrypt "$7$", ...).
#include "authd/scheme_table.hpp"

#include <crypt.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace postern::authd::schemes {

namespace {

// Dovecot's generation defaults and limits (password-scheme-crypt.c).
constexpr int kBlfCostDefault = 5, kBlfCostMin = 4, kBlfCostMax = 31;
constexpr int kShaRoundsDefault = 5000, kShaRoundsMin = 1000, kShaRoundsMax = 999999999;

// crypt_r of a hash "setting". Error when libxcrypt rejects the setting (it then
// returns a "*0"/"*1" failure token, never a hash).
Result<std::string> run_crypt(std::string_view plaintext, const std::string& setting) {
  if (plaintext.find('\0') != std::string_view::npos) return Error{"password contains a NUL byte"};
  auto data = std::make_unique<crypt_data>();  // ~32 KiB of scratch: keep it off the stack
  std::string phrase(plaintext);
  const char* out = crypt_r(phrase.c_str(), setting.c_str(), data.get());
  if (out == nullptr || out[0] == '*' || out[0] == '\0') return Error{"crypt() rejected the hash setting"};
  return std::string(out);
}

Result<bool> verify_crypt_string(std::string_view plaintext, std::string_view stored) {
  if (stored.empty()) return false;  // crypt("") would "match" an empty hash
  if (plaintext.find('\0') != std::string_view::npos) return false;  // crypt() cannot see past a NUL
  auto computed = run_crypt(plaintext, std::string(stored));
  if (!computed) return computed.error();
  return constant_time_equals(*computed, stored);
}

Result<std::string> generate_with_prefix(std::string_view plaintext, const char* prefix, unsigned long count) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // A null random-bytes argument makes libxcrypt draw the salt from the OS.
  if (crypt_gensalt_rn(prefix, count, nullptr, 0, setting, sizeof(setting)) == nullptr)
    return Error{std::string("crypt_gensalt failed for prefix '") + prefix + "'"};
  return run_crypt(plaintext, setting);
}

bool looks_like_bcrypt(std::string_view s) {
  return s.size() > 4 && s[0] == '$' && s[1] == '2' && s[3] == '$';
}

Result<bool> verify_blf(std::string_view plaintext, std::string_view data, std::string_view) {
  if (data.empty()) return false;
  // "$2?$NN$" + 22 salt characters at least.
  if (data.size() < 29 || !looks_like_bcrypt(data) || data[2] < 'a' || data[2] > 'z')
    return Error{"BLF-CRYPT: data is not a bcrypt hash"};
  return verify_crypt_string(plaintext, data);
}

// CRYPT, DES-CRYPT, SHA256-CRYPT and SHA512-CRYPT all hand the stored string to crypt(),
// as Dovecot does, so a "$6$" hash under {CRYPT} or {SHA256-CRYPT} still verifies.
Result<bool> verify_any_crypt(std::string_view plaintext, std::string_view data, std::string_view user) {
  if (looks_like_bcrypt(data)) return verify_blf(plaintext, data, user);
  return verify_crypt_string(plaintext, data);
}

Result<bool> verify_md5_crypt(std::string_view plaintext, std::string_view data, std::string_view) {
  if (!data.starts_with("$1$")) return Error{"MD5-CRYPT: data does not start with $1$"};
  return verify_crypt_string(plaintext, data);
}

// {MD5} holds either an MD5-CRYPT string or a PLAIN-MD5 digest (hex or base64).
Result<bool> verify_md5(std::string_view plaintext, std::string_view data, std::string_view user) {
  if (data.starts_with("$1$")) return verify_md5_crypt(plaintext, data, user);
  auto stored = decode_guessed(data, 16);
  if (!stored || stored->size() != 16) return Error{"MD5: data is neither MD5-CRYPT nor PLAIN-MD5"};
  auto computed = digest(EVP_md5(), {plaintext});
  if (!computed) return computed.error();
  return constant_time_equals(*computed, *stored);
}

Result<std::string> generate_des(std::string_view plaintext, std::string_view, int) {
  return generate_with_prefix(plaintext, "", 0);  // "" selects traditional DES: 2 salt chars
}

Result<std::string> generate_md5_crypt(std::string_view plaintext, std::string_view, int) {
  return generate_with_prefix(plaintext, "$1$", 0);
}

unsigned long sha_crypt_count(int rounds) {
  if (rounds == 0) rounds = kShaRoundsDefault;
  rounds = std::clamp(rounds, kShaRoundsMin, kShaRoundsMax);
  // 0 asks libxcrypt for the default, which leaves "rounds=" out of the string as Dovecot does.
  return rounds == kShaRoundsDefault ? 0 : static_cast<unsigned long>(rounds);
}

Result<std::string> generate_sha256(std::string_view plaintext, std::string_view, int rounds) {
  return generate_with_prefix(plaintext, "$5$", sha_crypt_count(rounds));
}

Result<std::string> generate_sha512(std::string_view plaintext, std::string_view, int rounds) {
  return generate_with_prefix(plaintext, "$6$", sha_crypt_count(rounds));
}

Result<std::string> generate_blf(std::string_view plaintext, std::string_view, int rounds) {
  int cost = rounds == 0 ? kBlfCostDefault : std::clamp(rounds, kBlfCostMin, kBlfCostMax);
  return generate_with_prefix(plaintext, "$2y$", static_cast<unsigned long>(cost));
}

// Like Dovecot, offer an algorithm only if this libcrypt computes a known answer for it
// (some distributions build libxcrypt without DES or MD5-crypt).
bool crypt_works(const char* key, const char* setting, std::string_view expected) {
  auto out = run_crypt(key, setting);
  return out && *out == expected;
}

}  // namespace

std::span<const Scheme> crypt_schemes() {
  static const std::vector<Scheme> table = [] {
    const bool des = crypt_works("08/15!test~4711", "JB", "JBOZ0DgmtucwE");
    const bool md5 = crypt_works("test", "$1$GgvxyNz8", "$1$GgvxyNz8$OjZhLh4P.gF1lxYEbLZ3e/");
    const bool sha256 = crypt_works("08/15!test~4711", "$5$rounds=1000$0123456789abcdef",
                                    "$5$rounds=1000$0123456789abcdef$K/DksR0DT01hGc8g/kt9McEgrbFMKi9qrb1jehe7hn4");
    const bool sha512 = crypt_works(
        "08/15!test~4711", "$6$rounds=1000$0123456789abcdef",
        "$6$rounds=1000$0123456789abcdef$ZIAd5WqfyLkpvsVCVUU1GrvqaZTqvhJoouxdSqJO71l9Ld3tVrfOatEjarhghvEYADkq//"
        "LpDnTeO90tcbtHR1");
    std::vector<Scheme> t;
    t.push_back({"CRYPT", Encoding::none, 0, false, verify_any_crypt, generate_blf});
    t.push_back({"BLF-CRYPT", Encoding::none, 0, false, verify_blf, generate_blf});
    if (des) t.push_back({"DES-CRYPT", Encoding::none, 0, true, verify_any_crypt, generate_des});
    if (md5) {
      t.push_back({"MD5-CRYPT", Encoding::none, 0, true, verify_md5_crypt, generate_md5_crypt});
      t.push_back({"MD5", Encoding::none, 0, true, verify_md5, generate_md5_crypt});
    }
    if (sha256) t.push_back({"SHA256-CRYPT", Encoding::none, 0, false, verify_any_crypt, generate_sha256});
    if (sha512) t.push_back({"SHA512-CRYPT", Encoding::none, 0, false, verify_any_crypt, generate_sha512});
    return t;
  }();
  return table;
}

}  // namespace postern::authd::schemes
