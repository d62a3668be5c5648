// loop_lookups.cpp - see loop_lookups.hpp. A lookup here is resume_lookup() (the same
// questions as lookup(), in the same order) driven one query at a time: ask the next
// question on the endpoint's connection, add the answer, resume.
#include "lookupd/loop_lookups.hpp"

#include "common/log.hpp"

#include <utility>

namespace postern::lookupd {

struct LoopLookups::Job {
  std::shared_ptr<const LookupdConfig> config;  // keeps def alive
  const MapDefinition* def;
  std::string key;
  KnownAnswers known;
  Done done;
};

bool LoopLookups::try_start(std::shared_ptr<const LookupdConfig> config, const MapDefinition& def, std::string key,
                            Done done) {
  if (stopped_) return false;
  auto job = std::make_shared<Job>(Job{std::move(config), &def, std::move(key), {}, std::move(done)});
  ResumedLookup first = resume_lookup(def, job->key, job->known);
  if (first.next) {
    const MapSource& source = *first.next->source;
    sql::LoopConnection* connection = idle_connection(source);
    if (!connection) return false;
    ask(job, std::move(*first.next), *connection);
  } else {
    job->done(std::move(first.result));  // no query to run (all suppressed or filtered)
  }
  return true;
}

void LoopLookups::advance(const std::shared_ptr<Job>& job) {
  ResumedLookup next = resume_lookup(*job->def, job->key, job->known);
  if (!next.next) {
    job->done(std::move(next.result));
    return;
  }
  sql::LoopConnection* connection = idle_connection(*next.next->source);
  if (!connection) {
    give_up(*job);
    return;
  }
  ask(job, std::move(*next.next), *connection);
}

void LoopLookups::give_up(Job& job) {
  // Once stopped, the workers take nothing either.
  if (stopped_) job.done(LookupResult::temp("lookup not completed (stopping)"));
  else job.done(std::nullopt);
}

void LoopLookups::ask(const std::shared_ptr<Job>& job, KnownAnswer question, sql::LoopConnection& connection) {
  // Escaped by the connection that runs the statement, as on a worker.
  PreparedSql prepared = prepare_sql_source(*question.source, question.key,
                                            [&connection](std::string_view s) { return connection.escape(s); });
  if (prepared.answer) {
    question.answer = std::move(*prepared.answer);
    job->known.push_back(std::move(question));
    advance(job);
    return;
  }
  const std::string& endpoint_key = question.source->endpoint_key;
  auto retry_interval = question.source->endpoint.retry_interval;
  connection.query(std::move(prepared.statement), [this, job, question = std::move(question), endpoint_key,
                                                   retry_interval](Result<sql::Rows> rows) mutable {
    auto it = endpoints_.find(endpoint_key);
    bool broken = it != endpoints_.end() && it->second.connection && it->second.connection->broken();
    if (!rows) {
      log_debug("{}; the lookup goes to a worker", rows.error().message);
      if (broken) drop(endpoint_key, retry_interval);
      give_up(*job);
      return;
    }
    if (!wanted_.count(endpoint_key)) drop(endpoint_key, retry_interval);
    question.answer = answer_from_rows(*question.source, rows);
    job->known.push_back(std::move(question));
    advance(job);
  });
}

sql::LoopConnection* LoopLookups::idle_connection(const MapSource& source) {
  const sql::Endpoint& endpoint = source.endpoint;
  const std::string& key = source.endpoint_key;
  // No key: a source not made by load_lookupd_config(); it must not share a connection.
  if (stopped_ || endpoint.driver != sql::Driver::mysql || key.empty() || !wanted_.count(key)) return nullptr;
  EndpointState& state = endpoints_[key];
  if (state.connection) return state.connection->busy() ? nullptr : state.connection.get();
  if (!state.connecting && Clock::now() >= state.next_attempt) connect(endpoint, key);
  return nullptr;
}

void LoopLookups::connect(const sql::Endpoint& endpoint, const std::string& key) {
  // A plain struct, not a Result: GCC 12 misreports freeing a Result<unique_ptr> here.
  struct Connected {
    std::unique_ptr<sql::LoopConnection> connection;
    std::string error;
  };
  endpoints_[key].connecting = true;
  bool queued = pool_.submit_for<Connected>(
      [endpoint](WorkerContext&) {
        auto made = sql::LoopConnection::connect(endpoint);
        if (!made) return Connected{nullptr, made.error().message};
        return Connected{std::move(*made), {}};
      },
      [this, key, retry_interval = endpoint.retry_interval](std::optional<Connected> connected) {
        auto it = endpoints_.find(key);
        if (stopped_ || it == endpoints_.end()) return;  // a new connection just closes
        EndpointState& state = it->second;
        state.connecting = false;
        if (!wanted_.count(key)) {  // the endpoint went away in a reload
          endpoints_.erase(it);
          return;
        }
        if (connected && connected->connection) {
          state.connection = std::move(connected->connection);
          state.connection->attach(loop_);
          return;
        }
        // The worker path has logged the failure, or will on its next query.
        if (connected) log_debug("loop connection: {}", connected->error);
        state.next_attempt = Clock::now() + retry_interval;
      });
  if (!queued) {
    endpoints_[key].connecting = false;
    endpoints_[key].next_attempt = Clock::now() + endpoint.retry_interval;
  }
}

void LoopLookups::drop(const std::string& endpoint_key, std::chrono::milliseconds retry_interval) {
  auto it = endpoints_.find(endpoint_key);
  if (it == endpoints_.end()) return;
  // Called from the connection's own callback: it may destroy the connection (sql_async.hpp).
  it->second.connection.reset();
  if (!wanted_.count(endpoint_key) && !it->second.connecting) endpoints_.erase(it);
  else it->second.next_attempt = Clock::now() + retry_interval;
}

void LoopLookups::keep_only(const std::vector<std::string>& endpoint_keys) {
  wanted_ = std::set<std::string>(endpoint_keys.begin(), endpoint_keys.end());
  for (auto it = endpoints_.begin(); it != endpoints_.end();) {
    bool busy = it->second.connection && it->second.connection->busy();
    if (!wanted_.count(it->first) && !busy && !it->second.connecting) it = endpoints_.erase(it);
    else ++it;
  }
}

void LoopLookups::stop() {
  if (stopped_) return;
  stopped_ = true;
  // abort() runs each lookup's query callback, which may drop entries: walk a key list.
  std::vector<std::string> keys;
  for (const auto& [key, state] : endpoints_) keys.push_back(key);
  for (const std::string& key : keys) {
    auto it = endpoints_.find(key);
    if (it != endpoints_.end() && it->second.connection) it->second.connection->abort();
  }
  endpoints_.clear();
}

}  // namespace postern::lookupd
