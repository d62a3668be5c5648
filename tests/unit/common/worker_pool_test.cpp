// Tests for common/worker_pool.hpp: jobs on workers, completions on the loop thread,
// the queue bound, draining on stop(), broadcasts and exceptions.
#include "common/worker_pool.hpp"

#include <catch2/catch.hpp>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace postern;
using namespace std::chrono_literals;

namespace {

// A loop with a heartbeat timer, so run_until() never blocks forever on a missed wake.
struct Loop {
  uv_loop_t loop{};
  uv_timer_t tick{};
  Loop() {
    REQUIRE(uv_loop_init(&loop) == 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, [](uv_timer_t*) {}, 10, 10);
  }
  ~Loop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);  // runs the close callbacks, including the pool's
    CHECK(uv_loop_close(&loop) == 0);  // fails if the pool left its async handle open
  }
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop, UV_RUN_ONCE);
    }
    return true;
  }
};

}  // namespace

TEST_CASE("jobs run on workers and completions on the loop thread", "[worker_pool]") {
  Loop l;
  const auto loop_thread = std::this_thread::get_id();
  std::atomic<int> on_loop_thread{0};
  std::atomic<int> jobs_on_loop_thread{0};
  std::atomic<int> bad_index{0};
  int delivered = 0;
  {
    WorkerPool pool(&l.loop, 4, 1000);
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(pool.submit(
          [&](WorkerContext& ctx) {
            // Catch2 assertions are not thread-safe: count here, check on this thread.
            if (std::this_thread::get_id() == loop_thread) ++jobs_on_loop_thread;
            if (ctx.index() < 0 || ctx.index() >= 4) ++bad_index;
          },
          [&] {
            if (std::this_thread::get_id() == loop_thread) ++on_loop_thread;
            ++delivered;
          }));
    }
    REQUIRE(l.run_until([&] { return delivered == 1000; }));
    CHECK(pool.pending() == 0);
    pool.stop();
  }
  CHECK(on_loop_thread == 1000);
  CHECK(jobs_on_loop_thread == 0);
  CHECK(bad_index == 0);
}

TEST_CASE("workers run with the batch policy, so waking one does not preempt the loop", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 2, 10);
  int policy = -2;
  REQUIRE(pool.submit_for<int>([](WorkerContext&) { return sched_getscheduler(0); },
                               [&](std::optional<int> v) { policy = v.value_or(-3); }));
  REQUIRE(l.run_until([&] { return policy != -2; }));
  CHECK(policy == SCHED_BATCH);
  CHECK(sched_getscheduler(0) == SCHED_OTHER);  // the loop thread keeps the normal policy
}

TEST_CASE("submit_for hands the job's value to done", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 2, 10);
  int got = 0;
  REQUIRE(pool.submit_for<int>([](WorkerContext&) { return 42; }, [&](std::optional<int> v) { got = v.value_or(-1); }));
  REQUIRE(l.run_until([&] { return got != 0; }));
  CHECK(got == 42);
}

TEST_CASE("the queue bound is respected", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 1, 2);
  std::promise<void> started, release;
  auto release_future = release.get_future().share();
  int done = 0;
  REQUIRE(pool.submit(
      [&, release_future](WorkerContext&) {
        started.set_value();
        release_future.wait();
      },
      [&] { ++done; }));
  started.get_future().wait();  // the first job is running, so the queue is empty

  CHECK(pool.submit([](WorkerContext&) {}, [&] { ++done; }));
  CHECK(pool.submit([](WorkerContext&) {}, [&] { ++done; }));
  bool rejected_ran = false;
  CHECK_FALSE(pool.submit([&](WorkerContext&) { rejected_ran = true; }, [&] { rejected_ran = true; }));
  CHECK(pool.pending() == 3);

  release.set_value();
  REQUIRE(l.run_until([&] { return done == 3; }));
  CHECK(pool.pending() == 0);
  CHECK_FALSE(rejected_ran);
  CHECK(pool.submit([](WorkerContext&) {}, [&] { ++done; }));  // room again
  REQUIRE(l.run_until([&] { return done == 4; }));
}

TEST_CASE("stop() finishes queued jobs and delivers their completions", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 2, 100);
  std::atomic<int> ran{0};
  int delivered = 0;
  const auto loop_thread = std::this_thread::get_id();
  bool all_on_loop_thread = true;
  for (int i = 0; i < 50; ++i) {
    REQUIRE(pool.submit(
        [&](WorkerContext&) {
          std::this_thread::sleep_for(1ms);
          ++ran;
        },
        [&] {
          ++delivered;
          all_on_loop_thread = all_on_loop_thread && std::this_thread::get_id() == loop_thread;
        }));
  }
  pool.stop();  // without ever running the loop
  CHECK(ran == 50);
  CHECK(delivered == 50);
  CHECK(all_on_loop_thread);
  CHECK(pool.pending() == 0);
  CHECK_FALSE(pool.submit([](WorkerContext&) {}, [] {}));
  pool.stop();  // a second stop is harmless
}

TEST_CASE("stop() may be called from a completion", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 2, 10);
  int delivered = 0;
  REQUIRE(pool.submit([](WorkerContext&) {}, [&] {
    ++delivered;
    pool.stop();
  }));
  REQUIRE(pool.submit([](WorkerContext&) { std::this_thread::sleep_for(20ms); }, [&] { ++delivered; }));
  REQUIRE(l.run_until([&] { return delivered == 2; }));
  CHECK_FALSE(pool.submit([](WorkerContext&) {}, [] {}));
}

