// password_scheme.hpp - Dovecot's password schemes: parse, verify, generate.
//
// A stored value is "{SCHEME}data", "{SCHEME.ENC}data" (ENC: b64, base64, hex) or bare
// data in the passdb's default scheme; a bare "$1$..." is MD5-CRYPT as in Dovecot. Scheme
// names are case-insensitive (see protocols.md §5.1 for the table). Comparisons are
// constant-time. Everything here is thread-safe and may block (hashing): run it on a worker.
#pragma once

#include "common/result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::authd {

struct StoredPassword {
  std::string scheme;  // canonical upper-case name, e.g. "SHA512-CRYPT"
  std::string data;    // decoded per the scheme (raw digest bytes for SHA/SSHA/..., the
                       // crypt string for *-CRYPT, the plaintext for PLAIN)
};

// Trims trailing spaces (CHAR columns) first. Error: unknown scheme or encoding, bad data.
Result<StoredPassword> parse_stored_password(std::string_view stored, std::string_view default_scheme);

// True if plaintext matches. user is needed by DIGEST-MD5-style schemes only.
Result<bool> verify_password(std::string_view plaintext, const StoredPassword& stored, std::string_view user = {});

struct GenerateOptions {
  int rounds = 0;  // 0 = the scheme's Dovecot default (crypt rounds, BLF cost, PBKDF2 rounds, SCRAM iterations)
};
// "{SCHEME}..." as `doveadm pw -s SCHEME` prints it.
Result<std::string> generate_password(std::string_view plaintext, std::string_view scheme,
                                      std::string_view user = {}, GenerateOptions options = {});

// The schemes this build supports, for `pw -l`.
std::vector<std::string> supported_schemes();

// Credentials for the challenge-response mechanisms, from a stored value: either the
// mechanism's own scheme or PLAIN (anything else: Error "cannot be used for MECH").
// CRAM-MD5: the 32-byte HMAC-MD5 context (opad state then ipad state).
Result<std::string> cram_md5_context(const StoredPassword& stored);

enum class ScramHash { sha1, sha256 };
struct ScramCredentials {
  int iterations = 4096;
  std::string salt;        // raw bytes
  std::string stored_key;  // raw bytes
  std::string server_key;  // raw bytes
};
Result<ScramCredentials> scram_credentials(const StoredPassword& stored, ScramHash hash);

// Constant-time equality of two byte strings (length may leak, content does not).
bool constant_time_equals(std::string_view a, std::string_view b);

// True for the schemes Dovecot 2.4 refuses unless auth_allow_weak_schemes = yes (MD5,
// MD5-CRYPT, SMD5, HMAC-MD5, PLAIN-MD4, PLAIN-MD5, LDAP-MD5, DES-CRYPT, and CRYPT when its
// data is a DES or "$1$" hash). Verification itself never refuses them; callers decide.
bool is_weak_password(const StoredPassword& stored);

}  // namespace postern::authd
