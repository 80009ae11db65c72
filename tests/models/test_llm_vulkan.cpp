// The golden LLMs on a Vulkan device (lavapipe in CI): fully offloaded (every layer and the output
// layer) and half offloaded (the last half of the layers; the rest and the output on the host),
// held to the same llama.cpp logits and greedy continuation as the CPU (llm_golden_util.h). Also
// what a placement does to device memory: the weights and caches it uploads are counted on the
// device's tracker and given back when the model goes.
#include "backend/vulkan_test_util.h"
#include "llm_golden_util.h"

namespace eight {
namespace {

using vulkan_test::device;

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
  {
    // The device context's own buffers (the staging buffers of its two submission frames) are
    // made on first use: make them first, so that what follows counts only the placement.
    vulkan::Buffer warm(device(), 16);
    const float ones[4] = {1, 1, 1, 1};
    for (int frame = 0; frame < 2; ++frame) {
      vulkan::upload(warm, 0, ones, sizeof ones);
      vulkan::flush(device());
    }
  }
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

}  // namespace
}  // namespace eight
