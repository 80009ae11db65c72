#pragma once
// MAGNeT's iterative masked decoding (audiocraft lm_magnet.py, _generate_magnet /
// _generate_stage, span_arrangement 'nonoverlap', span_scoring 'max'), no audio prompt:
//
//   for each stage (codebook) s with n steps:           every code of s starts masked
//     for step i (timestep u = linspace(0, 1, n)[i]):
//       mask_p   = cos(u · π/2)                          (cosine schedule)
//       masked   = max(int(mask_p · n_spans), 1) spans with the highest scores are re-masked
//                  (scores: 1 - the span's highest sampled-token probability; spans that were
//                   not masked last step score -1e4 so they stay)
//       logits   = LM([codes | codes], [cond | null], stage s)   (one batched pass)
//       logits   = uncond + (cond - uncond) · (mask_p · max_cfg + (1 - mask_p) · min_cfg)
//       t        = temp · (n - 1 - i) / n                 (annealed), probs = softmax(l / max(t,
//       .01)) masked positions take a top-p sample of probs
//
// The sequence is cut to a whole number of spans (500 frames -> 498, as audiocraft does).
// Randomness: eight's counter-based generator (splitmix64 of seed, stage, step, position) gives
// the same codes for a seed on every thread count; it is not torch's generator, so the codes
// differ from audiocraft's for the same seed (the distribution is the same).
#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/magnet/magnet.h"

namespace eight::magnet {

struct GenerateOptions {
  std::vector<int> steps = {20, 10, 10, 10};  // per codebook
  float max_cfg = 10.f, min_cfg = 1.f;
  float temp = 3.f;
  bool anneal_temp = true;
  float top_p = 0.9f;    // 0: sample from the whole distribution
  bool sampling = true;  // false: argmax (audiocraft's use_sampling=False), no randomness
  uint64_t seed = 0;
  // Called after each step: (stage, step within the stage, steps done, steps in all).
  std::function<void(int, int, int, int)> progress;
};

// The schedule's deterministic pieces, as audiocraft computes them (float32 where torch does).
float mask_probability(int step, int steps);          // cos(linspace(0, 1, steps)[step] · π/2)
int64_t masked_spans(float mask_p, int64_t n_spans);  // max(int(mask_p · n_spans), 1)
float cfg_coefficient(float mask_p, float max_cfg, float min_cfg);
float temperature(float temp, int step, int steps, bool anneal);
// The k indices of the highest scores (ties: the lower index first).
std::vector<int64_t> top_spans(const std::vector<float>& scores, int64_t k);
// Index sampled from probs[0..n) restricted to its top-p nucleus (audiocraft sample_top_p:
// sorted descending, tokens whose preceding cumulative mass exceeds p dropped, renormalized),
// with u in [0, 1) the uniform draw.
int64_t sample_top_p(const float* probs, int64_t n, float top_p, double u,
                     std::vector<std::pair<float, int32_t>>& scratch);
// Uniform [0, 1) draw number `index` of `seed` (splitmix64).
double uniform(uint64_t seed, uint64_t index);

// Codes int32 [n_q, T'] for `frames` frames (T' = frames rounded down to whole spans) given the
// conditioner output `cond` ([S, dim]; undefined: unconditional, both CFG branches null).
Tensor generate(const LM& lm, const Tensor& cond, int64_t frames, const GenerateOptions& opt,
                ThreadPool& pool);

}  // namespace eight::magnet
