// map_source.hpp - one Postfix mysql_table(5) / sqlite_table(5) .cf file, read unchanged.
//
// Keys: user, password, hosts, dbname (mysql); dbpath (sqlite); query; result_format
// (default %s); domain (pre-filter list: names, or /file paths with one name per line);
// expansion_limit (default 0 = none); retry_interval; require_result_set (default yes: a
// query that returns no result set is a temporary error; no: it is "not found"). The
// legacy select_field/table/where_field form is refused with a clear error. hosts:
// separated by commas and/or whitespace, none = "localhost" (dict_mysql.c); dbname is
// required for mysql, dbpath for sqlite. domain: "type:table" and "!name" entries, and a
// list that names no domain at all, are refused; files may hold several names per line,
// '#' comments.
//
// Keys we cannot honour are refused when ignoring them could leak or mislead:
//   tls_CAfile, tls_CApath, tls_cert_file, tls_key_file, tls_ciphers, and
//   tls_verify_cert = yes ask for TLS; connecting without it would send the password in
//   cleartext, so the file is refused. tls_verify_cert = no is accepted when no other
//   tls_* key asks for TLS: it only relaxes a check on a TLS session we never start.
//   option_file: the named file may carry the host, credentials or ssl-* settings Postfix
//   would use; we do not read MySQL option files, so the file is refused.
//   An empty value of any of these asks for nothing and is accepted.
//   option_group (Postfix 3.2+ default "client"): a non-empty value is accepted with a
//   warning that option-file groups are not read; an empty value is what disables them
//   in Postfix, which is what we do.
// require_result_set also applies to sqlite files, where Postfix has no such key and
// treats a statement without a result set as "not found": a lookup query that returns
// none is a mistake, and deferring mail shows it sooner than bouncing it.
// Other keys that do not change answers (idle_interval, charset) are accepted and
// ignored; unknown keys are ignored with a warning, as Postfix ignores them.
#pragma once

#include "common/result.hpp"
#include "common/sql.hpp"

#include <string>
#include <vector>

namespace postern::lookupd {

struct MapSource {
  std::string path;           // the .cf file, for logs and the query tool
  sql::Endpoint endpoint;
  // endpoint.key(), made once by load_lookupd_config() when the endpoint is final, for
  // the loop's per-lookup connection choice; empty otherwise.
  std::string endpoint_key;
  std::string query;          // template, with %s %u %d %[1-9] %S %U %D %%
  std::string result_format = "%s";
  std::vector<std::string> domains;  // lower-case; empty = no pre-filter
  long expansion_limit = 0;
  bool require_result_set = true;
};

// driver: which table type the file is (mysql_table(5) or sqlite_table(5)). A .cf file
// path ending in "sqlite" does not decide this; the caller says.
Result<MapSource> load_map_source(const std::string& path, sql::Driver driver);

}  // namespace postern::lookupd
