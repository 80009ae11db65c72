#pragma once
// Memory plan for a BERT embedding GGUF (models/bert), from the file's metadata and tensor
// table alone: the weights (used in place from the mapping, plus f32 copies of any non-f32
// norm/bias vectors), one sequence's activations as bert.cpp allocates them for T tokens
// (x, a residual temporary, q, k, v, attention out: 6·T·D · 4; the feed-forward hidden T·n_ff · 4;
// token ids and positions 2·T · 4), and the CPU kernels' per-thread scratch for its products and
// its attention. No KV cache and no logits: an encoder keeps nothing between calls.
#include <cstdint>
#include <string>

#include "formats/gguf.h"
#include "runtime/plan/planner.h"

namespace eight {

struct BertPlan {
  std::string model;
  int64_t n_embd = 0, n_layer = 0, n_head = 0, n_ff = 0, n_ctx = 0, tokens = 0;
  std::string pooling;  // "mean", "cls", "last"
  int64_t weight_bytes = 0, activation_bytes = 0, scratch_bytes = 0;
  DevicePlan cpu;
  int64_t host_peak() const { return cpu.total(); }
  bool fits() const { return cpu.fits(); }
};

// tokens: the longest input planned for (0: the model's context). Throws Error naming a missing
// key.
BertPlan plan_bert(const gguf::File& file, int64_t tokens, int n_threads, int64_t ram);
std::string render_plan(const BertPlan& plan);

// Shared by the encoder plans (bert, T5): the CPU items (weights mapped from the file, one
// input's activations, kernel scratch) and their table with the verdict line.
DevicePlan encoder_cpu_plan(int64_t ram, int64_t weight_bytes, DType matrix,
                            int64_t activation_bytes, int64_t tokens, int64_t scratch_bytes,
                            int threads);
std::string render_cpu_items(const DevicePlan& cpu, const std::string& note);

}  // namespace eight
