// sql_async_mariadb.cpp - see sql_async.hpp. One statement is a short chain of
// non-blocking calls: mysql_real_query, then mysql_store_result for each result (and
// mysql_next_result between them, as a CALL ends with a status result). Each call either
// finishes at once or says what it waits for (MYSQL_WAIT_READ/WRITE, and
// MYSQL_WAIT_TIMEOUT with the connector's read or write timeout); the loop waits for that
// and resumes the call with its _cont() twin.
#include "common/sql_async.hpp"

#include "common/sql_backends.hpp"

#include <mysql.h>
#include <sys/socket.h>

#include <utility>

namespace postern::sql {

// Heap-held, as libuv needs the handles until their close callbacks, which may come
// after the LoopConnection is gone.
struct LoopConnection::Handles {
  uv_poll_t poll;
  uv_timer_t timer;
  LoopConnection* owner;
  int open = 2;
};

namespace {

// The connector's "what I wait for" as libuv poll events, and back.
int poll_events(int status) {
  int events = 0;
  if (status & MYSQL_WAIT_READ) events |= UV_READABLE;
  if (status & MYSQL_WAIT_WRITE) events |= UV_WRITABLE;
  return events;
}

int mysql_events(int uv_status, int events) {
  // A poll error: let the connector's own read or write find out what it is.
  if (uv_status < 0) return MYSQL_WAIT_READ | MYSQL_WAIT_WRITE;
  int ready = 0;
  if (events & UV_READABLE) ready |= MYSQL_WAIT_READ;
  if (events & UV_WRITABLE) ready |= MYSQL_WAIT_WRITE;
  return ready;
}

}  // namespace

Result<std::unique_ptr<LoopConnection>> LoopConnection::connect(const Endpoint& endpoint) {
  if (endpoint.driver != Driver::mysql) return Error{endpoint.describe() + ": not a MariaDB endpoint"};
  auto handle = connect_mariadb_nonblocking(endpoint);
  if (!handle) return handle.error();
  return std::unique_ptr<LoopConnection>(
      new LoopConnection(handle->mysql, std::move(handle->where), endpoint.describe()));
}

LoopConnection::LoopConnection(st_mysql* mysql, std::string where, std::string describe)
    : mysql_(mysql), where_(std::move(where)), describe_(std::move(describe)) {}

LoopConnection::~LoopConnection() {
  mariadb_prepare_thread();  // the loop thread may close one it never attached
  if (busy()) {
    // Ended as abort() ends it, so the connector is not left inside a suspended call.
    done_ = [](Result<Rows>) {};
    abort();
  }
  if (handles_) {
    handles_->owner = nullptr;
    auto closed = [](uv_handle_t* handle) {
      auto* handles = static_cast<Handles*>(handle->data);
      if (--handles->open == 0) delete handles;
    };
    // Closing the poll handle takes the socket out of the loop's epoll set at once, so
    // mysql_close() may close the descriptor right after.
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->poll), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->timer), closed);
  }
  if (stored_) mysql_free_result(stored_);
  mysql_close(mysql_);
}

void LoopConnection::attach(uv_loop_t* loop) {
  mariadb_prepare_thread();
  handles_ = new Handles;
  handles_->owner = this;
  uv_poll_init_socket(loop, &handles_->poll, mysql_get_socket(mysql_));
  uv_timer_init(loop, &handles_->timer);
  handles_->poll.data = handles_;
  handles_->timer.data = handles_;
}

Result<std::string> LoopConnection::escape(std::string_view s) const {
  if (s.find('\0') != std::string_view::npos) return Error{describe_ + ": refusing to escape a string with a NUL byte"};
  std::string out(s.size() * 2 + 1, '\0');
  unsigned long n = mysql_real_escape_string(mysql_, out.data(), s.data(), s.size());
  if (n == static_cast<unsigned long>(-1)) return Error{describe_ + ": escaping failed"};
  out.resize(n);
  return out;
}

