// worker_pool.hpp - blocking work (SQL, hashing, fsync) off the event loop.
//
// A fixed set of threads, each with its own WorkerContext (and so its own SQL
// connections), running with SCHED_BATCH: waking one preempts no running thread.
// submit() is called on the loop thread; the job runs on a worker; its completion runs
// back on the loop thread, woken through a uv_async_t. The queue is bounded: submit()
// returns false when it is full, and the caller answers "busy".
#pragma once

#include "common/sql.hpp"

#include <uv.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace postern {

// Per-worker state. Only its own worker thread touches it.
class WorkerContext {
 public:
  explicit WorkerContext(int index) : index_(index) {}
  int index() const { return index_; }
  // The worker's connection to endpoint, created on first use and kept.
  sql::Connection& connection(const sql::Endpoint& endpoint);
  // Drops connections whose endpoint is not used any more (after a reload).
  void forget_connections_except(const std::vector<std::string>& endpoint_keys);

 private:
  int index_;
  std::map<std::string, std::unique_ptr<sql::Connection>> connections_;
};

class WorkerPool {
 public:
  using Job = std::function<void(WorkerContext&)>;
  using Done = std::function<void()>;

  // REQUIRES: called on the loop thread. threads >= 1.
  WorkerPool(uv_loop_t* loop, int threads, size_t max_queue);
  ~WorkerPool();  // stop()s if still running
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues job; done runs on the loop thread after job returns, or without the job having
  // run if cancel_queued() dropped it. False if the queue is full or the pool is stopping
  // (neither callback will run).
  bool submit(Job job, Done done);

  // Convenience: work returns a T that is handed to done on the loop thread. done gets
  // nullopt when the job threw or was cancelled, so callers always answer their client.
  template <class T>
  bool submit_for(std::function<T(WorkerContext&)> work, std::function<void(std::optional<T>)> done) {
    auto slot = std::make_shared<std::optional<T>>();
    return submit([slot, work = std::move(work)](WorkerContext& ctx) { slot->emplace(work(ctx)); },
                  [slot, done = std::move(done)]() { done(std::move(*slot)); });
  }

  // Drops the jobs that have not started; their completions run (on the next wake) without
  // the job. For shutdown: work whose client is gone is not worth a database round trip.
  void cancel_queued();

  // Runs fn once on every worker (e.g. to drop stale connections after a reload).
  void broadcast(std::function<void(WorkerContext&)> fn);

  // Jobs queued or running, plus completions not yet delivered.
  size_t pending() const;

  // Finishes queued jobs, joins the threads, delivers remaining completions, closes the
  // async handle. Afterwards submit() returns false.
  void stop();

 private:
  struct Task {
    Job job;
    Done done;
  };
  void run_worker(int index);
  static void on_async(uv_async_t* handle);
  void deliver_completions();

  uv_loop_t* loop_;
  uv_async_t* async_ = nullptr;  // owned; freed in its close callback
  size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task> queue_;
  std::deque<Done> completed_;
  std::vector<std::deque<std::function<void(WorkerContext&)>>> broadcasts_;
  size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace postern
