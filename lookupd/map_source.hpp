// map_source.hpp - one Postfix mysql_table(5) / sqlite_table(5) .cf file, read unchanged.
//
// Keys: user, password, hosts, dbname (mysql); dbpath (sqlite); query; result_format
// (default %s); domain (pre-filter list: names, or /file paths with one name per line);
// expansion_limit (default 0 = none); retry_interval. The legacy
// select_field/table/where_field form is refused with a clear error. Other Postfix keys
// that do not change answers (idle_interval, tls_*, option_*) are accepted and ignored;
// unknown keys are ignored with a warning, as Postfix ignores them. hosts: separated by
// commas and/or whitespace, none = "localhost" (dict_mysql.c); dbname is required for
// mysql, dbpath for sqlite. domain: "type:table" and "!name" entries, and a list that
// names no domain at all, are refused; files may hold several names per line, '#' comments.
#pragma once

#include "common/result.hpp"
#include "common/sql.hpp"

#include <string>
#include <vector>

namespace postern::lookupd {

struct MapSource {
  std::string path;           // the .cf file, for logs and the query tool
  sql::Endpoint endpoint;
  std::string query;          // template, with %s %u %d %[1-9] %S %U %D %%
  std::string result_format = "%s";
  std::vector<std::string> domains;  // lower-case; empty = no pre-filter
  long expansion_limit = 0;
};

// driver: which table type the file is (mysql_table(5) or sqlite_table(5)). A .cf file
// path ending in "sqlite" does not decide this; the caller says.
Result<MapSource> load_map_source(const std::string& path, sql::Driver driver);

}  // namespace postern::lookupd
