// encoding.hpp - base64 (RFC 4648, with padding) and hex codecs on byte strings.
//
// Decoders are strict: they return nullopt on any character outside the alphabet, on a
// wrong length or on misplaced padding, so callers can tell "bad data" from "empty data"
// (an empty input decodes to an empty string). Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace postern {

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// Lower-case hex; decoding accepts either case.
std::string hex_encode(std::string_view bytes);
std::optional<std::string> hex_decode(std::string_view text);

}  // namespace postern
