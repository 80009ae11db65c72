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
#include "core/memory.h"
#include "core/thread_pool.h"
#include "models/sdxl_test_util.h"
#include "ops/device.h"
#include "runtime/diffusion/image_pipeline.h"
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
  };
  for (const Case& c : {Case{64, 64, 5.0}, Case{128, 96, 5.0}, Case{192, 192, 1.0}}) {
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

}  // namespace
}  // namespace eight
