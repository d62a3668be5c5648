// passdb_fields.hpp - how the passdbs (passdb_sql.cpp, passdb_passwd_file.cpp) apply the
// fields a lookup returns, after Dovecot 2.3 src/auth/auth-request.c. Internal to authd.
#pragma once

#include "common/strings.hpp"

#include <string>
#include <string_view>

namespace postern::authd {

// get_updated_username(): "user" replaces the whole name; "username" replaces the part
// before the first '@' and keeps the domain, unless it brings its own '@'; "domain"
// replaces the domain, or appends one. Applied in field order, so a row with username
// then domain gives username@domain. An empty result means the lookup must fail.
inline std::string updated_username(const std::string& old, std::string_view field, std::string_view value) {
  if (field == "user") return std::string(value);
  size_t at = old.find('@');
  if (field == "username") {
    if (value.find('@') != std::string_view::npos || at == std::string::npos) return std::string(value);
    return std::string(value) + old.substr(at);
  }
  return (at == std::string::npos ? old : old.substr(0, at)) + "@" + std::string(value);
}

inline bool is_username_field(std::string_view name) {
  return name == "user" || name == "username" || name == "domain";
}

// Dovecot sets nopassword for any value, even "0". A column or field that says "no" must
// not open an account, so those spellings count as unset here (the safe direction); an
// empty value (passwd-file's bare "nopassword") counts as set, as in Dovecot.
inline bool nopassword_value(std::string_view v) {
  v = trim(v);
  return !(v == "0" || iequals(v, "n") || iequals(v, "no") || iequals(v, "false"));
}

// A password that is empty, or "{SCHEME}" with nothing after it, as password_get_scheme()
// sees it: only then does nopassword take effect ("nopassword set but password is non-empty").
inline bool empty_password(std::string_view p) {
  if (!p.empty() && p.front() == '{') {
    size_t close = p.find('}');
    if (close != std::string_view::npos) p.remove_prefix(close + 1);
  }
  return p.empty();
}

}  // namespace postern::authd
