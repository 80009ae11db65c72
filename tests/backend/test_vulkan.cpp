// The Vulkan backend's devices, memory and execution: listing and selection, tracked and capped
// device memory, uploads and downloads, submission order, threads, the pipeline cache and the
// benchmark. The kernels are in test_vulkan_kernels.cpp; helpers in vulkan_test_util.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/nn_kernels.h"
#include "backend/vulkan/bench.h"
#include "backend/vulkan/vulkan.h"
#include "backend/vulkan_test_util.h"
#include "core/memory.h"
#include "core/tensor.h"

using namespace eight;
using namespace eight::vulkan_test;

TEST(Vulkan, ReportsWhatIsBuilt) {
  // Holds on every machine: a build without Vulkan says so and lists nothing.
  EXPECT_FALSE(vulkan::describe_devices().empty());
  if (!vulkan::built()) {
    EXPECT_TRUE(vulkan::devices().empty());
    EXPECT_THROW(vulkan::select_device("auto"), Error);
  }
}

TEST(Vulkan, ListsDevices) {
  EIGHT_REQUIRE_VULKAN();
  const auto list = vulkan::devices();
  ASSERT_FALSE(list.empty());
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& d = list[i];
    EXPECT_EQ(d.index, static_cast<int>(i));
    EXPECT_FALSE(d.name.empty());
    EXPECT_TRUE(d.type == "discrete" || d.type == "integrated" || d.type == "virtual" ||
                d.type == "cpu" || d.type == "other")
        << d.type;
    EXPECT_GT(d.memory_bytes, 0);
    ASSERT_FALSE(d.features.empty());
    EXPECT_EQ(d.features[0].rfind("subgroup_size=", 0), 0u) << d.features[0];
    std::printf("[vulkan] %s\n", vulkan::describe_devices().c_str());
  }
}

TEST(Vulkan, SelectionNeverPicksACpuDeviceAutomatically) {
  EIGHT_REQUIRE_VULKAN();
  const auto list = vulkan::devices();
  EXPECT_EQ(vulkan::select_device("vulkan:" + std::to_string(device())), device());
  const bool any_gpu = std::any_of(list.begin(), list.end(), [](const auto& d) {
    return d.type == "discrete" || d.type == "integrated";
  });
  for (const char* spec : {"auto", "vulkan"}) {
    if (any_gpu) {
      const int picked = vulkan::select_device(spec);
      EXPECT_NE(list[static_cast<size_t>(picked)].type, "cpu");
    } else {
      try {
        vulkan::select_device(spec);
        ADD_FAILURE() << spec << " picked a device although none is a GPU";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(spec), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("vulkan:0"), std::string::npos) << e.what();
      }
    }
  }
  const std::string past = "vulkan:" + std::to_string(list.size());
  try {
    vulkan::select_device(past);
    ADD_FAILURE() << past << " was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(past), std::string::npos) << e.what();
  }
  for (const char* bad : {"cuda:0", "vulkan:", "vulkan:x", "vulkan:-1", ""})
    EXPECT_THROW(vulkan::select_device(bad), Error) << bad;
}

TEST(Vulkan, AllocationsAreTrackedAndReturnToZero) {
  EIGHT_REQUIRE_VULKAN();
  auto& tracker = memory_tracker(Device::vulkan(device()));
  create_staging();
  const int64_t before = tracker.stats().heap_current;
  {
    vulkan::Buffer a(device(), 1 << 20);
    vulkan::Buffer b(device(), 12345);
    EXPECT_GE(tracker.stats().heap_current, before + (1 << 20) + 12345);
    EXPECT_EQ(a.device(), Device::vulkan(device()));
    EXPECT_EQ(a.data(), nullptr);
  }
  EXPECT_EQ(tracker.stats().heap_current, before);
  // A buffer freed while recorded work uses it is released after that work.
  {
    auto x = to_device(eight::testing::random_floats(1000));
    vulkan::scale(dref(x), 2.f, dref(x), 1000);
  }
  EXPECT_GT(tracker.stats().heap_current, before);
  vulkan::synchronize(device());
  EXPECT_EQ(tracker.stats().heap_current, before);
  // The same once submitted: flush() does not wait, so the work may still be running.
  {
    auto x = to_device(eight::testing::random_floats(1000));
    vulkan::scale(dref(x), 2.f, dref(x), 1000);
    vulkan::flush(device());
  }
  vulkan::synchronize(device());
  EXPECT_EQ(tracker.stats().heap_current, before);
}

TEST(Vulkan, FlushSubmitsWithoutLosingOrder) {
  EIGHT_REQUIRE_VULKAN();
  // Work spread over many submissions (both command buffers in flight in turn) stays in order.
  const auto x = eight::testing::random_floats(4096);
  auto d = to_device(x);
  for (int i = 0; i < 40; ++i) {
    vulkan::scale(dref(d), 1.5f, dref(d), 4096);
    vulkan::scale(dref(d), 1.f / 1.5f, dref(d), 4096);
    vulkan::binary(vulkan::BinaryOp::Add, dref(d), dref(d), dref(d), 4096, 4096);
    vulkan::scale(dref(d), 0.5f, dref(d), 4096);
    if (i % 3 == 0) vulkan::flush(device());
  }
  const auto got = to_host(*d, x.size());
  double err = 0;
  for (size_t i = 0; i < x.size(); ++i) err = std::max(err, std::fabs(double(got[i]) - x[i]));
  EXPECT_LT(err, 1e-5);
}

