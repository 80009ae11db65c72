#pragma once
// A persistent thread pool. parallel_for splits [0, n) into tasks handed out by an atomic counter;
// the calling thread works too. Workers spin briefly, then yield, then sleep, so the decode loop
// (hundreds of small parallel regions per token) rarely pays a wake-up, yet an idle pool gives the
// cores back. Tasks are claimed with the region's generation in the same atomic word, so the
// caller waits only for tasks that were claimed, never for a worker that has not woken up yet:
// on a machine busy with other work, a descheduled worker no longer stalls every region.
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
  // Exceptions thrown by fn are rethrown here (the first one). Callers on several threads take
  // turns; a task must not start a region of its own (not reentrant). fn is called through
  // a plain pointer (no std::function), so a parallel region never allocates, whatever the size
  // of the lambda's captures: the decode loop makes hundreds of them per token.
  template <class F>
  void parallel_for(int64_t n_tasks, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run(n_tasks, const_cast<void*>(static_cast<const void*>(&fn)),
        [](void* ctx, int64_t task, int thread) { (*static_cast<Fn*>(ctx))(task, thread); });
  }

  // Runs fn(begin, end, thread) over contiguous chunks covering [0, n), handed out largest first
  // ("guided"): each claim takes max(min_chunk, left / (2 size())) items. A thread then streams
  // long contiguous runs, which the hardware prefetchers follow (the decode kernels read each
  // weight matrix once: 18 KB chunks dealt out alternately ran at 25 GB/s, guided ones at 33 on
  // the 2-core machine), and the shrinking chunks still balance the end. Which thread gets which
  // items depends on timing, so each item's result must not depend on the chunking.
  template <class F>
  void parallel_chunks(int64_t n, int64_t min_chunk, F&& fn) {
    if (n <= 0) return;
    min_chunk = min_chunk < 1 ? 1 : min_chunk;
    std::atomic<int64_t> next{0};
    const int64_t per_claim = 2 * static_cast<int64_t>(n_threads_);
    const int64_t claims = (n + min_chunk - 1) / min_chunk;
    parallel_for(claims < n_threads_ ? claims : n_threads_, [&](int64_t, int thread) {
      int64_t b = next.load(std::memory_order_relaxed), e;
      for (;;) {
        do {
          if (b >= n) return;
          const int64_t want = (n - b) / per_claim;
          e = b + (want > min_chunk ? want : min_chunk);
          e = e < n ? e : n;
        } while (!next.compare_exchange_weak(b, e, std::memory_order_relaxed));
        fn(b, e, thread);
        b = next.load(std::memory_order_relaxed);
      }
    });
  }

  // Runs fn(thread) exactly once on every thread of the pool, the caller included: each task waits
  // until all size() tasks have been claimed, so no thread can claim two. For sizing per-thread
  // buffers (kernel scratch) before a loop that must not allocate, whichever thread ends up
  // running which task.
  template <class F>
  void each_thread(F&& fn) {
    std::atomic<int> arrived{0};
    parallel_for(n_threads_, [&](int64_t, int thread) {
      arrived.fetch_add(1);
      while (arrived.load() < n_threads_) std::this_thread::yield();
      fn(thread);
    });
  }

 private:
  using Call = void (*)(void* ctx, int64_t task, int thread);
  void run(int64_t n_tasks, void* ctx, Call call);
  void worker(int index);
  // Claims and runs tasks of generation `gen` until none are left (or the generation is over).
  void run_tasks(uint32_t gen, int thread);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  // (generation << 32) | next task index: claiming a task is a compare-exchange on both at once.
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> n_tasks_{0};
  std::atomic<int64_t> completed_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<Call> call_{nullptr};
  std::exception_ptr error_;
  std::mutex error_mutex_;
  // Held through a parallel region: callers on different threads (the server's scheduler and an
  // HTTP thread encoding an image for LLaVA, say) take turns instead of overwriting each other's
  // region, which left one of them spinning forever.
  std::mutex region_mutex_;
};

// Threads to use by default: the number of online cores (EIGHT_THREADS overrides).
int default_thread_count();

// A process-wide pool, created on first use with `n_threads` (default_thread_count() when <= 0);
// later calls with a different count rebuild it.
ThreadPool& global_thread_pool(int n_threads = 0);

}  // namespace eight
