#pragma once
// Counts every operator new in the process, for tests that prove a loop allocates nothing.
// Replaces the global operator new/delete, so include it in exactly one file of a test program.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

// The replacement operators below pair malloc with free, which GCC cannot see through inlining.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace eight::testing {
inline std::atomic<int64_t> g_news{0};
// operator new calls so far.
inline int64_t heap_news() {
  return g_news.load(std::memory_order_relaxed);
}
}  // namespace eight::testing

void* operator new(size_t n) {
  eight::testing::g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