TEST_CASE("broadcast reaches every worker before its next job", "[worker_pool]") {
  Loop l;
  std::mutex m;
  std::set<int> indexes;
  std::set<std::thread::id> threads;
  {
    WorkerPool pool(&l.loop, 4, 10);
    pool.broadcast([&](WorkerContext& ctx) {
      std::lock_guard lock(m);
      indexes.insert(ctx.index());
      threads.insert(std::this_thread::get_id());
    });
    pool.stop();
  }
  CHECK(indexes == std::set<int>{0, 1, 2, 3});
  CHECK(threads.size() == 4);

  // With one worker busy, a broadcast made before the next submit runs before that job.
  WorkerPool pool(&l.loop, 1, 10);
  std::promise<void> started, release;
  auto release_future = release.get_future().share();
  std::vector<std::string> order;  // only the single worker writes
  REQUIRE(pool.submit(
      [&, release_future](WorkerContext&) {
        order.push_back("job1");
        started.set_value();
        release_future.wait();
      },
      [] {}));
  started.get_future().wait();
  pool.broadcast([&](WorkerContext&) { order.push_back("broadcast"); });
  REQUIRE(pool.submit([&](WorkerContext&) { order.push_back("job2"); }, [] {}));
  release.set_value();
  pool.stop();
  CHECK(order == std::vector<std::string>{"job1", "broadcast", "job2"});
}

TEST_CASE("an exception in a job does not kill its worker", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 1, 10);
  std::thread::id first, second;
  int delivered = 0;
  REQUIRE(pool.submit(
      [&](WorkerContext&) {
        first = std::this_thread::get_id();
        throw std::runtime_error("boom");
      },
      [&] { ++delivered; }));
  REQUIRE(pool.submit([&](WorkerContext&) { throw 7; }, [&] { ++delivered; }));
  REQUIRE(pool.submit([&](WorkerContext&) { second = std::this_thread::get_id(); }, [&] { ++delivered; }));
  REQUIRE(l.run_until([&] { return delivered == 3; }));
  CHECK(first == second);
  CHECK(first != std::thread::id());
  CHECK(pool.pending() == 0);
}

TEST_CASE("a throwing completion does not break delivery", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 1, 10);
  int delivered = 0;
  REQUIRE(pool.submit([](WorkerContext&) {}, [&] {
    ++delivered;
    throw std::runtime_error("done failed");
  }));
  REQUIRE(pool.submit([](WorkerContext&) {}, [&] { ++delivered; }));
  REQUIRE(l.run_until([&] { return delivered == 2; }));
}

TEST_CASE("submit_for hands nullopt to done when the job throws", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 1, 10);
  bool called = false;
  std::optional<std::string> got = "untouched";
  REQUIRE(pool.submit_for<std::string>([](WorkerContext&) -> std::string { throw std::bad_alloc(); },
                                       [&](std::optional<std::string> v) {
                                         called = true;
                                         got = std::move(v);
                                       }));
  REQUIRE(l.run_until([&] { return called; }));
  CHECK_FALSE(got.has_value());
}

TEST_CASE("cancel_queued drops jobs not started and still delivers their completions", "[worker_pool]") {
  Loop l;
  WorkerPool pool(&l.loop, 1, 10);
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  int delivered = 0;
  int empty = 0;
  // The first job holds the only worker, so the next ones stay queued.
  REQUIRE(pool.submit_for<int>(
      [&](WorkerContext&) {
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return ++ran;
      },
      [&](std::optional<int> v) { delivered += v ? 1 : 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 3; ++i)
    REQUIRE(pool.submit_for<int>([&](WorkerContext&) { return ++ran; }, [&](std::optional<int> v) { empty += v ? 0 : 1; }));
  pool.cancel_queued();
  release = true;
  REQUIRE(l.run_until([&] { return delivered == 1 && empty == 3; }));
  CHECK(ran == 1);
  pool.stop();
}

TEST_CASE("WorkerContext keeps one connection per endpoint key", "[worker_pool]") {
  sql::Endpoint a;
  a.driver = sql::Driver::sqlite;
  a.dbname = "/nonexistent/a.sqlite";
  sql::Endpoint b = a;
  b.dbname = "/nonexistent/b.sqlite";

  WorkerContext ctx(0);
  sql::Connection* a1 = &ctx.connection(a);
  sql::Connection* a2 = &ctx.connection(a);
  sql::Connection* b1 = &ctx.connection(b);
  CHECK(a1 == a2);
  CHECK(a1 != b1);
  CHECK_FALSE(a1->query("SELECT 1"));  // the file is missing: an Error, not a crash

  ctx.forget_connections_except({a.key()});
  CHECK(&ctx.connection(a) == a1);  // kept
  // b was dropped; using it again makes a fresh connection that still works.
  CHECK_FALSE(ctx.connection(b).query("SELECT 1"));
}

TEST_CASE("workers use their own connections", "[worker_pool]") {
  Loop l;
  sql::Endpoint ep;
  ep.driver = sql::Driver::sqlite;
  ep.dbname = "/nonexistent/c.sqlite";
  std::mutex m;
  std::set<sql::Connection*> seen;
  WorkerPool pool(&l.loop, 3, 10);
  // The latch keeps every worker (and so its connection) alive until all have looked,
  // or a freed connection's address could be reused by the next worker's.
  std::latch all_there(3);
  pool.broadcast([&](WorkerContext& ctx) {
    {
      std::lock_guard lock(m);
      seen.insert(&ctx.connection(ep));
    }
    all_there.arrive_and_wait();
  });
  pool.stop();
  CHECK(seen.size() == 3);
}