TEST(Vulkan, TensorsLiveInDeviceBuffers) {
  EIGHT_REQUIRE_VULKAN();
  auto storage = std::make_shared<vulkan::Buffer>(device(), 4 * 33 * 4);
  const Tensor t = Tensor::from_storage(storage, 0, {4, 33}, DType::F32);
  EXPECT_EQ(t.device(), Device::vulkan(device()));
  EXPECT_NE(t.str().find("vulkan:" + std::to_string(device())), std::string::npos) << t.str();
  const Tensor row = t.select(0, 2);
  const auto ref = vulkan::buffer_of(row);
  EXPECT_EQ(ref.buffer, storage.get());
  EXPECT_EQ(ref.offset, 2u * 33 * 4);
  EXPECT_THROW(vulkan::buffer_of(Tensor::zeros({3}, DType::F32)), Error);
}

TEST(Vulkan, BudgetRefusesWithTheNumbers) {
  EIGHT_REQUIRE_VULKAN();
  auto& tracker = memory_tracker(Device::vulkan(device()));
  const int64_t held = tracker.stats().heap_current;
  const int64_t cap = held + (1 << 20);
  vulkan::set_device_budget(device(), cap);
  EXPECT_EQ(vulkan::device_budget(device()), cap);
  try {
    vulkan::Buffer big(device(), 4 << 20);
    ADD_FAILURE() << "a 4 MiB buffer passed a 1 MiB budget";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(std::to_string(4 << 20)), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(held)), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(cap)), std::string::npos) << msg;
    EXPECT_NE(msg.find("[vulkan]"), std::string::npos) << msg;
  }
  EXPECT_EQ(tracker.stats().heap_current, held);
  { vulkan::Buffer fits(device(), 512 << 10); }
  vulkan::set_device_budget(device(), -1);
  const auto info = vulkan::devices()[static_cast<size_t>(device())];
  EXPECT_LE(vulkan::device_budget(device()),
            std::max<int64_t>(0, info.memory_bytes - vulkan::kDeviceReserveBytes));
}

TEST(Vulkan, OutOfDeviceMemoryIsAnError) {
  EIGHT_REQUIRE_VULKAN();
  const auto info = vulkan::devices()[static_cast<size_t>(device())];
  vulkan::set_device_budget(device(), std::numeric_limits<int64_t>::max() / 4);
  // Far more than the heap: refused by the driver or by the allocation limit, never a crash.
  EXPECT_THROW(vulkan::Buffer(device(), static_cast<size_t>(info.memory_bytes) * 64), Error);
  vulkan::set_device_budget(device(), -1);
}

TEST(Vulkan, PipelineCacheIsWrittenUnderXdgCacheHome) {
  EIGHT_REQUIRE_VULKAN();
  ASSERT_TRUE(kCacheHomeSet);
  auto x = to_device(std::vector<float>{1, 2, 3});
  vulkan::scale(dref(x), 2.f, dref(x), 3);  // creates a pipeline
  vulkan::synchronize(device());            // and saves the cache
  bool found = false;
  for (const auto& e : std::filesystem::directory_iterator(kCacheHome / "eight"))
    found |=
        e.path().filename().string().rfind("vulkan-", 0) == 0 && e.path().extension() == ".cache";
  EXPECT_TRUE(found) << "no vulkan-*.cache in " << (kCacheHome / "eight");
}

TEST(Vulkan, UploadDownloadRoundTripsAtOffsets) {
  EIGHT_REQUIRE_VULKAN();
  const auto v = eight::testing::random_floats(100003);
  vulkan::Buffer b(device(), v.size() * 4 + 64);
  vulkan::upload(b, 12, v.data(), v.size() * 4);
  EXPECT_EQ(to_host(b, v.size(), 12), v);
  EXPECT_EQ(to_host(b, 7, 12 + 4 * 500), std::vector<float>(v.begin() + 500, v.begin() + 507));
  EXPECT_THROW(vulkan::upload(b, b.size() - 3, v.data(), 4), Error);
  // Larger than the 32 MiB staging buffer: copied in pieces.
  std::vector<uint8_t> big((size_t{40} << 20) + 3);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  vulkan::Buffer db(device(), big.size() + 5);
  vulkan::upload(db, 5, big.data(), big.size());
  std::vector<uint8_t> back(big.size());
  vulkan::download(db, 5, back.data(), back.size());
  EXPECT_TRUE(back == big);
}

