// config_file_test_support.hpp - shared by the config_file tests: parse text in the
// Postfix dialect and expect success or an error.
#pragma once

#include "common/config_file.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace config_test {

inline postern::ConfigFile parse_ok(std::string_view text) {
  auto r = postern::ConfigFile::parse(text, "test.cf");
  INFO((r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  return std::move(r).value();
}

inline std::string parse_error(std::string_view text) {
  auto r = postern::ConfigFile::parse(text, "test.cf");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

}  // namespace config_test
