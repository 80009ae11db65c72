#pragma once
// A persistent thread pool. parallel_for splits [0, n) into tasks handed out by an atomic counter;
// the calling thread works too. Workers spin briefly before sleeping so the decode loop (many small
// parallel regions per token) does not pay a wake-up each time.
//
// Determinism: callers split work by task index, never by thread id, so results do not depend on
// the number of threads as long as each task's arithmetic is self-contained.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace eight {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task, thread) for task in [0, n_tasks); thread is in [0, size()). Blocks until done.
  // Exceptions thrown by fn are rethrown here (the first one). Not reentrant. fn is called through
  // a plain pointer (no std::function), so a parallel region never allocates, whatever the size
  // of the lambda's captures: the decode loop makes hundreds of them per token.
  template <class F>
  void parallel_for(int64_t n_tasks, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run(n_tasks, const_cast<void*>(static_cast<const void*>(&fn)),
        [](void* ctx, int64_t task, int thread) { (*static_cast<Fn*>(ctx))(task, thread); });
  }

 private:
  using Call = void (*)(void* ctx, int64_t task, int thread);
  void run(int64_t n_tasks, void* ctx, Call call);
  void worker(int index);
  void run_tasks(int thread);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> active_{0};
  std::atomic<bool> stop_{false};
  int64_t n_tasks_ = 0;
  void* ctx_ = nullptr;
  Call call_ = nullptr;
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

// Threads to use by default: the number of online cores (EIGHT_THREADS overrides).
int default_thread_count();

// A process-wide pool, created on first use with `n_threads` (default_thread_count() when <= 0);
// later calls with a different count rebuild it.
ThreadPool& global_thread_pool(int n_threads = 0);

}  // namespace eight
