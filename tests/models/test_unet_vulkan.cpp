// SDXL's UNet on a Vulkan device (lavapipe in CI): the tiny random-weight pipeline of
// tests/python/sdxl_tiny.py and the diffusers UNet call of tests/data/sdxl (as test_unet.cpp runs
// on the CPU), against diffusers and against the same model on the host; a Q8_0 linear weight
// with a run-time LoRA; the device memory the weights and one forward hold.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "backend/cpu/quant.h"
#include "backend/vulkan_test_util.h"
#include "core/error.h"
#include "core/memory.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "models/unet/unet.h"
#include "sdxl_test_util.h"
#include "test_util.h"

namespace eight {
namespace {

using Call = sdxl_test::UNetCall;
using sdxl_test::nmse;
using sdxl_test::tiny_dir;

sdxl_test::Component load_tiny(const std::string& dtype) {
  return sdxl_test::load_component(dtype, "unet");
}

Call fixture_call() {
  return sdxl_test::unet_call();
}

Device gpu() {
  return Device::vulkan(vulkan_test::device());
}

bool on_lavapipe() {
  for (const auto& d : vulkan::devices())
    if (d.index == vulkan_test::device()) return d.name.find("llvmpipe") != std::string::npos;
  return false;
}

// forward() on the host tensors of the call, and its wall time in ms.
Tensor run(const unet::Model& m, const Call& c, ThreadPool& pool, double* ms = nullptr) {
  const auto t0 = std::chrono::steady_clock::now();
  Tensor y = m.forward(c.x, c.timesteps, c.context, c.text_embeds, c.time_ids, pool);
  if (ms)
    *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return y;
}

void expect_matches(const std::string& dtype, double tolerance) {
  EIGHT_REQUIRE_VULKAN();
  const sdxl_test::Component t = load_tiny(dtype);
  const auto dev = unet::Model::build(t.weights, t.config_json, gpu());
  const auto host = unet::Model::build(t.weights, t.config_json);
  EXPECT_EQ(dev->device(), gpu());
  EXPECT_EQ(host->device(), Device::cpu());
  EXPECT_EQ(dev->weight_bytes(), host->weight_bytes());
  const Call c = fixture_call();
  ThreadPool pool(2);
  double ms_first = 0, ms_dev = 0, ms_host = 0;
  run(*dev, c, pool, &ms_first);  // the first run also creates the pipelines
  const Tensor y = run(*dev, c, pool, &ms_dev);
  const Tensor y_host = run(*host, c, pool, &ms_host);
  ASSERT_EQ(y.device(), Device::cpu());
  ASSERT_EQ(y.shape(), c.expected.shape());
  const double err = nmse(y, c.expected), vs_host = nmse(y, y_host);
  std::printf(
      "[unet] %s weights on %s: NMSE %.3g vs diffusers, %.3g vs the CPU; forward %.1f ms "
      "(first %.1f ms), CPU %.1f ms\n",
      dtype.c_str(), gpu().name().c_str(), err, vs_host, ms_dev, ms_first, ms_host);
  EXPECT_LE(err, tolerance);
  EXPECT_LE(vs_host, tolerance);
}

TEST(UNetVulkan, MatchesDiffusersF32) {
  expect_matches("f32", 1e-6);
}
TEST(UNetVulkan, MatchesDiffusersF16) {
  expect_matches("f16", 1e-3);
}

// A Q8_0 linear weight with a run-time LoRA ("<module>.lora_down" / ".lora_up") runs on the device
// and agrees with the host; the LoRA changes the result there as it does on the host.
TEST(UNetVulkan, QuantizedWeightWithRuntimeLora) {
  EIGHT_REQUIRE_VULKAN();
  const sdxl_test::Component t = load_tiny("f32");
  const std::string module = "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj";
  const Tensor w = t.weights.at(module + ".weight");  // [512, 64]
  const int64_t rows = w.size(0), cols = w.size(1), rank = 4;
  Tensor q = Tensor::empty(w.shape(), DType::Q8_0);
  quantize_rows(DType::Q8_0, w.data<float>(), q.raw(), rows, cols);
  Tensor down = Tensor::empty({rank, cols}, DType::F32),
         up = Tensor::empty({rows, rank}, DType::F32);
  for (int64_t i = 0; i < down.numel(); ++i)
    down.data<float>()[i] = 0.05f * static_cast<float>((i * 7) % 11 - 5);
  for (int64_t i = 0; i < up.numel(); ++i)
    up.data<float>()[i] = 0.04f * static_cast<float>((i * 5) % 13 - 6);
  unet::Weights plain = t.weights, lora = t.weights;
  plain[module + ".weight"] = q;
  lora[module + ".weight"] = q;
  lora[module + ".lora_down"] = down;
  lora[module + ".lora_up"] = up;

  const Call c = fixture_call();
  ThreadPool pool(2);
  const Tensor dev_lora = run(*unet::Model::build(lora, t.config_json, gpu()), c, pool);
  const Tensor dev_plain = run(*unet::Model::build(plain, t.config_json, gpu()), c, pool);
  const Tensor host_lora = run(*unet::Model::build(lora, t.config_json), c, pool);
  const double err = nmse(dev_lora, host_lora), effect = nmse(dev_plain, dev_lora);
  const double vs_diffusers = nmse(dev_plain, c.expected);
  std::printf(
      "[unet] Q8_0 %s on %s: with a LoRA %.3g vs the CPU (the LoRA moves it by %.3g); without, "
      "%.3g vs diffusers' f32\n",
      module.c_str(), gpu().name().c_str(), err, effect, vs_diffusers);
  // The CPU's Q8_0 matmul rounds its activations to 8 bits, the device's does not.
  EXPECT_LT(err, 1e-4);
  EXPECT_GT(effect, 1e-3);
  EXPECT_LT(vs_diffusers, 1e-3);
}

// The weights' device memory is device_bytes() and is returned with the model; one forward stays
// within activation_bytes(), which counts device memory for a model on the device.
TEST(UNetVulkan, DeviceMemoryIsCountedAndReturned) {
  EIGHT_REQUIRE_VULKAN();
  vulkan_test::create_staging();
  const sdxl_test::Component t = load_tiny("f16");
  MemoryTracker& tracker = memory_tracker(gpu());
  const int64_t before = tracker.stats().current;
  const Call c = fixture_call();
  ThreadPool pool(2);
  {
    const auto m = unet::Model::build(t.weights, t.config_json, gpu());
    vulkan::synchronize(gpu().index);
    const int64_t held = tracker.stats().current - before;
    // lavapipe allocates the bytes asked for (in whole words); other drivers may align more.
    if (on_lavapipe()) {
      EXPECT_EQ(held, m->device_bytes());
    } else {
      EXPECT_GE(held, m->device_bytes());
    }
    EXPECT_GT(m->device_bytes(), 0);
    const auto host = unet::Model::build(t.weights, t.config_json);
    EXPECT_EQ(host->device_bytes(), 0);

    tracker.reset_peak();
    run(*m, c, pool);
    vulkan::synchronize(gpu().index);
    const int64_t peak = tracker.stats().peak - before - held;
    const int64_t bound = m->activation_bytes(2, c.x.size(2), c.x.size(3), c.context.size(1));
    std::printf("[unet] device weights %lld bytes; forward peak %lld of activation_bytes %lld\n",
                static_cast<long long>(held), static_cast<long long>(peak),
                static_cast<long long>(bound));
    // The replay mirrors every device allocation and when each is released: exact on lavapipe.
    if (on_lavapipe()) {
      EXPECT_EQ(peak, bound);
    }
    EXPECT_LE(peak, bound);
    EXPECT_GT(peak, bound / 2);
  }
  vulkan::synchronize(gpu().index);
  EXPECT_EQ(tracker.stats().current, before);
}

// SDXL's shape of levels at a small width, with random weights: a first level without
// transformers, 1x1-convolution projections (linear_projection false), heads of 64 (self-attention
// over 64 tokens takes the chunked route), one sample. The device agrees with the host, and its
// activation_bytes() is the measured device peak.
TEST(UNetVulkan, SDXLShapedRandomModelMatchesTheHost) {
  EIGHT_REQUIRE_VULKAN();
  vulkan_test::create_staging();  // not counted in the forward's peak
  unet::Config config;
  config.channels = {32, 64};
  config.depth = {0, 1};
  config.heads = {1, 1};
  config.mid_heads = 1;
  config.cross_attention_dim = 48;
  config.time_embed_dim = 128;
  config.addition_time_embed_dim = 8;
  config.pooled_dim = 16;
  config.linear_projection = false;
  uint64_t state = 12345;
  auto uniform = [&] {  // in [-1, 1)
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(state >> 40) / static_cast<float>(1 << 23) - 1.f;
  };
  auto random = [&](const Dims& shape, float scale) {
    Tensor t = Tensor::empty(shape, DType::F32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = scale * uniform();
    return t;
  };
  const unet::Weights w =
      unet::synthesize_weights(config, [&](const std::string& name, const Dims& shape) {
        if (shape.size() == 1) {  // norm weights (the 1-D ".weight"s) around 1, biases around 0
          Tensor t = random(shape, 0.1f);
          if (name.ends_with(".weight"))
            for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] += 1.f;
          return t;
        }
        const int64_t fan_in = shape.product() / shape[0];
        return random(shape, 1.f / std::sqrt(static_cast<float>(fan_in)));
      });
  const auto host = unet::Model::build(w, config);
  const auto dev = unet::Model::build(w, config, gpu());
  const int64_t L = 10;
  Call c;
  c.x = random({1, 4, 16, 16}, 1.f);
  c.context = random({1, L, 48}, 1.f);
  c.text_embeds = random({1, 16}, 1.f);
  c.time_ids = random({1, 6}, 100.f);
  c.timesteps = {321};
  ThreadPool pool(2);
  MemoryTracker& tracker = memory_tracker(gpu());
  vulkan::synchronize(gpu().index);
  const int64_t before = tracker.stats().current;
  tracker.reset_peak();
  const Tensor y = run(*dev, c, pool);
  vulkan::synchronize(gpu().index);
  const int64_t peak = tracker.stats().peak - before;
  const Tensor want = run(*host, c, pool);
  const double err = nmse(y, want);
  const int64_t bound = dev->activation_bytes(1, 16, 16, L);
  std::printf("[unet] SDXL-shaped random model on %s: NMSE %.3g vs the CPU; peak %lld of %lld\n",
              gpu().name().c_str(), err, static_cast<long long>(peak),
              static_cast<long long>(bound));
  EXPECT_LT(err, 1e-9);
  EXPECT_LE(peak, bound);
  if (on_lavapipe()) {
    EXPECT_EQ(peak, bound);
  }
}

// A latent size the 2x upsamplers cannot mirror (diffusers' upsample_size) is refused on the
// device with the reason, not run wrong.
TEST(UNetVulkan, OddLatentSizeIsRefusedWithTheReason) {
  EIGHT_REQUIRE_VULKAN();
  const sdxl_test::Component t = load_tiny("f32");
  const auto m = unet::Model::build(t.weights, t.config_json, gpu());
  Call c = fixture_call();
  c.x = Tensor::zeros({2, 4, 6, 6}, DType::F32);
  ThreadPool pool(2);
  try {
    run(*m, c, pool);
    ADD_FAILURE() << "a 6 x 6 latent ran on the device";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only the nearest 2x"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace eight
