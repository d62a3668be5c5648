// scheme_scram.cpp - SCRAM-SHA-1 and SCRAM-SHA-256 stored credentials (RFC 5802, 7677) in
// Dovecot's form "<iterations>,<salt b64>,<StoredKey b64>,<ServerKey b64>".
#include "authd/scheme_table.hpp"

#include "common/encoding.hpp"

#include <openssl/hmac.h>

#include <algorithm>
#include <climits>
#include <vector>

namespace postern::authd::schemes {

namespace {

// Dovecot's bounds: RFC 5802 says the count SHOULD be at least 4096.
constexpr int kIterationsMin = 4096, kIterationsDefault = 4096;
constexpr size_t kSaltLength = 16;

const EVP_MD* md_of(ScramHash hash) { return hash == ScramHash::sha1 ? EVP_sha1() : EVP_sha256(); }
const char* name_of(ScramHash hash) { return hash == ScramHash::sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256"; }

Result<std::string> hmac(const EVP_MD* md, std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), out, &length) == nullptr)
    return Error{"HMAC failed"};
  return std::string(reinterpret_cast<const char*>(out), length);
}

// SaltedPassword = Hi(password, salt, i), which is PBKDF2 with the hash's own HMAC and a
// key as long as one digest. Returns {SaltedPassword, ClientKey}.
Result<std::pair<std::string, std::string>> salted_and_client_key(std::string_view plaintext, std::string_view salt,
                                                                  int iterations, const EVP_MD* md) {
  std::string salted(static_cast<size_t>(EVP_MD_get_size(md)), '\0');
  if (PKCS5_PBKDF2_HMAC(plaintext.data(), static_cast<int>(plaintext.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                        iterations, md, static_cast<int>(salted.size()),
                        reinterpret_cast<unsigned char*>(salted.data())) != 1)
    return Error{"SCRAM Hi() failed"};
  auto client_key = hmac(md, salted, "Client Key");
  if (!client_key) return client_key.error();
  return std::make_pair(std::move(salted), std::move(client_key).value());
}

template <ScramHash Hash>
Result<bool> verify_scram(std::string_view plaintext, std::string_view data, std::string_view) {
  auto creds = parse_scram(data, Hash);
  if (!creds) return creds.error();
  auto keys = salted_and_client_key(plaintext, creds->salt, creds->iterations, md_of(Hash));
  if (!keys) return keys.error();
  auto stored_key = digest(md_of(Hash), {keys->second});
  OPENSSL_cleanse(keys->first.data(), keys->first.size());
  if (!stored_key) return stored_key.error();
  return constant_time_equals(*stored_key, creds->stored_key);
}

template <ScramHash Hash>
Result<std::string> generate_scram(std::string_view plaintext, std::string_view, int rounds) {
  int iterations = rounds == 0 ? kIterationsDefault : std::max(rounds, kIterationsMin);
  auto creds = derive_scram(plaintext, Hash, iterations);
  if (!creds) return creds.error();
  return std::to_string(creds->iterations) + "," + base64_encode(creds->salt) + "," +
         base64_encode(creds->stored_key) + "," + base64_encode(creds->server_key);
}

}  // namespace

Result<ScramCredentials> parse_scram(std::string_view data, ScramHash hash) {
  const std::string name = name_of(hash);
  std::vector<std::string_view> fields;
  for (size_t start = 0;;) {
    size_t comma = data.find(',', start);
    fields.push_back(data.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (fields.size() != 4) return Error{name + ": expected <iterations>,<salt>,<StoredKey>,<ServerKey>"};

  long long iterations = 0;
  bool digits = !fields[0].empty() && fields[0].size() <= 10;
  for (char c : fields[0]) {
    if (c < '0' || c > '9') digits = false;
    else iterations = iterations * 10 + (c - '0');
  }
  if (!digits || iterations < kIterationsMin || iterations > INT_MAX) return Error{name + ": invalid iteration count"};

  ScramCredentials creds;
  creds.iterations = static_cast<int>(iterations);
  auto salt = base64_decode(fields[1]);
  if (!salt || salt->empty()) return Error{name + ": invalid salt"};
  creds.salt = std::move(*salt);
  const size_t length = static_cast<size_t>(EVP_MD_get_size(md_of(hash)));
  auto stored_key = base64_decode(fields[2]);
  if (!stored_key || stored_key->size() != length) return Error{name + ": invalid StoredKey"};
  auto server_key = base64_decode(fields[3]);
  if (!server_key || server_key->size() != length) return Error{name + ": invalid ServerKey"};
  creds.stored_key = std::move(*stored_key);
  creds.server_key = std::move(*server_key);
  return creds;
}

Result<ScramCredentials> derive_scram(std::string_view plaintext, ScramHash hash, int iterations) {
  const EVP_MD* md = md_of(hash);
  auto salt = random_bytes(kSaltLength);
  if (!salt) return salt.error();
  auto keys = salted_and_client_key(plaintext, *salt, iterations, md);
  if (!keys) return keys.error();
  auto stored_key = digest(md, {keys->second});
  auto server_key = hmac(md, keys->first, "Server Key");
  OPENSSL_cleanse(keys->first.data(), keys->first.size());
  OPENSSL_cleanse(keys->second.data(), keys->second.size());
  if (!stored_key) return stored_key.error();
  if (!server_key) return server_key.error();
  ScramCredentials creds;
  creds.iterations = iterations;
  creds.salt = std::move(salt).value();
  creds.stored_key = std::move(stored_key).value();
  creds.server_key = std::move(server_key).value();
  return creds;
}

std::span<const Scheme> scram_schemes() {
  static const std::vector<Scheme> table = {
      {"SCRAM-SHA-1", Encoding::none, 0, false, verify_scram<ScramHash::sha1>, generate_scram<ScramHash::sha1>},
      {"SCRAM-SHA-256", Encoding::none, 0, false, verify_scram<ScramHash::sha256>,
       generate_scram<ScramHash::sha256>},
  };
  return table;
}

}  // namespace postern::authd::schemes
