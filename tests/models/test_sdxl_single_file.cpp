// The SDXL single-file splitter against the tiny pipeline of tests/python/sdxl_tiny.py: the
// Stability-layout file, renamed, holds exactly the tensors of the diffusers directory written
// beside it; missing, unknown and corrupted tensors are Errors naming them.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/safetensors.h"
#include "models/sdxl/single_file.h"
#include "test_util.h"

namespace eight {
namespace {

// One tiny pipeline per dtype, written once per test program.
const std::string& tiny_pipeline(const std::string& dtype) {
  static testing::TempDir dir;
  static std::map<std::string, std::string> made;
  auto it = made.find(dtype);
  if (it != made.end()) return it->second;
  const std::string out = dir.file(dtype);
  const std::string cmd = testing::python_with("numpy") + " " + testing::source_dir() +
                          "/tests/python/sdxl_tiny.py --out " + out + " --single-file " + out +
                          "/tiny.safetensors --dtype " + dtype;
  // Thrown, not EXPECTed: every later step would fail with a missing-file error instead.
  if (testing::run_command(cmd) != 0)
    throw std::runtime_error("could not write the tiny SDXL pipeline: " + cmd);
  return made.emplace(dtype, out).first->second;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void expect_same(const std::map<std::string, Tensor>& got, const std::string& file,
                 const std::string& component) {
  const auto expected = safetensors::File::open(file);
  EXPECT_EQ(got.size(), expected.tensors().size()) << component;
  for (const auto& info : expected.tensors()) {
    const auto it = got.find(info.name);
    ASSERT_NE(it, got.end()) << component << " lacks " << info.name;
    const Tensor want = expected.tensor(info);
    const Tensor have = it->second.contiguous();
    ASSERT_EQ(have.dtype(), want.dtype()) << info.name;
    ASSERT_EQ(have.shape(), want.shape()) << info.name << " " << have.shape().str();
    EXPECT_EQ(std::memcmp(have.raw(), want.raw(), want.nbytes()), 0)
        << component << " " << info.name;
  }
}

class SDXLSingleFile : public ::testing::TestWithParam<std::string> {};

TEST_P(SDXLSingleFile, RenamedTensorsEqualTheDiffusersDirectory) {
  const std::string dir = tiny_pipeline(GetParam());
  const auto ckpt = safetensors::Checkpoint::open(dir + "/tiny.safetensors");
  ASSERT_TRUE(sdxl::is_sdxl_single_file(ckpt));
  EXPECT_FALSE(sdxl::is_sdxl_single_file(
      safetensors::Checkpoint::open(dir + "/unet/diffusion_pytorch_model.safetensors")));
  const auto parts = sdxl::split_single_file(ckpt);
  expect_same(parts.unet, dir + "/unet/diffusion_pytorch_model.safetensors", "unet");
  expect_same(parts.vae, dir + "/vae/diffusion_pytorch_model.safetensors", "vae");
  expect_same(parts.text_encoder, dir + "/text_encoder/model.safetensors", "text_encoder");
  expect_same(parts.text_encoder_2, dir + "/text_encoder_2/model.safetensors", "text_encoder_2");
  // Zero-copy where the layout allows: q/k/v are rows of the packed projection.
  const Tensor q = parts.text_encoder_2.at("text_model.encoder.layers.0.self_attn.q_proj.weight");
  const Tensor packed = ckpt.tensor(
      "conditioner.embedders.1.model.transformer.resblocks.0.attn."
      "in_proj_weight");
  EXPECT_EQ(q.raw(), packed.raw());
}

INSTANTIATE_TEST_SUITE_P(DTypes, SDXLSingleFile, ::testing::Values("f32", "f16"));

// The single file's bytes with one tensor name changed in place (same length, so the header
// stays valid).
safetensors::File with_renamed(std::vector<uint8_t>& bytes, const std::string& from,
                               const std::string& to) {
  const std::string quoted = "\"" + from + "\"";
  const auto at = std::search(bytes.begin(), bytes.end(), quoted.begin(), quoted.end());
  if (at == bytes.end() || from.size() != to.size())
    throw std::runtime_error("cannot rename " + from);
  std::copy(to.begin(), to.end(), at + 1);
  return safetensors::File::parse(
      std::make_shared<BorrowedStorage>(bytes.data(), bytes.size(), false));
}

void expect_error_naming(const safetensors::File& file, const std::string& name) {
  try {
    sdxl::split_single_file(file);
    ADD_FAILURE() << "no error for " << name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

TEST(SDXLSingleFileErrors, MissingAndUnknownTensorsAreNamed) {
  const auto original = read_bytes(tiny_pipeline("f32") + "/tiny.safetensors");
  {
    auto bytes = original;
    const auto f = with_renamed(bytes, "model.diffusion_model.input_blocks.4.0.in_layers.2.weight",
                                "model.diffusion_model.input_blocks.4.0.in_layers.2.weighX");
    EXPECT_TRUE(sdxl::is_sdxl_single_file(f));
    expect_error_naming(f,
                        "'model.diffusion_model.input_blocks.4.0.in_layers.2.weight' is missing");
  }
  for (const std::string name :
       {"model.diffusion_model.middle_block.1.transformer_blocks.1.attn2.to_k.weight",
        "model.diffusion_model.output_blocks.2.2.conv.bias",
        "first_stage_model.decoder.up.0.block.1.conv2.bias",
        "first_stage_model.encoder.mid.attn_1.proj_out.weight",
        "conditioner.embedders.0.transformer.text_model.encoder.layers.2.mlp.fc1.bias",
        "conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_bias",
        "conditioner.embedders.1.model.text_projection"}) {
    auto bytes = original;
    std::string changed = name;
    changed.back() = 'X';
    expect_error_naming(with_renamed(bytes, name, changed), "'" + name + "'");
  }
  {
    auto bytes = original;  // a known extra renamed into an unknown name
    const std::string ids =
        "conditioner.embedders.0.transformer.text_model.embeddings.position_ids";
    expect_error_naming(with_renamed(bytes, ids, ids.substr(0, ids.size() - 1) + "X"),
                        "position_idX");
  }
  {
    auto bytes = original;  // a whole ResNet block gone: the levels no longer agree
    const std::string p = "model.diffusion_model.output_blocks.7.0.";
    for (const char* leaf :
         {"in_layers.0.weight", "in_layers.0.bias", "in_layers.2.weight", "in_layers.2.bias",
          "emb_layers.1.weight", "emb_layers.1.bias", "out_layers.0.weight", "out_layers.0.bias",
          "out_layers.3.weight", "out_layers.3.bias", "skip_connection.weight",
          "skip_connection.bias"}) {
      const std::string from = p + leaf;
      with_renamed(bytes, from, "model_ema.diffusion_m.output_blocks.7.0." + std::string(leaf));
    }
    expect_error_naming(safetensors::File::parse(
                            std::make_shared<BorrowedStorage>(bytes.data(), bytes.size(), false)),
                        "up level 2 has 2 ResNet blocks");
  }
}

// The fuzz target's seed (every name of the tiny layout, one element per tensor) splits, so the
// fuzzer starts from inputs that reach every renaming.
TEST(SDXLSingleFile, FuzzSeedSplits) {
  const auto seed = safetensors::Checkpoint::open(
      testing::source_dir() + "/tests/fuzz/seeds/fuzz_sdxl_single_file/tiny_layout.safetensors");
  const auto parts = sdxl::split_single_file(seed);
  const auto full = sdxl::split_single_file(
      safetensors::Checkpoint::open(tiny_pipeline("f16") + "/tiny.safetensors"));
  EXPECT_EQ(parts.unet.size(), full.unet.size());
  EXPECT_EQ(parts.vae.size(), full.vae.size());
  EXPECT_EQ(parts.text_encoder.size(), full.text_encoder.size());
  EXPECT_EQ(parts.text_encoder_2.size(), full.text_encoder_2.size());
}

TEST(SDXLSingleFileErrors, TruncatedAndCorruptedFilesNeverCrash) {
  auto bytes = read_bytes(tiny_pipeline("f16") + "/tiny.safetensors");
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  for (size_t keep : {size_t{0}, size_t{7}, size_t{100}, size_t(8 + header), bytes.size() / 2,
                      bytes.size() - 1}) {
    EXPECT_THROW(safetensors::File::parse(
                     std::make_shared<BorrowedStorage>(bytes.data(), keep, false), "cut")
                     .tensors(),
                 Error)
        << keep;
  }
  std::mt19937_64 rng(testing::rng()());
  int parsed = 0;
  for (int i = 0; i < 300; ++i) {
    const size_t at = 8 + rng() % header;
    const uint8_t old = bytes[at];
    bytes[at] = static_cast<uint8_t>(rng());
    try {
      const auto f = safetensors::File::parse(
          std::make_shared<BorrowedStorage>(bytes.data(), bytes.size(), false), "mutated");
      ++parsed;
      if (sdxl::is_sdxl_single_file(f)) sdxl::split_single_file(f);
    } catch (const Error&) {
    }
    bytes[at] = old;
  }
  std::cout << parsed << " of 300 mutated headers parsed\n";
}

}  // namespace
}  // namespace eight
