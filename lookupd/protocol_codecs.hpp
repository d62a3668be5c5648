// protocol_codecs.hpp - the two Postfix table protocols lookupd speaks.
//
// socketmap_table(5): request netstring "<name> <key>", reply netstring "OK <value>",
// "NOTFOUND ", "TEMP <reason>" or "PERM <reason>".
// tcp_table(5): request line "get <%XX-encoded key>", reply "200 <encoded value>",
// "500 not found", "400 <encoded reason>". hex_quote encodes '%', whitespace and every
// byte that is not printable ASCII, as Postfix's hex_quote(3).
#pragma once

#include "lookupd/lookup_types.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace postern::lookupd {

constexpr size_t kMaxKeyBytes = 10000;          // socketmap_max_query_size
constexpr size_t kMaxSocketmapReply = 100000;   // socketmap_max_reply_size
constexpr size_t kMaxTcpReplyLine = 4096;       // DICT_TCP_MAXLEN, including the LF

struct SocketmapRequest {
  std::string map;
  std::string key;
};
// Splits at the first space. Error: no space, empty name, key too long or holding NUL.
struct CodecError {
  std::string reason;
};
std::optional<SocketmapRequest> parse_socketmap_request(std::string_view payload, CodecError* error);
// The whole netstring. Too-long values become "TEMP result too long".
std::string format_socketmap_reply(const LookupResult& result);

// "get <key>" -> decoded key. Error: other verbs, bad %XX, NUL, too long.
std::optional<std::string> parse_tcp_request(std::string_view line, CodecError* error);
// One line including "\n". Too-long values become "400 result too long".
std::string format_tcp_reply(const LookupResult& result);

std::string hex_quote(std::string_view raw);
// nullopt on a malformed %XX.
std::optional<std::string> hex_unquote(std::string_view quoted);

}  // namespace postern::lookupd
