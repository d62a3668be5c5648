// net_address.cpp - ListenAddress::parse and ListenAddress::str (contract in net.hpp).
// Host names are refused on purpose: a listener must not depend on DNS at startup.

#include "common/net.hpp"

#include <arpa/inet.h>

#include <string>

namespace postern {

namespace {

bool is_ipv4_literal(const std::string& host) {
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool is_ipv6_literal(const std::string& host) {
  in6_addr a{};
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

Result<unsigned> parse_port(std::string_view text, std::string_view whole) {
  if (text.empty() || text.size() > 5) return Error{"bad port in listen address '" + std::string(whole) + "'"};
  unsigned port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Error{"bad port in listen address '" + std::string(whole) + "'"};
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port > 65535) return Error{"port out of range in listen address '" + std::string(whole) + "'"};
  return port;
}

// host:port, [v6]:port, :port or port; whole is the admin's text, for messages.
Result<ListenAddress> parse_inet(std::string_view text, std::string_view whole) {
  ListenAddress a;
  a.kind = ListenAddress::Kind::tcp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return Error{"bad listen address '" + std::string(whole) + "': expected [IPv6]:port"};
    a.host = std::string(text.substr(1, close - 1));
    if (!is_ipv6_literal(a.host))
      return Error{"bad listen address '" + std::string(whole) + "': '" + a.host + "' is not an IPv6 address"};
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      a.host = "127.0.0.1";
      port_text = text;
    } else {
      a.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      if (a.host.find(':') != std::string::npos)
        return Error{"bad listen address '" + std::string(whole) + "': write IPv6 addresses as [addr]:port"};
      if (a.host.empty()) a.host = "127.0.0.1";
    }
    if (!is_ipv4_literal(a.host))
      return Error{"bad listen address '" + std::string(whole) + "': '" + a.host +
                   "' is not an IP address (host names are not accepted; use unix:PATH for a relative socket path)"};
  }
  auto port = parse_port(port_text, whole);
  if (!port) return port.error();
  a.port = *port;
  return a;
}

Result<ListenAddress> unix_address(std::string_view path, std::string_view whole) {
  if (path.empty()) return Error{"bad listen address '" + std::string(whole) + "': empty socket path"};
  if (path.find('\0') != std::string_view::npos)
    return Error{"bad listen address: socket path contains a NUL byte"};
  ListenAddress a;
  a.kind = ListenAddress::Kind::unix_path;
  a.path = std::string(path);
  return a;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

Result<ListenAddress> ListenAddress::parse(std::string_view text) {
  if (text.empty()) return Error{"empty listen address"};
  if (starts_with(text, "unix:")) return unix_address(text.substr(5), text);
  if (text.front() == '/') return unix_address(text, text);
  if (starts_with(text, "inet:")) return parse_inet(text.substr(5), text);
  return parse_inet(text, text);
}

std::string ListenAddress::str() const {
  if (kind == Kind::unix_path) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "inet:[" + host + "]:" + std::to_string(port);
  return "inet:" + host + ":" + std::to_string(port);
}

}  // namespace postern
