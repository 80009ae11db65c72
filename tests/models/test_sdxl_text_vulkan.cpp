// SDXL's two CLIP text encoders with their transformer layers on a Vulkan device (lavapipe in CI)
// against diffusers' encode_prompt on the tiny random-weight pipeline (the fixtures of
// test_sdxl_text.cpp), and against the same encoders on the CPU.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "backend/vulkan_test_util.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/safetensors.h"
#include "models/clip/text_encoder.h"
#include "sdxl_test_util.h"

namespace eight {
namespace {

using sdxl_test::ids_of;
using sdxl_test::weights_of;

class SDXLTextVulkan : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    tiny_ = sdxl_test::write_tiny(*dir_);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::shared_ptr<const clip::TextEncoder> encoder(const std::string& folder,
                                                          const std::string& act, Device device) {
    const std::string d = tiny_ + "/" + folder;
    return clip::TextEncoder::build(weights_of(d + "/model.safetensors"),
                                    sdxl_test::read_text(d + "/config.json"), act, folder, device);
  }
  static testing::TempDir* dir_;
  static std::string tiny_;
};
testing::TempDir* SDXLTextVulkan::dir_ = nullptr;
std::string SDXLTextVulkan::tiny_;

TEST_F(SDXLTextVulkan, BothEncodersMatchDiffusers) {
  EIGHT_REQUIRE_VULKAN();
  ThreadPool& pool = global_thread_pool(2);
  const Device gpu = Device::vulkan(vulkan_test::device());
  const auto te1 = encoder("text_encoder", "quick_gelu", gpu);
  const auto te2 = encoder("text_encoder_2", "gelu", gpu);
  const auto cpu1 = encoder("text_encoder", "quick_gelu", Device::cpu());
  const auto cpu2 = encoder("text_encoder_2", "gelu", Device::cpu());
  for (const std::string which : {"prompt", "negative"}) {
    const Tensor want = sdxl_test::fixture("text_" + which + "_embeds");         // [1, 77, 192]
    const Tensor want_pooled = sdxl_test::fixture("text_" + which + "_pooled");  // [1, 128]
    const auto ids1 = ids_of(sdxl_test::fixture("text_" + which + "_tokens"));
    const auto ids2 = ids_of(sdxl_test::fixture("text_" + which + "_tokens_2"));
    const auto a = te1->encode({ids1}, -2, pool);
    const auto b = te2->encode({ids2}, -2, pool);
    ASSERT_EQ(a.hidden.device(), Device::cpu());
    ASSERT_EQ(a.hidden.shape(), (Dims{1, 77, 64}));
    ASSERT_EQ(b.hidden.shape(), (Dims{1, 77, 128}));
    const double e1 = sdxl_test::nmse(a.hidden, want.slice(2, 0, 64));
    const double e2 = sdxl_test::nmse(b.hidden, want.slice(2, 64, 192));
    const double ep = sdxl_test::nmse(b.pooled, want_pooled);
    EXPECT_LE(e1, 1e-8) << which << " text_encoder";
    EXPECT_LE(e2, 1e-8) << which << " text_encoder_2";
    EXPECT_LE(ep, 1e-8) << which << " pooled";
    const double c1 = sdxl_test::nmse(a.hidden, cpu1->encode({ids1}, -2, pool).hidden);
    const double c2 = sdxl_test::nmse(b.hidden, cpu2->encode({ids2}, -2, pool).hidden);
    EXPECT_LE(c1, 1e-8) << which << " text_encoder against the CPU";
    EXPECT_LE(c2, 1e-8) << which << " text_encoder_2 against the CPU";
    std::printf("[sdxl text vulkan] %s: NMSE %.3g, %.3g, pooled %.3g; against the CPU %.3g, %.3g\n",
                which.c_str(), e1, e2, ep, c1, c2);
  }
}

// A batch of two windows, and the last layer's output (no layers left after the hidden state).
TEST_F(SDXLTextVulkan, BatchAndLastLayerMatchTheCpu) {
  EIGHT_REQUIRE_VULKAN();
  ThreadPool& pool = global_thread_pool(2);
  const auto gpu = encoder("text_encoder_2", "gelu", Device::vulkan(vulkan_test::device()));
  const auto cpu = encoder("text_encoder_2", "gelu", Device::cpu());
  const std::vector<std::vector<int32_t>> ids = {
      ids_of(sdxl_test::fixture("text_prompt_tokens_2")),
      ids_of(sdxl_test::fixture("text_negative_tokens_2"))};
  const auto g = gpu->encode(ids, -1, pool);
  const auto c = cpu->encode(ids, -1, pool);
  EXPECT_LE(sdxl_test::nmse(g.hidden, c.hidden), 1e-8);
  EXPECT_LE(sdxl_test::nmse(g.pooled, c.pooled), 1e-8);
}

// The layers' weights are device memory, returned with the encoder.
TEST_F(SDXLTextVulkan, LayersAreDeviceMemoryReturnedWithTheEncoder) {
  EIGHT_REQUIRE_VULKAN();
  vulkan_test::create_staging();
  MemoryTracker& tr = memory_tracker(Device::vulkan(vulkan_test::device()));
  const int64_t base = tr.stats().heap_current;
  {
    const auto te = encoder("text_encoder", "quick_gelu", Device::vulkan(vulkan_test::device()));
    EXPECT_GT(tr.stats().heap_current, base);
    EXPECT_LT(tr.stats().heap_current - base, te->weight_bytes());  // embeddings stay on the host
  }
  vulkan::synchronize(vulkan_test::device());
  EXPECT_EQ(tr.stats().heap_current, base);
}

}  // namespace
}  // namespace eight
