// map_lookup.hpp - one named map: its .cf sources and Postfix's address fallbacks.
//
// A map combines one or more sources in order, like Postfix's `virtual_alias_maps = A, B`.
// For address maps the key is tried in steps, and each step runs across every source
// before the next step starts (mail_addr_find(3) over a map list):
//   1. user+ext@domain   (the full key)
//   2. user@domain       (extension removed, if recipient_delimiter is set and present)
//   3. @domain
// The first source that finds a value wins. An error in any source stops the lookup with
// temp_error, as maps_find() does. Keys are folded to lower case first. For alias maps a
// match on step 2 gets the extension put back into every result address
// (propagate_unmatched_extensions), as cleanup(8) does for virtual_alias_maps.
// Step 2 follows split_addr(3): cut at the first delimiter character, except when the
// local part starts with one, is postmaster/mailer-daemon/double-bounce, or (with '-' a
// delimiter) is owner-* or *-request.
#pragma once

#include "lookupd/lookup_types.hpp"
#include "lookupd/map_source.hpp"
#include "lookupd/query_template.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::lookupd {

enum class MapKind {
  plain,    // only the full key
  address,  // fallbacks (virtual_mailbox_maps)
  alias     // fallbacks + extension propagation (virtual_alias_maps)
};

struct MapDefinition {
  std::string name;
  MapKind kind = MapKind::plain;
  std::string recipient_delimiter = "+";  // each character is a delimiter, as in Postfix
  std::vector<MapSource> sources;
};

// What one source answered for one key.
struct SourceAnswer {
  Outcome outcome = Outcome::not_found;  // found, not_found or temp_error
  std::vector<std::string> values;       // raw column values, in row order, for found
  std::string reason;                    // for temp_error
};

// Runs one source's query for one (already lower-cased) key; the daemon backs this with
// SQL on a worker, the tests with a fake.
using SourceRunner = std::function<SourceAnswer(const MapSource& source, std::string_view key)>;

// One line per step tried, for the admin query command.
using TraceSink = std::function<void(std::string_view line)>;

// The keys tried, in order, for key under def (lower-cased; no duplicates).
std::vector<std::string> fallback_keys(const MapDefinition& def, std::string_view key);

// The whole lookup. Applies `domain` pre-filters, result_format and expansion_limit,
// joins several values with ",", never returns an empty found value.
LookupResult lookup(const MapDefinition& def, std::string_view key, const SourceRunner& run,
                    const TraceSink& trace = nullptr);

// The SQL-backed SourceRunner body: expands the query with conn's escaping, runs it,
// returns every column of every row in order (NULLs and empty strings skipped), as
// dict_mysql/dict_sqlite do; for the usual one-column query that is the first column.
// Suppressed queries (see query_template.hpp) answer not_found without running. A
// statement that returns no result set is temp_error, or not_found when the source's
// require_result_set is off (dict_mysql.c).
SourceAnswer run_sql_source(const MapSource& source, std::string_view key, sql::Connection& conn,
                            const TraceSink& trace = nullptr);

// run_sql_source() in two halves, for a caller that runs the statement itself (the
// loop's non-blocking connection): prepare_sql_source() either answers at once (a
// suppressed query, a failed expansion or escape) or gives the statement to run, and
// answer_from_rows() turns what the statement returned into the answer.
struct PreparedSql {
  std::optional<SourceAnswer> answer;  // set: nothing to run
  std::string statement;
};
PreparedSql prepare_sql_source(const MapSource& source, std::string_view key, const Escaper& escape,
                               const TraceSink& trace = nullptr);
SourceAnswer answer_from_rows(const MapSource& source, const Result<sql::Rows>& rows,
                              const TraceSink& trace = nullptr);

// A lookup whose source queries run one at a time elsewhere, between calls (the loop's
// non-blocking SQL): given the answers known so far, resume_lookup() gives either the
// result or the next (source, key) to ask, whose answer the caller adds before calling
// again. The same questions in the same order as lookup() asks them, so the result is
// lookup()'s.
struct KnownAnswer {
  const MapSource* source = nullptr;  // one of def.sources
  std::string key;
  SourceAnswer answer;
};
using KnownAnswers = std::vector<KnownAnswer>;
struct ResumedLookup {
  std::optional<LookupResult> result;  // set when the lookup is complete
  std::optional<KnownAnswer> next;     // otherwise: the question to answer next
};
ResumedLookup resume_lookup(const MapDefinition& def, std::string_view key, const KnownAnswers& known);

}  // namespace postern::lookupd
