// The image autoencoder (diffusers' AutoencoderKL) against diffusers' own outputs on the tiny
// random-weight SDXL pipeline that tests/python/sdxl_tiny.py writes (vae block_out_channels
// [32, 32, 64, 64], 2 layers per block, 4 latent channels, images 64 high x 96 wide): decode,
// encode, tiled decode and encode, f16 weights, malformed weights, and the planner's bound against
// the measured peak.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "core/error.h"
#include "core/memory.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "models/vae/vae_internal.h"
#include "ops/attention.h"
#include "sdxl_test_util.h"
#include "test_util.h"

namespace eight {
namespace {

// The tiny pipeline's vae/ folder, written by tests/python/sdxl_tiny.py (numpy) in f32 or f16,
// and the fixtures diffusers computed from it (tools/reference/make_sdxl_fixtures.py and
// make_vae_tiling_fixture.py).
using Reference = sdxl_test::Component;

const Reference& reference(const std::string& dtype) {
  static std::map<std::string, std::unique_ptr<Reference>> made;
  auto& r = made[dtype];
  if (!r) r = std::make_unique<Reference>(sdxl_test::load_component(dtype, "vae"));
  return *r;
}

Tensor fixture(const std::string& name) {
  return npy::read(testing::source_dir() + "/tests/data/sdxl/" + name);
}

// vae.decode(latents[None] / scaling_factor), as fixtures.json says.
Tensor decode_input(const vae::Config& c) {
  const Tensor lat = fixture("latents_euler.npy");
  Tensor z = Tensor::empty({1, lat.size(0), lat.size(1), lat.size(2)}, DType::F32);
  for (int64_t i = 0; i < z.numel(); ++i)
    z.data<float>()[i] = lat.data<float>()[i] / c.scaling_factor;
  return z;
}

// vae_decode_image clamped to [-1, 1].
Tensor encode_input() {
  Tensor img = fixture("vae_decode_image.npy");
  for (int64_t i = 0; i < img.numel(); ++i)
    img.data<float>()[i] = std::clamp(img.data<float>()[i], -1.f, 1.f);
  return img;
}

struct Diff {
  double nmse, psnr, max_abs;
};

// NMSE = sum (a - b)^2 / sum b^2; PSNR over the [-1, 1] pixel range (peak-to-peak 2).
Diff compare(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  double se = 0, ss = 0, mx = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.data<float>()[i], b = want.data<float>()[i];
    se += (a - b) * (a - b);
    ss += b * b;
    mx = std::max(mx, std::fabs(a - b));
  }
  const double mse = se / static_cast<double>(want.numel());
  return {se / ss, 10 * std::log10(4.0 / std::max(mse, 1e-30)), mx};
}

void report(const char* what, const Diff& d) {
  std::fprintf(stderr, "[vae] %s: NMSE %.3g, PSNR %.1f dB, max |diff| %.3g\n", what, d.nmse, d.psnr,
               d.max_abs);
}

TEST(VAE, ConfigFromJsonAndFromShapesAgree) {
  const Reference* ref = &reference("f32");
  const vae::Config a = vae::read_config(ref->weights, ref->config_json);
  const vae::Config b = vae::read_config(ref->weights, "");
  EXPECT_EQ(a.channels, (std::vector<int64_t>{32, 32, 64, 64}));
  EXPECT_EQ(a.channels, b.channels);
  EXPECT_EQ(a.layers_per_block, 2);
  EXPECT_EQ(b.layers_per_block, 2);
  EXPECT_EQ(a.latent_channels, b.latent_channels);
  EXPECT_EQ(a.quant_conv, b.quant_conv);
  EXPECT_EQ(a.mid_attention, b.mid_attention);
  EXPECT_FLOAT_EQ(a.scaling_factor, 0.13025f);
}

void expect_error_naming(const vae::Weights& w, const std::string& config,
                         const std::string& needle) {
  try {
    vae::Model::build(w, config);
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// FLUX's layout: no quant_conv / post_quant_conv (use_quant_conv false), a shift_factor.
TEST(VAE, WithoutQuantConvAsFLUX) {
  const Reference* ref = &reference("f32");
  vae::Weights w = ref->weights;
  for (const char* name :
       {"quant_conv.weight", "quant_conv.bias", "post_quant_conv.weight", "post_quant_conv.bias"})
    ASSERT_EQ(w.erase(name), 1u) << name;
  EXPECT_FALSE(vae::read_config(w, "").quant_conv);
  const auto model =
      vae::Model::build(w, R"({"block_out_channels": [32, 32, 64, 64], "layers_per_block": 2,
             "use_quant_conv": false, "use_post_quant_conv": false,
             "scaling_factor": 0.3611, "shift_factor": 0.1159})");
  EXPECT_FLOAT_EQ(model->config().shift_factor, 0.1159f);
  ThreadPool pool(2);
  EXPECT_EQ(model->decode(decode_input(model->config()), pool).shape(), (Dims{1, 3, 64, 96}));
  EXPECT_EQ(model->encode(encode_input(), pool).mean.shape(), (Dims{1, 4, 8, 12}));
  // The quant convs missing while the config asks for them is an error naming them.
  expect_error_naming(w, ref->config_json, "quant_conv.weight");
}

TEST(VAE, DecodeMatchesDiffusers) {
  const Reference* ref = &reference("f32");
  const auto model = vae::Model::build(ref->weights, ref->config_json);
  ThreadPool pool(2);
  const Tensor rgb = model->decode(decode_input(model->config()), pool);
  const Diff d = compare(rgb, fixture("vae_decode_image.npy"));
  report("decode", d);
  EXPECT_GE(d.psnr, 40);
  EXPECT_LE(d.nmse, 1e-5);
}

TEST(VAE, EncodeMatchesDiffusers) {
  const Reference* ref = &reference("f32");
  const auto model = vae::Model::build(ref->weights, ref->config_json);
  ThreadPool pool(2);
  const vae::Posterior p = model->encode(encode_input(), pool);
  const Diff dm = compare(p.mean, fixture("vae_encode_mean.npy")),
             ds = compare(p.std, fixture("vae_encode_std.npy"));
  report("encode mean", dm);
  report("encode std", ds);
  EXPECT_LE(dm.nmse, 1e-5);
  EXPECT_LE(ds.nmse, 1e-5);
}

TEST(VAE, TiledMatchesDiffusersTiling) {
  const Reference* ref = &reference("f32");
  const auto model = vae::Model::build(ref->weights, ref->config_json);
  ThreadPool pool(2);
  // diffusers with tile_latent_min_size 4, tile_sample_min_size 32: overlap 4 - int(0.75 * 4).
  const vae::Tiles tiles{.tile = 4, .overlap = 1};
  const Diff d = compare(model->decode(decode_input(model->config()), pool, tiles),
                         fixture("vae_tiled_decode_image.npy"));
  report("tiled decode", d);
  EXPECT_GE(d.psnr, 40);
  EXPECT_LE(d.nmse, 1e-5);
  const vae::Posterior p = model->encode(encode_input(), pool, tiles);
  const Diff dm = compare(p.mean, fixture("vae_tiled_encode_mean.npy"));
  const Diff ds = compare(p.std, fixture("vae_tiled_encode_std.npy"));
  report("tiled encode mean", dm);
  report("tiled encode std", ds);
  EXPECT_LE(dm.nmse, 1e-5);
  EXPECT_LE(ds.nmse, 1e-5);
}

// The same pipeline written in f16 (sdxl_tiny.py --dtype f16): the weights are used as f16 views
// of the file, against diffusers' f32 outputs.
TEST(VAE, F16WeightsStayClose) {
  const Reference* ref = &reference("f16");
  EXPECT_EQ(ref->weights.at("decoder.conv_in.weight").dtype(), DType::F16);
  const auto model = vae::Model::build(ref->weights, ref->config_json);
  ThreadPool pool(2);
  const Diff d =
      compare(model->decode(decode_input(model->config()), pool), fixture("vae_decode_image.npy"));
  report("decode, f16 weights", d);
  EXPECT_GE(d.psnr, 55);
  const vae::Posterior p = model->encode(encode_input(), pool);
  const Diff dm = compare(p.mean, fixture("vae_encode_mean.npy"));
  report("encode mean, f16 weights", dm);
  EXPECT_LE(dm.nmse, 1e-4);
}

TEST(VAE, MissingOrMisshapenTensorIsAnErrorNamingIt) {
  const Reference* ref = &reference("f32");
  for (const std::string name :
       {"decoder.mid_block.attentions.0.to_q.weight",
        "encoder.down_blocks.1.downsamplers.0.conv.bias",
        "decoder.up_blocks.2.resnets.0.conv_shortcut.weight", "post_quant_conv.weight"}) {
    vae::Weights w = ref->weights;
    ASSERT_EQ(w.erase(name), 1u) << name;
    expect_error_naming(w, ref->config_json, name);
  }
  vae::Weights w = ref->weights;
  const std::string name = "decoder.up_blocks.1.resnets.2.conv1.weight";
  w[name] = Tensor::zeros({64, 64, 3, 1}, DType::F32);
  expect_error_naming(w, ref->config_json, name);
  expect_error_naming(ref->weights, "{\"block_out_channels\": [32, 48]}", "48");
}

TEST(VAE, BadArgumentsAreErrors) {
  const Reference* ref = &reference("f32");
  const auto model = vae::Model::build(ref->weights, ref->config_json);
  ThreadPool pool(2);
  const Tensor z = decode_input(model->config());
  EXPECT_THROW(model->decode(z, pool, {.tile = 4, .overlap = 4}), Error);
  EXPECT_THROW(model->decode(z.slice(1, 0, 3), pool), Error);  // 3 latent channels
  EXPECT_THROW(model->encode(Tensor::zeros({1, 3, 60, 64}, DType::F32), pool), Error);
  // A latent no larger than one tile is decoded whole, as diffusers does.
  const Tensor whole = model->decode(z, pool);
  const Tensor one_tile = model->decode(z, pool, {.tile = 12, .overlap = 3});
  EXPECT_EQ(compare(one_tile, whole).max_abs, 0);
}

Tensor random_tensor(const Dims& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  const auto v = testing::random_floats(static_cast<size_t>(t.numel()), -2.f, 2.f);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// The middle block's blocked attention (matmul kernels) against ops::attention's per-query
// kernel, at odd sizes, in one block and in blocks of 16 queries with a short last block.
TEST(VAE, BlockedAttentionMatchesOpsAttention) {
  ThreadPool pool(2);
  for (const auto& [t, tk, c] :
       {std::tuple<int64_t, int64_t, int64_t>{257, 257, 33}, {31, 65, 64}, {96, 96, 512}}) {
    const Tensor q = random_tensor({t, c}), k = random_tensor({tk, c}), v = random_tensor({tk, c});
    Tensor vt = Tensor::empty({c, tk}, DType::F32);
    for (int64_t i = 0; i < tk; ++i)
      for (int64_t j = 0; j < c; ++j) vt.data<float>()[j * tk + i] = v.data<float>()[i * c + j];
    Tensor want = Tensor::empty({t, 1, c}, DType::F32);
    ops::attention(q.reshape({t, 1, c}), k.reshape({tk, 1, c}), v.reshape({tk, 1, c}), want, pool,
                   {.causal = false});
    for (const int64_t rows : {t, int64_t{16}}) {
      Tensor got = Tensor::empty({t, c}, DType::F32);
      vae::attention_rows(q, k, vt, got, pool, rows);
      const Diff d = compare(got, want.reshape({t, c}));
      EXPECT_LT(d.max_abs, 1e-4) << t << "x" << tk << "x" << c << " rows " << rows;
    }
  }
}

// The planner's bound against what a call allocates (tracked heap), after warm-up calls so that
// the kernels' per-thread scratch, kept between calls and billed by the planner on its own
// (cpu::matmul_scratch, attention_scratch_bytes), is mostly there already; which pool thread runs
// which task varies, so a thread may still grow its scratch by a few KiB: kScratchSlack.
constexpr int64_t kScratchSlack = 64 << 10;

template <class F>
int64_t measured_peak(F&& call) {
  for (int i = 0; i < 3; ++i) call();
  MemoryTracker& t = memory_tracker();
  const int64_t before = t.stats().heap_current;
  t.reset_peak();
  call();
  return t.stats().heap_peak - before;
}

TEST(VAE, BytesBoundTheMeasuredPeak) {
  const Reference* ref = &reference("f32");
  const auto model = vae::Model::build(ref->weights, ref->config_json);
  // One thread: with two, a thread's kernel scratch can still grow after the warm-ups.
  ThreadPool pool(1);
  const Tensor z = decode_input(model->config()), img = encode_input();
  const int64_t n = z.size(0), h = z.size(2), w = z.size(3);
  for (const vae::Tiles tiles : {vae::Tiles{}, vae::Tiles{.tile = 4, .overlap = 1}}) {
    const int64_t dec = measured_peak([&] { model->decode(z, pool, tiles); });
    const int64_t dec_bound = model->decode_bytes(n, h, w, tiles);
    const int64_t enc = measured_peak([&] { model->encode(img, pool, tiles); });
    const int64_t enc_bound = model->encode_bytes(n, img.size(2), img.size(3), tiles);
    std::fprintf(stderr,
                 "[vae] tile %lld: decode peak %lld, bound %lld; encode peak %lld, bound %lld\n",
                 static_cast<long long>(tiles.tile), static_cast<long long>(dec),
                 static_cast<long long>(dec_bound), static_cast<long long>(enc),
                 static_cast<long long>(enc_bound));
    EXPECT_LE(dec, dec_bound + kScratchSlack);
    EXPECT_LE(enc, enc_bound + kScratchSlack);
    EXPECT_GE(dec, dec_bound * 3 / 4) << "the bound is loose";
    EXPECT_GE(enc, enc_bound * 3 / 4) << "the bound is loose";
  }
}

}  // namespace
}  // namespace eight
