#include "core/thread_pool.h"

#include <cstdlib>
#include <memory>

#include "core/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace eight {

namespace {
// The task field of a finished region's state: larger than any task count.
constexpr uint32_t kClosed = 0xffffffffu;

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    state_.fetch_add(uint64_t{1} << 32);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_tasks(uint32_t gen, int thread) {
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(s >> 32) != gen) return;  // the region is over
    const int64_t task = static_cast<int64_t>(s & 0xffffffffu);
    if (task >= n_tasks_.load(std::memory_order_relaxed)) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
    // The claim succeeded, so the region cannot end before this task completes: ctx_ and call_
    // are this generation's.
    try {
      call_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), task, thread);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    completed_.fetch_add(1, std::memory_order_acq_rel);
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    // Spin a little for the next region, then yield the core a while, then sleep.
    uint32_t gen = static_cast<uint32_t>(state_.load(std::memory_order_acquire) >> 32);
    for (int spin = 0; gen == seen && spin < 20000; ++spin) {
      cpu_relax();
      if (spin >= 4000 && spin % 64 == 0) std::this_thread::yield();
      gen = static_cast<uint32_t>(state_.load(std::memory_order_acquire) >> 32);
    }
    if (gen == seen) {
      std::unique_lock lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return static_cast<uint32_t>(state_.load() >> 32) != seen; });
      sleepers_.fetch_sub(1);
      gen = static_cast<uint32_t>(state_.load() >> 32);
    }
    seen = gen;
    if (stop_) return;
    run_tasks(gen, index);
  }
}

void ThreadPool::run(int64_t n_tasks, void* ctx, Call call) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) call(ctx, t, 0);
    return;
  }
  check(n_tasks < kClosed, "[thread pool] ", n_tasks, " tasks is too many");
  std::lock_guard region(region_mutex_);
  ctx_.store(ctx, std::memory_order_relaxed);
  call_.store(call, std::memory_order_relaxed);
  n_tasks_.store(n_tasks, std::memory_order_relaxed);
  completed_.store(0, std::memory_order_relaxed);
  error_ = nullptr;
  const uint32_t gen = static_cast<uint32_t>(state_.load() >> 32) + 1;
  state_.store(static_cast<uint64_t>(gen) << 32);  // publishes the fields above
  if (sleepers_.load() > 0) {
    { std::lock_guard lock(mutex_); }
    wake_.notify_all();
  }
  run_tasks(gen, 0);
  // Wait for tasks other threads claimed; spin briefly, then let others run.
  for (int spin = 0; completed_.load(std::memory_order_acquire) < n_tasks; ++spin) {
    if (spin < 2000)
      cpu_relax();
    else
      std::this_thread::yield();
  }
  // Close the region before the next one rewrites n_tasks_, ctx_ and call_: a worker that read
  // (gen, n_tasks) just before, and then saw the next region's larger n_tasks_, could otherwise
  // claim index n_tasks of this generation and run it with the next region's function. Every
  // task is done, so no claim on this generation can succeed any more once it reads kClosed.
  state_.store((static_cast<uint64_t>(gen) << 32) | kClosed);
  if (error_) std::rethrow_exception(error_);
}

int default_thread_count() {
  if (const char* env = std::getenv("EIGHT_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool& global_thread_pool(int n_threads) {
  static std::unique_ptr<ThreadPool> pool;
  static std::mutex m;
  std::lock_guard lock(m);
  const int want = n_threads > 0 ? n_threads : (pool ? pool->size() : default_thread_count());
  if (!pool || pool->size() != want) {
    pool.reset();
    pool = std::make_unique<ThreadPool>(want);
  }
  return *pool;
}

}  // namespace eight
