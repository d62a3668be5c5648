// query_template.cpp - the mysql_table(5)/sqlite_table(5) '%' expansions of `query` and
// `result_format`, with Postfix's rule that a key or value lacking a part the template
// uses is skipped rather than expanded to something empty (db_common.c semantics).
#include "lookupd/query_template.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace postern::lookupd {

namespace {

enum class Mode { query, result };

// What a template takes from the lookup key and from a result value. Postfix checks these
// before expanding, so an expansion never has to invent a missing part.
struct Needs {
  bool key_user = false;
  bool key_domain = false;
  int key_labels = 0;  // highest %1..%9
  bool value_user = false;
  bool value_domain = false;
};

// An address split at its last '@', as Postfix does (a local part may itself hold '@').
struct Parts {
  bool has_at = false;
  std::string_view local;   // whole string when !has_at
  std::string_view domain;  // empty when !has_at
};

Parts split_at_last_at(std::string_view s) {
  size_t at = s.rfind('@');
  if (at == std::string_view::npos) return {false, s, {}};
  return {true, s.substr(0, at), s.substr(at + 1)};
}

// A domain's labels; empty ones are kept so that "a..b" or "a.b." never quietly lines up
// a different label than the admin expects (such keys are skipped instead).
std::vector<std::string_view> labels_of(std::string_view domain) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  for (;;) {
    size_t dot = domain.find('.', begin);
    if (dot == std::string_view::npos) {
      out.push_back(domain.substr(begin));
      return out;
    }
    out.push_back(domain.substr(begin, dot - begin));
    begin = dot + 1;
  }
}

// Fills needs; returns the offending text on an unknown or dangling '%'.
Result<Needs> scan(std::string_view tmpl, Mode mode) {
  Needs n;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '%') continue;
    if (i + 1 == tmpl.size()) return Error{"'%' at the end of the template (write %% for a literal %)"};
    char c = tmpl[++i];
    switch (c) {
      case '%':
      case 's':
      case 'S':
        break;
      case 'u':
        (mode == Mode::query ? n.key_user : n.value_user) = true;
        break;
      case 'd':
        (mode == Mode::query ? n.key_domain : n.value_domain) = true;
        break;
      case 'U':
        n.key_user = true;
        break;
      case 'D':
        n.key_domain = true;
        break;
      default:
        if (c >= '1' && c <= '9') {
          n.key_domain = true;
          n.key_labels = std::max(n.key_labels, c - '0');
          break;
        }
        return Error{fmt::format("unknown expansion %{} (known: %% %s %u %d %S %U %D %1..%9)", c)};
    }
  }
  return n;
}

// Whether the key has every part the template takes from it.
bool key_satisfies(const Needs& n, std::string_view key) {
  Parts k = split_at_last_at(key);
  if (n.key_domain && (!k.has_at || k.domain.empty())) return false;
  if (n.key_user && k.has_at && k.local.empty()) return false;
  if (n.key_labels > 0) {
    auto labels = labels_of(k.domain);
    if (labels.size() < static_cast<size_t>(n.key_labels)) return false;
    for (int i = 1; i <= n.key_labels; ++i)
      if (labels[labels.size() - static_cast<size_t>(i)].empty()) return false;
  }
  return true;
}

bool value_satisfies(const Needs& n, std::string_view value) {
  Parts v = split_at_last_at(value);
  if (n.value_domain && (!v.has_at || v.domain.empty())) return false;
  if (n.value_user && v.has_at && v.local.empty()) return false;
  return true;
}

// REQUIRES: tmpl passed scan(), and key/value satisfy its needs. In a query, value is the
// key; in a result_format, value is the column value and upper case/digits read the key.
Result<std::string> expand(std::string_view tmpl, std::string_view value, std::string_view key, const Escaper* escape) {
  Parts v = split_at_last_at(value);
  Parts k = split_at_last_at(key);
  std::vector<std::string_view> labels = labels_of(k.domain);
  std::string out;
  out.reserve(tmpl.size() + value.size());
  auto put = [&](std::string_view piece) -> Status {
    if (!escape) {
      out += piece;
      return Status::Ok();
    }
    auto quoted = (*escape)(piece);
    if (!quoted) return quoted.error();
    out += *quoted;
    return Status::Ok();
  };
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '%') {
      out += tmpl[i];
      continue;
    }
    char c = tmpl[++i];
    Status st;
    switch (c) {
      case '%': out += '%'; break;
      case 's': st = put(value); break;
      case 'u': st = put(v.local); break;
      case 'd': st = put(v.domain); break;
      case 'S': st = put(key); break;
      case 'U': st = put(k.local); break;
      case 'D': st = put(k.domain); break;
      default: st = put(labels[labels.size() - static_cast<size_t>(c - '0')]); break;
    }
    if (!st) return st.error();
  }
  return out;
}

}  // namespace

Result<std::optional<std::string>> expand_query(std::string_view tmpl, std::string_view key, const Escaper& escape) {
  auto needs = scan(tmpl, Mode::query);
  if (!needs) return Error{fmt::format("invalid query template \"{}\": {}", tmpl, needs.error().message)};
  // Postfix never sends a query for an empty key.
  if (key.empty() || !key_satisfies(*needs, key)) return std::optional<std::string>();
  auto text = expand(tmpl, key, key, &escape);
  if (!text) return text.error();
  return std::optional<std::string>(std::move(*text));
}

std::optional<std::string> expand_result(std::string_view format, std::string_view value, std::string_view key) {
  auto needs = scan(format, Mode::result);
  if (!needs || value.empty() || !value_satisfies(*needs, value) || !key_satisfies(*needs, key)) return std::nullopt;
  auto text = expand(format, value, key, nullptr);
  if (!text) return std::nullopt;
  return std::move(*text);
}

bool result_key_ok(std::string_view format, std::string_view key) {
  auto needs = scan(format, Mode::result);
  return needs && key_satisfies(*needs, key);
}

Status check_template(std::string_view tmpl) {
  auto needs = scan(tmpl, Mode::query);
  if (!needs) return needs.error();
  return Status::Ok();
}

}  // namespace postern::lookupd
