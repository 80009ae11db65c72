#pragma once
// The check the memory-plan tests share: a measured peak against its plan.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace eight::testing {

// r = {planned, measured}: measured <= planned, and measured >= 95 % of `floor` (the plan itself,
// or for several threads the one-thread plan: whether the pool's other threads take any of a tiny
// product's few tasks, and so grow scratch of their own, is up to scheduling; the plan counts
// every thread's).
inline void expect_plan_tight(const std::string& label, std::pair<int64_t, int64_t> r,
                              int64_t floor) {
  const auto [planned, measured] = r;
  ASSERT_GE(measured, 0) << label << ": the run failed";
  std::printf("%-42s planned %10lld measured %10lld ratio %.4f\n", label.c_str(),
              static_cast<long long>(planned), static_cast<long long>(measured),
              static_cast<double>(measured) / static_cast<double>(planned));
  EXPECT_LE(measured, planned) << label << ": the plan must cover the peak";
  EXPECT_GE(static_cast<double>(measured), 0.95 * static_cast<double>(floor))
      << label << ": the plan should be within 5 %";
}

}  // namespace eight::testing
