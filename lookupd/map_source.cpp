// map_source.cpp - reads one Postfix mysql_table(5) / sqlite_table(5) .cf file into a
// MapSource, refusing at load time what would otherwise fail (or silently differ) later.
#include "lookupd/map_source.hpp"

#include "common/config_file.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "lookupd/query_template.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <set>

namespace postern::lookupd {

namespace {

// Keys mysql_table(5) / sqlite_table(5) define (plus require_result_set for sqlite, see
// map_source.hpp). The TLS and option-file keys are checked in check_unsupported_keys();
// the others we do not use only tune connections and so do not change answers.
const std::set<std::string, std::less<>> kMysqlKeys = {
    "user", "password", "hosts", "dbname", "query", "result_format", "domain", "expansion_limit",
    "retry_interval", "idle_interval", "charset", "option_file", "option_group", "require_result_set",
    "tls_cert_file", "tls_key_file", "tls_CAfile", "tls_CApath", "tls_ciphers", "tls_verify_cert",
    "table", "select_field", "where_field", "additional_conditions"};
const std::set<std::string, std::less<>> kSqliteKeys = {
    "dbpath", "query", "result_format", "domain", "expansion_limit", "require_result_set",
    "table", "select_field", "where_field", "additional_conditions"};

// Nested /file entries are followed like Postfix's match lists do; the bound only stops a
// file that (indirectly) lists itself.
constexpr int kMaxDomainFileDepth = 8;

Error file_error(const std::string& path, std::string_view what) { return Error{fmt::format("{}: {}", path, what)}; }

Status add_domain_entries(const std::string& cf_path, std::string_view list, int depth,
                          std::vector<std::string>& out);

Status add_domain_file(const std::string& cf_path, const std::string& file, int depth, std::vector<std::string>& out) {
  if (depth >= kMaxDomainFileDepth)
    return file_error(cf_path, fmt::format("domain: {}: files nested too deeply (a file listing itself?)", file));
  std::ifstream in(file);
  if (!in) return file_error(cf_path, fmt::format("domain: cannot open {}: {}", file, std::strerror(errno)));
  std::string line;
  while (std::getline(in, line)) {
    // '#' cannot occur in a domain name, so it starts a comment wherever it is.
    std::string_view text = line;
    text = text.substr(0, text.find('#'));
    auto st = add_domain_entries(cf_path, text, depth + 1, out);
    if (!st) return st;
  }
  if (in.bad()) return file_error(cf_path, fmt::format("domain: read error on {}", file));
  return Status::Ok();
}

Status add_domain_entries(const std::string& cf_path, std::string_view list, int depth,
                          std::vector<std::string>& out) {
  for (const std::string& item : split_list(list)) {
    if (item[0] == '/') {
      auto st = add_domain_file(cf_path, item, depth, out);
      if (!st) return st;
    } else if (item[0] == '!') {
      return file_error(cf_path, fmt::format("domain: negated entry '{}' is not supported; list only the domains "
                                             "to look up", item));
    } else if (item.find(':') != std::string::npos) {
      return file_error(cf_path, fmt::format("domain: '{}': type:table entries are not supported; list the names, "
                                             "or put them in a file (one per line) and give its absolute path",
                                             item));
    } else {
      out.push_back(to_lower_ascii(item));
    }
  }
  return Status::Ok();
}

Status load_common(const ConfigFile& cf, const std::string& path, MapSource& src) {
  const std::string* query = cf.find("query");
  if (!query) {
    if (cf.has("select_field") || cf.has("table") || cf.has("where_field"))
      return file_error(path, "the legacy select_field/table/where_field form is not supported; write it as "
                              "query = SELECT ...");
    return file_error(path, "query is required (for example: query = SELECT 1 FROM virtual_domains WHERE "
                            "name='%s')");
  }
  if (query->empty()) return file_error(path, "query is empty");
  if (auto st = check_template(*query); !st) return file_error(path, fmt::format("query: {}", st.error().message));
  src.query = *query;

  src.result_format = cf.get("result_format", "%s");
  if (src.result_format.empty()) return file_error(path, "result_format is empty (the default is %s)");
  if (auto st = check_template(src.result_format); !st)
    return file_error(path, fmt::format("result_format: {}", st.error().message));

  auto limit = cf.get_int("expansion_limit", 0, 0, LONG_MAX);
  if (!limit) return limit.error();
  src.expansion_limit = *limit;

  auto require = cf.get_bool("require_result_set", true);
  if (!require) return require.error();
  src.require_result_set = *require;

  std::string domain = std::string(trim(cf.get("domain")));
  if (!domain.empty()) {
    if (auto st = add_domain_entries(path, domain, 0, src.domains); !st) return st;
    // Postfix's filter with no names matches nothing, while our empty list means "no
    // filter": refuse rather than silently look up every key.
    if (src.domains.empty())
      return file_error(path, "domain: the list names no domains, so no key would ever be looked up");
  }
  return Status::Ok();
}

// The TLS keys that name something to use; any of them set means "connect with TLS".
constexpr std::string_view kTlsKeys[] = {"tls_CAfile", "tls_CApath", "tls_cert_file", "tls_key_file", "tls_ciphers"};

// Refuses what we cannot honour where ignoring it would leak the password or quietly
// connect elsewhere; warns where ignoring it only differs from Postfix. Reasons:
// map_source.hpp.
Status check_unsupported_keys(const ConfigFile& cf, const std::string& path) {
  std::vector<std::string> asks_tls;
  for (std::string_view key : kTlsKeys)
    if (!trim(cf.get(key)).empty()) asks_tls.emplace_back(key);
  if (!trim(cf.get("tls_verify_cert")).empty()) {
    auto verify = cf.get_bool("tls_verify_cert", false);
    if (!verify) return verify.error();
    if (*verify) asks_tls.emplace_back("tls_verify_cert");
  }
  if (!asks_tls.empty()) {
    std::string keys;
    for (const std::string& k : asks_tls) keys += (keys.empty() ? "" : ", ") + k;
    return file_error(path, fmt::format("TLS to the database (tls_*) is not supported yet; {} ask(s) for it, and "
                                        "connecting without TLS would send the password in cleartext. Connect over "
                                        "a unix-domain socket or a trusted network and remove the tls_* settings",
                                        keys));
  }
  if (!trim(cf.get("option_file")).empty())
    return file_error(path, fmt::format("line {}: option_file is not supported (MySQL option files are not read); "
                                        "put the host, user and password it holds in this file instead",
                                        cf.line_of("option_file")));
  if (!trim(cf.get("option_group")).empty())
    log_warning("{} line {}: option_group = {}: MySQL option files are not read, so the settings in that group "
                "(and in [client]) are ignored; this file alone says where and how to connect",
                path, cf.line_of("option_group"), trim(cf.get("option_group")));
  return Status::Ok();
}

Status load_mysql(const ConfigFile& cf, const std::string& path, MapSource& src) {
  if (auto st = check_unsupported_keys(cf, path); !st) return st;
  sql::Endpoint& ep = src.endpoint;
  ep.driver = sql::Driver::mysql;
  ep.user = cf.get("user");
  ep.password = cf.get("password");
  ep.dbname = std::string(trim(cf.get("dbname")));
  if (ep.dbname.empty()) return file_error(path, "dbname is required");
  // mysql_table(5) separates hosts with commas and/or whitespace; none means localhost.
  ep.hosts = split_list(cf.get("hosts"));
  if (ep.hosts.empty()) ep.hosts.push_back("localhost");
  for (const std::string& h : ep.hosts) {
    auto spec = sql::parse_mysql_host(h);
    if (!spec) return file_error(path, fmt::format("hosts: '{}': {}", h, spec.error().message));
  }
  if (cf.has("retry_interval")) {
    auto retry = cf.get_duration("retry_interval", ep.retry_interval);
    if (!retry) return retry.error();
    ep.retry_interval = *retry;
  }
  return Status::Ok();
}

Status load_sqlite(const ConfigFile& cf, const std::string& path, MapSource& src) {
  src.endpoint.driver = sql::Driver::sqlite;
  src.endpoint.dbname = std::string(trim(cf.get("dbpath")));
  if (src.endpoint.dbname.empty()) return file_error(path, "dbpath is required (the SQLite database file)");
  return Status::Ok();
}

}  // namespace

Result<MapSource> load_map_source(const std::string& path, sql::Driver driver) {
  auto cf = ConfigFile::load(path);
  if (!cf) return cf.error();
  MapSource src;
  src.path = path;
  Status st = driver == sql::Driver::mysql ? load_mysql(*cf, path, src) : load_sqlite(*cf, path, src);
  if (!st) return st.error();
  if (st = load_common(*cf, path, src); !st) return st.error();

  // Postfix ignores unknown names too; a warning catches typos such as "querry".
  const auto& known = driver == sql::Driver::mysql ? kMysqlKeys : kSqliteKeys;
  for (const std::string& key : cf->keys())
    if (known.find(key) == known.end())
      log_warning("{} line {}: ignoring unknown parameter '{}'", path, cf->line_of(key), key);
  return src;
}

}  // namespace postern::lookupd
