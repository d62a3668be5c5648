// sql_mariadb.cpp - the MariaDB Connector/C sql::Connection (see sql.hpp): one live
// connection at a time, failover over the endpoint's hosts (unix sockets first, random
// order within each group), skipping hosts the process-wide record (sql_host_health.hpp)
// says are down. It also makes the connected handles the loop's non-blocking
// connection (sql_async_mariadb.cpp) starts from, and shares its error and row helpers.
#include "common/log.hpp"
#include "common/sql_backends.hpp"
#include "common/sql_host_health.hpp"
#include "common/strings.hpp"

#include <errmsg.h>
#include <fmt/format.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <algorithm>
#include <climits>
#include <mutex>

namespace postern::sql {
namespace {

using Clock = HostHealth::Clock;

struct MysqlCloser {
  void operator()(MYSQL* m) const { mysql_close(m); }
};
struct ResultFree {
  void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
using MysqlPtr = std::unique_ptr<MYSQL, MysqlCloser>;
using ResultPtr = std::unique_ptr<MYSQL_RES, ResultFree>;

// The connector keeps per-thread state; every thread that touches a MYSQL handle must
// have called mysql_thread_init(), and mysql_thread_end() when it exits.
struct ThreadRegistration {
  ThreadRegistration() { mysql_thread_init(); }
  ~ThreadRegistration() { mysql_thread_end(); }
  ThreadRegistration(const ThreadRegistration&) = delete;
  ThreadRegistration& operator=(const ThreadRegistration&) = delete;
};

void prepare_thread() {
  static std::once_flag library_once;
  std::call_once(library_once, [] { mysql_library_init(0, nullptr, nullptr); });
  thread_local ThreadRegistration registration;
}

unsigned timeout_seconds(std::chrono::milliseconds ms) {
  long long s = (ms.count() + 999) / 1000;
  return static_cast<unsigned>(std::clamp<long long>(s, 1, UINT_MAX));
}

struct HostState {
  std::string label;  // "127.0.0.1:3306"
  HostSpec spec;
  std::shared_ptr<HostHealth> health;
};

// Outcome of one statement on the current handle.
struct Attempt {
  std::optional<Rows> rows;
  std::string error;
  unsigned code = 0;
  bool broken = false;
};

class MariaDbConnection final : public Connection {
 public:
  // nonblocking: the handles it makes can also be driven by the non-blocking API.
  explicit MariaDbConnection(const Endpoint& endpoint, bool nonblocking = false)
      : ep_(endpoint), describe_(endpoint.describe()), nonblocking_(nonblocking) {
    std::vector<HostSpec> specs;
    for (const auto& text : effective_hosts(endpoint)) {
      // An entry that does not parse is left out; with none left, every call fails.
      if (auto spec = parse_mysql_host(text)) specs.push_back(std::move(spec.value()));
      else log_error("{}: {}", describe_, spec.error().message);
    }
    // Each Connection draws its own order, so the workers spread over the hosts.
    std::mt19937 rng(std::random_device{}());
    for (size_t i : connect_order(specs, rng)) {
      HostState h;
      h.label = host_label(specs[i]);
      h.health = HostHealth::shared(health_key(h.label));
      h.spec = std::move(specs[i]);
      hosts_.push_back(std::move(h));
    }
  }

  Result<std::string> escape(std::string_view s) override {
    if (s.find('\0') != std::string_view::npos) {
      return Error{describe_ + ": refusing to escape a string with a NUL byte"};
    }
    prepare_thread();
    if (auto st = ensure_connected(); !st) return st.error();
    std::string out(s.size() * 2 + 1, '\0');
    unsigned long n = mysql_real_escape_string(mysql_.get(), out.data(), s.data(), s.size());
    if (n == static_cast<unsigned long>(-1)) return Error{describe_ + ": escaping failed"};
    out.resize(n);
    return out;
  }

