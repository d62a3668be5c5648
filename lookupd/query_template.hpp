// query_template.hpp - mysql_table(5) expansions in `query` and `result_format`.
//
// query: %% -> %; %s -> key; %u -> local part (whole key if no @; suppressed if the
// local part is empty); %d -> domain (suppressed if no @ or empty domain); %1..%9 -> the
// n-th domain label counted from the right (suppressed if missing or empty); %S %U %D ->
// the same as %s %u %d. An empty key is suppressed. Every expanded value is passed through `escape` (SQL quoting by the
// connector). "Suppressed" means the query is not run and the source answers not found.
// Any other %x is an error.
//
// result_format: %s -> the result value; %u/%d -> parts of the result value;
// %S %U %D %1..%9 -> parts of the lookup key (mysql_table(5): "The upper-case and decimal
// digit expansions interpolate the parts of the input key rather than the result"); %%.
// A value whose needed part is missing, or an empty value, is skipped (not an error), as
// Postfix does. No escaping. The key of an address has its parts split at the last '@'.
#pragma once

#include "common/result.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace postern::lookupd {

using Escaper = std::function<Result<std::string>(std::string_view)>;

// Ok(nullopt) = suppressed. Error = bad template or the escaper failed.
Result<std::optional<std::string>> expand_query(std::string_view tmpl, std::string_view key, const Escaper& escape);

// nullopt = this value is skipped.
std::optional<std::string> expand_result(std::string_view format, std::string_view value, std::string_view key);

// False when `format` (a result_format) takes a part from the key (%U %D %1..%9) that key
// lacks: every value would be skipped, so Postfix does not run the query at all.
bool result_key_ok(std::string_view format, std::string_view key);

// Checks a template once at load time, so a bad one is a config error, not a runtime one.
Status check_template(std::string_view tmpl);

}  // namespace postern::lookupd
