// strings.hpp - small ASCII string helpers shared by the config readers and codecs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace postern {

std::string_view trim(std::string_view s);
std::string to_lower_ascii(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
// Splits on any of `separators`, dropping empty pieces ("a, b  c" -> a b c with ", ").
std::vector<std::string> split_list(std::string_view s, std::string_view separators = ", \t\r\n");
// Cuts a file's text at every '\n' (kept out of the lines; a '\r' before it stays): line N
// of the file is element N-1. A last line without '\n' counts; a final '\n' adds none.
std::vector<std::string_view> split_lines(std::string_view text);

}  // namespace postern
