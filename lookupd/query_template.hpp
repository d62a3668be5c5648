// query_template.hpp - mysql_table(5) expansions in `query` and `result_format`.
//
// query: %% -> %; %s -> key; %u -> local part (whole key if no @; suppressed if the
// local part is empty); %d -> domain (suppressed if no @ or empty domain); %1..%9 -> the
// n-th domain label counted from the right (suppressed if missing); %S %U %D -> as
// lower case. Every expanded value is passed through `escape` (SQL quoting by the
// connector). "Suppressed" means the query is not run and the source answers not found.
// Any other %x is an error.
//
// result_format: %s -> the result value; %u/%d/%1..%9 -> parts of the result value;
// %S %U %D -> parts of the lookup key; %%. A value whose needed part is missing is
// skipped (not an error), as Postfix does.
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

// Checks a template once at load time, so a bad one is a config error, not a runtime one.
Status check_template(std::string_view tmpl);

}  // namespace postern::lookupd
