// config_file_dialects.hpp - private to common/config_file*.cpp: the file reader both
// dialects share, and the Dovecot dialect's parser (common/config_file_dovecot.cpp).
#pragma once

#include "common/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace postern::config_detail {

// Reads a whole config file. open_failed (optional) tells !include_try apart from other
// problems: Dovecot ignores a file it cannot open there, but not one it cannot read.
Status read_config_text(const std::string& path, std::string* text, bool* open_failed = nullptr);

struct DovecotSetting {
  std::string key;
  std::string value;
  int line = 0;
};

// Parses text (named origin in errors) in Dovecot's .conf.ext dialect, following its
// !include lines; appends every "key = value" line to out in file order, duplicates
// included (the caller lets a later one win).
Status parse_dovecot(std::string_view text, const std::string& origin, std::vector<DovecotSetting>& out);

}  // namespace postern::config_detail
