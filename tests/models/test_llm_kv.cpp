// The KV-cache path agrees with a full recompute: logits of token t decoded one at a time through
// the cache equal the logits of the whole sequence at position t, for each architecture, several
// shapes and GQA ratios, batch splits, sliding windows and Q8_0/F16 caches. Also: loader errors.
#include <gtest/gtest.h>

#include "llm_random_model.h"
#include "llm_test_util.h"
#include "test_util.h"

namespace eight {
namespace {

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab) {
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(testing::rng());
  return t;
}

// Step-by-step logits through the cache: [T, n_vocab].
std::vector<float> stepwise_logits(const llm::LLM& m, const std::vector<int32_t>& tokens,
                                   DType kv_type) {
  const auto& c = m.config();
  const int64_t T = static_cast<int64_t>(tokens.size());
  KVCache cache(kv_cache_config(m, T, kv_type));
  llm::LLMScratch scratch(m, 4);
  std::vector<float> out(static_cast<size_t>(T * c.n_vocab));
  for (int64_t t = 0; t < T; ++t)
    llm::forward(m, &tokens[t], 1, t, cache.layers(0), scratch, out.data() + t * c.n_vocab,
                 {.n_ctx = T}, global_thread_pool());
  return out;
}

struct Case {
  const char* name;
  testing::RandomLLM shape;
};

TEST(LLMKVCache, DecodeMatchesFullRecompute) {
  std::vector<Case> cases;
  cases.push_back({"llama gqa2", {}});
  cases.push_back({"llama mha tied q8_0", {.n_head_kv = 4, .wtype = DType::Q8_0, .tied = true}});
  cases.push_back(
      {"llama gqa4 window", {.n_embd = 128, .n_head = 8, .n_head_kv = 2, .sliding_window = 5}});
  cases.push_back(
      {"llama linear+freqs f16", {.wtype = DType::F16, .linear_scale = 4.0f, .rope_freqs = true}});
  cases.push_back({"phi3 fused", {.arch = "phi3", .n_head_kv = 4}});
  cases.push_back({"phi3 gqa", {.arch = "phi3", .n_embd = 96, .n_head = 3, .n_head_kv = 1}});
  cases.push_back({"qwen2 biases", {.arch = "qwen2", .n_layer = 3, .n_head = 8, .n_head_kv = 2}});
  testing::TempDir dir;
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    const std::string path = dir.file("m.gguf");
    testing::write_random_llm(k.shape, path, testing::rng()());
    const auto m = llm::LLM::load(path);
    const auto tokens = random_tokens(19, m->config().n_vocab);
    const auto full = testing::all_logits(*m, tokens, 64);
    const auto split = testing::all_logits(*m, tokens, 7);  // batch boundaries inside
    const auto steps = stepwise_logits(*m, tokens, DType::F16);
    // Float weights: only the summation order of batched vs single-row products differs.
    // Quantized weights: the kernels quantize activations to 8 bits per row, and a batch and a
    // single row can round differently, so the bound is the golden tests' (a cache bug — a wrong
    // position or row — gives NMSE of order 1).
    const bool quantized = dtype_is_quantized(k.shape.wtype);
    const double bound = quantized ? 1e-3 : 1e-8;
    EXPECT_LE(testing::nmse(split.data(), full.data(), full.size()), bound);
    EXPECT_LE(testing::nmse(steps.data(), full.data(), full.size()), bound);
    // F32 cache vs F16 cache: only the cache's rounding differs.
    const auto f32 = testing::all_logits(*m, tokens, 64, DType::F32);
    EXPECT_LE(testing::nmse(full.data(), f32.data(), full.size()), quantized ? 1e-3 : 1e-5);
  }
}

TEST(LLMKVCache, Q8CacheIsCloseToF16) {
  testing::TempDir dir;
  const testing::RandomLLM s{.n_embd = 128, .n_head = 4, .n_head_kv = 2};  // head_dim 32
  testing::write_random_llm(s, dir.file("m.gguf"), testing::rng()());
  const auto m = llm::LLM::load(dir.file("m.gguf"));
  const auto tokens = random_tokens(23, m->config().n_vocab);
  const auto f16 = testing::all_logits(*m, tokens, 64);
  const auto q8 = testing::all_logits(*m, tokens, 64, DType::Q8_0);
  const auto q8_steps = stepwise_logits(*m, tokens, DType::Q8_0);
  const double err = testing::nmse(q8.data(), f16.data(), f16.size());
  EXPECT_GT(err, 0.0);
  EXPECT_LE(err, 1e-3);
  // One token at a time (the decode kernels) against the whole prompt at once (the batched
  // kernels): the same cache contents, but the two matmul paths quantize activations in blocks of
  // their own, so they differ by float rounding (up to 3.9e-8 seen over random seeds).
  EXPECT_LE(testing::nmse(q8_steps.data(), q8.data(), q8.size()), 1e-6);
}

TEST(LLMLoader, ErrorsNameWhatIsWrong) {
  testing::TempDir dir;
  // Unknown architecture.
  {
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::string("mamba9"));
    w.write(dir.file("a.gguf"));
    try {
      llm::LLM::load(dir.file("a.gguf"));
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("unknown architecture 'mamba9'"), std::string::npos)
          << e.what();
    }
  }
  // Missing tensor: a qwen2 file without its q bias.
  {
    testing::RandomLLM s{.arch = "llama"};
    testing::write_random_llm(s, dir.file("b.gguf"), 1);
    auto f = gguf::File::open(dir.file("b.gguf"));
    gguf::Writer w;
    w.copy_metadata(f);
    w.set("general.architecture", gguf::Value::string("qwen2"));
    for (const auto& info : f.tensors()) {
      w.add_tensor(info.name, f.tensor(info));
    }
    for (const auto& [key, value] : f.metadata())
      if (key.rfind("llama.", 0) == 0) w.set("qwen2." + key.substr(6), value);
    w.write(dir.file("c.gguf"));
    try {
      llm::LLM::load(dir.file("c.gguf"));
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("missing tensor 'blk.0.attn_q.bias'"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace eight
