#pragma once
// Memory plan for a T5-family encoder (models/t5) from its config and tensor table alone: the
// weights (used in place from the safetensors mapping, plus f32 copies of non-f32 norm weights
// and relative-attention tables), one sequence's activations as t5_forward.cpp allocates them
// for T tokens (x and a temporary [T, d_model]; q, k, v, attention out [T, H·d_kv]; the
// feed-forward hidden [T, d_ff], twice when gated; one head's scores [T, T], output and k / vᵀ
// copies [T, d_kv]), and the CPU kernels' per-thread scratch for its products.
#include <cstdint>
#include <string>

#include "models/t5/t5.h"
#include "runtime/plan/planner.h"

namespace eight {

struct T5Plan {
  std::string model;
  t5::Config config;
  int64_t tokens = 0;
  int64_t weight_bytes = 0, activation_bytes = 0, scratch_bytes = 0;
  DevicePlan cpu;
  int64_t host_peak() const { return cpu.total(); }
  bool fits() const { return cpu.fits(); }
};

// path: an HF T5 directory or a .safetensors file (as t5::Encoder::load takes). tokens: the
// sequence length planned for (0: 512, what FLUX-dev and WAN pad to).
T5Plan plan_t5(const std::string& path, int64_t tokens, int n_threads, int64_t ram);
std::string render_plan(const T5Plan& plan);

}  // namespace eight
