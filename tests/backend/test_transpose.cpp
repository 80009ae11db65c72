// ops::transpose on the CPU against a plain loop, and on a Vulkan device (lavapipe) against the
// CPU, on fresh random inputs with odd sizes and a strided x (a column slice of a wider matrix).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/vulkan_test_util.h"
#include "core/thread_pool.h"
#include "ops/device.h"
#include "ops/transpose.h"

namespace eight {
namespace {

// A random [r, s] view with rows `extra` floats apart beyond s (a column slice when extra > 0).
Tensor random_matrix(int64_t r, int64_t s, int64_t extra) {
  Tensor wide = Tensor::empty({r, s + extra}, DType::F32);
  const auto v = testing::random_floats(static_cast<size_t>(wide.numel()));
  std::memcpy(wide.data<float>(), v.data(), v.size() * sizeof(float));
  return wide.slice(1, extra, s + extra);
}

const int64_t kSizes[][3] = {{1, 1, 0}, {31, 257, 0}, {33, 1, 0}, {257, 33, 5}, {64, 96, 3}};

TEST(Transpose, CpuMatchesPlainLoop) {
  ThreadPool pool(2);
  for (const auto& [r, s, extra] : kSizes)
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      const Tensor x = random_matrix(r, s, extra);
      const Tensor y = Tensor::empty({s, r}, DType::F32);
      ops::transpose(x, y, p);
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < s; ++j)
          ASSERT_EQ(y.data<float>()[j * r + i], x.data<float>()[i * x.stride(0) + j])
              << r << "x" << s << " at " << i << ", " << j;
    }
}

TEST(Transpose, BadShapesAreErrors) {
  const Tensor x = Tensor::empty({3, 5}, DType::F32);
  EXPECT_THROW(ops::transpose(x, Tensor::empty({3, 5}, DType::F32)), Error);
  EXPECT_THROW(ops::transpose(x, Tensor::empty({5, 6}, DType::F32).slice(1, 0, 3)), Error);
  EXPECT_THROW(ops::transpose(x.reshape({15}), Tensor::empty({15}, DType::F32)), Error);
}

TEST(Transpose, VulkanMatchesCpu) {
  EIGHT_REQUIRE_VULKAN();
  const Device gpu = Device::vulkan(vulkan_test::device());
  for (const auto& [r, s, extra] : kSizes) {
    const Tensor x = random_matrix(r, s, extra);
    const Tensor want = Tensor::empty({s, r}, DType::F32);
    ops::transpose(x, want);
    // The strided view is uploaded whole, then sliced on the device.
    const Tensor wide =
        ops::to_device(Tensor::from_storage(x.storage(), 0, Dims{r, s + extra}, DType::F32), gpu);
    const Tensor y = ops::empty({s, r}, DType::F32, gpu);
    ops::transpose(wide.slice(1, extra, s + extra), y);
    const Tensor got = ops::to_device(y, Device::cpu());
    ASSERT_EQ(std::memcmp(got.data<float>(), want.data<float>(), want.nbytes()), 0)
        << r << "x" << s;
  }
}

}  // namespace
}  // namespace eight
