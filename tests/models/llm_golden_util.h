#pragma once
// The golden LLMs of ../shared/golden/llm/ and the check every placement of them must pass:
// llama.cpp's logits for the same tokens (NMSE ≤ 1e-3 quantized, ≤ 1e-5 F16, over all prompt
// positions) and the same greedy continuation wherever the reference's top-1 margin is ≥ 0.1.
// Token ids come from the JSON, so this does not depend on the tokenizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/half.h"
#include "llm_test_util.h"
#include "test_util.h"

namespace eight::testing {

struct Golden {
  std::string dir, name;
  nlohmann::json meta;
};

inline std::vector<Golden> golden_models() {
  std::vector<Golden> out;
  const std::string shared = shared_dir();
  if (shared.empty()) return out;
  const std::string dir = shared + "/golden/llm";
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    out.push_back({dir, e.path().stem().string(), nlohmann::json::parse(in)});
  }
  std::sort(out.begin(), out.end(),
            [](const Golden& a, const Golden& b) { return a.name < b.name; });
  return out;
}

inline std::vector<float> read_f16_logits(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint16_t> h(n);
  in.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(n * 2));
  EXPECT_EQ(static_cast<size_t>(in.gcount()), n * 2) << path;
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = fp16_to_fp32(h[i]);
  return f;
}

inline int32_t argmax(const float* x, int64_t n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);
}

// Prompt logits (in batches of 16, so batch boundaries are exercised too) and the greedy
// continuation of `model` (placed as the caller chose) against golden model `g`. `label` names the
// placement in the printed summary.
inline void check_golden(const llm::LLM& model, const Golden& g, const char* label) {
  const auto& c = model.config();
  const auto tokens = g.meta["tokens"].get<std::vector<int32_t>>();
  const int64_t T = static_cast<int64_t>(tokens.size());
  ASSERT_EQ(c.n_vocab, g.meta["n_vocab"].get<int64_t>());

  const auto ours = all_logits(model, tokens, 16);
  const auto ref = read_f16_logits(g.dir + "/" + g.meta["logits"].get<std::string>(),
                                   static_cast<size_t>(T * c.n_vocab));
  const double err = nmse(ours.data(), ref.data(), ours.size());
  const bool f16 = g.meta["quant"].get<std::string>() == "F16";
  std::printf("[golden] %-16s %-7s %-10s NMSE %.3e (llama.cpp vs float64: %.3e)\n", g.name.c_str(),
              g.meta["quant"].get<std::string>().c_str(), label, err,
              g.meta["nmse_reference_vs_float64_dequantized"].get<double>());
  EXPECT_LE(err, f16 ? 1e-5 : 1e-3);

  // Greedy continuation, one token at a time through the cache, teacher-forced with the
  // reference's tokens so one near-tie does not derail the rest.
  const auto greedy = g.meta["greedy"].get<std::vector<int32_t>>();
  const auto margins = g.meta["greedy_margins"].get<std::vector<double>>();
  const int64_t n_ctx = T + static_cast<int64_t>(greedy.size()) + 1;
  KVCache cache(kv_cache_config(model, n_ctx, DType::F16));
  llm::LLMScratch scratch(model, 64);
  std::vector<float> logits(static_cast<size_t>(c.n_vocab));
  llm::forward(model, tokens.data(), T, 0, cache.layers(0), scratch, logits.data(),
               {.n_ctx = n_ctx}, global_thread_pool());
  int checked = 0;
  for (size_t i = 0; i < greedy.size(); ++i) {
    if (margins[i] >= 0.1) {
      EXPECT_EQ(argmax(logits.data(), c.n_vocab), greedy[i]) << "greedy step " << i;
      ++checked;
    }
    llm::forward(model, &greedy[i], 1, T + static_cast<int64_t>(i), cache.layers(0), scratch,
                 logits.data(), {.n_ctx = n_ctx}, global_thread_pool());
  }
  std::printf("[golden] %-16s %-10s greedy: %d of %zu steps had margin >= 0.1 and matched\n",
              g.name.c_str(), label, checked, greedy.size());
}

}  // namespace eight::testing
