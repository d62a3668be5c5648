// protocol_codecs.cpp - socketmap_table(5) and tcp_table(5) request parsers and reply
// formatters, and the %XX quoting tcp_table uses. Contract: lookupd/protocol_codecs.hpp.
#include "lookupd/protocol_codecs.hpp"

#include "common/encoding.hpp"
#include "common/framing.hpp"

namespace postern::lookupd {

namespace {

// Long reasons are cut so that a 400 line always fits in kMaxTcpReplyLine even after
// every byte is expanded to %XX, and so that logs on the Postfix side stay readable.
constexpr size_t kMaxReasonBytes = 512;

void set_error(CodecError* error, std::string reason) {
  if (error) error->reason = std::move(reason);
}

// Reasons come from our own code and from database error texts; Postfix logs them, so
// control bytes (CR/LF above all) become spaces and the length is capped.
std::string sanitize_reason(std::string_view reason, std::string_view fallback) {
  std::string out(reason.substr(0, kMaxReasonBytes));
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  if (out.find_first_not_of(' ') == std::string::npos) out = fallback;
  return out;
}

}  // namespace

std::optional<SocketmapRequest> parse_socketmap_request(std::string_view payload, CodecError* error) {
  size_t sp = payload.find(' ');
  if (sp == std::string_view::npos) {
    set_error(error, "request has no space between map name and key");
    return std::nullopt;
  }
  std::string_view name = payload.substr(0, sp);
  std::string_view key = payload.substr(sp + 1);
  if (name.empty()) {
    set_error(error, "empty map name");
    return std::nullopt;
  }
  if (name.find('\0') != std::string_view::npos) {
    set_error(error, "map name contains a NUL byte");
    return std::nullopt;
  }
  if (key.size() > kMaxKeyBytes) {
    set_error(error, "key longer than " + std::to_string(kMaxKeyBytes) + " bytes");
    return std::nullopt;
  }
  // A NUL would silently cut the key short in SQL and in C string handling downstream.
  if (key.find('\0') != std::string_view::npos) {
    set_error(error, "key contains a NUL byte");
    return std::nullopt;
  }
  return SocketmapRequest{std::string(name), std::string(key)};
}

std::string format_socketmap_reply(const LookupResult& result) {
  switch (result.outcome) {
    case Outcome::found: {
      // "OK " with nothing after it is read by current Postfix as an empty result, which
      // maps_find treats as a configuration error (older releases as "not found"). An
      // empty value is never a valid answer, so it is reported as a temporary failure.
      if (result.value.empty()) return encode_netstring("TEMP empty result");
      // Postfix handles the value as a C string; a NUL would truncate it silently.
      if (result.value.find('\0') != std::string::npos) return encode_netstring("TEMP result contains a NUL byte");
      if (result.value.size() + 3 > kMaxSocketmapReply) return encode_netstring("TEMP result too long");
      std::string payload;
      payload.reserve(result.value.size() + 3);
      payload += "OK ";
      payload += result.value;
      return encode_netstring(payload);
    }
    case Outcome::not_found:
      return encode_netstring("NOTFOUND ");
    case Outcome::temp_error:
      return encode_netstring("TEMP " + sanitize_reason(result.reason, "temporary error"));
    case Outcome::perm_error:
      return encode_netstring("PERM " + sanitize_reason(result.reason, "permanent error"));
  }
  return encode_netstring("TEMP internal error");
}

std::optional<std::string> parse_tcp_request(std::string_view line, CodecError* error) {
  constexpr std::string_view kGet = "get ";
  if (line.substr(0, kGet.size()) != kGet) {
    set_error(error, "unsupported request (only \"get <key>\" is implemented)");
    return std::nullopt;
  }
  std::string_view quoted = line.substr(kGet.size());
  // Each key byte takes at most three bytes quoted; checking first avoids decoding junk.
  if (quoted.size() > 3 * kMaxKeyBytes) {
    set_error(error, "key longer than " + std::to_string(kMaxKeyBytes) + " bytes");
    return std::nullopt;
  }
  std::optional<std::string> key = hex_unquote(quoted);
  if (!key) {
    set_error(error, "malformed %XX encoding in key");
    return std::nullopt;
  }
  if (key->size() > kMaxKeyBytes) {
    set_error(error, "key longer than " + std::to_string(kMaxKeyBytes) + " bytes");
    return std::nullopt;
  }
  if (key->find('\0') != std::string::npos) {
    set_error(error, "key contains a NUL byte");
    return std::nullopt;
  }
  return key;
}

std::string format_tcp_reply(const LookupResult& result) {
  switch (result.outcome) {
    case Outcome::found: {
      // "200 " with empty text would give Postfix an empty value; never send one.
      if (result.value.empty()) return "400 empty%20result\n";
      std::string line = "200 " + hex_quote(result.value) + "\n";
      if (line.size() > kMaxTcpReplyLine) return "400 result%20too%20long\n";
      return line;
    }
    case Outcome::not_found:
      // Postfix requires a space and some text after the code; "500" alone is malformed.
      return "500 not found\n";
    case Outcome::temp_error:
      return "400 " + hex_quote(sanitize_reason(result.reason, "temporary error")) + "\n";
    case Outcome::perm_error:
      // tcp_table has no permanent-error code; 4xx makes Postfix defer, which is the
      // safe reading of "this lookup cannot be answered".
      return "400 " + hex_quote(sanitize_reason(result.reason, "permanent error")) + "\n";
  }
  return "400 internal%20error\n";
}

std::string hex_quote(std::string_view raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    auto u = static_cast<unsigned char>(c);
    // Whitespace (SP, TAB, LF, VT, FF, CR) and every non-printable byte are <= 0x20 or
    // >= 0x7f; '%' must be quoted so that unquoting is unambiguous.
    if (u <= 0x20 || u >= 0x7f || c == '%') {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0x0f];
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> hex_unquote(std::string_view quoted) {
  std::string out;
  out.reserve(quoted.size());
  for (size_t i = 0; i < quoted.size(); ++i) {
    if (quoted[i] != '%') {
      out += quoted[i];
      continue;
    }
    if (quoted.size() - i < 3) return std::nullopt;  // fewer than two bytes after '%'
    auto byte = hex_decode(quoted.substr(i + 1, 2));
    if (!byte) return std::nullopt;
    out += *byte;
    i += 2;
  }
  return out;
}

}  // namespace postern::lookupd
