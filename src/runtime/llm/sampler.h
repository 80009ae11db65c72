#pragma once
// Token sampling. The chain (as llama.cpp's default order): repetition/presence/frequency
// penalties over the last `penalty_last_n` tokens → greedy when temperature ≤ 0 → top-k → top-p →
// min-p → temperature → a draw from the seeded generator. All buffers are sized once for the
// vocabulary, so sampling a token allocates nothing; the same seed gives the same tokens.
#include <cstdint>
#include <random>

#include "core/memory.h"

namespace eight {

struct SamplerParams {
  float temperature = 0.8f;        // ≤ 0: greedy (argmax)
  int top_k = 40;                  // ≤ 0: off
  float top_p = 0.95f;             // ≥ 1: off
  float min_p = 0.05f;             // ≤ 0: off; keeps tokens with p ≥ min_p · p_max
  float repeat_penalty = 1.0f;     // 1: off; divides positive logits, multiplies negative ones
  float presence_penalty = 0.0f;   // subtracted once from every token seen
  float frequency_penalty = 0.0f;  // subtracted per occurrence
  int penalty_last_n = 64;         // window of recent tokens the penalties look at (0: off)
  uint64_t seed = 0;               // generator seed
};

class Sampler {
 public:
  Sampler(const SamplerParams& p, int64_t n_vocab);

  const SamplerParams& params() const { return params_; }
  // Picks the next token from logits[n_vocab] (not modified). With `allowed` (a bit mask over the
  // vocabulary, bit i of allowed[i / 32]: a grammar's choice), only those tokens are candidates;
  // the mask must allow at least one token.
  int32_t sample(const float* logits, const uint32_t* allowed = nullptr);
  // Records a token of the context (prompt or generated) for the penalties.
  void accept(int32_t token);
  // Forgets the history and reseeds.
  void reset();

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };
  // Fills candidates_ (the allowed ones only, when a mask is given), returns their count.
  int64_t apply_penalties(const float* logits, const uint32_t* allowed);

  SamplerParams params_;
  int64_t n_vocab_;
  HostBuffer candidates_;  // Candidate[n_vocab]
  HostBuffer counts_;      // int32[n_vocab]: occurrences in the window
  HostBuffer history_;     // int32[penalty_last_n]: ring buffer of recent tokens
  int64_t history_len_ = 0, history_head_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace eight
