// SDXL's UNet against diffusers: the tiny random-weight pipeline of tests/python/sdxl_tiny.py
// (block_out_channels [32, 64, 128], transformer depths [1, 1, 2]) and the UNet call committed in
// tests/data/sdxl (tools/reference/make_sdxl_fixtures.py): batch 2 (negative, prompt),
// timesteps [999, 500].
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "backend/cpu/scratch.h"
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

Tensor run(const unet::Model& m, const Call& c, ThreadPool& pool) {
  return m.forward(c.x, c.timesteps, c.context, c.text_embeds, c.time_ids, pool);
}

void expect_matches(const std::string& dtype, bool with_config, double tolerance) {
  const sdxl_test::Component t = load_tiny(dtype);
  const auto model = unet::Model::build(t.weights, with_config ? t.config_json : std::string());
  const Call c = fixture_call();
  ThreadPool pool(2);
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor y = run(*model, c, pool);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(y.shape(), c.expected.shape());
  const double err = nmse(y, c.expected);
  std::printf("[unet] %s weights, %s config.json: NMSE %.3g, forward %.1f ms\n", dtype.c_str(),
              with_config ? "with" : "without", err, ms);
  EXPECT_LE(err, tolerance);
}

TEST(UNet, MatchesDiffusersF32WithConfig) {
  expect_matches("f32", true, 1e-6);
}
TEST(UNet, MatchesDiffusersF32FromShapes) {
  expect_matches("f32", false, 1e-6);
}
TEST(UNet, MatchesDiffusersF16) {
  expect_matches("f16", true, 1e-3);
}
TEST(UNet, MatchesDiffusersBF16FromShapes) {
  expect_matches("bf16", false, 1e-2);
}

TEST(UNet, ConfigFromShapesEqualsConfigJson) {
  const sdxl_test::Component t = load_tiny("f32");
  const unet::Config a = unet::read_config(t.weights, t.config_json);
  const unet::Config b = unet::read_config(t.weights, "");
  EXPECT_EQ(a.in_channels, b.in_channels);
  EXPECT_EQ(a.out_channels, b.out_channels);
  EXPECT_EQ(a.channels, b.channels);
  EXPECT_EQ(a.layers_per_block, b.layers_per_block);
  EXPECT_EQ(a.depth, b.depth);
  EXPECT_EQ(a.heads, b.heads);  // channels / 64, at least 1 (32 channels: 1, as the config says)
  EXPECT_EQ(a.mid_depth, b.mid_depth);
  EXPECT_EQ(a.mid_heads, b.mid_heads);
  EXPECT_EQ(a.cross_attention_dim, b.cross_attention_dim);
  EXPECT_EQ(a.time_embed_dim, b.time_embed_dim);
  EXPECT_EQ(a.groups, b.groups);
  EXPECT_EQ(a.eps, b.eps);
  EXPECT_EQ(a.linear_projection, b.linear_projection);
  // The documented exception: add_embedding reads 128 + 6 x 8 = 176 features, too few for SDXL's
  // 6 x 256, so the shapes leave both widths unknown (forward() takes them from text_embeds).
  EXPECT_EQ(a.addition_time_embed_dim, 8);
  EXPECT_EQ(a.pooled_dim, 128);
  EXPECT_EQ(b.addition_time_embed_dim, 0);
  EXPECT_EQ(b.pooled_dim, 0);
}

