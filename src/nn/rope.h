#pragma once
// Rotary position embeddings (Su et al. 2021) in the two pairings GGUF models use:
//   Norm: adjacent pairs (x[2i], x[2i+1]) — the `llama` GGUF layout (the converter permutes q/k);
//   Neox: half split (x[i], x[i + n_rot/2]) — HF's rotate_half, used by `qwen2` and `phi3`.
// Angle of pair i at position p: p · freq_scale · base^(-2i/n_rot) / freq_factors[i]; cos and sin
// are multiplied by attn_factor (LongRoPE's magnitude correction). Only the first n_rot dims of
// each head rotate.
#include <cstdint>

#include "core/tensor.h"

namespace eight::nn {

enum class RopeStyle { Norm, Neox };

struct RopeParams {
  int64_t n_rot = 0;         // rotated dims per head (even, ≤ head_dim)
  float base = 10000.0f;     // rope.freq_base
  float freq_scale = 1.0f;   // linear scaling: 1 / rope.scaling.factor
  float attn_factor = 1.0f;  // multiplies cos and sin
  RopeStyle style = RopeStyle::Norm;
  Tensor freq_factors;  // [n_rot/2] F32 divisors (rope_freqs, rope_factors_*), optional
};

// cos_sin[T][n_rot/2][2] for the given positions.
void rope_table(float* cos_sin, const int32_t* positions, int64_t T, const RopeParams& p);

// Rotates x[T, n_heads·head_dim] (row stride `row_stride` floats) in place with a table from
// rope_table.
void rope_apply(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t row_stride,
                const float* cos_sin, const RopeParams& p);

// The same on a GPU: x [T, n_heads·head_dim] (rows at any stride) rotated in place with the
// table of rope_table uploaded to the same device as cos_sin [T, n_rot] f32.
void rope_apply(const Tensor& x, int64_t n_heads, int64_t head_dim, const Tensor& cos_sin,
                const RopeParams& p);

}  // namespace eight::nn
