// config_file.hpp - `key = value` files in the Postfix .cf dialect.
//
// Rules (postconf(5), cfg_parser): a logical line starts with non-whitespace text; a
// line that starts with whitespace continues the previous logical line (joined with one
// space); lines whose first non-blank character is `#` and blank lines are ignored; the
// value is everything after the first `=`, trimmed. A later duplicate key wins.
// Keys are case-sensitive. No `$name` expansion (mysql_table(5) does none either).
// Used for the Postfix map .cf files and for each daemon's own config file.
#pragma once

#include "common/result.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace postern {

// postfix: the rules above. dovecot: Dovecot's .conf.ext files (dovecot-sql.conf.ext):
// `key = value`, `#` comment lines, a trailing backslash continues a line, values may be
// double-quoted; see config_file_dovecot.cpp for the exact rules.
enum class ConfigDialect { postfix, dovecot };

class ConfigFile {
 public:
  static Result<ConfigFile> load(const std::string& path, ConfigDialect dialect = ConfigDialect::postfix);
  // origin names the text in error messages (usually the path).
  static Result<ConfigFile> parse(std::string_view text, std::string origin,
                                  ConfigDialect dialect = ConfigDialect::postfix);

  const std::string& origin() const { return origin_; }
  bool has(std::string_view key) const;
  // nullptr when absent.
  const std::string* find(std::string_view key) const;
  std::string get(std::string_view key, std::string_view fallback = "") const;
  // Integers, in [min, max]; errors name origin, line and key.
  Result<long> get_int(std::string_view key, long fallback, long min, long max) const;
  // yes/no/true/false/1/0, case-insensitive.
  Result<bool> get_bool(std::string_view key, bool fallback) const;
  // A duration: a number with an optional unit s (default), ms, m, h, d, as Postfix time values.
  Result<std::chrono::milliseconds> get_duration(std::string_view key, std::chrono::milliseconds fallback) const;
  // Octal file mode such as 0660.
  Result<unsigned> get_mode(std::string_view key, unsigned fallback) const;
  // A byte size as Dovecot writes them: a number with an optional unit b, k, M, G, T
  // (powers of 1024, case-insensitive), e.g. 10M, 512k, 0.
  Result<uint64_t> get_size(std::string_view key, uint64_t fallback) const;
  // All keys in file order (first occurrence).
  std::vector<std::string> keys() const;
  // Line number of key's last definition, 0 if absent.
  int line_of(std::string_view key) const;
  // "ORIGIN line N: KEY: WHAT", the form of every error about a key's value.
  Error error(std::string_view key, std::string_view what) const;

 private:
  struct Entry {
    std::string value;
    int line = 0;
  };
  std::string origin_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> order_;
};

}  // namespace postern
