// SDXL LoRA (models/sdxl/lora.h): name resolution for kohya (original and diffusers UNet layouts),
// diffusers/PEFT and attention-processor names; the original-layout names against the
// single-file splitter; the merge W + factor * up @ down in each float dtype and for LoCon
// convolutions; run-time LoRA on a Q8_0 UNet weight against the merged float weight; errors that
// name the tensor. End to end against diffusers: tests/python/test_sdxl_lora.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/half.h"
#include "core/storage.h"
#include "formats/npy.h"
#include "formats/quantize_model.h"
#include "formats/safetensors.h"
#include "models/sdxl/lora.h"
#include "models/sdxl/single_file.h"
#include "models/sdxl_test_util.h"
#include "models/unet/unet.h"

namespace eight {
namespace {

Tensor filled(const Dims& shape, float start, float step = 0.01f) {
  Tensor t = Tensor::empty(shape, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = start + step * static_cast<float>(i % 97) - 0.3f * ((i / 7) % 3);
  return t;
}

// A safetensors file in memory with F32 tensors (and an optional metadata entry).
safetensors::File make_file(const std::map<std::string, Tensor>& tensors,
                            const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string data;
  for (const auto& [name, t] : tensors) {
    const Tensor c = t.contiguous();
    std::vector<int64_t> shape(c.shape().begin(), c.shape().end());
    header[name] = {{"dtype", "F32"},
                    {"shape", shape},
                    {"data_offsets", {data.size(), data.size() + c.nbytes()}}};
    data.append(static_cast<const char*>(c.raw()), c.nbytes());
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  auto bytes = std::make_shared<HostStorage>(8 + text.size() + data.size());
  auto* p = static_cast<uint8_t*>(bytes->data());
  const uint64_t n = text.size();
  std::memcpy(p, &n, 8);
  std::memcpy(p + 8, text.data(), text.size());
  std::memcpy(p + 8 + text.size(), data.data(), data.size());
  return safetensors::File::parse(bytes, "test_lora.safetensors");
}

// A small SDXL-shaped set of target weights: R = 2 resnets per down level, 2 levels.
sdxl::Components targets() {
  sdxl::Components c;
  c.unet["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"] = filled({8, 6}, 0);
  c.unet["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.weight"] =
      filled({8, 8}, 0.1f);
  c.unet["down_blocks.1.attentions.0.proj_in.weight"] = filled({8, 8}, 0.2f);
  c.unet["down_blocks.0.resnets.0.conv1.weight"] = filled({4, 3, 3, 3}, 0.3f);
  c.unet["down_blocks.0.resnets.1.conv1.weight"] = filled({4, 4, 3, 3}, 0.3f);
  c.unet["down_blocks.0.downsamplers.0.conv.weight"] = filled({4, 4, 3, 3}, 0.3f);
  c.unet["up_blocks.0.attentions.0.proj_in.weight"] = filled({8, 8}, 0.2f);
  c.unet["up_blocks.0.upsamplers.0.conv.weight"] = filled({8, 8, 3, 3}, 0.2f);
  c.unet["conv_in.weight"] = filled({4, 4, 3, 3}, 0.4f);
  c.text_encoder["text_model.encoder.layers.0.self_attn.q_proj.weight"] = filled({6, 6}, 0.5f);
  // text_encoder_2's q/k/v as row slices of one fused tensor, as a single file gives them.
  const Tensor fused = filled({18, 6}, 0.6f);
  c.text_encoder_2["text_model.encoder.layers.0.self_attn.q_proj.weight"] = fused.slice(0, 0, 6);
  c.text_encoder_2["text_model.encoder.layers.0.self_attn.k_proj.weight"] = fused.slice(0, 6, 12);
  c.text_encoder_2["text_model.encoder.layers.0.self_attn.v_proj.weight"] = fused.slice(0, 12, 18);
  return c;
}

TEST(SDXLLora, OriginalUNetNames) {
  const std::vector<bool> up_attention{true, true, false};  // SDXL
  auto o = [&](const std::string& m) { return sdxl::original_unet_module(m, 2, up_attention); };
  EXPECT_EQ(o("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"),
            "input_blocks.4.1.transformer_blocks.0.attn1.to_q");
  EXPECT_EQ(o("down_blocks.2.attentions.1.proj_out"), "input_blocks.8.1.proj_out");
  EXPECT_EQ(o("down_blocks.0.resnets.1.conv2"), "input_blocks.2.0.out_layers.3");
  EXPECT_EQ(o("down_blocks.1.resnets.0.conv_shortcut"), "input_blocks.4.0.skip_connection");
  EXPECT_EQ(o("down_blocks.0.downsamplers.0.conv"), "input_blocks.3.0.op");
  EXPECT_EQ(o("mid_block.resnets.1.time_emb_proj"), "middle_block.2.emb_layers.1");
  EXPECT_EQ(o("mid_block.attentions.0.transformer_blocks.3.ff.net.2"),
            "middle_block.1.transformer_blocks.3.ff.net.2");
  EXPECT_EQ(o("up_blocks.0.resnets.2.conv1"), "output_blocks.2.0.in_layers.2");
  EXPECT_EQ(o("up_blocks.0.upsamplers.0.conv"), "output_blocks.2.2.conv");
  EXPECT_EQ(o("up_blocks.1.attentions.2.proj_in"), "output_blocks.5.1.proj_in");
  EXPECT_EQ(o("up_blocks.2.resnets.0.conv1"), "output_blocks.6.0.in_layers.2");
  EXPECT_EQ(sdxl::original_unet_module("up_blocks.1.upsamplers.0.conv", 2, {true, false, false}),
            "output_blocks.5.1.conv");
  EXPECT_EQ(o("time_embedding.linear_2"), "time_embed.2");
  EXPECT_EQ(o("add_embedding.linear_1"), "label_emb.0.0");
  EXPECT_EQ(o("conv_out"), "out.2");
  EXPECT_EQ(o("down_blocks.0.resnets.0.nonsense"), "");
}

// Every UNet weight of the tiny single file, renamed to diffusers' names by the splitter, maps
// back to the tensor of the file it came from.
TEST(SDXLLora, OriginalNamesInvertTheSingleFileSplitter) {
  testing::TempDir dir;
  sdxl_test::write_tiny(dir, "f32", true);
  const auto ckpt = safetensors::Checkpoint::open(dir.file("tiny.safetensors"));
  const sdxl::Components parts = sdxl::split_single_file(ckpt);
  const std::vector<bool> up_attention{true, true, false};  // tests/data/sdxl/tiny/unet
  int checked = 0;
  for (const auto& [name, t] : parts.unet) {
    if (!name.ends_with(".weight")) continue;
    const std::string module = name.substr(0, name.size() - 7);
    const std::string original = sdxl::original_unet_module(module, 2, up_attention);
    ASSERT_FALSE(original.empty()) << name;
    const std::string file_name = "model.diffusion_model." + original + ".weight";
    ASSERT_TRUE(ckpt.has(file_name)) << name << " -> " << file_name;
    EXPECT_EQ(ckpt.tensor(file_name).raw(), t.raw()) << name;
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST(SDXLLora, ResolvesEveryLayout) {
  const sdxl::Components c = targets();
  const std::map<std::string, Tensor> tensors = {
      // kohya, original layout, with alpha
      {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight",
       filled({2, 6}, 0)},
      {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight",
       filled({8, 2}, 0)},
      {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.alpha", filled({}, 1.5f)},
      // kohya, diffusers layout (LCM-LoRA), no alpha; LoCon conv
      {"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight", filled({3, 3, 3, 3}, 0)},
      {"lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight", filled({4, 3, 1, 1}, 0)},
      {"lora_unet_input_blocks_3_0_op.lora_down.weight", filled({2, 4, 3, 3}, 0)},
      {"lora_unet_input_blocks_3_0_op.lora_up.weight", filled({4, 2, 1, 1}, 0)},
      {"lora_unet_output_blocks_2_2_conv.lora_down.weight", filled({2, 8, 3, 3}, 0)},
      {"lora_unet_output_blocks_2_2_conv.lora_up.weight", filled({8, 2, 1, 1}, 0)},
      {"lora_unet_input_blocks_0_0.lora_down.weight", filled({2, 4, 3, 3}, 0)},
      {"lora_unet_input_blocks_0_0.lora_up.weight", filled({4, 2, 1, 1}, 0)},
      // PEFT
      {"unet.up_blocks.0.attentions.0.proj_in.lora_A.weight", filled({4, 8}, 0)},
      {"unet.up_blocks.0.attentions.0.proj_in.lora_B.weight", filled({8, 4}, 0)},
      // diffusers' attention processors
      {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down."
       "weight",
       filled({2, 8}, 0)},
      {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight",
       filled({8, 2}, 0)},
      // text encoders
      {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", filled({2, 6}, 0)},
      {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", filled({6, 2}, 0)},
      {"text_encoder_2.text_model.encoder.layers.0.self_attn.k_proj.lora_linear_layer.down.weight",
       filled({2, 6}, 0)},
      {"text_encoder_2.text_model.encoder.layers.0.self_attn.k_proj.lora_linear_layer.up.weight",
       filled({6, 2}, 0)},
  };
  const auto modules = sdxl::read_lora(make_file(tensors), c);
  std::map<std::string, std::pair<std::string, double>> got;  // weight -> (component, alpha)
  for (const auto& m : modules) got[m.weight] = {sdxl::lora_component_name(m.component), m.alpha};
  const std::map<std::string, std::pair<std::string, double>> want = {
      {"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight", {"unet", 1.5}},
      {"down_blocks.0.resnets.0.conv1.weight", {"unet", 3}},
      {"down_blocks.0.downsamplers.0.conv.weight", {"unet", 2}},
      {"up_blocks.0.upsamplers.0.conv.weight", {"unet", 2}},
      {"conv_in.weight", {"unet", 2}},
      {"up_blocks.0.attentions.0.proj_in.weight", {"unet", 4}},
      {"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.weight", {"unet", 2}},
      {"text_model.encoder.layers.0.self_attn.q_proj.weight", {"text_encoder", 2}},
      {"text_model.encoder.layers.0.self_attn.k_proj.weight", {"text_encoder_2", 2}},
  };
  EXPECT_EQ(got, want);
}

TEST(SDXLLora, AlphaFromAdapterMetadata) {
  const sdxl::Components c = targets();
  const std::map<std::string, Tensor> tensors = {
      {"unet.up_blocks.0.attentions.0.proj_in.lora_A.weight", filled({4, 8}, 0)},
      {"unet.up_blocks.0.attentions.0.proj_in.lora_B.weight", filled({8, 4}, 0)},
      {"unet.down_blocks.1.attentions.0.proj_in.lora_A.weight", filled({4, 8}, 0)},
      {"unet.down_blocks.1.attentions.0.proj_in.lora_B.weight", filled({8, 4}, 0)}};
  const auto modules = sdxl::read_lora(make_file(tensors, {{"lora_adapter_metadata",
                                                            R"({"unet.r": 4, "unet.lora_alpha": 8,
                      "unet.alpha_pattern": {"up_blocks.0.attentions.0.proj_in": 2}})"}}),
                                       c);
  ASSERT_EQ(modules.size(), 2u);
  for (const auto& m : modules)
    EXPECT_EQ(m.alpha, m.weight.starts_with("up_blocks") ? 2.0 : 8.0) << m.weight;
}

// W + factor * up @ down, computed here in double.
std::vector<double> reference_merge(const Tensor& w, const Tensor& down, const Tensor& up,
                                    double factor) {
  const int64_t out = w.size(0), in = w.numel() / out, r = down.size(0);
  std::vector<double> ref(static_cast<size_t>(w.numel()));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      double s = 0;
      for (int64_t k = 0; k < r; ++k)
        s += double(up.data<float>()[o * r + k]) * down.data<float>()[k * in + i];
      ref[o * in + i] = w.data<float>()[o * in + i] + factor * s;
    }
  return ref;
}

float value_at(const Tensor& t, int64_t i) {
  if (t.dtype() == DType::F32) return t.data<float>()[i];
  if (t.dtype() == DType::F16) return fp16_to_fp32(t.data<uint16_t>()[i]);
  return bf16_to_fp32(t.data<uint16_t>()[i]);
}

Tensor as_dtype(const Tensor& f32, DType t) {
  if (t == DType::F32) return f32;
  Tensor out = Tensor::empty(f32.shape(), t);
  for (int64_t i = 0; i < f32.numel(); ++i)
    out.data<uint16_t>()[i] =
        t == DType::F16 ? fp32_to_fp16(f32.data<float>()[i]) : fp32_to_bf16(f32.data<float>()[i]);
  return out;
}

TEST(SDXLLora, MergeMathInEveryFloatDType) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (bool conv : {false, true}) {
      const Dims wshape = conv ? Dims{5, 3, 3, 3} : Dims{31, 33};
      const int64_t out = wshape[0], in = conv ? 27 : 33, r = 3;
      const Tensor w32 = filled(wshape, 0.05f);
      const Tensor w = as_dtype(w32, dt);
      // The reference starts from the weight as stored.
      Tensor w_stored = Tensor::empty(wshape, DType::F32);
      for (int64_t i = 0; i < w.numel(); ++i) w_stored.data<float>()[i] = value_at(w, i);
      const Tensor down = filled(conv ? Dims{r, 3, 3, 3} : Dims{r, in}, -0.2f, 0.013f);
      const Tensor up = filled(conv ? Dims{out, r, 1, 1} : Dims{out, r}, 0.1f, 0.021f);
      const Tensor merged = sdxl::merge_lora(w, down, up, 0.35);
      ThreadPool pool(3);
      const Tensor parallel = sdxl::merge_lora(w, down, up, 0.35, &pool);
      EXPECT_EQ(0, std::memcmp(parallel.raw(), merged.raw(), merged.nbytes()));
      ASSERT_EQ(merged.dtype(), dt);
      ASSERT_EQ(merged.shape(), w.shape());
      const auto ref = reference_merge(w_stored, down, up, 0.35);
      const double tol = dt == DType::F32 ? 1e-6 : dt == DType::F16 ? 2e-3 : 1.6e-2;
      for (int64_t i = 0; i < merged.numel(); ++i)
        ASSERT_NEAR(value_at(merged, i), ref[i], tol * (1 + std::abs(ref[i])))
            << dtype_name(dt) << " conv " << conv << " at " << i;
    }
}

TEST(SDXLLora, MergingWritesNewTensorsNotTheFusedOriginal) {
  sdxl::Components c = targets();
  const Tensor before = c.text_encoder_2["text_model.encoder.layers.0.self_attn.v_proj.weight"];
  const std::vector<float> fused_copy(before.data<float>(), before.data<float>() + before.numel());
  const auto modules = sdxl::read_lora(
      make_file(
          {{"lora_te2_text_model_encoder_layers_0_self_attn_v_proj.lora_down.weight",
            filled({2, 6}, 0.1f)},
           {"lora_te2_text_model_encoder_layers_0_self_attn_v_proj.lora_up.weight",
            filled({6, 2}, 0.1f)},
           {"lora_te2_text_model_encoder_layers_0_self_attn_v_proj.alpha", filled({1}, 1.0f)}}),
      c);
  sdxl::apply_lora(c, modules, 0.7f);
  const Tensor after = c.text_encoder_2["text_model.encoder.layers.0.self_attn.v_proj.weight"];
  EXPECT_NE(after.raw(), before.raw());
  EXPECT_EQ(0, std::memcmp(before.data<float>(), fused_copy.data(), before.nbytes()));
  const auto ref = reference_merge(before.contiguous(), modules[0].down, modules[0].up, 0.35);
  for (int64_t i = 0; i < after.numel(); ++i) EXPECT_NEAR(after.data<float>()[i], ref[i], 1e-6);
}

void expect_read_error(const std::map<std::string, Tensor>& tensors,
                       const std::vector<std::string>& parts) {
  try {
    sdxl::read_lora(make_file(tensors), targets());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(SDXLLora, ErrorsNameTheTensor) {
  const std::string q = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q";
  expect_read_error({{"lora_unet_single_blocks_0_linear1.lora_down.weight", filled({2, 6}, 0)},
                     {"lora_unet_single_blocks_0_linear1.lora_up.weight", filled({8, 2}, 0)}},
                    {"lora_unet_single_blocks_0_linear1", "match no weight"});
  expect_read_error(
      {{q + ".lora_down.weight", filled({2, 7}, 0)}, {q + ".lora_up.weight", filled({8, 2}, 0)}},
      {q + ".lora_down.weight", "[2, 7]", "[8, 6]"});
  expect_read_error(
      {{q + ".lora_down.weight", filled({2, 6}, 0)}, {q + ".lora_up.weight", filled({8, 3}, 0)}},
      {q + ".lora_up.weight", "[8, 3]"});
  expect_read_error({{q + ".lora_down.weight", filled({2, 6}, 0)}},
                    {q + ".lora_down.weight", "up"});
  expect_read_error({{q + ".lora_down.weight", filled({2, 6}, 0)},
                     {q + ".lora_up.weight", filled({8, 2}, 0)},
                     {q + ".alpha", filled({2}, 0)}},
                    {q + ".alpha"});
  expect_read_error({{q + ".lokr_w1", filled({2, 2}, 0)}}, {q + ".lokr_w1", "LoKr"});
  expect_read_error({{q + ".weight", filled({8, 6}, 0)}}, {q + ".weight", "not a LoRA tensor"});
}

// The fuzz target's seeds (tests/fuzz/fuzz_sdxl_lora.cpp, same targets) apply without error, so
// the fuzzer starts from inputs that reach the merge.
TEST(SDXLLora, FuzzSeedsApply) {
  for (const char* seed : {"kohya", "peft"}) {
    sdxl::Components c;
    c.unet["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"] =
        Tensor::zeros({8, 6}, DType::F32);
    c.unet["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight"] =
        Tensor::zeros({8, 32}, DType::Q8_0);
    c.unet["down_blocks.0.resnets.0.conv1.weight"] = Tensor::zeros({4, 3, 3, 3}, DType::F16);
    c.unet["down_blocks.0.resnets.1.conv1.weight"] = Tensor::zeros({4, 4, 3, 3}, DType::BF16);
    c.text_encoder["text_model.encoder.layers.0.self_attn.q_proj.weight"] =
        Tensor::zeros({6, 6}, DType::F32);
    const Tensor fused = Tensor::zeros({18, 6}, DType::F32);
    c.text_encoder_2["text_model.encoder.layers.0.self_attn.q_proj.weight"] = fused.slice(0, 0, 6);
    c.text_encoder_2["text_model.encoder.layers.0.self_attn.v_proj.weight"] =
        fused.slice(0, 12, 18);
    const auto f = safetensors::File::open(
        testing::source_dir() + "/tests/fuzz/seeds/fuzz_sdxl_lora/" + seed + ".safetensors");
    const auto modules = sdxl::read_lora(f, c);
    EXPECT_EQ(modules.size(), std::string(seed) == "kohya" ? 5u : 3u) << seed;
    sdxl::apply_lora(c, modules, 0.7f);
  }
}

// A Q8_0 UNet weight takes the LoRA at run time; the result equals merging the LoRA into the
// dequantized weight (up to the 8-bit activations of the one quantized matmul).
TEST(SDXLLora, RuntimeLoraOnQuantizedUNetWeight) {
  testing::TempDir dir;
  const std::string folder = sdxl_test::write_tiny(dir, "f32");
  const auto ckpt =
      safetensors::Checkpoint::open(folder + "/unet/diffusion_pytorch_model.safetensors");
  std::ifstream cfg_in(folder + "/unet/config.json");
  std::stringstream cfg;
  cfg << cfg_in.rdbuf();
  sdxl::Components base;
  for (const auto& n : ckpt.names()) base.unet[n] = ckpt.tensor(n);

  const std::string module = "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj";
  const Tensor w = base.unet.at(module + ".weight");  // [512, 64]
  const int64_t rows = w.size(0), cols = w.size(1);
  Tensor q = Tensor::empty(w.shape(), DType::Q8_0);
  quantize_streaming(
      DType::Q8_0, rows, cols,
      [&](int64_t r0, int64_t n, float* dst) {
        std::memcpy(dst, w.data<float>() + r0 * cols, n * cols * sizeof(float));
      },
      static_cast<uint8_t*>(q.raw()), nullptr);
  Tensor dq = Tensor::empty(w.shape(), DType::F32);
  dequantize_row(DType::Q8_0, q.raw(), dq.data<float>(), rows * cols);

  const auto lora = make_file({{"unet." + module + ".lora_A.weight", filled({4, cols}, -0.1f)},
                               {"unet." + module + ".lora_B.weight", filled({rows, 4}, 0.05f)}});
  auto with = [&](const Tensor& weight, bool apply) {
    sdxl::Components c = base;
    c.unet[module + ".weight"] = weight;
    // Twice at half scale: two LoRAs on one quantized weight concatenate their ranks.
    if (apply)
      for (int i = 0; i < 2; ++i) sdxl::apply_lora(c, sdxl::read_lora(lora, c), 0.35f);
    return unet::Model::build(c.unet, cfg.str());
  };
  const Tensor x = npy::read(testing::source_dir() + "/tests/data/sdxl/unet_call_x.npy");
  const Tensor ctx = filled({2, 77, 192}, 0, 0.001f), pooled = filled({2, 128}, 0.1f, 0.002f);
  Tensor ids = Tensor::empty({2, 6}, DType::F32);
  for (int64_t i = 0; i < 12; ++i) ids.data<float>()[i] = (i % 6) < 2 ? 64 : 0;
  ThreadPool pool(2);
  auto run = [&](const unet::Model& m) { return m.forward(x, {999, 500}, ctx, pooled, ids, pool); };
  const auto runtime = with(q, true);
  {
    sdxl::Components c = base;
    c.unet[module + ".weight"] = q;
    sdxl::apply_lora(c, sdxl::read_lora(lora, c), 0.35f);
    sdxl::apply_lora(c, sdxl::read_lora(lora, c), 0.35f);
    EXPECT_EQ(c.unet.at(module + ".lora_down").shape(), (Dims{8, cols}));
    EXPECT_EQ(c.unet.at(module + ".lora_up").shape(), (Dims{rows, 8}));
  }
  const Tensor got = run(*runtime);
  const Tensor merged = run(*with(dq, true));
  const Tensor plain = run(*with(q, false));
  const double err = sdxl_test::nmse(got, merged), effect = sdxl_test::nmse(plain, merged);
  std::printf("run-time LoRA vs merged: NMSE %.3g (without the LoRA: %.3g)\n", err, effect);
  EXPECT_LT(err, 1e-4);  // the 8-bit activations of one matmul: ~1e-5
  EXPECT_GT(effect, 1e-3);
}

}  // namespace
}  // namespace eight
