// loop_lookups.hpp - uncached lookups run on the loop thread itself, over one
// non-blocking MariaDB connection per endpoint (common/sql_async.hpp).
//
// Why: a serial client (postmap, one Postfix process) waits for every answer, and
// handing a query to a worker and its answer back costs two thread wake-ups, about as
// long as the database round trip itself on a small VM (tests/bench/results.md, "Where
// the time goes").
//
// try_start() takes a lookup only when the connection for its first query's endpoint is
// connected and idle; otherwise (SQLite, not connected yet, busy with another lookup,
// stopped) it returns false and the caller uses the workers, as before. A missing
// connection is made on a worker in the background: one attempt at a time per endpoint,
// and after a failure none before the endpoint's retry_interval. A lookup taken ends
// with its result, or with nullopt, meaning "run it on a worker": a query failed, or a
// later query needs a connection that is not available. The workers then redo the whole
// lookup (lookup queries only read) and do the reconnecting, retrying, host marking and
// logging exactly as without this path, so an outage still gives TEMP and recovery is
// unchanged. A connection whose failure breaks it is dropped. Loop thread only.
#pragma once

#include "common/sql_async.hpp"
#include "common/worker_pool.hpp"
#include "lookupd/lookup_types.hpp"
#include "lookupd/lookupd_config.hpp"
#include "lookupd/map_lookup.hpp"

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace postern::lookupd {

class LoopLookups {
 public:
  // nullopt: not answered here; run the lookup on a worker.
  using Done = std::function<void(std::optional<LookupResult>)>;

  // pool makes the connections; it must outlive this object's last use. endpoint_keys:
  // the config's (LookupdConfig::endpoint_keys()); only those get a connection.
  LoopLookups(uv_loop_t* loop, WorkerPool& pool, const std::vector<std::string>& endpoint_keys)
      : loop_(loop), pool_(pool), wanted_(endpoint_keys.begin(), endpoint_keys.end()) {}
  ~LoopLookups() { stop(); }
  LoopLookups(const LoopLookups&) = delete;
  LoopLookups& operator=(const LoopLookups&) = delete;

  // Looks key up in def (which config holds) here if it can: then done runs exactly
  // once, later or (when no query is needed, or the first fails at once) before
  // try_start() returns, and the result is true. False: nothing was started and done
  // will not run.
  bool try_start(std::shared_ptr<const LookupdConfig> config, const MapDefinition& def, std::string key,
                 Done done);

  // After a reload: connections to endpoints the new config does not name are closed (a
  // busy one when its query ends).
  void keep_only(const std::vector<std::string>& endpoint_keys);

  // Lookups in flight end with a temporary error; every connection is closed, and
  // try_start() returns false from now on.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  struct Job;
  struct EndpointState {
    std::unique_ptr<sql::LoopConnection> connection;
    bool connecting = false;
    Clock::time_point next_attempt{};
  };

  sql::LoopConnection* idle_connection(const MapSource& source);
  void connect(const sql::Endpoint& endpoint, const std::string& key);
  void advance(const std::shared_ptr<Job>& job);
  void ask(const std::shared_ptr<Job>& job, KnownAnswer question, sql::LoopConnection& connection);
  void drop(const std::string& endpoint_key, std::chrono::milliseconds retry_interval);
  void give_up(Job& job);

  uv_loop_t* loop_;
  WorkerPool& pool_;
  std::set<std::string> wanted_;                              // endpoint keys of the config
  std::unordered_map<std::string, EndpointState> endpoints_;  // by sql::Endpoint::key()
  bool stopped_ = false;
};

}  // namespace postern::lookupd
