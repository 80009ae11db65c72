// The image pipeline's device bill (runtime/plan/diffusion.h, ImagePlan::device) against the
// device tracker on lavapipe: a whole generate() of the tiny SDXL pipeline of
// tests/python/sdxl_tiny.py on vulkan:0, from before the load (weights uploaded, text encoders,
// UNet steps, VAE decode), peaks within 5% below the plan's device peak, never above. The staging
// buffers (the runtime reserve's share, on the device heap on lavapipe) are in the base, left out
// of both.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "../backend/vulkan_test_util.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "models/sdxl_test_util.h"
#include "models/unet/unet.h"
#include "ops/device.h"
#include "runtime/diffusion/image_pipeline.h"
#include "runtime/diffusion/sdxl_parts.h"
#include "runtime/plan/diffusion.h"

namespace eight {
namespace {

TEST(PlannerDiffusionVulkan, GenerateDevicePeakWithinFivePercent) {
  EIGHT_REQUIRE_VULKAN();
  const int dev_index = vulkan_test::device();
  const Device dev = Device::vulkan(dev_index);
  testing::TempDir tmp;
  const std::string dir = sdxl_test::write_tiny(tmp, "f16");
  MemoryTracker& tr = memory_tracker(dev);
  // Both staging frames exist before the base is read.
  for (int i = 0; i < 2; ++i) {
    const Tensor t = ops::to_device(Tensor::zeros({16}, DType::F32), dev);
    vulkan::synchronize(dev_index);
  }
  ThreadPool& pool = global_thread_pool(2);
  struct Case {
    int64_t width, height;
    double cfg;
    int64_t vae_tile = -1;
  };
  // Tiles of 8 latent pixels make the decode smaller than the UNet's forward: the denoise stage
  // is then the device peak.
  for (const Case& c :
       {Case{64, 64, 5.0}, Case{128, 96, 5.0}, Case{192, 192, 1.0}, Case{256, 192, 5.0, 8}}) {
    SCOPED_TRACE(cat(c.width, "x", c.height, " cfg ", c.cfg));
    vulkan::synchronize(dev_index);
    const int64_t base = tr.stats().heap_current;
    tr.reset_peak();
    int64_t planned = 0;
    {
      diffusion::ImageLoadOptions load;
      load.path = dir;
      load.device = dev;
      auto p = diffusion::ImagePipeline::load(load);
      diffusion::ImageRequest rq;
      rq.prompt = "a red cube on a table";
      rq.width = c.width;
      rq.height = c.height;
      rq.steps = 2;
      rq.cfg_scale = c.cfg;
      rq.seed = 7;
      rq.vae_tile = c.vae_tile;
      const diffusion::ImageResult res = p->generate(rq, pool);
      ASSERT_TRUE(res.plan.on_gpu());
      planned = res.plan.device_peak();
      vulkan::synchronize(dev_index);
      std::printf("%lldx%lld cfg %.0f: %s\n", static_cast<long long>(c.width),
                  static_cast<long long>(c.height), c.cfg, res.plan.gpu.c_str());
      for (const auto& s : res.plan.device_stages)
        std::printf("  device %-8s %lld\n", s.name.c_str(), static_cast<long long>(s.bytes));
    }
    const int64_t measured = tr.stats().peak - base;
    std::printf("  device planned %lld measured %lld ratio %.4f\n", static_cast<long long>(planned),
                static_cast<long long>(measured),
                static_cast<double>(measured) / static_cast<double>(planned));
    EXPECT_LE(measured, planned);
    EXPECT_GE(static_cast<double>(measured), 0.95 * static_cast<double>(planned));
  }
}

// The plan's device replay of the UNet equals the model's own bound on a device-built UNet (the
// tiny pipeline's decode outgrows its UNet, so generate() alone does not show it).
TEST(PlannerDiffusionVulkan, UNetDeviceReplayEqualsTheModel) {
  EIGHT_REQUIRE_VULKAN();
  testing::TempDir tmp;
  const std::string dir = sdxl_test::write_tiny(tmp, "f16");
  const diffusion::SDXLFiles f = diffusion::read_sdxl_files(dir, "");
  const ImageModelDesc d = describe_image_model(dir);
  const auto unet =
      unet::Model::build(f.unet, f.unet_config, Device::vulkan(vulkan_test::device()));
  for (auto [N, h, w, L] :
       {std::array<int64_t, 4>{1, 8, 8, 77}, {2, 16, 12, 77}, {2, 32, 32, 154}, {1, 40, 24, 77}})
    EXPECT_EQ(unet_activation_bytes(d.unet, N, h, w, L, /*on_device=*/true),
              unet->activation_bytes(N, h, w, L))
        << N << " x " << h << "x" << w << ", " << L << " tokens";
}

// Over the device budget the run is refused before anything runs, with the numbers.
TEST(PlannerDiffusionVulkan, RefusedOverTheDeviceBudget) {
  EIGHT_REQUIRE_VULKAN();
  testing::TempDir tmp;
  const std::string dir = sdxl_test::write_tiny(tmp, "f16");
  diffusion::ImageLoadOptions load;
  load.path = dir;
  load.device = Device::vulkan(vulkan_test::device());
  auto p = diffusion::ImagePipeline::load(load);
  diffusion::ImageRequest rq;
  rq.prompt = "a red cube";
  rq.width = rq.height = 128;
  rq.steps = 1;
  rq.vram_budget = 4 << 20;  // below the tiny pipeline's weights and decode
  try {
    p->generate(rq, global_thread_pool(2));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("does not fit: vulkan:"), std::string::npos) << m;
    EXPECT_NE(m.find("Options"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace eight