  Result<Rows> query(const std::string& statement) override {
    prepare_thread();
    std::string lost;  // the first attempt's failure, kept for the final message
    for (int attempt = 0;; ++attempt) {
      if (auto st = ensure_connected(); !st) {
        if (lost.empty()) return st.error();
        return Error{lost + "; " + st.error().message};
      }
      auto started = Clock::now();
      Attempt a = run(statement);
      if (a.rows) return std::move(*a.rows);
      std::string message = fmt::format("{}: query failed: {}", host_desc(current_), a.error);
      if (!a.broken) return Error{message};
      mysql_.reset();
      // The server may have closed this connection before the statement (idle timeout,
      // KILL, restart): over a unix socket that shows as "gone away" (2006), over TCP the
      // write succeeds and the read fails at once with "lost" (2013). The host itself may
      // be fine, so reconnecting to it is allowed once. A loss that took a while (crash
      // mid-statement, read timeout) marks the host dead instead.
      bool stale = a.code == CR_SERVER_GONE_ERROR ||
                   (a.code == CR_SERVER_LOST && Clock::now() - started < ep_.read_timeout / 2);
      if (attempt == 0 && stale) {
        log_info("{}: connection lost ({}), reconnecting", host_desc(current_), a.error);
      } else {
        mark_down(hosts_[current_], "connection lost", a.error);
      }
      if (attempt > 0) return Error{message};
      lost = std::move(message);
    }
  }

  Status execute_script(const std::string& script) override {
    prepare_thread();
    // The server calls an empty statement an error; SQLite does not. Agree with SQLite.
    if (script.find_first_not_of(" \t\r\n;") == std::string::npos) return Status::Ok();
    if (auto st = ensure_connected(); !st) return st;
    MYSQL* m = mysql_.get();
    // Multi-statements only for scripts, so an injected ';' in a lookup can never start
    // a second statement.
    std::string error;
    bool broken = false;
    if (mysql_set_server_option(m, MYSQL_OPTION_MULTI_STATEMENTS_ON) != 0) {
      error = mysql_error(m);
      broken = mariadb_connection_broken(mysql_errno(m));
    } else {
      if (mysql_real_query(m, script.data(), script.size()) != 0) {
        error = mysql_error(m);
        broken = mariadb_connection_broken(mysql_errno(m));
      } else {
        for (;;) {
          ResultPtr discard(mysql_store_result(m));
          if (!discard && mysql_field_count(m) != 0) {
            error = mysql_error(m);
            broken = mariadb_connection_broken(mysql_errno(m));
            break;
          }
          int rc = mysql_next_result(m);
          if (rc < 0) break;
          if (rc > 0) {
            error = mysql_error(m);
            broken = mariadb_connection_broken(mysql_errno(m));
            break;
          }
        }
      }
      if (!broken && mysql_set_server_option(m, MYSQL_OPTION_MULTI_STATEMENTS_OFF) != 0) {
        if (error.empty()) error = mysql_error(m);
        broken = true;  // the session's mode is unknown now; start over
      }
    }
    std::string where = host_desc(current_);
    if (broken) mysql_.reset();  // no retry: part of the script may have run
    if (!error.empty()) return Error{fmt::format("{}: script failed: {}", where, error)};
    return Status::Ok();
  }

  // Connects if needed and gives the live handle away, leaving this Connection unconnected.
  Result<MariaDbHandle> release() {
    prepare_thread();
    if (auto st = ensure_connected(); !st) return st.error();
    MariaDbHandle handle{mysql_.release(), host_desc(current_)};
    return handle;
  }

 private:
  std::string host_desc(size_t i) const { return fmt::format("mysql({}/{})", hosts_[i].label, ep_.dbname); }

  // The registry key: this host with our credentials; the timeouts do not matter.
  std::string health_key(const std::string& label) const {
    Endpoint one = ep_;
    one.hosts = {label};
    one.connect_timeout = one.read_timeout = one.retry_interval = std::chrono::milliseconds(0);
    return one.key();
  }

