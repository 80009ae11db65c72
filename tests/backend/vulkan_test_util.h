#pragma once
// Shared by the Vulkan test programs (test_vulkan.cpp: devices, memory, execution;
// test_vulkan_kernels.cpp: every kernel against its CPU twin). They run on the lavapipe device
// (Mesa's CPU driver, picked by name) unless EIGHT_TEST_VULKAN_DEVICE=vulkan:N names another, and
// skip with one line when Vulkan is not built or no such device exists.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/quant.h"
#include "backend/vulkan/vulkan.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"
#include "test_util.h"

namespace eight::vulkan_test {

// The pipeline cache goes to a folder of this test process, not the user's ~/.cache (set before
// any device context exists, which reads the variable), removed when the tests end.
inline const std::filesystem::path kCacheHome =
    std::filesystem::temp_directory_path() / ("eight-test-vulkan-" + std::to_string(::getpid()));
inline const bool kCacheHomeSet = setenv("XDG_CACHE_HOME", kCacheHome.c_str(), 1) == 0;

class CacheHomeCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(kCacheHome, ec);
  }
};
[[maybe_unused]] inline const auto* kCleanup =
    ::testing::AddGlobalTestEnvironment(new CacheHomeCleanup);

// The device the tests run on, or -1 with the reason in *why.
inline int test_device(std::string* why) {
  if (!vulkan::built()) {
    *why = "vulkan not built";
    return -1;
  }
  if (const char* env = std::getenv("EIGHT_TEST_VULKAN_DEVICE"); env && *env) {
    try {
      return vulkan::select_device(env);
    } catch (const Error& e) {
      *why = e.what();
      return -1;
    }
  }
  for (const auto& d : vulkan::devices())
    if (d.name.find("llvmpipe") != std::string::npos) return d.index;
  *why =
      "no lavapipe (llvmpipe) device; install mesa-vulkan-drivers or set "
      "EIGHT_TEST_VULKAN_DEVICE (seen: " +
      vulkan::describe_devices() + ")";
  return -1;
}

inline int device() {
  std::string why;
  static const int d = test_device(&why);
  return d;
}

#define EIGHT_REQUIRE_VULKAN()                                                             \
  do {                                                                                     \
    std::string why_;                                                                      \
    if (::eight::vulkan_test::test_device(&why_) < 0) GTEST_SKIP() << "SKIPPED: " << why_; \
  } while (0)

inline std::unique_ptr<vulkan::Buffer> to_device(const void* data, size_t bytes) {
  auto b = std::make_unique<vulkan::Buffer>(device(), bytes);
  vulkan::upload(*b, 0, data, bytes);
  return b;
}

template <class T>
std::unique_ptr<vulkan::Buffer> to_device(const std::vector<T>& v) {
  return to_device(v.data(), v.size() * sizeof(T));
}

inline std::vector<float> to_host(const vulkan::Buffer& b, size_t n, size_t offset = 0) {
  std::vector<float> out(n);
  vulkan::download(b, offset, out.data(), n * sizeof(float));
  return out;
}

inline vulkan::BufferRef dref(const std::unique_ptr<vulkan::Buffer>& b, size_t offset = 0) {
  return {b.get(), offset};
}

// Creates the device's two staging buffers (one per command buffer in flight), which live as
// long as its context, so that tests can count the bytes of their own buffers.
inline void create_staging() {
  {
    auto warm = to_device(std::vector<float>{1, 2, 3});
    vulkan::flush(device());
    vulkan::upload(*warm, 0, std::vector<float>{4, 5, 6}.data(), 12);
  }
  vulkan::synchronize(device());
}

inline double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return den > 0 ? num / den : num;
}

// Weight rows of `type` from random floats: quantized by the CPU quantizer, or, for the IQ types
// (no quantizer), random index bytes with a small fp16 scale in every block.
inline std::vector<uint8_t> random_weights(DType type, int64_t n, int64_t k) {
  const size_t row = dtype_row_bytes(type, k);
  std::vector<uint8_t> w(row * static_cast<size_t>(n));
  if (can_quantize(type)) {
    const auto f = eight::testing::random_floats(static_cast<size_t>(n * k));
    quantize_rows(type, f.data(), w.data(), n, k);
    return w;
  }
  for (auto& b : w) b = static_cast<uint8_t>(eight::testing::rng()() & 0xFF);
  const size_t block = dtype_block_bytes(type);
  const uint16_t d = fp32_to_fp16(0.01f);
  for (size_t at = 0; at < w.size(); at += block) std::memcpy(&w[at], &d, 2);  // d is field 0
  return w;
}

}  // namespace eight::vulkan_test
