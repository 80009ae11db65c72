#pragma once
// Writes a random-weight Whisper model in whisper.cpp's ggml layout (header, mel filters, vocab,
// tensors with ne innermost first), for tests that must run without ../shared. Weights are
// N(0, scale²) with norms near 1, F32 or F16 matrices; conv biases stored [n_state, 1] as
// whisper.cpp does.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "formats/whisper_ggml.h"

namespace eight::testing {

struct RandomWhisper {
  int32_t n_vocab = 51865, n_audio_ctx = 1500, n_state = 64, n_head = 2, n_audio_layer = 2;
  int32_t n_text_ctx = 448, n_text_layer = 2, n_mels = 80;
  bool f16 = true;
  uint64_t seed = 1;
};

inline void write_random_whisper(const RandomWhisper& c, const std::string& path) {
  std::ofstream f(path, std::ios::binary);
  std::mt19937_64 gen(c.seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto i32 = [&](int32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  i32(static_cast<int32_t>(whisper::kGgmlMagic));
  for (int32_t v : {c.n_vocab, c.n_audio_ctx, c.n_state, c.n_head, c.n_audio_layer, c.n_text_ctx,
                    c.n_state, c.n_head, c.n_text_layer, c.n_mels, c.f16 ? 1 : 0})
    i32(v);
  i32(c.n_mels);
  i32(201);
  for (int i = 0; i < c.n_mels * 201; ++i) {
    const float v = std::abs(normal(gen)) * 0.01f;
    f.write(reinterpret_cast<const char*>(&v), 4);
  }
  i32(3);  // a few vocab entries; the model never reads them
  for (const char* t : {"a", "b", "c"}) {
    i32(1);
    f.write(t, 1);
  }
  // ne: innermost first. `half` stores F16 (matrices and convs of an F16 file).
  auto tensor = [&](const std::string& name, std::vector<int32_t> ne, float scale, float mean,
                    bool half) {
    i32(static_cast<int32_t>(ne.size()));
    i32(static_cast<int32_t>(name.size()));
    i32(half ? 1 : 0);
    int64_t n = 1;
    for (int32_t e : ne) {
      i32(e);
      n *= e;
    }
    f.write(name.data(), static_cast<std::streamsize>(name.size()));
    for (int64_t i = 0; i < n; ++i) {
      const float v = mean + scale * normal(gen);
      if (half) {
        const uint16_t h = fp32_to_fp16(v);
        f.write(reinterpret_cast<const char*>(&h), 2);
      } else {
        f.write(reinterpret_cast<const char*>(&v), 4);
      }
    }
  };
  const int32_t n = c.n_state;
  const float ws = 1.0f / std::sqrt(static_cast<float>(n));
  auto block = [&](const std::string& p, bool cross) {
    auto norm = [&](const std::string& q) {
      tensor(q + ".weight", {n}, 0.1f, 1.f, false);
      tensor(q + ".bias", {n}, 0.1f, 0.f, false);
    };
    auto lin = [&](const std::string& q, int32_t out, int32_t in, bool bias) {
      tensor(q + ".weight", {in, out}, 1.0f / std::sqrt(static_cast<float>(in)), 0.f, c.f16);
      if (bias) tensor(q + ".bias", {out}, 0.1f, 0.f, false);
    };
    norm(p + ".attn_ln");
    lin(p + ".attn.query", n, n, true);
    lin(p + ".attn.key", n, n, false);
    lin(p + ".attn.value", n, n, true);
    lin(p + ".attn.out", n, n, true);
    if (cross) {
      norm(p + ".cross_attn_ln");
      lin(p + ".cross_attn.query", n, n, true);
      lin(p + ".cross_attn.key", n, n, false);
      lin(p + ".cross_attn.value", n, n, true);
      lin(p + ".cross_attn.out", n, n, true);
    }
    norm(p + ".mlp_ln");
    lin(p + ".mlp.0", 4 * n, n, true);
    lin(p + ".mlp.2", n, 4 * n, true);
  };
  tensor("encoder.positional_embedding", {n, c.n_audio_ctx}, 0.5f, 0.f, false);
  tensor("encoder.conv1.weight", {3, c.n_mels, n}, 1.0f / std::sqrt(3.0f * c.n_mels), 0.f, c.f16);
  tensor("encoder.conv1.bias", {1, n}, 0.1f, 0.f, false);
  tensor("encoder.conv2.weight", {3, n, n}, 1.0f / std::sqrt(3.0f * n), 0.f, c.f16);
  tensor("encoder.conv2.bias", {1, n}, 0.1f, 0.f, false);
  for (int i = 0; i < c.n_audio_layer; ++i) block("encoder.blocks." + std::to_string(i), false);
  tensor("encoder.ln_post.weight", {n}, 0.1f, 1.f, false);
  tensor("encoder.ln_post.bias", {n}, 0.1f, 0.f, false);
  tensor("decoder.positional_embedding", {n, c.n_text_ctx}, 0.5f, 0.f, false);
  tensor("decoder.token_embedding.weight", {n, c.n_vocab}, ws * 4, 0.f, c.f16);
  for (int i = 0; i < c.n_text_layer; ++i) block("decoder.blocks." + std::to_string(i), true);
  tensor("decoder.ln.weight", {n}, 0.1f, 1.f, false);
  tensor("decoder.ln.bias", {n}, 0.1f, 0.f, false);
}

}  // namespace eight::testing