  // Whether to try h now. A host marked down is skipped until retry_at; then the first
  // Connection to ask probes it, and the others keep skipping it while that probe may
  // still be waiting for its timeouts. Otherwise *retry_at tells when to ask again.
  bool claim(HostState& h, Clock::time_point now, Clock::time_point* retry_at) const {
    return h.health->claim(
        now, std::chrono::seconds(timeout_seconds(ep_.connect_timeout) + timeout_seconds(ep_.read_timeout)), retry_at);
  }

  // what: "connect failed" or "connection lost". Logged once per change of state in the
  // whole process, whichever Connection sees it.
  void mark_down(HostState& h, std::string_view what, const std::string& error) {
    bool was_down = h.health->mark_down(ep_.retry_interval, error);
    if (!was_down) {
      log_warning("mysql({}): {} to database {}: {} - waiting for {} ms before retry", h.label, what, ep_.dbname,
                  error, ep_.retry_interval.count());
    } else {
      log_debug("mysql({}): still down: {}", h.label, error);
    }
  }

  void mark_up(HostState& h) {
    auto [was_down, first] = h.health->mark_up();
    if (was_down) log_info("mysql({}): back up: connected to database {}", h.label, ep_.dbname);
    else if (first) log_info("mysql({}): Connected to database {}", h.label, ep_.dbname);
    else log_debug("mysql({}): Connected to database {}", h.label, ep_.dbname);
  }

  std::string last_error(const HostState& h) const { return h.health->last_error(); }

  Status ensure_connected() {
    if (mysql_) return Status::Ok();
    if (hosts_.empty()) return Error{fmt::format("{}: no valid database host", describe_)};
    Clock::time_point now = Clock::now();
    std::optional<Clock::time_point> soonest;
    std::string tried;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      HostState& h = hosts_[i];
      Clock::time_point retry_at;
      if (!claim(h, now, &retry_at)) {
        if (!soonest || retry_at < *soonest) soonest = retry_at;
        continue;
      }
      std::string error;
      if (MysqlPtr m = connect_to(h.spec, &error)) {
        mysql_ = std::move(m);
        current_ = i;
        mark_up(h);
        return Status::Ok();
      }
      mark_down(h, "connect failed", error);
      if (!tried.empty()) tried += "; ";
      tried += fmt::format("{}: connect failed: {}", host_desc(i), error);
    }
    if (!tried.empty()) return Error{tried};
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(*soonest - now);
    std::string last;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (!last.empty()) last += "; ";
      last += fmt::format("{}: {}", host_desc(i), last_error(hosts_[i]));
    }
    return Error{fmt::format("no database host available: {} (retry in {} ms)", last, wait.count())};
  }