void expect_error(const unet::Weights& w, const std::string& config,
                  const std::vector<std::string>& parts) {
  try {
    unet::Model::build(w, config);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(UNet, MissingOrMisshapedWeightsNameTheTensor) {
  const sdxl_test::Component t = load_tiny("f32");
  const std::string name = "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.weight";
  unet::Weights w = t.weights;
  w.erase(name);
  expect_error(w, t.config_json, {name, "missing"});
  w = t.weights;
  w[name] = Tensor::zeros({64, 190}, DType::F32);
  expect_error(w, t.config_json, {name, "[64, 190]", "[64, 192]"});
  w = t.weights;
  w["down_blocks.1.resnets.0.conv_shortcut.weight"] = Tensor::zeros({64, 31, 1, 1}, DType::F32);
  expect_error(w, "", {"down_blocks.1.resnets.0.conv_shortcut.weight", "[64, 31, 1, 1]"});
  expect_error(t.weights, "{\"addition_embed_type\": \"text\"}", {"addition_embed_type"});
}

// The peak of one forward() against activation_bytes(). The kernels' per-thread scratch is kept
// between calls and left out of the bound, so every pool thread's slots are grown first (1 MiB
// each, more than this tiny model's kernels ask for): warm-up calls alone leave it to chance which
// thread ran which task, and a thread that ran none of the largest products would grow its
// scratch inside the measured call.
void expect_bound(const unet::Model& model, const Call& c) {
  ThreadPool pool(2);
  pool.each_thread([](int) {
    for (int slot = 0; slot < cpu::kScratchSlots; ++slot) cpu::thread_scratch(slot, 1 << 20);
  });
  run(model, c, pool);  // warm-up
  run(model, c, pool);
  MemoryTracker& tracker = memory_tracker();
  const int64_t before = tracker.stats().heap_current;
  tracker.reset_peak();
  const Tensor y = run(model, c, pool);
  const int64_t measured = tracker.stats().heap_peak - before;
  const int64_t bound =
      model.activation_bytes(c.x.size(0), c.x.size(2), c.x.size(3), c.context.size(1));
  std::printf("[unet] activation_bytes %lld, measured peak %lld\n", static_cast<long long>(bound),
              static_cast<long long>(measured));
  EXPECT_GE(bound, measured);
  EXPECT_LE(bound, measured + measured / 20) << "the bound should be tight (5%)";
}

// The random-weight models of eight bench --sdxl-random: the builder's own walk names every tensor
// of a diffusers checkpoint with its shape, and the model builds from them.
TEST(UNet, SynthesizedWeightsHaveTheCheckpointsNamesAndShapes) {
  const sdxl_test::Component t = load_tiny("f32");
  const unet::Config config = unet::read_config(t.weights, t.config_json);
  const unet::Weights w = unet::synthesize_weights(
      config,
      [](const std::string&, const Dims& shape) { return Tensor::zeros(shape, DType::F32); });
  EXPECT_EQ(w.size(), t.weights.size());
  for (const auto& [name, tensor] : t.weights) {
    const auto it = w.find(name);
    ASSERT_NE(it, w.end()) << name;
    EXPECT_EQ(it->second.shape(), tensor.shape()) << name;
  }
  EXPECT_NO_THROW(unet::Model::build(w, config));
}

TEST(UNet, ActivationBytesBoundTheMeasuredPeak) {
  const sdxl_test::Component t = load_tiny("f16");
  expect_bound(*unet::Model::build(t.weights, t.config_json), fixture_call());
}

// A latent size that is no multiple of the levels' downscale (9 x 13 -> 5 x 7 -> 3 x 4): the up
// path resizes to each skip's size as diffusers' upsample_size does (checked against diffusers
// once: NMSE 2.5e-12), and the bound still holds.
TEST(UNet, OddLatentSizeRunsWithinItsBound) {
  const sdxl_test::Component t = load_tiny("f32");
  const auto model = unet::Model::build(t.weights, std::string());
  Call c;
  auto random = [](const Dims& shape) {
    Tensor r = Tensor::empty(shape, DType::F32);
    const std::vector<float> v = testing::random_floats(static_cast<size_t>(r.numel()));
    std::copy(v.begin(), v.end(), r.data<float>());
    return r;
  };
  c.x = random({1, 4, 9, 13});
  c.context = random({1, 5, 192});
  c.text_embeds = random({1, 128});
  c.time_ids = Tensor::zeros({1, 6}, DType::F32);
  c.timesteps = {321.5f};
  ThreadPool pool(2);
  const Tensor y = run(*model, c, pool);
  ASSERT_EQ(y.shape(), (Dims{1, 4, 9, 13}));
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(y.data<float>()[i]));
  expect_bound(*model, c);
}

}  // namespace
}  // namespace eight
