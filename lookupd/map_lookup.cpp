// map_lookup.cpp - one map lookup across its sources with Postfix's address fallbacks
// (mail_addr_find(3) over maps_find(3)), result_format, expansion_limit and, for alias
// maps, propagation of an unmatched address extension; plus the SQL-backed source runner.
#include "lookupd/map_lookup.hpp"

#include "common/strings.hpp"
#include "lookupd/query_template.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace postern::lookupd {

namespace {

struct Step {
  std::string key;
  std::string extension;  // on the extension-stripped step: the delimiter and what followed, unfolded
};

// Local parts Postfix's split_addr() never splits, whatever the delimiter.
bool never_split(std::string_view local, std::string_view delimiters) {
  if (iequals(local, "postmaster") || iequals(local, "mailer-daemon") || iequals(local, "double-bounce")) return true;
  // owner_request_special (default yes): with '-' as a delimiter, owner-foo and
  // foo-request are list conventions, not extensions.
  if (delimiters.find('-') != std::string_view::npos) {
    if (local.size() >= 6 && iequals(local.substr(0, 6), "owner-")) return true;
    if (local.size() > 8 && iequals(local.substr(local.size() - 8), "-request")) return true;
  }
  return false;
}

std::vector<Step> steps_for(const MapDefinition& def, std::string_view key) {
  std::vector<Step> steps;
  std::string full = to_lower_ascii(key);
  size_t at = full.rfind('@');
  if (def.kind == MapKind::plain || at == std::string::npos) {
    steps.push_back({std::move(full), {}});
    return steps;
  }
  std::string local = full.substr(0, at);
  std::string domain = full.substr(at + 1);
  steps.push_back({full, {}});

  // As split_addr(): cut at the first delimiter character, but not when the local part
  // starts with one (the user part would be empty), and not for the reserved names.
  const std::string& delims = def.recipient_delimiter;
  if (!delims.empty() && !never_split(local, delims)) {
    size_t cut = local.find_first_of(delims);
    // The extension is put back as the sender wrote it; folding only changes A-Z, so the
    // offsets into the original key are the same.
    if (cut != std::string::npos && cut > 0)
      steps.push_back({local.substr(0, cut) + "@" + domain, std::string(key.substr(cut, at - cut))});
  }
  // "@domain" for a key that is not already one; an empty domain has no catch-all.
  if (!local.empty() && !domain.empty()) steps.push_back({"@" + domain, {}});
  return steps;
}

// db_common_check_domain(): with a `domain` list, only user@domain keys with a non-empty
// local part and a listed domain are looked up.
bool passes_domain_filter(const MapSource& source, std::string_view key) {
  if (source.domains.empty()) return true;
  size_t at = key.rfind('@');
  if (at == std::string_view::npos || at == 0) return false;
  std::string_view domain = key.substr(at + 1);
  return std::find(source.domains.begin(), source.domains.end(), domain) != source.domains.end();
}

// As mail_addr_crunch() with an extension: before each address's last '@', or at its end.
// A lone "@otherdomain" is left alone: Postfix itself puts the original user (with its
// extension) in front of it.
std::string propagate_extension(std::string_view value, std::string_view extension) {
  std::string out;
  for (const std::string& addr : split_list(value, ",")) {
    std::string_view a = trim(addr);
    if (a.empty()) continue;
    if (!out.empty()) out += ',';
    size_t at = a.rfind('@');
    if (at == 0) {
      out += a;
    } else if (at == std::string_view::npos) {
      out += a;
      out += extension;
    } else {
      out += a.substr(0, at);
      out += extension;
      out += a.substr(at);
    }
  }
  return out;
}

// Formats a trace line only when someone reads it: the daemon's lookups pass no sink,
// and formatting every step's line was a measurable part of an uncached lookup.
template <class... Args>
void note(const TraceSink& trace, fmt::format_string<Args...> format, Args&&... args) {
  if (trace) trace(fmt::format(format, std::forward<Args>(args)...));
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

std::vector<std::string> fallback_keys(const MapDefinition& def, std::string_view key) {
  std::vector<std::string> keys;
  for (Step& s : steps_for(def, key))
    if (std::find(keys.begin(), keys.end(), s.key) == keys.end()) keys.push_back(std::move(s.key));
  return keys;
}

LookupResult lookup(const MapDefinition& def, std::string_view key, const SourceRunner& run, const TraceSink& trace) {
  std::vector<std::string> tried;
  int step_no = 0;
  for (const Step& step : steps_for(def, key)) {
    ++step_no;
    // maps_find() returns "not found" for an empty key without asking any table.
    if (step.key.empty()) continue;
    if (std::find(tried.begin(), tried.end(), step.key) != tried.end()) continue;
    tried.push_back(step.key);

    for (const MapSource& source : def.sources) {
      if (!passes_domain_filter(source, step.key)) {
        note(trace, "step {}: key '{}' in {}: skipped (not in the domain list)", step_no, step.key, source.path);
        continue;
      }
      note(trace, "step {}: key '{}' in {}", step_no, step.key, source.path);
      // Timed for the trace only.
      auto started = trace ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      SourceAnswer answer = run(source, step.key);
      double ms = trace ? elapsed_ms(started) : 0;

      if (answer.outcome == Outcome::temp_error || answer.outcome == Outcome::perm_error) {
        std::string reason = answer.reason.empty() ? "lookup failed" : answer.reason;
        note(trace, "  -> error: {} ({:.1f} ms)", reason, ms);
        return LookupResult::temp(std::move(reason));
      }
      if (answer.outcome != Outcome::found) {
        note(trace, "  -> not found ({:.1f} ms)", ms);
        continue;
      }

      std::string joined;
      long elements = 0;
      for (const std::string& raw : answer.values) {
        auto value = expand_result(source.result_format, raw, step.key);
        if (!value || value->empty()) continue;
        // Postfix fails the lookup rather than return a truncated list.
        if (source.expansion_limit > 0 && ++elements > source.expansion_limit) {
          note(trace, "  -> error: expansion_limit {} exceeded ({:.1f} ms)", source.expansion_limit, ms);
          return LookupResult::temp("expansion_limit exceeded");
        }
        if (!joined.empty()) joined += ',';
        joined += *value;
      }
      if (joined.empty()) {
        note(trace, "  -> not found (no usable value in {} row value(s)) ({:.1f} ms)", answer.values.size(), ms);
        continue;
      }
      if (def.kind == MapKind::alias && !step.extension.empty()) {
        std::string with_ext = propagate_extension(joined, step.extension);
        if (!with_ext.empty()) joined = std::move(with_ext);
      }
      note(trace, "  -> found: {} ({:.1f} ms)", joined, ms);
      return LookupResult::found(std::move(joined));
    }
  }
  return LookupResult::not_found();
}

PreparedSql prepare_sql_source(const MapSource& source, std::string_view key, const Escaper& escape,
                               const TraceSink& trace) {
  PreparedSql prepared;
  // Postfix checks the key against both templates before it queries.
  if (!result_key_ok(source.result_format, key)) {
    note(trace, "  query suppressed: key '{}' lacks a part result_format uses", key);
    prepared.answer = SourceAnswer{};
    return prepared;
  }
  auto statement = expand_query(source.query, key, escape);
  if (!statement) {
    prepared.answer = SourceAnswer{Outcome::temp_error, {}, statement.error().message};
    note(trace, "  query not run: {}", prepared.answer->reason);
    return prepared;
  }
  if (!*statement) {
    note(trace, "  query suppressed: key '{}' lacks a part the query uses (%u, %d or %1..%9)", key);
    prepared.answer = SourceAnswer{};
    return prepared;
  }
  note(trace, "  query: {}", **statement);
  prepared.statement = std::move(**statement);
  return prepared;
}

SourceAnswer answer_from_rows(const MapSource& source, const Result<sql::Rows>& rows, const TraceSink& trace) {
  SourceAnswer answer;
  if (!rows) {
    answer.outcome = Outcome::temp_error;
    answer.reason = rows.error().message;
    note(trace, "  query failed: {}", answer.reason);
    return answer;
  }
  // dict_mysql: a statement that yields no result set at all (an UPDATE, a CALL whose
  // procedure selects nothing) fails the lookup with a retry unless require_result_set
  // is off, when it is simply "not found". Postfix also marks the host down for
  // retry_interval then; we do not: the statement is at fault, not the host, and the
  // host serves other maps too.
  if (!rows->has_result_set) {
    if (source.require_result_set) {
      answer.outcome = Outcome::temp_error;
      answer.reason = "query returned no result set (require_result_set = yes)";
      note(trace, "  query failed: {}", answer.reason);
    } else {
      note(trace, "  no result set (require_result_set = no): not found");
    }
    return answer;
  }
  // Every non-NULL, non-empty column of every row is one value, in row order, as
  // dict_mysql/dict_sqlite read them.
  for (const auto& row : rows->rows)
    for (const auto& cell : row)
      if (cell && !cell->empty()) answer.values.push_back(*cell);
  note(trace, "  {} row(s), {} value(s)", rows->rows.size(), answer.values.size());
  if (!answer.values.empty()) answer.outcome = Outcome::found;
  return answer;
}

SourceAnswer run_sql_source(const MapSource& source, std::string_view key, sql::Connection& conn,
                            const TraceSink& trace) {
  PreparedSql prepared =
      prepare_sql_source(source, key, [&conn](std::string_view s) { return conn.escape(s); }, trace);
  if (prepared.answer) return std::move(*prepared.answer);
  return answer_from_rows(source, conn.query(prepared.statement), trace);
}

ResumedLookup resume_lookup(const MapDefinition& def, std::string_view key, const KnownAnswers& known) {
  ResumedLookup resumed;
  // lookup() asks its questions in a fixed order, so replaying it over the answers known
  // so far reaches the first one that is not known yet; a temp_error stops it there.
  LookupResult result = lookup(def, key, [&](const MapSource& source, std::string_view k) {
    for (const KnownAnswer& a : known)
      if (a.source == &source && a.key == k) return a.answer;
    resumed.next = KnownAnswer{&source, std::string(k), {}};
    return SourceAnswer{Outcome::temp_error, {}, "not known yet"};
  });
  if (!resumed.next) resumed.result = std::move(result);
  return resumed;
}

}  // namespace postern::lookupd