TEST(Vulkan, ThreadsShareADevice) {
  EIGHT_REQUIRE_VULKAN();
  // Allocation, recording, submission and downloads from several threads at once: each thread's
  // own chain comes out right and every byte is returned.
  auto& tracker = memory_tracker(Device::vulkan(device()));
  create_staging();
  const int64_t before = tracker.stats().heap_current;
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int it = 0; it < 25; ++it) {
        std::vector<float> x(300, static_cast<float>(t + 1));
        auto d = to_device(x);
        vulkan::scale(dref(d), 2.f, dref(d), 300);
        vulkan::binary(vulkan::BinaryOp::Add, dref(d), dref(d), dref(d), 300, 300);
        if (it % 5 == 0) vulkan::flush(device());
        for (float v : to_host(*d, 300)) bad[static_cast<size_t>(t)] += v != 4.f * (t + 1);
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
  vulkan::synchronize(device());
  EXPECT_EQ(tracker.stats().heap_current, before);
}

TEST(Vulkan, BenchmarkMeasuresEveryPart) {
  EIGHT_REQUIRE_VULKAN();
  // Tiny sizes: this checks that the benchmark runs and reports, not the numbers.
  const auto r = vulkan::benchmark(device(), {.types = {DType::Q4_K, DType::F16},
                                              .batches = {16},
                                              .copy_bytes = 1 << 20,
                                              .matvec_bytes = 1 << 20,
                                              .k = 256,
                                              .matmul_n = 64,
                                              .min_seconds = 0.01});
  EXPECT_GT(r.copy_gbs, 0);
  ASSERT_EQ(r.rows.size(), 2u);
  for (const auto& row : r.rows) {
    EXPECT_GT(row.matvec_gbs, 0);
    ASSERT_EQ(row.matmul_gflops.size(), 1u);
    EXPECT_GT(row.matmul_gflops[0], 0);
  }
  const std::string table = vulkan::format_bench(r);
  EXPECT_NE(table.find("q4_K"), std::string::npos) << table;
}

TEST(Vulkan, ChainedDispatchesSeeEachOthersWrites) {
  EIGHT_REQUIRE_VULKAN();
  // norm -> matmul -> add -> softmax recorded back to back, one download at the end: the barriers
  // between dispatches order them.
  const int64_t m = 2, k = 256, n = 33;
  const auto x = eight::testing::random_floats(static_cast<size_t>(m * k));
  const auto nw = eight::testing::random_floats(static_cast<size_t>(k));
  const auto w = random_weights(DType::Q4_K, n, k);
  const auto bias = eight::testing::random_floats(static_cast<size_t>(n));
  std::vector<float> h(x.size()), y(static_cast<size_t>(m * n)), want(y.size());
  for (int64_t r = 0; r < m; ++r)
    cpu::rms_norm_reference(x.data() + r * k, nw.data(), h.data() + r * k, k, 1e-6f);
  cpu::matmul_reference({.m = m,
                         .n = n,
                         .k = k,
                         .x = h.data(),
                         .ldx = k,
                         .w_type = DType::Q4_K,
                         .w = w.data(),
                         .ldw = dtype_row_bytes(DType::Q4_K, k),
                         .y = y.data(),
                         .ldy = n});
  for (int64_t r = 0; r < m; ++r) {
    cpu::binary_reference(cpu::BinaryOp::Add, y.data() + r * n, bias.data(), y.data() + r * n, n);
    cpu::softmax_reference(y.data() + r * n, nullptr, want.data() + r * n, n, 1.f);
  }
  auto dx = to_device(x), dnw = to_device(nw), dw = to_device(w), db = to_device(bias);
  auto dh = std::make_unique<vulkan::Buffer>(device(), h.size() * 4);
  auto dy = std::make_unique<vulkan::Buffer>(device(), y.size() * 4);
  vulkan::rms_norm(dref(dx), dref(dnw), dref(dh), m, k, 1e-6f);
  vulkan::matmul({.m = m,
                  .n = n,
                  .k = k,
                  .x = dref(dh),
                  .ldx = k,
                  .w_type = DType::Q4_K,
                  .w = dref(dw),
                  .ldw = dtype_row_bytes(DType::Q4_K, k),
                  .y = dref(dy),
                  .ldy = n});
  vulkan::binary(vulkan::BinaryOp::Add, dref(dy), dref(db), dref(dy), m * n, n);
  vulkan::softmax(dref(dy), {}, 1, dref(dy), m, n, 1.f);
  EXPECT_LT(nmse(to_host(*dy, y.size()), want), 1e-11);

  // More dispatches than one submission's descriptor sets (1024): the context submits on its own
  // and the chain stays ordered.
  std::vector<float> one(7, 1.f);
  auto d1 = to_device(one);
  for (int i = 0; i < 1500; ++i) vulkan::scale(dref(d1), 1.001f, dref(d1), 7);
  const auto got = to_host(*d1, 7);
  float expect = 1.f;
  for (int i = 0; i < 1500; ++i) expect *= 1.001f;
  for (float v : got) EXPECT_FLOAT_EQ(v, expect);
}
