// The FLUX.1 transformer against diffusers' FluxTransformer2DModel on the tiny random models of
// tools/reference/make_flux_transformer.py (tests/data/flux/): the same weights in diffusers' and
// BFL's names, the guidance-embedding (dev) variant, an F8_E4M3 copy against a reference run with
// its rounded weights, and malformed weights.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/memory.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "models/flux/flux.h"
#include "test_util.h"

namespace eight {
namespace {

std::string data(const std::string& name) {
  return testing::source_dir() + "/tests/data/flux/" + name;
}

flux::Weights load(const std::string& file) {
  const auto f = safetensors::File::open(data(file));
  flux::Weights w;
  for (const auto& info : f.tensors()) w[info.name] = f.tensor(info);
  return w;
}

std::string config_text() {
  std::ifstream in(data("schnell/config.json"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double nmse(const Tensor& a, const Tensor& ref) {
  EXPECT_EQ(a.shape(), ref.shape());
  double num = 0, den = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double d = double(a.data<float>()[i]) - ref.data<float>()[i];
    num += d * d;
    den += double(ref.data<float>()[i]) * ref.data<float>()[i];
  }
  std::printf("nmse %.3g\n", num / den);
  return num / den;
}

Tensor run(const flux::Transformer& tr) {
  ThreadPool pool(2);
  auto in = [](const char* n) { return npy::read(data(cat("in_", n, ".npy"))); };
  return tr.forward(in("img"), in("txt"), in("pooled"), in("img_ids"), in("txt_ids"),
                    in("sigma").data<float>()[0], in("guidance").data<float>()[0], pool);
}

std::string dev_config() {
  std::string c = config_text();
  const auto at = c.find("\"guidance_embeds\": false");
  c.replace(at, 24, "\"guidance_embeds\": true");
  return c;
}

TEST(Flux, DiffusersNamesMatchDiffusers) {
  const auto tr =
      flux::Transformer::build(load("schnell/diffusion_pytorch_model.safetensors"), config_text());
  EXPECT_FALSE(tr->config().guidance_embed);
  EXPECT_EQ(tr->config().hidden, 32);
  EXPECT_LE(nmse(run(*tr), npy::read(data("out_schnell.npy"))), 1e-5);
}

TEST(Flux, BflNamesMatchDiffusers) {
  const flux::Weights w = load("schnell_bfl.safetensors");
  EXPECT_TRUE(flux::is_flux_transformer(w));
  const auto tr = flux::Transformer::build(w, config_text());
  EXPECT_LE(nmse(run(*tr), npy::read(data("out_schnell.npy"))), 1e-5);
  // The fused qkv / linear1 tensors are viewed, not copied: the weights are the file's bytes.
  EXPECT_GT(tr->weight_bytes(), 200000);
}

TEST(Flux, GuidanceEmbedding) {
  const auto tr = flux::Transformer::build(load("dev_bfl.safetensors"), dev_config());
  EXPECT_TRUE(tr->config().guidance_embed);
  EXPECT_LE(nmse(run(*tr), npy::read(data("out_dev.npy"))), 1e-5);
}

TEST(Flux, ConfigFromShapes) {
  const flux::Weights w = load("schnell_bfl.safetensors");
  // head_dim 16 has no known rotary split: a clear error asking for config.json.
  try {
    flux::read_config(w, "");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
  const flux::Config c = flux::read_config(w, config_text());
  EXPECT_EQ(c.double_blocks, 2);
  EXPECT_EQ(c.single_blocks, 2);
  EXPECT_EQ(c.axes_dim[1], 6);
}

void expect_error(const flux::Weights& w, const std::string& needle) {
  try {
    flux::Transformer::build(w, config_text());
    FAIL() << "no error for " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Flux, MalformedWeightsNameTheTensor) {
  flux::Weights w = load("schnell_bfl.safetensors");
  w.erase("single_blocks.1.linear2.weight");
  expect_error(w, "single_blocks.1.linear2.weight");
  w = load("schnell_bfl.safetensors");
  const Tensor qkv = w["double_blocks.0.txt_attn.qkv.weight"];
  w["double_blocks.0.txt_attn.qkv.weight"] = qkv.slice(0, 0, 95);
  expect_error(w, "double_blocks.0.txt_attn.qkv.weight");
  w = load("schnell/diffusion_pytorch_model.safetensors");
  w["transformer_blocks.1.attn.norm_added_k.weight"] =
      w["transformer_blocks.1.attn.norm_added_k.weight"].slice(0, 0, 8);
  expect_error(w, "transformer_blocks.1.attn.norm_added_k.weight");
  EXPECT_FALSE(flux::is_flux_transformer(flux::Weights{}));
}

TEST(Flux, BadConfigAndInputs) {
  const flux::Weights w = load("schnell_bfl.safetensors");
  for (const char* bad : {"[", "{\"axes_dims_rope\": [4, 6, 8], \"attention_head_dim\": 16}",
                          "{\"num_attention_heads\": -3}", "{\"patch_size\": 2}",
                          "{\"attention_head_dim\": 1048576, \"num_attention_heads\": 1048576}"})
    EXPECT_THROW(flux::Transformer::build(w, bad), Error) << bad;
  const auto tr = flux::Transformer::build(w, config_text());
  ThreadPool pool(1);
  const Tensor img = Tensor::zeros({6, 63}, DType::F32), ids = Tensor::zeros({6, 3}, DType::F32);
  const Tensor txt = Tensor::zeros({5, 32}, DType::F32), tids = Tensor::zeros({5, 3}, DType::F32);
  const Tensor pooled = Tensor::zeros({16}, DType::F32);
  EXPECT_THROW(tr->forward(img, txt, pooled, ids, tids, 0.5f, 0, pool), Error);
}

TEST(Flux, ForwardBytesBoundsTheMeasuredPeak) {
  const auto tr = flux::Transformer::build(load("schnell_bfl.safetensors"), config_text());
  MemoryTracker& t = memory_tracker();
  t.reset_peak();
  const int64_t before = t.stats().heap_current;
  const Tensor out = run(*tr);  // two threads, as forward_bytes is asked below
  const int64_t peak = t.stats().heap_peak - before;
  std::printf("forward peak %lld bytes, bound %lld\n", static_cast<long long>(peak),
              static_cast<long long>(tr->forward_bytes(6, 5, 2)));
  EXPECT_GT(peak, 0);
  EXPECT_LE(peak, tr->forward_bytes(6, 5, 2));
}

}  // namespace
}  // namespace eight
