// sql_endpoint.cpp - see sql.hpp: Endpoint identity and description, mysql_table(5) host
// parsing, and make_connection() choosing the backend by driver.
#include "common/sql.hpp"

#include "common/encoding.hpp"
#include "common/sql_backends.hpp"
#include "common/strings.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <random>
#include <stdexcept>
#include <unordered_map>

namespace postern::sql {
namespace {

Error bad_host(std::string_view text, std::string_view why) {
  return Error{fmt::format("invalid database host \"{}\": {}", text, why)};
}

bool has_space(std::string_view s) { return s.find_first_of(" \t\r\n\v\f") != std::string_view::npos; }

// The salt makes the digest in key() useless for guessing the password if a key is ever
// printed; keys only need to be comparable inside one process.
const std::array<unsigned char, 16>& key_salt() {
  static const std::array<unsigned char, 16> salt = [] {
    std::array<unsigned char, 16> s{};
    if (RAND_bytes(s.data(), static_cast<int>(s.size())) != 1) {
      std::random_device rd;
      for (auto& b : s) b = static_cast<unsigned char>(rd());
    }
    return s;
  }();
  return salt;
}

std::string compute_password_digest(const std::string& password) {
  std::string input(reinterpret_cast<const char*>(key_salt().data()), key_salt().size());
  input += password;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    // Without a digest the key must still never equal another password's key.
    throw std::runtime_error("EVP_Digest(sha256) failed");
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

// key() runs for every query (a worker finds its connection by it), and the digest was
// most of a lookup's own CPU time; a config names few passwords, so each thread keeps
// the digests it has made. Bounded, in case reloads keep changing passwords.
const std::string& password_digest(const std::string& password) {
  constexpr size_t kMaxRemembered = 16;
  thread_local std::unordered_map<std::string, std::string> digests;
  auto it = digests.find(password);
  if (it != digests.end()) return it->second;
  if (digests.size() >= kMaxRemembered) digests.clear();
  return digests.emplace(password, compute_password_digest(password)).first->second;
}

// Length-prefixed so that no choice of field contents can make two endpoints collide.
void add_field(std::string& key, std::string_view name, std::string_view value) {
  key += name;
  key += '=';
  key += std::to_string(value.size());
  key += ':';
  key += value;
  key += ';';
}

}  // namespace

Result<HostSpec> parse_mysql_host(std::string_view text) {
  std::string_view t = trim(text);
  if (t.empty()) return bad_host(text, "empty");
  HostSpec spec;
  if (t.substr(0, 5) == "unix:" || t.front() == '/') {
    std::string_view path = t.front() == '/' ? t : t.substr(5);
    if (path.empty()) return bad_host(text, "empty socket path");
    if (has_space(path)) return bad_host(text, "white space in socket path");
    spec.unix_socket = true;
    spec.host = std::string(path);
    return spec;
  }
  std::string_view rest = t.substr(0, 5) == "inet:" ? t.substr(5) : t;
  std::string_view host = rest;
  std::string_view port;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {
    // "[::1]:3306": brackets are the only way to give an IPv6 address a port.
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad_host(text, "missing ']'");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad_host(text, "junk after ']'");
      port = after.substr(1);
      has_port = true;
    }
  } else if (size_t colon = rest.find(':'); colon != std::string_view::npos) {
    // More than one colon without brackets is a bare IPv6 address, which has no port.
    if (rest.find(':', colon + 1) == std::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      has_port = true;
    }
  }
  if (host.empty()) return bad_host(text, "empty host name");
  if (has_space(host)) return bad_host(text, "white space in host name");
  if (has_port) {
    if (port.empty()) return bad_host(text, "empty port");
    unsigned long value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return bad_host(text, "port is not a number");
      value = value * 10 + static_cast<unsigned long>(c - '0');
      if (value > 65535) return bad_host(text, "port out of range");
    }
    if (value == 0) return bad_host(text, "port out of range");
    spec.port = static_cast<unsigned>(value);
  }
  spec.host = std::string(host);
  return spec;
}

std::string host_label(const HostSpec& host) {
  if (host.unix_socket) return "unix:" + host.host;
  if (host.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host.host, host.port);
  return fmt::format("{}:{}", host.host, host.port);
}

std::vector<std::string> effective_hosts(const Endpoint& endpoint) {
  if (endpoint.hosts.empty()) return {"localhost"};
  return endpoint.hosts;
}

std::string Endpoint::key() const {
  std::string k;
  add_field(k, "driver", driver == Driver::mysql ? "mysql" : "sqlite");
  for (const auto& h : hosts) add_field(k, "host", h);
  add_field(k, "user", user);
  add_field(k, "dbname", dbname);
  add_field(k, "connect_ms", std::to_string(connect_timeout.count()));
  add_field(k, "read_ms", std::to_string(read_timeout.count()));
  add_field(k, "retry_ms", std::to_string(retry_interval.count()));
  add_field(k, "password_sha256", password_digest(password));
  return k;
}

std::string Endpoint::describe() const {
  if (driver == Driver::sqlite) return fmt::format("sqlite({})", dbname);
  std::string list;
  for (const auto& h : effective_hosts(*this)) {
    if (!list.empty()) list += ',';
    auto spec = parse_mysql_host(h);
    list += spec ? host_label(*spec) : std::string(trim(h));
  }
  if (user.empty()) return fmt::format("mysql({}/{})", list, dbname);
  return fmt::format("mysql({}/{}@{})", list, user, dbname);
}

std::unique_ptr<Connection> make_connection(const Endpoint& endpoint) {
  switch (endpoint.driver) {
    case Driver::mysql: return make_mariadb_connection(endpoint);
    case Driver::sqlite: return make_sqlite_connection(endpoint);
  }
  return nullptr;
}

}  // namespace postern::sql
