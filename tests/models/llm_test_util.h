#pragma once
// Helpers shared by the LLM tests: run a model over tokens with a fresh cache, NMSE.
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "models/llm/llm.h"
#include "runtime/llm/kv_cache.h"

namespace eight::testing {

inline double nmse(const float* ours, const float* ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(ours[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? num / den : num;
}

// Logits [T, n_vocab] of the whole sequence processed in batches of `batch`.
inline std::vector<float> all_logits(const llm::LLM& m, const std::vector<int32_t>& tokens,
                                     int64_t batch, DType kv_type = DType::F16) {
  const auto& c = m.config();
  const int64_t T = static_cast<int64_t>(tokens.size());
  KVCache cache(kv_cache_config(m, T + 8, kv_type));
  llm::LLMScratch scratch(m, batch);
  std::vector<float> logits(static_cast<size_t>(T * c.n_vocab));
  llm::forward(m, tokens.data(), T, 0, cache.layers(0), scratch, logits.data(),
               {.n_ctx = T + 8, .all_logits = true}, global_thread_pool());
  return logits;
}

}  // namespace eight::testing
