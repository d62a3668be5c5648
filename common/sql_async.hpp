// sql_async.hpp - a MariaDB connection that the event loop drives without blocking.
//
// A statement run on a worker costs two thread hand-offs (loop -> worker -> loop) on top
// of the database round trip, and on a small VM waking a sleeping thread costs about as
// much as the round trip itself. A LoopConnection runs the statement on the loop thread
// with Connector/C's non-blocking API instead, waiting on its socket (uv_poll_t) and on
// the connector's read/write timeouts (uv_timer_t).
//
// It is connected on a worker: connect() blocks, and the host order, failover and host
// health record are sql::Connection's own. From attach() on, the loop thread alone uses
// it. One statement at a time, and no retry: a failed statement is the caller's to run
// again the usual way (a worker's sql::Connection), which reconnects, retries, marks
// hosts down and logs. An error that means the connection itself is gone leaves it
// broken() for good, and the caller drops it. Nothing here marks a host or logs.
// MariaDB only: SQLite has no socket to wait on.
#pragma once

#include "common/result.hpp"
#include "common/sql.hpp"

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct st_mysql;
struct st_mysql_res;

namespace postern::sql {

class LoopConnection {
 public:
  using Done = std::function<void(Result<Rows>)>;

  // Connects to endpoint (driver mysql) as a Connection would. Blocking; any thread.
  static Result<std::unique_ptr<LoopConnection>> connect(const Endpoint& endpoint);

  // A statement still running is ended as abort() ends it, without calling its done.
  ~LoopConnection();
  LoopConnection(const LoopConnection&) = delete;
  LoopConnection& operator=(const LoopConnection&) = delete;

  // Loop thread from here on. REQUIRES: once, before the first query().
  void attach(uv_loop_t* loop);

  bool busy() const { return done_ != nullptr; }
  bool broken() const { return broken_; }
  // "mysql(host/dbname)", for messages.
  const std::string& where() const { return where_; }

  // As Connection::escape(), with this connection's character set; no I/O.
  Result<std::string> escape(std::string_view s) const;

  // Runs statement and reads every result, as Connection::query() does (without its
  // retry). done runs exactly once on the loop thread: later, or before query() returns
  // when the statement ends at once (a connection found closed). It may destroy this
  // LoopConnection. REQUIRES: attached, !busy(), !broken().
  void query(std::string statement, Done done);

  // Ends a statement in flight now: its done runs before abort() returns, with an error
  // (or with the rows, if they had all arrived). The connection is broken afterwards.
  void abort();

 private:
  enum class Step { query, store_result, next_result };
  struct Handles;  // the uv handles, freed by libuv's close callbacks

  LoopConnection(st_mysql* mysql, std::string where, std::string describe);
  void advance(int status);
  void resume(int events);
  void wait_for(int status);
  void finish(Result<Rows> result);
  void fail();

  st_mysql* mysql_;
  std::string where_;
  std::string describe_;  // Endpoint::describe(), for escape()'s errors as Connection words them
  Handles* handles_ = nullptr;
  Done done_;
  Step step_ = Step::query;
  std::string statement_;
  Rows rows_;
  int int_result_ = 0;              // of mysql_real_query / mysql_next_result
  st_mysql_res* stored_ = nullptr;  // of mysql_store_result
  bool broken_ = false;
};

}  // namespace postern::sql
