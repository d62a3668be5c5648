// sql_sqlite.cpp - the SQLite 3 sql::Connection (see sql.hpp). Endpoint::dbname is the
// database file; it is opened read-write but never created.
#include "common/log.hpp"
#include "common/sql_backends.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <memory>

namespace postern::sql {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
struct SqliteFree {
  void operator()(char* p) const { sqlite3_free(p); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;
using SqliteString = std::unique_ptr<char, SqliteFree>;

// Errors after which the handle may be pointing at a file that changed under it, so the
// next call opens the file afresh instead of reusing the handle.
bool handle_suspect(int code) {
  switch (code & 0xff) {
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_SCHEMA:
      return true;
    default:
      return false;
  }
}

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(const Endpoint& endpoint)
      : path_(endpoint.dbname), label_(endpoint.describe()), busy_ms_(endpoint.read_timeout.count()) {}

  Result<std::string> escape(std::string_view s) override {
    if (s.find('\0') != std::string_view::npos) return Error{label_ + ": refusing to escape a string with a NUL byte"};
    std::string out;
    out.reserve(s.size() + 8);
    for (char c : s) {
      if (c == '\'') out += '\'';
      out += c;
    }
    return out;
  }

  Result<Rows> query(const std::string& statement) override {
    if (auto st = ensure_open(); !st) return st.error();
    const char* tail = nullptr;
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), statement.c_str(), static_cast<int>(statement.size()) + 1, &raw, &tail);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return fail("query failed", rc);
    if (!stmt) {  // only white space or comments: nothing ran, so no result set either
      Rows none;
      none.has_result_set = false;
      return none;
    }
    // A second statement would be silently ignored; refusing it keeps injected text harmless.
    if (has_more_statements(tail)) return Error{label_ + ": query failed: more than one statement"};

    Rows out;
    int ncol = sqlite3_column_count(stmt.get());
    // A statement that returns no data (UPDATE, PRAGMA x = y) has no columns; a SELECT
    // that matches nothing still has its columns.
    out.has_result_set = ncol > 0;
    for (int i = 0; i < ncol; ++i) {
      const char* name = sqlite3_column_name(stmt.get(), i);
      out.columns.emplace_back(name ? name : "");
    }
    for (;;) {
      rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return fail("query failed", rc);
      auto& row = out.rows.emplace_back();
      row.reserve(static_cast<size_t>(ncol));
      for (int i = 0; i < ncol; ++i) {
        if (sqlite3_column_type(stmt.get(), i) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
          continue;
        }
        // column_text before column_bytes: the byte count is of the text conversion.
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), i));
        int len = sqlite3_column_bytes(stmt.get(), i);
        if (!text) return fail("query failed", sqlite3_errcode(db_.get()));  // out of memory
        row.emplace_back(std::string(text, static_cast<size_t>(len)));
      }
    }
    return out;
  }

  Status execute_script(const std::string& script) override {
    if (auto st = ensure_open(); !st) return st;
    char* raw = nullptr;
    int rc = sqlite3_exec(db_.get(), script.c_str(), nullptr, nullptr, &raw);
    SqliteString message(raw);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string text = message ? message.get() : sqlite3_errstr(rc);
    if (handle_suspect(rc)) db_.reset();
    return Error{fmt::format("{}: script failed: {}", label_, text)};
  }

 private:
  Status ensure_open() {
    // A file replaced (rename) or removed while open would otherwise be read forever
    // through the old handle.
    struct stat now {};
    bool exists = ::stat(path_.c_str(), &now) == 0;
    if (db_ && (!exists || now.st_dev != dev_ || now.st_ino != ino_)) {
      log_info("{}: database file changed on disk, reopening", label_);
      db_.reset();
    }
    if (db_) return Status::Ok();
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    DbPtr db(raw);  // open hands back a handle even on failure; it must be closed
    if (rc != SQLITE_OK) {
      return Error{fmt::format("{}: {}", label_, db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc))};
    }
    sqlite3_busy_timeout(db.get(), static_cast<int>(busy_ms_));
    sqlite3_extended_result_codes(db.get(), 1);
    dev_ = now.st_dev;
    ino_ = now.st_ino;
    db_ = std::move(db);
    return Status::Ok();
  }

  bool has_more_statements(const char* tail) {
    while (tail && *tail) {
      sqlite3_stmt* raw = nullptr;
      const char* next = nullptr;
      if (sqlite3_prepare_v2(db_.get(), tail, -1, &raw, &next) != SQLITE_OK) return true;
      StmtPtr stmt(raw);
      if (stmt) return true;
      if (next == tail) break;
      tail = next;
    }
    return false;
  }

  Error fail(std::string_view what, int rc) {
    std::string message = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
    if (handle_suspect(rc)) db_.reset();
    return Error{fmt::format("{}: {}: {}", label_, what, message)};
  }

  std::string path_;
  std::string label_;
  long long busy_ms_;
  DbPtr db_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace

std::unique_ptr<Connection> make_sqlite_connection(const Endpoint& endpoint) {
  return std::make_unique<SqliteConnection>(endpoint);
}

}  // namespace postern::sql
