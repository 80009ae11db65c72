// The thread pool under stress: many short regions back to back (the decode loop's pattern), more
// threads than cores, regions of one task and of many, idle periods long enough for workers to
// fall asleep, and errors, all with every task run exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace eight {
namespace {

TEST(ThreadPool, ManyShortRegionsRunEveryTaskOnce) {
  for (int threads : {2, 3, 8}) {  // 8 oversubscribes a 2-core machine on purpose
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(97);
    for (int region = 0; region < 3000; ++region) {
      const int64_t n = 1 + region % 97;
      pool.parallel_for(n, [&](int64_t t, int thread) {
        ASSERT_GE(thread, 0);
        ASSERT_LT(thread, threads);
        hits[t].fetch_add(1, std::memory_order_relaxed);
      });
      for (int64_t t = 0; t < n; ++t) ASSERT_EQ(hits[t].exchange(0), 1) << "region " << region;
    }
  }
}

// The server's scheduler and an HTTP thread encoding an image both run regions on the global pool;
// each caller's regions must run every task of its own exactly once, and neither may hang.
TEST(ThreadPool, CallersOnSeveralThreadsTakeTurns) {
  ThreadPool pool(3);
  auto caller = [&pool](int seed) {
    std::vector<std::atomic<int>> hits(64);
    for (int region = 0; region < 2000; ++region) {
      const int64_t n = 2 + (region + seed) % 62;
      pool.parallel_for(n,
                        [&](int64_t t, int) { hits[t].fetch_add(1, std::memory_order_relaxed); });
      for (int64_t t = 0; t < n; ++t) EXPECT_EQ(hits[t].exchange(0), 1) << "region " << region;
    }
  };
  std::thread a(caller, 0), b(caller, 31);
  caller(17);
  a.join();
  b.join();
}

TEST(ThreadPool, WakesSleepingWorkersAndWaitsForClaimedTasks) {
  ThreadPool pool(3);
  for (int round = 0; round < 3; ++round) {
    // Idle long enough for the workers to stop spinning and sleep.
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    std::atomic<int> done{0};
    pool.parallel_for(6, [&](int64_t, int) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // slow tasks
      done.fetch_add(1);
    });
    EXPECT_EQ(done.load(), 6) << "parallel_for returned before claimed tasks finished";
  }
}

TEST(ThreadPool, ErrorsPropagateAndThePoolKeepsWorking) {
  ThreadPool pool(2);
  for (int i = 0; i < 50; ++i) {
    std::atomic<int> ran{0};
    EXPECT_THROW(pool.parallel_for(40,
                                   [&](int64_t t, int) {
                                     ran.fetch_add(1);
                                     check(t % 13 != 5, "task ", t, " fails");
                                   }),
                 Error);
    EXPECT_EQ(ran.load(), 40);  // every task still runs: no task is left half-claimed
    std::atomic<int> n{0};
    pool.parallel_for(7, [&](int64_t, int) { n.fetch_add(1); });
    EXPECT_EQ(n.load(), 7);
  }
}

}  // namespace
}  // namespace eight

namespace eight {
namespace {

TEST(ThreadPool, EachThreadRunsOnceOnEveryThread) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 20; ++round) {
      std::vector<std::atomic<int>> runs(static_cast<size_t>(threads));
      pool.each_thread([&](int thread) { runs[thread].fetch_add(1); });
      for (int t = 0; t < threads; ++t) ASSERT_EQ(runs[t].load(), 1) << "thread " << t;
    }
  }
}

// Guided chunks cover [0, n) exactly once with contiguous ranges of at least min_chunk items
// (only the last may be shorter), the first ones large, for sizes around the chunk boundaries.
TEST(ThreadPool, ChunksCoverEveryItemOnceLargestFirst) {
  for (int threads : {1, 2, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 15, 16, 17, 100, 1000, 4099}) {
      for (int64_t min_chunk : {1, 16, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int64_t> largest{0};
        std::atomic<int> short_chunks{0};
        pool.parallel_chunks(n, min_chunk, [&](int64_t b, int64_t e, int thread) {
          ASSERT_LT(b, e);
          ASSERT_LE(e, n);
          ASSERT_LT(thread, threads);
          if (e - b < min_chunk) {
            EXPECT_EQ(e, n) << "only the last chunk may be short";
            short_chunks.fetch_add(1);
          }
          int64_t l = largest.load();
          while (e - b > l && !largest.compare_exchange_weak(l, e - b)) {
          }
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n " << n << " item " << i;
        EXPECT_LE(short_chunks.load(), 1);
        // The first claim takes a 1 / (2 threads) share of everything (or min_chunk).
        if (n > 0) {
          EXPECT_EQ(largest.load(), std::min(n, std::max(min_chunk, n / (2 * threads))))
              << "n " << n << " min_chunk " << min_chunk << " threads " << threads;
        }
      }
    }
  }
}

}  // namespace
}  // namespace eight
