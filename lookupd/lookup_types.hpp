// lookup_types.hpp - the answer of one map lookup, shared by the codecs, cache and server.
#pragma once

#include <string>

namespace postern::lookupd {

enum class Outcome {
  found,      // value is non-empty
  not_found,
  temp_error, // database down, query failed, expansion_limit exceeded: Postfix defers
  perm_error  // bad request (unknown map, NUL byte, key too long)
};

struct LookupResult {
  Outcome outcome = Outcome::not_found;
  std::string value;   // for found
  std::string reason;  // for temp_error/perm_error; safe to send to the client and log

  static LookupResult found(std::string v) { return {Outcome::found, std::move(v), {}}; }
  static LookupResult not_found() { return {Outcome::not_found, {}, {}}; }
  static LookupResult temp(std::string why) { return {Outcome::temp_error, {}, std::move(why)}; }
  static LookupResult perm(std::string why) { return {Outcome::perm_error, {}, std::move(why)}; }
};

}  // namespace postern::lookupd