  MysqlPtr connect_to(const HostSpec& spec, std::string* error) {
    MysqlPtr m(mysql_init(nullptr));
    if (!m) {
      *error = "out of memory";
      return nullptr;
    }
    unsigned connect_s = timeout_seconds(ep_.connect_timeout);
    unsigned io_s = timeout_seconds(ep_.read_timeout);
    my_bool reconnect = 0;  // we reconnect ourselves, with failover and retry intervals
    mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    mysql_options(m.get(), MYSQL_OPT_READ_TIMEOUT, &io_s);
    mysql_options(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &io_s);
    mysql_options(m.get(), MYSQL_OPT_RECONNECT, &reconnect);
    mysql_options(m.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (nonblocking_ && mysql_options(m.get(), MYSQL_OPT_NONBLOCK, nullptr) != 0) {
      *error = "cannot enable the non-blocking API";
      return nullptr;
    }
    const char* host = spec.host.c_str();
    const char* socket = nullptr;
    unsigned port = spec.port;
    if (spec.unix_socket) {
      unsigned protocol = MYSQL_PROTOCOL_SOCKET;
      mysql_options(m.get(), MYSQL_OPT_PROTOCOL, &protocol);
      host = "localhost";
      socket = spec.host.c_str();
      port = 0;
    }
    // For a plain "localhost" the connector picks its default socket, as Postfix does.
    if (!mysql_real_connect(m.get(), host, ep_.user.empty() ? nullptr : ep_.user.c_str(), ep_.password.c_str(),
                            ep_.dbname.empty() ? nullptr : ep_.dbname.c_str(), port, socket, CLIENT_MULTI_RESULTS)) {
      *error = mysql_error(m.get());
      return nullptr;
    }
    return m;
  }

  Attempt run(const std::string& statement) {
    MYSQL* m = mysql_.get();
    Attempt a;
    auto failed = [&] {
      a.error = mysql_error(m);
      a.code = mysql_errno(m);
      a.broken = mariadb_connection_broken(a.code);
      return std::move(a);
    };
    if (mysql_real_query(m, statement.data(), statement.size()) != 0) return failed();
    Rows rows;
    rows.has_result_set = false;
    // Every result is read, or the connection is out of step: a CALL ends with a status
    // result. The first result set with columns is the answer, as dict_mysql keeps it.
    for (;;) {
      ResultPtr res(mysql_store_result(m));
      if (!res) {
        if (mysql_field_count(m) != 0) return failed();  // a result set was due but not read
      } else if (!rows.has_result_set) {
        rows.has_result_set = true;
        mariadb_read_rows(res.get(), rows);
      }
      if (!mysql_more_results(m)) break;
      int rc = mysql_next_result(m);
      if (rc > 0) return failed();
      if (rc < 0) break;
    }
    a.rows = std::move(rows);
    return a;
  }

  Endpoint ep_;  // holds the password, needed for every reconnect
  std::string describe_;
  std::vector<HostState> hosts_;  // the valid hosts, in the order they are tried
  MysqlPtr mysql_;
  size_t current_ = 0;
  bool nonblocking_;
};

}  // namespace

void mariadb_prepare_thread() { prepare_thread(); }

bool mariadb_connection_broken(unsigned code) {
  switch (code) {
    case CR_SOCKET_CREATE_ERROR:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_IPSOCK_ERROR:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_COMMANDS_OUT_OF_SYNC:
    case CR_SERVER_LOST_EXTENDED:
    case CR_ERR_NET_READ:
    case CR_ERR_NET_WRITE:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
      return true;
    default:
      return false;
  }
}

void mariadb_read_rows(MYSQL_RES* res, Rows& rows) {
  unsigned ncol = mysql_num_fields(res);
  MYSQL_FIELD* fields = mysql_fetch_fields(res);
  for (unsigned i = 0; i < ncol; ++i) rows.columns.emplace_back(fields[i].name, fields[i].name_length);
  while (MYSQL_ROW row = mysql_fetch_row(res)) {
    unsigned long* lengths = mysql_fetch_lengths(res);
    auto& out = rows.rows.emplace_back();
    out.reserve(ncol);
    for (unsigned i = 0; i < ncol; ++i) {
      if (row[i]) out.emplace_back(std::string(row[i], lengths[i]));
      else out.emplace_back(std::nullopt);
    }
  }
}

Result<MariaDbHandle> connect_mariadb_nonblocking(const Endpoint& endpoint) {
  prepare_thread();
  return MariaDbConnection(endpoint, true).release();
}

bool is_unix_socket_host(const HostSpec& host) { return host.unix_socket || iequals(host.host, "localhost"); }

std::vector<size_t> connect_order(const std::vector<HostSpec>& hosts, std::mt19937& rng) {
  std::vector<size_t> order(hosts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto tcp = std::stable_partition(order.begin(), order.end(),
                                   [&hosts](size_t i) { return is_unix_socket_host(hosts[i]); });
  std::shuffle(order.begin(), tcp, rng);
  std::shuffle(tcp, order.end(), rng);
  return order;
}

std::unique_ptr<Connection> make_mariadb_connection(const Endpoint& endpoint) {
  prepare_thread();
  return std::make_unique<MariaDbConnection>(endpoint);
}

}  // namespace postern::sql
