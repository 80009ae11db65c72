// The golden LLMs on a Vulkan device (lavapipe in CI): fully offloaded (every layer and the output
// layer) and half offloaded (the last half of the layers; the rest and the output on the host),
// held to the same llama.cpp logits and greedy continuation as the CPU (llm_golden_util.h). Also
// what a placement does to device memory: the weights and caches it uploads are counted on the
// device's tracker and given back when the model goes.
#include "backend/vulkan_test_util.h"
#include "llm_golden_util.h"
#include "runtime/llm/session.h"

namespace eight {
namespace {

using vulkan_test::device;

// The device context's own buffers (the staging buffers of its two submission frames) are made on
// first use: the memory tests make them first, so that what they measure is only the model's.
void make_context_buffers() {
  vulkan::Buffer warm(device(), 16);
  const float ones[4] = {1, 1, 1, 1};
  for (int frame = 0; frame < 2; ++frame) {
    vulkan::upload(warm, 0, ones, sizeof ones);
    vulkan::flush(device());
  }
  vulkan::synchronize(device());
}

std::shared_ptr<llm::LLM> load(const testing::Golden& g) {
  return llm::LLM::load(g.dir + "/" + g.meta["model"].get<std::string>());
}

TEST(LLMVulkan, GoldenFullyOffloaded) {
  EIGHT_REQUIRE_VULKAN();
  EIGHT_REQUIRE_SHARED();
  const auto models = testing::golden_models();
  ASSERT_FALSE(models.empty()) << "no golden LLMs found under ../shared/golden/llm";
  for (const auto& g : models) {
    SCOPED_TRACE(g.name);
    auto model = load(g);
    model->place({.device = Device::vulkan(device()),
                  .n_gpu_layers = model->config().n_layer,
                  .output_on_gpu = true});
    testing::check_golden(*model, g, "vulkan");
  }
}

TEST(LLMVulkan, GoldenHalfOffloaded) {
  EIGHT_REQUIRE_VULKAN();
  EIGHT_REQUIRE_SHARED();
  for (const auto& g : testing::golden_models()) {
    SCOPED_TRACE(g.name);
    auto model = load(g);
    model->place({.device = Device::vulkan(device()),
                  .n_gpu_layers = model->config().n_layer / 2,
                  .output_on_gpu = false});
    testing::check_golden(*model, g, "half");
  }
}

// Device memory: a placement's uploads and caches are tracked, add up to the weights it moved,
// and return to zero when the model, cache and scratch are gone. A budget too small for the
// weights refuses the placement with the numbers, and the model stays usable on the host.
TEST(LLMVulkan, PlacementMemoryIsTrackedAndCapped) {
  EIGHT_REQUIRE_VULKAN();
  EIGHT_REQUIRE_SHARED();
  const auto models = testing::golden_models();
  ASSERT_FALSE(models.empty());
  const Device dev = Device::vulkan(device());
  MemoryTracker& tr = memory_tracker(dev);
  make_context_buffers();
  vulkan::synchronize(device());
  const int64_t base = tr.stats().heap_current;
  {
    auto model = load(models[0]);
    const auto& c = model->config();
    int64_t layer_bytes = 0;  // what placing the last two layers must upload
    for (int64_t il = c.n_layer - 2; il < c.n_layer; ++il)
      for (const auto& info : model->file().tensors())
        if (info.name.starts_with(cat("blk.", il, ".")))
          layer_bytes += static_cast<int64_t>(info.nbytes);
    model->place({.device = dev, .n_gpu_layers = 2, .output_on_gpu = false});
    EXPECT_EQ(tr.stats().heap_current - base, layer_bytes);
    KVCache cache(kv_cache_config(*model, 32, DType::F16));
    EXPECT_EQ(tr.stats().heap_current - base - layer_bytes,
              2 * 2 * 32 * dtype_row_bytes(DType::F16, c.kv_dim()));
  }
  vulkan::synchronize(device());  // buffers freed while copies were pending go after those
  EXPECT_EQ(tr.stats().heap_current, base);

  auto model = load(models[0]);
  vulkan::set_device_budget(device(), 1024);
  try {
    model->place({.device = dev, .n_gpu_layers = model->config().n_layer, .output_on_gpu = true});
    ADD_FAILURE() << "a 1 KiB budget accepted the model's weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("budget"), std::string::npos) << e.what();
  }
  vulkan::set_device_budget(device(), -1);
  vulkan::synchronize(device());
  EXPECT_EQ(tr.stats().heap_current, base);
  EXPECT_FALSE(model->placement().any_gpu());
  const auto logits = testing::all_logits(*model, {1, 2, 3}, 4);  // still runs on the host
  EXPECT_EQ(logits.size(), static_cast<size_t>(3 * model->config().n_vocab));
}

// The planner's device bill against the device tracker: a session opened on the device (which
// plans with the device's budget and places what fits) holds, after a prompt and a few decoded
// tokens, within 5% of what the plan says it will, and never more. The runtime reserve (the
// driver's share, which the tracker sees only as the staging buffers) is left out of both.
TEST(LLMVulkan, PlannedDeviceMemoryMatchesMeasured) {
  EIGHT_REQUIRE_VULKAN();
  EIGHT_REQUIRE_SHARED();
  const Device dev = Device::vulkan(device());
  MemoryTracker& tr = memory_tracker(dev);
  make_context_buffers();
  for (const auto& g : testing::golden_models()) {
    SCOPED_TRACE(g.name);
    vulkan::synchronize(device());
    const int64_t base = tr.stats().heap_current;
    tr.reset_peak();
    int64_t planned = 0, measured = 0;
    for (const int64_t ngl : {int64_t{-1}, int64_t{2}}) {  // the planner's choice, then -ngl 2
      {
        auto session = LLMSession::open(g.dir + "/" + g.meta["model"].get<std::string>(),
                                        {.n_ctx = 96,
                                         .ubatch = 32,
                                         .n_threads = 1,
                                         .device = cat("vulkan:", device()),
                                         .n_gpu_layers = ngl});
        const auto tokens = g.meta["tokens"].get<std::vector<int32_t>>();
        session->eval(tokens);
        for (int i = 0; i < 4; ++i) session->eval(std::vector<int32_t>{tokens[i]});
        vulkan::synchronize(device());
        planned = session->plan().gpu.total();
        for (const auto& item : session->plan().gpu.items)
          if (item.what == "runtime reserve") planned -= item.bytes;
        if (ngl >= 0) {
          // -ngl overrides the plan: bill only what was placed (weights of 2 layers, their
          // cache, the arena), from the plan's own lines.
          planned = 0;
          const auto& c = session->config();
          for (const auto& info : session->model().file().tensors())
            for (int64_t il = c.n_layer - 2; il < c.n_layer; ++il)
              if (info.name.starts_with(cat("blk.", il, "."))) planned += info.nbytes;
          for (const auto& item : session->plan().gpu.items)
            if (item.what == "compute arena") planned += item.bytes;
          planned += 2 * 2 * 96 * static_cast<int64_t>(dtype_row_bytes(DType::F16, c.kv_dim()));
        }
        measured = tr.stats().peak - base;
      }
      std::printf("[plan] %-16s ngl %-3lld device planned %lld, measured %lld (%.2f%%)\n",
                  g.name.c_str(), static_cast<long long>(ngl), static_cast<long long>(planned),
                  static_cast<long long>(measured), 100.0 * (measured - planned) / planned);
      EXPECT_LE(measured, planned) << "ngl " << ngl;
      EXPECT_GE(measured, planned * 0.95) << "ngl " << ngl;
      vulkan::synchronize(device());
      tr.reset_peak();
    }
  }
}

// The host side of a fully offloaded session: what it allocates on the host heap (the token rows,
// positions and rope table, the logits row) is what the plan's heap lines say, and never more.
// (The file mapping is left out: the plan does not count the uploaded weights' pages, which the
// OS may reclaim.)
TEST(LLMVulkan, FullyOffloadedHostHeapMatchesPlan) {
  EIGHT_REQUIRE_VULKAN();
  EIGHT_REQUIRE_SHARED();
  make_context_buffers();
  MemoryTracker& host = memory_tracker();
  for (const auto& g : testing::golden_models()) {
    SCOPED_TRACE(g.name);
    const int64_t base = host.stats().heap_current;
    host.reset_peak();
    int64_t planned = 0, measured = 0;
    {
      auto session = LLMSession::open(g.dir + "/" + g.meta["model"].get<std::string>(),
                                      {.n_ctx = 96,
                                       .ubatch = 32,
                                       .n_threads = 1,
                                       .device = cat("vulkan:", device()),
                                       .n_gpu_layers = 999});
      ASSERT_EQ(session->model().first_gpu_layer(), 0);
      const auto tokens = g.meta["tokens"].get<std::vector<int32_t>>();
      session->eval(tokens);
      session->eval(std::vector<int32_t>{tokens[0]});
      planned = session->plan().host_heap_bytes();
      measured = host.stats().heap_peak - base;
    }
    std::printf("[plan] %-16s host heap planned %lld, measured %lld\n", g.name.c_str(),
                static_cast<long long>(planned), static_cast<long long>(measured));
    EXPECT_LE(measured, planned);
    EXPECT_GE(measured, planned * 0.95);
  }
}

}  // namespace
}  // namespace eight