void LoopConnection::query(std::string statement, Done done) {
  done_ = std::move(done);
  statement_ = std::move(statement);
  rows_ = Rows{};
  rows_.has_result_set = false;
  step_ = Step::query;
  advance(mysql_real_query_start(&int_result_, mysql_, statement_.data(), statement_.size()));
}

// status: what the call of step_ just returned; 0 means that call has finished.
void LoopConnection::advance(int status) {
  while (status == 0) {
    switch (step_) {
      case Step::query:
        if (int_result_ != 0) return fail();
        step_ = Step::store_result;
        status = mysql_store_result_start(&stored_, mysql_);
        break;
      case Step::store_result: {
        MYSQL_RES* res = std::exchange(stored_, nullptr);
        if (!res) {
          if (mysql_field_count(mysql_) != 0) return fail();  // a result set was due but not read
        } else {
          // The first result set with columns is the answer, as Connection::query() keeps it.
          if (!rows_.has_result_set) {
            rows_.has_result_set = true;
            mariadb_read_rows(res, rows_);
          }
          mysql_free_result(res);  // stored: every row is in memory, no I/O
        }
        if (!mysql_more_results(mysql_)) return finish(std::move(rows_));
        step_ = Step::next_result;
        status = mysql_next_result_start(&int_result_, mysql_);
        break;
      }
      case Step::next_result:
        if (int_result_ > 0) return fail();
        if (int_result_ < 0) return finish(std::move(rows_));
        step_ = Step::store_result;
        status = mysql_store_result_start(&stored_, mysql_);
        break;
    }
  }
  wait_for(status);
}

void LoopConnection::wait_for(int status) {
  if (int events = poll_events(status); events != 0) {
    uv_poll_start(&handles_->poll, events, [](uv_poll_t* poll, int uv_status, int ready) {
      auto* handles = static_cast<Handles*>(poll->data);
      if (handles->owner) handles->owner->resume(mysql_events(uv_status, ready));
    });
  }
  if (status & MYSQL_WAIT_TIMEOUT) {
    uv_timer_start(
        &handles_->timer,
        [](uv_timer_t* timer) {
          auto* handles = static_cast<Handles*>(timer->data);
          if (handles->owner) handles->owner->resume(MYSQL_WAIT_TIMEOUT);
        },
        mysql_get_timeout_value_ms(mysql_), 0);
  }
}

void LoopConnection::resume(int events) {
  uv_poll_stop(&handles_->poll);
  uv_timer_stop(&handles_->timer);
  int status = 0;
  switch (step_) {
    case Step::query: status = mysql_real_query_cont(&int_result_, mysql_, events); break;
    case Step::store_result: status = mysql_store_result_cont(&stored_, mysql_, events); break;
    case Step::next_result: status = mysql_next_result_cont(&int_result_, mysql_, events); break;
  }
  advance(status);
}

void LoopConnection::abort() {
  if (!busy()) return;
  // With the socket shut down, the suspended read or write fails at once, and the
  // connector unwinds the call cleanly instead of leaving it suspended.
  broken_ = true;
  ::shutdown(mysql_get_socket(mysql_), SHUT_RDWR);
  for (int tries = 0; tries < 8 && busy(); ++tries) resume(MYSQL_WAIT_READ | MYSQL_WAIT_WRITE);
  if (busy()) finish(Error{where_ + ": query aborted"});
}

void LoopConnection::fail() {
  // As Connection::query(): after a failed statement the connection stays in use unless
  // the error says the connection itself is gone.
  broken_ = broken_ || mariadb_connection_broken(mysql_errno(mysql_));
  finish(Error{where_ + ": query failed: " + mysql_error(mysql_)});
}

void LoopConnection::finish(Result<Rows> result) {
  step_ = Step::query;
  Done done = std::move(done_);
  done_ = nullptr;
  done(std::move(result));  // last: it may destroy this object
}

}  // namespace postern::sql
