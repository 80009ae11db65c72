// The image autoencoder (diffusers' AutoencoderKL) against diffusers' own outputs on the tiny
// random-weight SDXL pipeline that tests/python/sdxl_tiny.py writes (vae block_out_channels
// [32, 32, 64, 64], 2 layers per block, 4 latent channels, images 64 high x 96 wide): decode,
// encode, tiled decode and encode, f16 weights, malformed weights, and the planner's bound against
// the measured peak.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/half.h"
#include "core/memory.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "models/vae/vae.h"
#include "test_util.h"

namespace eight {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The tiny pipeline's vae/ folder and the reference arrays beside it.
struct Reference {
  std::string dir;  // holding vae/ and the .npy files
  safetensors::Checkpoint checkpoint;
  vae::Weights weights;
  std::string config;

  Tensor npy(const std::string& name) const { return npy::read(dir + "/" + name); }
};

const Reference* reference() {
  static const Reference* ref = []() -> const Reference* {
    const char* env = std::getenv("EIGHT_VAE_REF");
    if (!env || !*env) return nullptr;
    auto* r = new Reference;
    r->dir = env;
    r->checkpoint =
        safetensors::Checkpoint::open(r->dir + "/vae/diffusion_pytorch_model.safetensors");
    for (const std::string& name : r->checkpoint.names())
      r->weights[name] = r->checkpoint.tensor(name);
    r->config = read_text(r->dir + "/vae/config.json");
    return r;
  }();
  return ref;
}

#define REQUIRE_REFERENCE()                                                  \
  const Reference* ref = reference();                                        \
  if (!ref) GTEST_SKIP() << "SKIPPED: no reference VAE (set EIGHT_VAE_REF)"; \
  do {                                                                       \
  } while (0)

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
  REQUIRE_REFERENCE();
  const vae::Config a = vae::read_config(ref->weights, ref->config);
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

TEST(VAE, DecodeMatchesDiffusers) {
  REQUIRE_REFERENCE();
  const auto model = vae::Model::build(ref->weights, ref->config);
  ThreadPool pool(2);
  const Tensor rgb = model->decode(ref->npy("z.npy"), pool);
  const Diff d = compare(rgb, ref->npy("dec.npy"));
  report("decode", d);
  EXPECT_GE(d.psnr, 40);
  EXPECT_LE(d.nmse, 1e-5);
}

TEST(VAE, EncodeMatchesDiffusers) {
  REQUIRE_REFERENCE();
  const auto model = vae::Model::build(ref->weights, ref->config);
  ThreadPool pool(2);
  const vae::Posterior p = model->encode(ref->npy("img.npy"), pool);
  const Diff dm = compare(p.mean, ref->npy("mean.npy")), ds = compare(p.std, ref->npy("std.npy"));
  report("encode mean", dm);
  report("encode std", ds);
  EXPECT_LE(dm.nmse, 1e-5);
  EXPECT_LE(ds.nmse, 1e-5);
}

TEST(VAE, TiledMatchesDiffusersTiling) {
  REQUIRE_REFERENCE();
  const auto model = vae::Model::build(ref->weights, ref->config);
  ThreadPool pool(2);
  // diffusers with tile_latent_min_size 4, tile_sample_min_size 32: overlap 4 - int(0.75 * 4).
  const vae::Tiles tiles{.tile = 4, .overlap = 1};
  const Diff d = compare(model->decode(ref->npy("z.npy"), pool, tiles), ref->npy("dec_tiled.npy"));
  report("tiled decode", d);
  EXPECT_GE(d.psnr, 40);
  EXPECT_LE(d.nmse, 1e-5);
  const vae::Posterior p = model->encode(ref->npy("img.npy"), pool, tiles);
  const Diff dm = compare(p.mean, ref->npy("mean_tiled.npy"));
  const Diff ds = compare(p.std, ref->npy("std_tiled.npy"));
  report("tiled encode mean", dm);
  report("tiled encode std", ds);
  EXPECT_LE(dm.nmse, 1e-5);
  EXPECT_LE(ds.nmse, 1e-5);
}

// Every float tensor rounded to f16 (as an fp16 checkpoint stores it).
vae::Weights to_f16(const vae::Weights& w) {
  vae::Weights out;
  for (const auto& [name, t] : w) {
    const Tensor c = t.contiguous();
    Tensor h = Tensor::empty(c.shape(), DType::F16);
    for (int64_t i = 0; i < c.numel(); ++i)
      h.data<uint16_t>()[i] = fp32_to_fp16(c.data<float>()[i]);
    out[name] = h;
  }
  return out;
}

TEST(VAE, F16WeightsStayClose) {
  REQUIRE_REFERENCE();
  const auto model = vae::Model::build(to_f16(ref->weights), ref->config);
  ThreadPool pool(2);
  const Diff d = compare(model->decode(ref->npy("z.npy"), pool), ref->npy("dec.npy"));
  report("decode, f16 weights", d);
  EXPECT_GE(d.psnr, 30);
  const vae::Posterior p = model->encode(ref->npy("img.npy"), pool);
  const Diff dm = compare(p.mean, ref->npy("mean.npy"));
  report("encode mean, f16 weights", dm);
  EXPECT_LE(dm.nmse, 1e-3);
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

TEST(VAE, MissingOrMisshapenTensorIsAnErrorNamingIt) {
  REQUIRE_REFERENCE();
  for (const std::string name :
       {"decoder.mid_block.attentions.0.to_q.weight",
        "encoder.down_blocks.1.downsamplers.0.conv.bias",
        "decoder.up_blocks.2.resnets.0.conv_shortcut.weight", "post_quant_conv.weight"}) {
    vae::Weights w = ref->weights;
    ASSERT_EQ(w.erase(name), 1u) << name;
    expect_error_naming(w, ref->config, name);
  }
  vae::Weights w = ref->weights;
  const std::string name = "decoder.up_blocks.1.resnets.2.conv1.weight";
  w[name] = Tensor::zeros({64, 64, 3, 1}, DType::F32);
  expect_error_naming(w, ref->config, name);
  expect_error_naming(ref->weights, "{\"block_out_channels\": [32, 48]}", "48");
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
  REQUIRE_REFERENCE();
  const auto model = vae::Model::build(ref->weights, ref->config);
  ThreadPool pool(2);
  const Tensor z = ref->npy("z.npy"), img = ref->npy("img.npy");
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
