// dovecot_template.cpp - Dovecot %-variable expansion (contract: dovecot_template.hpp).
// Follows Dovecot 2.3 src/lib/var-expand.c and src/auth/auth-request-var-expand.c.
#include "common/dovecot_template.hpp"

#include "common/encoding.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace postern {
namespace {

// Dovecot's own modifier letters that we do not implement. Naming them in the error is
// kinder than "unknown variable %E" when someone copies %E or %M from the Dovecot wiki.
constexpr std::string_view kUnsupportedModifiers = "EXRHNMDT";

// "%[<offset>.]<width>" as var-expand.c reads it: a negative offset counts from the end,
// a positive width truncates, a negative width drops that many characters from the end,
// and a leading 0 pads with zeros up to the width instead of truncating.
struct Slice {
  long offset = 0;
  long width = 0;
  bool zero_padding = false;
};

// The user name split the way Dovecot does it: %n is everything before the FIRST '@'
// (t_strcut) and %d everything after it (strchr), empty when there is no '@'. Dovecot
// keeps domain_first/domain_last for the other readings; we do not offer them.
std::string_view user_part(std::string_view user) { return user.substr(0, user.find('@')); }
std::string_view domain_part(std::string_view user) {
  size_t at = user.find('@');
  return at == std::string_view::npos ? std::string_view() : user.substr(at + 1);
}

// Returns the variable's value, or nullopt when the name is unknown. vars may be null
// (check only): then any known name yields an empty value.
std::optional<std::string> lookup_short(char key, const DovecotVars* vars) {
  static const DovecotVars empty;
  const DovecotVars& v = vars ? *vars : empty;
  switch (key) {
    case 'u': return v.user;
    case 'n': return std::string(user_part(v.user));
    case 'd': return std::string(domain_part(v.user));
    case 's': return v.service;
    case 'h': return v.home;
    case 'r': return v.rip;
    case 'l': return v.lip;
    default: return std::nullopt;
  }
}

std::optional<std::string> lookup_long(std::string_view name, const DovecotVars* vars) {
  if (name == "user") return lookup_short('u', vars);
  if (name == "username") return lookup_short('n', vars);
  if (name == "domain") return lookup_short('d', vars);
  if (name == "service") return lookup_short('s', vars);
  if (name == "home") return lookup_short('h', vars);
  if (name == "rip") return lookup_short('r', vars);
  if (name == "lip") return lookup_short('l', vars);
  return std::nullopt;
}

std::string apply_slice(std::string value, const Slice& s) {
  if (s.offset < 0) {
    size_t from_end = static_cast<size_t>(-s.offset);
    if (value.size() > from_end) value.erase(0, value.size() - from_end);
  } else {
    value.erase(0, std::min(value.size(), static_cast<size_t>(s.offset)));
  }
  if (s.width == 0) return value;
  if (s.zero_padding) {
    if (s.width > 0 && value.size() < static_cast<size_t>(s.width))
      value.insert(0, static_cast<size_t>(s.width) - value.size(), '0');
    return value;
  }
  if (s.width > 0) {
    value.resize(std::min(value.size(), static_cast<size_t>(s.width)));
  } else {
    size_t drop = static_cast<size_t>(-s.width);
    value.resize(value.size() > drop ? value.size() - drop : 0);
  }
  return value;
}

// Reads digits at tmpl[i...]; false if the number is absurdly long.
bool read_number(std::string_view tmpl, size_t& i, long& out) {
  size_t start = i;
  while (i < tmpl.size() && tmpl[i] >= '0' && tmpl[i] <= '9') {
    if (i - start >= 6) return false;
    out = out * 10 + (tmpl[i] - '0');
    ++i;
  }
  return true;
}

// One pass shared by expansion and the load-time check. out == nullptr: check only.
Status process(std::string_view tmpl, const DovecotVars* vars, const TemplateEscaper* escape, std::string* out) {
  size_t i = 0;
  while (i < tmpl.size()) {
    size_t pct = tmpl.find('%', i);
    if (out) out->append(tmpl.substr(i, pct == std::string_view::npos ? std::string_view::npos : pct - i));
    if (pct == std::string_view::npos) break;
    size_t start = pct;
    i = pct + 1;
    auto bad = [&](std::string_view why) {
      return Error{fmt::format("template \"{}\": {} at \"{}\"", tmpl, why, tmpl.substr(start, i + 1 - start))};
    };

    // [-][0]<width> or [-][0]<offset>.[0][-]<width>, as var-expand.c reads them.
    Slice slice;
    long sign = 1;
    if (i < tmpl.size() && tmpl[i] == '-') sign = -1, ++i;
    if (i < tmpl.size() && tmpl[i] == '0') slice.zero_padding = true, ++i;
    long number = 0;
    if (!read_number(tmpl, i, number)) return bad("width too large");
    // The sign belongs to the offset: without a '.', "%-2n" is simply width 2.
    slice.width = number;
    if (i < tmpl.size() && tmpl[i] == '.') {
      ++i;
      slice.offset = sign * number;
      slice.zero_padding = false;
      if (i < tmpl.size() && tmpl[i] == '0') slice.zero_padding = true, ++i;
      long wsign = 1;
      if (i < tmpl.size() && tmpl[i] == '-') wsign = -1, ++i;
      number = 0;
      if (!read_number(tmpl, i, number)) return bad("width too large");
      slice.width = wsign * number;
    }

    std::string cases;  // L and U, applied in order
    while (i < tmpl.size() && (tmpl[i] == 'L' || tmpl[i] == 'U')) cases += tmpl[i++];
    if (i >= tmpl.size()) return Error{fmt::format("template \"{}\": ends inside a '%' variable", tmpl)};
    if (kUnsupportedModifiers.find(tmpl[i]) != std::string_view::npos)
      return bad(fmt::format("unsupported modifier '{}' (only L and U are)", tmpl[i]));

    std::optional<std::string> value;
    if (tmpl[i] == '%') {  // "%%"; Dovecot lets modifiers through here, they change nothing
      if (out) *out += '%';
      ++i;
      continue;
    }
    if (tmpl[i] == '{') {
      size_t close = tmpl.find('}', i);
      if (close == std::string_view::npos) return Error{fmt::format("template \"{}\": missing '}}'", tmpl)};
      std::string_view name = tmpl.substr(i + 1, close - i - 1);
      i = close;
      value = lookup_long(name, vars);
      if (!value) return bad(fmt::format("unknown variable %{{{}}}", name));
    } else {
      value = lookup_short(tmpl[i], vars);
      if (!value) return bad(fmt::format("unknown variable %{}", tmpl[i]));
    }
    ++i;
    if (!out) continue;

    std::string v = std::move(*value);
    for (char c : cases)
      for (char& ch : v) {
        if (c == 'L' && ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        if (c == 'U' && ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
      }
    // Slicing before escaping: Dovecot slices the escaped text, which can cut an SQL
    // escape sequence in half; the user-visible result is the same for clean input.
    v = apply_slice(std::move(v), slice);
    if (escape && *escape) {
      Result<std::string> escaped = (*escape)(v);
      if (!escaped) return escaped.error();
      v = std::move(escaped).value();
    }
    *out += v;
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> expand_dovecot_template(std::string_view tmpl, const DovecotVars& vars,
                                            const TemplateEscaper& escape) {
  std::string out;
  out.reserve(tmpl.size() + vars.user.size() * 2);
  if (Status st = process(tmpl, &vars, &escape, &out); !st) return st.error();
  return out;
}

Result<std::string> dovecot_template_key(std::string_view tmpl, const DovecotVars& vars) {
  // Each value as <hex>: no value can spill into the template's own text, so the template
  // parses the key back one way only.
  return expand_dovecot_template(tmpl, vars, [](std::string_view v) -> Result<std::string> {
    return "<" + hex_encode(v) + ">";
  });
}

Status check_dovecot_template(std::string_view tmpl) { return process(tmpl, nullptr, nullptr, nullptr); }

}  // namespace postern
