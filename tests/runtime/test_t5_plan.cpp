// The T5 encoder's planned activations (runtime/plan/t5.h) against what one forward pass really
// allocates (the tracked heap's peak), on the tiny random fixtures in tests/data/t5/.
#include <gtest/gtest.h>

#include <cstdio>
#include <numeric>

#include "core/memory.h"
#include "core/thread_pool.h"
#include "models/t5/t5.h"
#include "runtime/plan/t5.h"

namespace eight {
namespace {

void check_plan(const std::string& name, int64_t T) {
  const std::string dir = std::string(EIGHT_SOURCE_DIR) + "/tests/data/t5/" + name;
  const auto enc = t5::Encoder::load(dir);
  const T5Plan plan = plan_t5(dir, T, 1, 0);
  ThreadPool pool(1);
  std::vector<int32_t> ids(static_cast<size_t>(T));
  std::iota(ids.begin(), ids.end(), 3);
  enc->forward(ids, T, pool);  // warm the kernels' per-thread scratch
  MemoryTracker& tracker = memory_tracker();
  const int64_t before = tracker.stats().heap_current;
  tracker.reset_peak();
  const Tensor y = enc->forward(ids, T - 5, pool);
  const int64_t measured = tracker.stats().heap_peak - before;
  std::printf("[t5] %s T=%lld: planned activations %lld, measured peak %lld\n", name.c_str(),
              static_cast<long long>(T), static_cast<long long>(plan.activation_bytes),
              static_cast<long long>(measured));
  EXPECT_GE(plan.activation_bytes, measured);
  EXPECT_LE(plan.activation_bytes, measured + measured / 20) << "the plan should be tight (5%)";
  EXPECT_EQ(plan.config.n_layers, enc->config().n_layers);
}

TEST(T5Plan, ActivationsMatchMeasuredPeak) {
  check_plan("t5", 48);
  check_plan("t5v11", 77);
  check_plan("umt5", 130);
}

}  // namespace
}  // namespace eight
