#pragma once
// One generation at a time for the services whose requests each take the whole machine (images,
// music): one runs, up to `queue` more wait their turn, and past that a request gets 503 (with a
// message naming `what`) instead of piling up threads.
#include <atomic>
#include <mutex>

#include "server/api_error.h"

namespace eight::server {

class GenerationQueue {
 public:
  GenerationQueue(int queue, const char* what) : queue_(queue), what_(what) {}

  // f() under the lock, once it is this request's turn. Throws ApiError 503 when full.
  template <class F>
  auto run(F&& f) {
    if (++waiting_ > queue_ + 1) {
      --waiting_;
      throw ApiError(
          503, "server_error",
          cat("the ", what_, " queue is full; retry in a moment (one generation runs at a time)"));
    }
    struct Waiting {
      std::atomic<int>& n;
      ~Waiting() { --n; }
    } guard{waiting_};
    std::lock_guard<std::mutex> lock(mutex_);
    return f();
  }

 private:
  int queue_;
  const char* what_;
  std::mutex mutex_;
  std::atomic<int> waiting_{0};
};

}  // namespace eight::server
